"""``scalinglab report``: an HTML page for a store (IsoFLOP curves, loss curves, fit, back-test, plan)."""

from __future__ import annotations

import warnings
from pathlib import Path

import click

from ..errors import DataError
from ..fit import Fit, LawFit
from ..fit.backtest import backtest as run_backtest
from ..plan import plan as make_plan
from ..report import ladder_report
from . import main


@main.command("report")
@click.option("--store", "store_path", required=True, type=click.Path(dir_okay=False), help="The run store.")
@click.option("--law", "law_name", default="chinchilla", show_default=True, help="Law to fit (unless --fit).")
@click.option("--fit", "fit_path", default=None, type=click.Path(dir_okay=False), help="Use this fit instead.")
@click.option("--train-where", default=None,
              help="Back-test: fit on these rows (pandas query), predict the rest; e.g. 'budget_flops < 1e12'.")
@click.option("--flops", default=None, type=float, help="Plan at this budget (FLOPs, C = 6 N D).")
@click.option("--points", "point_selection", default="annealed", show_default=True,
              type=click.Choice(["annealed", "final", "all"]),
              help="Which points the fit and back-test use: the final point of every done run and the end of "
                   "every WSD cooldown branch (annealed), final points only, or every curve point.")
@click.option("--bootstrap", default=200, show_default=True, type=click.IntRange(min=0))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--out", default="scalinglab-report", show_default=True, type=click.Path(file_okay=False),
              help="Output directory; the page is OUT/index.html.")
def report_cmd(store_path: str, law_name: str, fit_path: str | None, train_where: str | None,
               flops: float | None, point_selection: str, bootstrap: int, seed: int, out: str) -> None:
    """Write a self-contained HTML report of the runs in a store."""
    from ..store import Store

    with Store(store_path, create=False) as st:
        final = st.to_table(points="final")          # one row per run: the IsoFLOP plots and the run table
        fitted = st.to_table(points=point_selection)  # the rows the fit and the back-test see
        every = st.to_table(points="all")
    points = every[every["branch"] == 0].rename(columns={"D": "tokens"})   # the main lines' loss curves
    if final.empty:
        raise DataError(f"store {store_path!r} has no finished runs to report.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = Fit.from_json(fit_path) if fit_path else LawFit(
            law_name, bootstrap=bootstrap, seed=seed, source=f"{store_path} ({point_selection} points)").fit(
            fitted).result_
        bt = (run_backtest(fitted, fit.law, train_where, bootstrap=bootstrap, seed=seed) if train_where
              else None)
    the_plan = sparse_plan = None
    if flops and fit.law == "sparse":
        from ..plan import plan_sparse
        sparse_plan = plan_sparse(fit, flops, seed=seed)
    elif flops:
        the_plan = make_plan(fit, flops, seed=seed)
    path = ladder_report(Path(out) / "index.html", final=final, points=points, fit=fit, backtest=bt, plan=the_plan,
                         sparse_plan=sparse_plan, title=f"scalinglab report: {store_path}")
    click.echo(f"report: {path}")
