"""Fitting laws to runs: objectives, multi-start optimisation, bootstrap, back-tests, the Fit result."""

from .core import LawFit, fit
from .result import Fit

__all__ = ["Fit", "LawFit", "fit"]
