"""The ``Fit`` result: what every downstream step (predict, plan, backtest, report) consumes.

Its JSON form is the one in DESIGN.md ("The fit result"); ``Fit.from_json(fit.to_json())`` gives
the same object back, bootstrap draws included, so intervals can be computed later from a file.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import __version__
from .. import laws as _laws
from ..errors import DataError, invalid
from ..laws import Law, Param

FORMAT = "scalinglab.fit/1"


@dataclass
class Fit:
    """A fitted law. Parameter values are in natural units (``A``, not ``ln A``)."""

    law: str
    params: dict[str, float]
    stderr: dict[str, float | None] = field(default_factory=dict)
    ci: dict[str, list[float] | None] = field(default_factory=dict)
    ci_level: float = 0.95
    n_points: int = 0
    objective: dict[str, Any] = field(default_factory=dict)
    converged: bool = True
    n_starts: int = 0
    n_at_best: int = 0
    warnings: list[str] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)
    correlations: dict[str, dict[str, float]] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    bootstrap: dict[str, Any] = field(default_factory=dict)   # n, seed, n_failed, draws {name: [..]}
    residuals: list[float] = field(default_factory=list)      # on the objective's residual space
    preset: str | None = None
    calibration: dict[str, Any] = field(default_factory=dict)  # fit.calibrate: the extrapolation error
    version: str = __version__
    format: str = FORMAT

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_preset(cls, law: str | Law, preset: str) -> Fit:
        """A Fit holding a published coefficient set (no uncertainty: intervals are unavailable)."""
        lw = _laws.get(law)
        ps = lw.preset(preset)
        return cls(law=lw.name, params=dict(ps.params), preset=ps.name, converged=True,
                   data={"source": ps.citation}, objective={})

    # -- JSON -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(json_safe(self.to_dict()), indent=2)
        if path is not None:
            tmp = Path(str(path) + ".tmp")
            tmp.write_text(text + "\n")
            tmp.replace(path)
        return text

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, source: str = "the fit") -> Fit:
        """A Fit from its JSON form, every field checked (names against the law, values finite and
        within the law's bounds, the shape and type of every field); a problem is one DataError."""
        if not isinstance(d, dict) or "law" not in d or "params" not in d:
            raise DataError(f"{source} is not a scalinglab fit: a JSON object with 'law' and 'params' was expected.")
        known = {f for f in cls.__dataclass_fields__}
        kw = {k: v for k, v in d.items() if k in known}
        _validate(kw, source)
        return cls(**kw)

    @classmethod
    def from_json(cls, path: str | Path) -> Fit:
        p = Path(path)
        src = f"fit file {str(p)!r}"
        if not p.exists():
            raise DataError(f"{src} does not exist.")
        try:
            raw = p.read_bytes()
        except OSError as exc:
            raise DataError(f"{src} cannot be read: {exc.strerror or exc}.") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"{src} is not a scalinglab fit: not UTF-8 text (byte {exc.start}); "
                            "the JSON file of a fit (Fit.to_json) was expected.") from None
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{src} is not valid JSON: {exc.msg} (line {exc.lineno}).") from None
        except RecursionError:
            raise DataError(f"{src} is not a scalinglab fit: its JSON is nested too deeply.") from None
        return cls.from_dict(d, source=src)

    # -- use ------------------------------------------------------------------------------------
    @property
    def law_(self) -> Law:
        return _laws.get(self.law)

    @property
    def n_free(self) -> int:
        """How many parameters the data had to determine (the Step-Law regression: 3 coefficients)."""
        if self.law_.procedure == "steplaw":
            return 3
        return len(self.params) - len(set(self.fixed))

    def too_few_points(self) -> bool:
        """True when the fit had no more points than free parameters: it interpolates them, its
        bootstrap replicates all agree, and an interval from them would be zero-width nonsense."""
        return 0 < self.n_points <= self.n_free

    def draws(self) -> pd.DataFrame | None:
        """Bootstrap parameter draws (one row per replicate), or None without a bootstrap (or when the
        fit had too few points for its draws to mean anything, :meth:`too_few_points`)."""
        d = self.bootstrap.get("draws") if self.bootstrap else None
        if not d or self.too_few_points():
            return None
        df = pd.DataFrame(d)
        return df.dropna()

    def param_value(self, name: str) -> float:
        try:
            return float(self.params[name])
        except KeyError:
            raise DataError(invalid(f"The parameter of fit {self.law!r}", name, f"one of {list(self.params)}")) from None


def too_few_points_warning(n_points: int, n_params: int) -> str:
    """The warning of a fit with no more points than free parameters (its intervals are omitted)."""
    return (f"too few points: {n_points} points for {n_params} parameters; intervals are not meaningful "
            "and are omitted.")


