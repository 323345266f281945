"""``scalinglab quickstart``: the main job on the embedded default (see :mod:`scalinglab.quickstart`)."""

from __future__ import annotations

from typing import Any

import click

from . import main
from .output import emit_json, flags
from .paths import check_out_dir


@main.command("quickstart")
@click.option("--minutes", default=10.0, show_default=True, type=click.FloatRange(min=0.5),
              help="Time budget for training the ladder on this machine.")
@click.option("--out", default="quickstart-out", show_default=True, type=click.Path(file_okay=False),
              help="Output directory (store, ladder, report); re-running with the same one resumes.")
@click.option("--workers", default=None, type=click.IntRange(min=1), help="Runs at once (default: one per core).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--bootstrap", default=200, show_default=True, type=click.IntRange(min=0))
@click.option("--progress/--no-progress", default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
def quickstart_cmd(minutes: float, out: str, workers: int | None, seed: int, bootstrap: int, progress: bool,
                   as_json: bool) -> None:
    """Design, run, fit, back-test and plan an IsoFLOP ladder; write an HTML report."""
    from ..quickstart import quickstart
    from .report import command_text

    check_out_dir(out)
    with flags({"minutes": "--minutes", "out": "--out"}):
        s = quickstart(minutes, out, workers=workers, seed=seed, bootstrap=bootstrap, progress=progress,
                       command=command_text(click.get_current_context()))
    if as_json:
        emit_json(s)
        return
    lines, errors = summary_lines(s)
    for line in lines[:-1]:
        click.echo(line)
    for line in errors:
        click.echo(line, err=True)
    click.echo(lines[-1])


def summary_lines(s: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The quickstart's printed summary from its ``summary.json`` dict: the lines for stdout (the
    back-test, the plan, last the report's path) and for stderr (the plan's warnings, the fit's among
    them, then failed runs)."""
    bt, p = s["backtest"], s["plan"]
    alt = s.get("backtest_alt") or {}
    iv = p.get("interval")
    out = [f"{s['runs']} runs, {s['points']} IsoFLOP points (final points and cooldown-branch ends); "
           f"{s['fit']['law']} fit on {bt['train_points']} points, back-test on the largest budget "
           f"({bt['test_points']} points): mean ARE {100 * bt['are_mean']:.2f}%, max {100 * bt['are_max']:.2f}%"
           + (f" ({alt['law']}: {100 * alt['are_mean']:.2f}%)" if alt else ""),
           f"plan at C = {p['flops']:.3g} FLOPs (6 N_total D): N = {p['N']:.3g}, D = {p['D']:.3g} tokens "
           f"({p['tokens_per_param']:.1f} tokens/param), loss {p['loss']:.4f}"
           + (f" [{iv[0]:.4f}, {iv[1]:.4f}] (nominal {100 * float(p.get('ci_level') or 0.95):g}% "
              f"{p.get('interval_kind') or 'prediction'} interval)" if iv else ""),
           f"report: {s['report']}"]
    err = [f"warning: {w}" for w in p.get("warnings", [])]
    if s.get("failed"):
        err.append(f"{len(s['failed'])} runs failed: see `scalinglab ladder status --store {s['store']}`")
    return out, err
