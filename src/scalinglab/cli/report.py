"""``scalinglab report``: an HTML page for a store (IsoFLOP curves, loss curves, fit, back-test, plan)."""

from __future__ import annotations

import shlex

import click

from ..report.store_report import store_report
from . import main
from .output import emit_json, flags
from .paths import check_out_dir, write_error


def command_text(ctx: click.Context) -> str:
    """The command as it ran, rebuilt from its parsed options (every option, defaults included), for
    the report's footer: ``scalinglab report --store runs.db --law chinchilla ...``."""
    parts = ["scalinglab", *ctx.command_path.split()[1:]]
    for p in ctx.command.params:
        v = ctx.params.get(p.name or "")
        if v is None or not isinstance(p, click.Option):
            continue
        if p.is_flag:
            opt = p.opts[0] if v else (p.secondary_opts[0] if p.secondary_opts else None)
            if opt and (v or p.secondary_opts):
                parts.append(opt)
            continue
        if p.multiple:
            for item in v:
                parts += [p.opts[0], str(item)]
            continue
        parts += [p.opts[0], str(v)]
    return shlex.join(parts)


@main.command("report")
@click.option("--store", "store_path", required=True, type=click.Path(dir_okay=False), help="The run store.")
@click.option("--law", "law_name", default="chinchilla", show_default=True, help="Law to fit (unless --fit).")
@click.option("--fit", "fit_path", default=None, type=click.Path(dir_okay=False), help="Use this fit instead.")
@click.option("--train-where", default=None,
              help="Back-test: fit on these rows (an expression, as fit --where), predict the rest; e.g. 'budget_flops < 1e12'.")
@click.option("--flops", default=None, type=float, help="Plan at this budget (FLOPs, C = 6 N D).")
@click.option("--points", "point_selection", default="annealed", show_default=True,
              type=click.Choice(["annealed", "final", "all"]),
              help="Which points the fit and back-test use: the final point of every done run and the end of "
                   "every WSD cooldown branch (annealed), final points only, or every curve point; never a "
                   "failed run's points.")
@click.option("--bootstrap", default=200, show_default=True, type=click.IntRange(min=0))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--anneal-fit", "anneal_fit", default=None, type=click.Path(dir_okay=False),
              help="An anneal-law FIT.json (fit --store --law anneal): plot its predicted against the measured "
                   "curves. Without it, the law is fitted when two or more runs of one shape have different schedules.")
@click.option("--no-anneal-fit", "no_anneal", is_flag=True, help="Do not fit the anneal law within the report.")
@click.option("--target-loss", "targets", type=float, multiple=True,
              help="Critical batch: a target loss (nats/token), repeat for several; picked from the sweep if not given.")
@click.option("--rollout", "rollout_key", default=None, metavar="KEY",
              help="Rollout back-test over the sorted groups of KEY (budget_flops, N): plot its error and interval "
                   "coverage against the extrapolation distance.")
@click.option("--horizon", default=1, show_default=True, type=click.IntRange(min=1),
              help="With --rollout: also predict up to the K-th next group.")
@click.option("--rollout-json", "rollout_json", default=None, type=click.Path(dir_okay=False),
              help="Plot this rollout instead (scalinglab backtest --rollout KEY --json > FILE).")
@click.option("--out", default="scalinglab-report", show_default=True, type=click.Path(file_okay=False),
              help="Output directory; the page is OUT/index.html.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (the page's path, the store, the command).")
def report_cmd(store_path: str, law_name: str, fit_path: str | None, train_where: str | None,
               flops: float | None, point_selection: str, bootstrap: int, seed: int, anneal_fit: str | None,
               no_anneal: bool, targets: tuple[float, ...], rollout_key: str | None, horizon: int,
               rollout_json: str | None, out: str, as_json: bool) -> None:
    """Write a self-contained HTML report of the runs in a store."""
    check_out_dir(out)
    command = command_text(click.get_current_context())
    try:
        with flags({"flops": "--flops", "anneal_fit": "--anneal-fit", "rollout_json": "--rollout-json", "rollout_key": "--rollout"}):
            path = store_report(store_path, out, law=law_name, fit_path=fit_path, train_where=train_where,
                                flops=flops, points=point_selection, bootstrap=bootstrap, seed=seed,
                                command=command, anneal_fit=anneal_fit, fit_anneal=not no_anneal,
                                target_losses=targets, rollout_key=rollout_key, horizon=horizon,
                                rollout_json=rollout_json)
    except OSError as exc:
        if exc.filename is None or not str(exc.filename).startswith(str(out)):
            raise
        raise write_error(exc, out) from None
    if as_json:
        emit_json({"report": str(path), "out": str(out), "store": store_path, "command": command})
        return
    click.echo(f"report: {path}")
