"""The exception and warning classes of scalinglab.

Every error a user can cause is a :class:`ScalingLabError`; the command line turns it into one line
on stderr and exit code 2. Numerical trouble that does not stop a computation is a warning class and
is also recorded in the result it concerns (``Fit.warnings``), so it is never hidden.
"""

from __future__ import annotations

from typing import Any


class ScalingLabError(Exception):
    """Base class of every error scalinglab raises on purpose."""


class DataError(ScalingLabError, ValueError):
    """A table, a column or a value does not meet what a law or command needs."""


class UnknownLawError(ScalingLabError, KeyError):
    """A law or preset name that is not in the catalog."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want the plain message
        return str(self.args[0]) if self.args else ""


class ParameterError(ScalingLabError, ValueError):
    """An argument to a public function is outside what it accepts."""


class FitError(ScalingLabError, RuntimeError):
    """A fit could not be carried out at all (not the same as a fit with warnings)."""


class StoreError(ScalingLabError, RuntimeError):
    """The run store is missing, foreign or inconsistent."""


class ConfigError(ScalingLabError, ValueError):
    """A ladder or run configuration is invalid."""


class TrainingError(ScalingLabError, RuntimeError):
    """A training run failed on its own terms (a non-finite loss, a foreign checkpoint)."""


class ConvergenceWarning(UserWarning):
    """An optimisation stopped before meeting its convergence criterion."""


class BoundWarning(UserWarning):
    """A fitted parameter ended at (or within rounding of) one of its bounds."""


class IdentifiabilityWarning(UserWarning):
    """The data constrain a direction of parameter space poorly (flat curvature, few points)."""


def invalid(what: str, value: object, expected: str) -> str:
    """One message template for bad values (after scikit-learn's parameter validation).

    >>> invalid("column 'N'", -1.0, "a positive number")
    "column 'N' must be a positive number. Got -1.0 instead."

    A NumPy scalar is shown as the Python number it holds (``20.5``, not ``np.float64(20.5)``).
    """
    if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        value = value.item()
    return f"{what} must be {expected}. Got {value!r} instead."


#: the index name of a table read from a CSV, TSV or JSONL file (``table.read_table``): each row's label is
#: the line of the file its record starts on (1-based; a CSV's header is line 1), so a message names the
#: line a user opens
LINE_INDEX = "line"


def row_label(df: Any, label: object) -> str:
    """``line 7`` for the row labelled 7 of a table read from a CSV, TSV or JSONL file (its file line), else
    ``row 3`` (the 0-based row of a store's table, a Parquet or JSON file, a DataFrame built in code)."""
    return f"line {label}" if getattr(df.index, "name", None) == LINE_INDEX else f"row {label}"