def json_safe(x: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN/inf to None."""
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, np.ndarray):
        return [json_safe(v) for v in x.tolist()]
    if isinstance(x, (np.floating, float)):
        v = float(x)
        return v if np.isfinite(v) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


# -- validation of the JSON form --------------------------------------------------------------------
def _short(value: Any) -> str:
    r = repr(value)
    return r if len(r) <= 80 else r[:77] + "..."


def _bad(source: str, fld: str, value: Any, expected: str) -> DataError:
    return DataError(f"{source}: field {fld!r} must be {expected}. Got {_short(value)} instead.")


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _finite(x: Any) -> bool:
    return _is_num(x) and math.isfinite(x)


def _nonneg_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _in_bounds(p: Param, v: float) -> bool:
    tol = 1e-9
    lo = p.lower - tol * abs(p.lower)
    hi = p.upper + tol * abs(p.upper)
    return lo <= v <= hi


def _validate(kw: dict[str, Any], src: str) -> None:
    """Check every field of a fit's JSON form; raise one DataError naming the first bad field."""
    name = kw["law"]
    if not isinstance(name, str):
        raise _bad(src, "law", name, "a law name (a string)")
    if name not in _laws.available():
        raise _bad(src, "law", name, f"a registered law, one of {_laws.available()}")
    law = _laws.get(name)
    names = list(law.param_names)
    fmt_ = kw.get("format", FORMAT)
    if fmt_ != FORMAT:
        raise _bad(src, "format", fmt_, f"{FORMAT!r}")
    if not isinstance(kw.get("version", ""), str):
        raise _bad(src, "version", kw["version"], "a string")
    params = kw["params"]
    if not isinstance(params, dict):
        raise _bad(src, "params", params, f"an object of the parameters of law {name!r} ({', '.join(names)})")
    missing = [k for k in names if k not in params]
    extra = [k for k in params if k not in names]
    if missing or extra:
        what = "; ".join(x for x in (f"missing {missing}" if missing else "",
                                     f"not of the law {extra}" if extra else "") if x)
        raise DataError(f"{src}: field 'params' must name exactly the parameters of law {name!r} "
                        f"({', '.join(names)}); {what}.")
    for p in law.params:
        v = params[p.name]
        if not _finite(v):
            raise _bad(src, f"params.{p.name}", v, "a finite number")
        if not _in_bounds(p, float(v)):
            raise _bad(src, f"params.{p.name}", v, f"within the law's bounds [{p.lower:g}, {p.upper:g}]")
    stderr = kw.get("stderr", {})
    if not isinstance(stderr, dict):
        raise _bad(src, "stderr", stderr, "an object of parameter name -> standard error or null")
    for k, v in stderr.items():
        if k not in names:
            raise _bad(src, "stderr", k, f"keyed by parameter names of law {name!r} ({', '.join(names)})")
        if v is not None and not (_finite(v) and v >= 0):
            raise _bad(src, f"stderr.{k}", v, "a finite number >= 0 or null")
    ci = kw.get("ci", {})
    if not isinstance(ci, dict):
        raise _bad(src, "ci", ci, "an object of parameter name -> [lo, hi] or null")
    for k, v in ci.items():
        if k not in names:
            raise _bad(src, "ci", k, f"keyed by parameter names of law {name!r} ({', '.join(names)})")
        if v is None:
            continue
        if not (isinstance(v, list) and len(v) == 2 and all(_finite(x) for x in v) and v[0] <= v[1]):
            raise _bad(src, f"ci.{k}", v, "[lo, hi], two finite numbers with lo <= hi, or null")
    level = kw.get("ci_level", 0.95)
    if not (_finite(level) and 0 < level < 1):
        raise _bad(src, "ci_level", level, "a number in (0, 1)")
    for fld in ("n_points", "n_starts", "n_at_best"):
        if fld in kw and not _nonneg_int(kw[fld]):
            raise _bad(src, fld, kw[fld], "an integer >= 0")
    if not isinstance(kw.get("converged", True), bool):
        raise _bad(src, "converged", kw["converged"], "true or false")
    warns = kw.get("warnings", [])
    if not (isinstance(warns, list) and all(isinstance(w, str) for w in warns)):
        raise _bad(src, "warnings", warns, "a list of strings")
    fixed = kw.get("fixed", [])
    if not (isinstance(fixed, list) and all(isinstance(f, str) and f in names for f in fixed)):
        raise _bad(src, "fixed", fixed, f"a list of parameter names of law {name!r}")
    for fld in ("objective", "data", "correlations", "bootstrap", "calibration"):
        if fld in kw and not isinstance(kw[fld], dict):
            raise _bad(src, fld, kw[fld], "an object")
    lam = kw.get("data", {}).get("anneal_decay", 0.999)   # fit.anneal.fit_decay fell back to 0.999 silently
    if not (_finite(lam) and 0 <= lam <= 1):
        raise _bad(src, "data.anneal_decay", lam, "a number in [0, 1] (the momentum factor lambda of S2)")
    obj = kw.get("objective", {})
    if "space" in obj and obj["space"] not in ("log", "linear"):
        raise _bad(src, "objective.space", obj["space"], "'log' or 'linear'")
    for k in ("value", "delta"):
        if obj.get(k) is not None and not _finite(obj[k]):
            raise _bad(src, f"objective.{k}", obj[k], "a finite number or null")
    for a, row in kw.get("correlations", {}).items():
        if a not in names or not isinstance(row, dict):
            raise _bad(src, f"correlations.{a}", row, f"an object of parameter names of law {name!r} -> number")
        for b, v in row.items():
            if b not in names or not (v is None or (_finite(v) and -1.000001 <= v <= 1.000001)):
                raise _bad(src, f"correlations.{a}.{b}", v, "a correlation in [-1, 1] or null")
    cal = kw.get("calibration", {})
    if cal.get("method") == "internal-rollout":
        for k in ("tau", "x_max", "a"):
            if not (_finite(cal.get(k, 0.0)) and cal.get(k, 0.0) >= 0):
                raise _bad(src, f"calibration.{k}", cal.get(k), "a finite number >= 0")
        if not isinstance(cal.get("axis"), str):
            raise _bad(src, "calibration.axis", cal.get("axis"), "a column name (a string)")
        from .calibrate import SCHEMES
        if cal.get("scheme", "row") not in SCHEMES:
            raise _bad(src, "calibration.scheme", cal.get("scheme"), f"one of {list(SCHEMES)}")
        for k in ("group_s", "group_gamma", "group_a", "group_tau", "group_prior_a", "group_prior_tau",
                  "group_prior_pairs"):
            if k in cal and not (_finite(cal[k]) and cal[k] >= 0):
                raise _bad(src, f"calibration.{k}", cal[k], "a finite number >= 0")
        for k in ("drift_sd", "drift_n", "drift_row_s", "drift_row_n", "drift_prior_sd", "drift_prior_n"):
            if k in cal and not (_finite(cal[k]) and cal[k] >= 0):
                raise _bad(src, f"calibration.{k}", cal[k], "a finite number >= 0")
        if "drift_beta" in cal and not _finite(cal["drift_beta"]):
            raise _bad(src, "calibration.drift_beta", cal["drift_beta"], "a finite number (log error per decade)")
        if cal.get("scheme", "row") != "row":
            n_err = len(cal.get("errors", []))
            for k in ("distances", "spans", "pairs"):
                if not (isinstance(cal.get(k), list) and len(cal[k]) == n_err):
                    raise _bad(src, f"calibration.{k}", type(cal.get(k)).__name__,
                               f"a list of {n_err} numbers (one per internal error)")
    boot = kw.get("bootstrap", {})
    for k in ("n", "seed", "n_failed"):
        if k in boot and not _nonneg_int(boot[k]):
            raise _bad(src, f"bootstrap.{k}", boot[k], "an integer >= 0")
    draws = boot.get("draws")
    if draws is not None and draws != {}:
        if not isinstance(draws, dict) or sorted(draws) != sorted(names):
            raise _bad(src, "bootstrap.draws", sorted(draws) if isinstance(draws, dict) else draws,
                       f"an object of every parameter of law {name!r} ({', '.join(names)}) -> list of draws")
        n = None
        for p in law.params:
            col = draws[p.name]
            if not isinstance(col, list):
                raise _bad(src, f"bootstrap.draws.{p.name}", col, "a list of numbers")
            if n is None:
                n = len(col)
            elif len(col) != n:
                raise _bad(src, f"bootstrap.draws.{p.name}", f"{len(col)} draws",
                           f"as long as the other parameters' draws ({n})")
            for x in col:
                if x is not None and not (_finite(x) and _in_bounds(p, float(x))):
                    raise _bad(src, f"bootstrap.draws.{p.name}", x,
                               f"finite numbers within the law's bounds [{p.lower:g}, {p.upper:g}] (or null)")
    resid = kw.get("residuals", [])
    if not (isinstance(resid, list) and all(_finite(r) for r in resid)):
        bad = next((r for r in resid if not _finite(r)), resid) if isinstance(resid, list) else resid
        raise _bad(src, "residuals", bad, "a list of finite numbers")
    preset = kw.get("preset")
    if preset is not None and not isinstance(preset, str):
        raise _bad(src, "preset", preset, "a preset name (a string) or null")
