"""Special fitting procedures: fits that replace the generic multi-start fit for one law.

A law names its procedure (``Law(procedure="steplaw")``); :class:`~scalinglab.fit.LawFit` looks the name
up here and calls it with the validated table. The laws stay free of fitting code (and of pandas and
the ``Fit`` result), so ``scalinglab.laws`` sits below ``scalinglab.fit``.

A procedure is called as ``procedure(df, law=law, bootstrap=K, seed=s, ci_level=q, source=text)`` and
returns a :class:`~scalinglab.fit.Fit`; a user's own law registers its procedure with
:func:`register_procedure`.
"""

from __future__ import annotations

from typing import Protocol

import pandas as pd

from ..errors import ParameterError, UnknownLawError, invalid
from ..laws import Law
from .result import Fit
from .steplaw import fit_steplaw


class Procedure(Protocol):
    """What :class:`~scalinglab.fit.LawFit` calls in place of the generic fit."""

    def __call__(self, df: pd.DataFrame, *, law: Law, bootstrap: int, seed: int, ci_level: float,
                 source: str) -> Fit: ...


_PROCEDURES: dict[str, Procedure] = {"steplaw": fit_steplaw}


def register_procedure(name: str, procedure: Procedure, *, replace: bool = False) -> Procedure:
    """Make ``procedure`` the fit of every law whose ``procedure`` field is ``name``."""
    if not callable(procedure):
        raise ParameterError(invalid(f"The procedure to register as {name!r}", type(procedure).__name__,
                                     "a callable (df, *, law, bootstrap, seed, ci_level, source) -> Fit"))
    if name in _PROCEDURES and not replace:
        raise ParameterError(f"a fitting procedure named {name!r} is already registered; pass replace=True "
                             "to replace it.")
    _PROCEDURES[name] = procedure
    return procedure


def get_procedure(name: str) -> Procedure:
    """The fitting procedure registered as ``name``."""
    try:
        return _PROCEDURES[name]
    except KeyError:
        raise UnknownLawError(invalid("The fitting procedure name", name, f"one of {sorted(_PROCEDURES)}")) from None


def available() -> list[str]:
    """Names of every registered fitting procedure, sorted."""
    return sorted(_PROCEDURES)
