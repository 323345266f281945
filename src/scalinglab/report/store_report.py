"""The HTML report of a run store: fit (or a given fit), back-test and plan of its runs, then the page."""

from __future__ import annotations

import warnings
from pathlib import Path

from ..errors import DataError
from ..fit import Fit, LawFit
from ..fit.backtest import backtest as run_backtest
from ..plan.dispatch import plan_fit
from ..store import Store
from . import ladder_report

__all__ = ["store_report"]


def store_report(store_path: str | Path, out: str | Path, *, law: str = "chinchilla", fit_path: str | Path | None = None,
                 train_where: str | None = None, flops: float | None = None, points: str = "annealed",
                 bootstrap: int = 200, seed: int = 0) -> Path:
    """Write ``out/index.html`` for the runs of the store at ``store_path`` and return its path.

    The page holds every done run's final point (IsoFLOP plots, run table) and the main lines' loss
    curves; the fit is ``fit_path``'s or one of ``law`` on the rows ``points`` selects
    (``Store.to_table``: ``annealed``, ``final`` or ``all``) with ``bootstrap`` replicates. With
    ``train_where`` (an expression, ``scalinglab.expr``), a back-test fitted on those rows; with
    ``flops`` (FLOPs), the plan the fit's law calls for (:func:`scalinglab.plan.dispatch.plan_fit`).
    Fit warnings are recorded in the fit, not printed.
    """
    with Store(store_path, create=False) as st:
        final = st.to_table(points="final")          # one row per run: the IsoFLOP plots and the run table
        fitted = st.to_table(points=points, failed=False)   # the rows the fit and the back-test see
        every = st.to_table(points="all")
    curves = every[every["branch"] == 0].rename(columns={"D": "tokens"})   # the main lines' loss curves
    if final.empty:
        raise DataError(f"store {str(store_path)!r} has no finished runs to report.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = Fit.from_json(fit_path) if fit_path else LawFit(
            law, bootstrap=bootstrap, seed=seed, source=f"{store_path} ({points} points)").fit(fitted).result_
        bt = run_backtest(fitted, fit.law, train_where, bootstrap=bootstrap, seed=seed) if train_where else None
    planned = plan_fit(fit, flops, seed=seed) if flops else None
    sparse = planned is not None and planned["law"] == "sparse"
    return ladder_report(Path(out) / "index.html", final=final, points=curves, fit=fit, backtest=bt,
                         plan=None if sparse else planned, sparse_plan=planned if sparse else None,
                         title=f"scalinglab report: {store_path}")
