"""Shared fixtures of the law tests: a CSV of whole loss curves drawn from a known curve law, and the check of
an analytic log-Jacobian against central differences."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from scalinglab.fit.anneal import lr_curve
from scalinglab.runconfig import RunConfig

#: ``curves_file(truth, configs)``: the CSV path
CurvesFile = Callable[[Callable[[RunConfig, np.ndarray], np.ndarray], Sequence[RunConfig]], Path]


@pytest.fixture()
def curves_file(tmp_path: Path) -> CurvesFile:
    """Write ``tmp_path/curves.csv``: run, step, lr, loss at every step of each config's run (every step
    logged, so the curve a fit interpolates is the exact one), the loss ``truth(config, steps)``."""
    def write(truth: Callable[[RunConfig, np.ndarray], np.ndarray], configs: Sequence[RunConfig]) -> Path:
        rows = []
        for cfg in configs:
            eta = lr_curve(cfg)
            steps = np.arange(1, cfg.steps + 1)
            for s, loss in zip(steps, truth(cfg, steps)):
                rows.append({"run": cfg.name, "step": int(s), "lr": float(eta[s - 1]), "loss": float(loss)})
        f = tmp_path / "curves.csv"
        pd.DataFrame(rows).to_csv(f, index=False)
        return f
    return write


def _check_log_jacobian(law: Any, params: dict[str, float], x: Any, *, rtol: float = 1e-6, atol: float = 1e-9,
                        h: float = 1e-6, relative: bool = False) -> None:
    """``law.log_jacobian`` at ``params`` against central differences of ``law.log_predict`` in each
    parameter's scaled coordinate t (step ``h``, or ``h max(1, |t|)`` when ``relative``); its log-prediction
    against ``log(law.predict)``. A batched Jacobian (1, n, p) is read as (n, p)."""
    lnf, J = law.log_jacobian(params, x)
    J = np.asarray(J).reshape(-1, len(law.params))
    np.testing.assert_allclose(np.ravel(lnf), np.log(np.ravel(law.predict(params, x))), rtol=1e-12)
    for j, p in enumerate(law.params):
        t = p.to_scaled(params[p.name])
        step = h * max(1.0, abs(t)) if relative else h
        up, dn = dict(params), dict(params)
        up[p.name], dn[p.name] = p.from_scaled(t + step), p.from_scaled(t - step)
        fd = (np.log(np.ravel(law.predict(up, x))) - np.log(np.ravel(law.predict(dn, x)))) / (2 * step)
        np.testing.assert_allclose(J[:, j], fd, rtol=rtol, atol=atol, err_msg=p.name)


@pytest.fixture()
def check_log_jacobian() -> Callable[..., None]:
    """``check_log_jacobian(law, params, x)``: the analytic log-Jacobian against central differences."""
    return _check_log_jacobian
