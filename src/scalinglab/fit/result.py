"""The ``Fit`` result: what every downstream step (predict, plan, backtest, report) consumes.

Its JSON form is the one in DESIGN.md ("The fit result"); ``Fit.from_json(fit.to_json())`` gives
the same object back, bootstrap draws included, so intervals can be computed later from a file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import __version__
from .. import laws as _laws
from ..errors import DataError, invalid
from ..laws import Law

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
    def from_dict(cls, d: dict[str, Any]) -> Fit:
        if not isinstance(d, dict) or "law" not in d or "params" not in d:
            raise DataError("not a scalinglab fit: a JSON object with 'law' and 'params' was expected.")
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})

    @classmethod
    def from_json(cls, path: str | Path) -> Fit:
        p = Path(path)
        if not p.exists():
            raise DataError(f"fit file {str(p)!r} does not exist.")
        try:
            d = json.loads(p.read_text())
        except json.JSONDecodeError as exc:
            raise DataError(f"fit file {str(p)!r} is not valid JSON: {exc.msg} (line {exc.lineno}).") from None
        return cls.from_dict(d)

    # -- use ------------------------------------------------------------------------------------
    @property
    def law_(self) -> Law:
        return _laws.get(self.law)

    def draws(self) -> pd.DataFrame | None:
        """Bootstrap parameter draws (one row per replicate), or None without a bootstrap."""
        d = self.bootstrap.get("draws") if self.bootstrap else None
        if not d:
            return None
        df = pd.DataFrame(d)
        return df.dropna()

    def param_value(self, name: str) -> float:
        try:
            return float(self.params[name])
        except KeyError:
            raise DataError(invalid(f"The parameter of fit {self.law!r}", name, f"one of {list(self.params)}")) from None


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
