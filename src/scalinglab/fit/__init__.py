"""Fitting laws to runs: objectives, multi-start optimisation, bootstrap, back-tests, the Fit result, and
the special fitting procedures (Step Law's) that replace the generic fit for one law."""

from .core import LawFit, fit
from .procedures import Procedure, register_procedure
from .result import Fit

__all__ = ["Fit", "LawFit", "Procedure", "fit", "register_procedure"]
