"""The law specification shared by every law of the catalog.

A law is a pure NumPy function of named parameters and named inputs (canonical columns, see
``scalinglab.table``), plus everything a fitter needs to know about it: bounds, the scale on which
each parameter is optimised, an initialisation grid, the objective the literature fits it with, the
parameter-count convention it uses, and the published coefficient sets (presets) with citations.

Batched evaluation: the fitter calls ``law.predict(params, inputs)`` with every parameter an array of
shape ``(K, 1)`` (K candidate parameter vectors) and every input an array of shape ``(n,)``; the law's
formula must broadcast to ``(K, n)``. Called with scalars it returns an array of shape ``(n,)``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import ParameterError, UnknownLawError, invalid

Array = NDArray[np.float64]
Params = Mapping[str, Any]
Inputs = Mapping[str, Any]
Formula = Callable[[Params, Inputs], Any]

#: optimisation-scale floor of log-scaled parameters whose lower bound is 0
LOG_FLOOR = -50.0


@dataclass(frozen=True)
class Param:
    """A named, bounded parameter of a law (after lmfit's ``Parameter``).

    ``log=True`` means the fitter optimises ``ln(value)`` (the parameter must then be positive);
    ``grid`` holds the initial values on that optimisation scale (``ln`` values when ``log``). A
    log-scaled parameter whose lower bound is 0 is floored at ``ln value = LOG_FLOOR`` (e^-50, about
    2e-22): a term whose coefficient sinks there has switched itself off, and the fit says the
    parameter is at its lower bound instead of chasing it to minus infinity.
    """

    name: str
    lower: float
    upper: float
    grid: tuple[float, ...]
    log: bool = False
    doc: str = ""

    def __post_init__(self) -> None:
        if not self.lower < self.upper:
            raise ParameterError(invalid(f"bounds of parameter {self.name!r}", (self.lower, self.upper),
                                         "an interval with lower < upper"))
        if self.log and self.lower < 0:
            raise ParameterError(invalid(f"lower bound of log-scaled parameter {self.name!r}", self.lower,
                                         "non-negative"))
        if not self.grid:
            raise ParameterError(f"parameter {self.name!r} needs at least one initial value in its grid.")

    @property
    def scaled_bounds(self) -> tuple[float, float]:
        """Bounds on the optimisation scale."""
        if self.log:
            lo = np.log(self.lower) if self.lower > 0 else LOG_FLOOR
            return float(lo), float(np.log(self.upper))
        return self.lower, self.upper

    def to_scaled(self, value: Any) -> Any:
        return np.log(value) if self.log else value

    def from_scaled(self, value: Any) -> Any:
        return np.exp(value) if self.log else value


@dataclass(frozen=True)
class Preset:
    """A published coefficient set of a law, with where it comes from."""

    name: str
    params: Mapping[str, float]
    citation: str
    note: str = ""


@dataclass(frozen=True)
class Objective:
    """What a fit minimises: ``sum_i w_i * rho(r_i)`` with r the residual on ``space``.

    ``kind`` is ``"huber"`` or ``"ls"`` (least squares, ``rho = r^2/2``); ``space`` is ``"log"``
    (r = ln prediction - ln observed) or ``"linear"`` (r = prediction - observed). The sum, not the
    mean: averaging shrinks the gradient by 1/n and makes L-BFGS stop early, the documented cause of
    the original Chinchilla fit's error (Besiroglu et al. 2024).

    ``asymmetry`` k weights over-prediction (r > 0) k times: ``rho_k(r) = k rho(r)`` for r > 0 and
    ``rho(r)`` otherwise (an asymmetric Huber penalty for under-tuned small runs, which sit above the
    curve a well-tuned run would follow; OLMo-core#554). ``asymmetry = 1`` is the symmetric objective.
    """

    kind: str = "huber"
    delta: float = 1e-3
    space: str = "log"
    asymmetry: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in ("huber", "ls"):
            raise ParameterError(invalid("The objective kind", self.kind, "one of 'huber', 'ls'"))
        if self.space not in ("log", "linear"):
            raise ParameterError(invalid("The residual space", self.space, "one of 'log', 'linear'"))
        if not (self.delta > 0 and np.isfinite(self.delta)):
            raise ParameterError(invalid("The 'delta' parameter of the objective", self.delta,
                                         "a float in (0, inf)"))
        if not (self.asymmetry > 0 and np.isfinite(self.asymmetry)):
            raise ParameterError(invalid("The 'asymmetry' parameter of the objective", self.asymmetry,
                                         "a float in (0, inf) (over-prediction weighted that many times)"))

    @property
    def name(self) -> str:
        return f"{self.kind}_{self.space}"


@dataclass(frozen=True)
class Law:
    """A scaling law: formula, parameters, inputs, conventions and published presets.

    Attributes:
        name: catalog name (``chinchilla``).
        formula: ``f(params, inputs) -> prediction`` of ``target`` in natural units.
        params: the parameters, named as the paper writes them.
        inputs: canonical input columns the formula reads.
        target: the column the law predicts (``loss`` for most laws).
        n_convention: which parameter count the law's N is (``total``, ``non-embedding``,
            ``non-zero non-embedding``, ``non-vocabulary``), or ``none``.
        title, formula_text, units, citation: what ``scalinglab laws NAME`` prints.
        log_formula: optional ``ln f`` computed stably (e.g. log-sum-exp); used for log residuals.
        log_jacobian: optional ``(ln f, d ln f / d theta)``, the derivative with respect to every
            parameter on its optimisation scale, shape ``(K, n, P)`` in ``params`` order; finite
            differences otherwise.
        objective: the objective the literature fits this law with.
        derive: optional function adding derived inputs to a table (e.g. ``M = D/N``).
        procedure: the name of a special fitting procedure that replaces the generic fit (``steplaw``);
            the procedures live in :mod:`scalinglab.fit.procedures`, so a law carries no fitting code.
        n_input, d_input: the inputs that play N and D for compute-optimal planning (C = 6 N D).
        presets: published coefficient sets by name.
    """

    name: str
    formula: Formula
    params: tuple[Param, ...]
    inputs: tuple[str, ...]
    title: str
    formula_text: str
    units: str
    citation: str
    target: str = "loss"
    n_convention: str = "none"
    log_formula: Formula | None = None
    log_jacobian: Callable[[Params, Inputs], tuple[Any, Array]] | None = None
    objective: Objective = field(default_factory=Objective)
    derive: Callable[[Any], Any] | None = None
    procedure: str | None = None
    n_input: str | None = None
    d_input: str | None = None
    presets: Mapping[str, Preset] = field(default_factory=dict)
    grid_note: str = ""

    def __post_init__(self) -> None:
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ParameterError(f"law {self.name!r} has duplicate parameter names: {names}")
        for preset in self.presets.values():
            missing = set(names) - set(preset.params)
            if missing:
                raise ParameterError(
                    f"preset {preset.name!r} of law {self.name!r} lacks parameters {sorted(missing)}")

    # -- parameters -------------------------------------------------------------------------------
    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise UnknownLawError(invalid(f"The parameter name for law {self.name!r}", name,
                                      f"one of {list(self.param_names)}"))

    def preset(self, name: str) -> Preset:
        try:
            return self.presets[name]
        except KeyError:
            raise UnknownLawError(invalid(f"The preset name for law {self.name!r}", name,
                                          f"one of {sorted(self.presets)}")) from None

    def init_grid(self, free: Sequence[str] | None = None) -> Array:
        """The Cartesian product of the free parameters' grids, on the optimisation scale, (K, P)."""
        ps = [p for p in self.params if free is None or p.name in free]
        return np.array(list(itertools.product(*(p.grid for p in ps))), dtype=float)

    # -- evaluation -------------------------------------------------------------------------------
    def predict(self, params: Params, inputs: Inputs) -> Array:
        """The law's prediction of ``target`` at ``inputs`` (natural units)."""
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return np.asarray(self.formula(params, inputs), dtype=float)

    def log_predict(self, params: Params, inputs: Inputs) -> Array:
        """``ln`` of the prediction, through the stable ``log_formula`` when the law has one."""
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            if self.log_formula is not None:
                return np.asarray(self.log_formula(params, inputs), dtype=float)
            return np.asarray(np.log(np.asarray(self.formula(params, inputs), dtype=float)), dtype=float)


# -- argument checks shared by the laws' helper functions ------------------------------------------
def resolve_params(law: str, names: Sequence[str], params: Any) -> dict[str, float]:
    """Parameter values from a mapping, or from anything with a ``params`` mapping (a ``Fit``).

    Every name in ``names`` must be present; the message names the law and what is missing.
    """
    p = getattr(params, "params", params)
    if not isinstance(p, Mapping):
        raise ParameterError(invalid(f"The parameters of law {law!r}", type(params).__name__,
                                     "a mapping of parameter names to values, or a Fit"))
    missing = [k for k in names if k not in p]
    if missing:
        raise ParameterError(invalid(f"The parameters of law {law!r}", sorted(p),
                                     f"a mapping with every one of {list(names)} (missing {missing})"))
    return {k: float(p[k]) for k in names}


def positive_array(what: str, value: Any) -> Array:
    """``value`` as a float array, all finite and positive, or a ParameterError naming ``what``."""
    arr = np.asarray(value, dtype=float)
    if np.any(~np.isfinite(arr)) or np.any(arr <= 0):
        raise ParameterError(invalid(what, value, "a positive finite number (or array of them)"))
    return arr


# -- the registry ---------------------------------------------------------------------------------
_REGISTRY: dict[str, Law] = {}


def register(law: Law, *, replace: bool = False) -> Law:
    """Add a law to the catalog, so that every command and the fitter can use it by name."""
    if not isinstance(law, Law):
        raise ParameterError(invalid("The law to register", type(law).__name__, "a scalinglab.laws.Law"))
    if law.name in _REGISTRY and not replace:
        raise ParameterError(f"a law named {law.name!r} is already registered; pass replace=True to replace it.")
    _REGISTRY[law.name] = law
    return law


def get(name: str | Law) -> Law:
    """The law called ``name`` (a :class:`Law` is returned as is)."""
    if isinstance(name, Law):
        return name
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownLawError(invalid("The law name", name, f"one of {sorted(_REGISTRY)}")) from None


def available() -> list[str]:
    """Names of every registered law, sorted."""
    return sorted(_REGISTRY)
