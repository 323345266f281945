"""The main job on the embedded default: design, run, fit, back-test, plan and report an IsoFLOP ladder.

``quickstart(minutes=10, out="quickstart-out")``:

1. designs an IsoFLOP ladder on the embedded corpus (byte-level tokens, the Python standard library's
   own source) with six budgets in ratio 1:2:4:8:16:32 and five sizes each, scaled so that its estimated
   training time fits the time budget on the local process pool. Every run is WSD with a fixed
   warmup, so the runs of one shape at several budgets are prefixes of its longest: they are merged
   into that run, with a cooldown branch ending where each shorter run would end (``ladder.merge``;
   the branch's loss is the shorter run's, bit for bit, at 37% less compute for a shape at 1:2:4:8);
2. runs it into ``out/runs.db`` (re-running resumes: done runs are skipped, others continue from
   their checkpoints);
3. fits the Chinchilla law (N = total parameters, D = tokens seen, eval loss at the end of each decay:
   every run's final point and branch ends, each under the budget of the design run it stands for) on
   every budget but the largest, with a seeded bootstrap, and back-tests it on the largest (and, beside it,
   Chinchilla with one exponent, ``chinchilla_tied``);
4. plans a run 10x larger than the largest budget, with at most :data:`MAX_EPOCHS` epochs of the corpus;
5. writes ``out/index.html`` (IsoFLOP curves with the fit, loss curves, back-test table, plan) and
   ``out/summary.json`` (``fit``, ``backtest`` with ``are_mean``, ``plan``).

Units: the ladder's budgets are the trainer's full FLOPs (6 N_nonembed + 6 d V + 12 L T d per token,
``units.flops_per_token(full=True)``); Chinchilla's C = 6 N D uses total parameters. The plan's budget
is therefore stated as ``6 N_total D``: 10x the mean ``6 N_total D`` of the largest budget's runs.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import units
from .errors import ConfigError, invalid
from .execute import cpu_count, execute
from .fit import Fit, LawFit
from .fit.backtest import backtest as run_backtest
from .fit.result import json_safe as _clean
from .ladder import design, ladderfile, schedules
from .ladder.merge import merge_prefixes
from .plan.dispatch import plan_fit
from .report import Footer, ladder_report
from .report.store_report import store_digest, store_export_csv
from .runconfig import RunConfig
from .store import Store

log = logging.getLogger(__name__)

#: budget ratios (the last held out for the back-test): 1.5 decades pin down E, which 1:2:4:8 left loose
#: (README, "The quickstart's constants"; benchmarks/ladder_extrapolation.py)
RATIOS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
#: the group key of the fit's extrapolation calibration (LawFit(calibrate=...)): the IsoFLOP budgets
CALIBRATE = "budget_flops"
#: the fewest budgets a short time budget may drop the smallest ratios down to (design_ladder)
MIN_BUDGETS = 4
SIZES = 5
#: IsoFLOP centre (tokens per non-embedding parameter) and size span: tiny byte-level models spend most
#: FLOPs outside N_nonembed, so their optimum sits far above Chinchilla's 20
TOKENS_PER_PARAM = 120.0
SPAN = 3.0
#: shape and learning-rate rule: at least 2 layers (1-layer models sit off the curve), one lr for every
#: size; both back-tested better than the alternatives (README, "The quickstart's constants")
SHAPE = design.ShapeRule(aspect=32.0, head_dim=16, min_layers=2, width_step=16, lr_width_exponent=0.0,
                         lr_ref_width=64)
#: fixed warmup in steps: 5% of each run left the short runs far above their best, and a fixed one makes
#: WSD runs prefixes of longer ones, so ladder.merge merges them (README, "The quickstart's constants")
WARMUP_STEPS = 100
#: peak learning rate: the best of a sweep at widths 32-80 with that warmup (README, "The quickstart's constants")
LR = 1e-2
#: run settings shared by every quickstart run (byte-level vocabulary, short context, WSD schedule:
#: warmup, stable, a linear decay over the last 20% to 10% of the peak)
SETTINGS: dict[str, Any] = {"vocab": 256, "context": 128, "batch_tokens": 2048, "lr": LR,
                            "evals": 8, "eval_tokens": 16_384,
                            "schedule": {"name": "wsd", "warmup_steps": WARMUP_STEPS}}
#: the law fitted and planned; ALT_LAW (beta = alpha) is only back-tested beside it: it missed its 10x runs
#: by more (README, "The quickstart's constants"; benchmarks/ladder_extrapolation.py --law)
LAW = "chinchilla"
ALT_LAW = "chinchilla_tied"
#: one single-thread worker: seconds per token = OVERHEAD + flops/RATE, 10-20% slower than measured on the
#: 2-core reference machine, for slack (README, "The quickstart's constants")
RATE_FLOPS = 6.0e10
OVERHEAD_S_PER_TOKEN = 6.0e-6
STARTUP_S = 1.0            # per run: model build, evaluation windows, checkpoints
WORKER_START_S = 5.0       # per worker: process start, torch import, corpus load
#: the plan's data limit in epochs: past ~4 the 10x runs landed 8% above their predictions, repetition the
#: law cannot see (Muennighoff et al. 2023, Sec. 5; README, "The quickstart's constants")
MAX_EPOCHS = 4.0
SHARE_TRAINING = 0.8       # of the time budget; the rest is fitting, reporting and slack


def _unique_tokens(run: RunConfig) -> int:
    """Training tokens of the ladder's corpus (its tokenised training split; cached, cheap)."""
    from .ladder.corpus import load_tokens  # the ladder extra: quickstart trains anyway

    return len(load_tokens(run.corpus, run.vocab).train)


def ladder_budgets(runs: list[RunConfig]) -> list[float]:
    """The IsoFLOP budgets of a ladder, merged or not, in increasing order: every run's
    ``budget_flops`` and every merged run's ``branch_budgets``."""
    return sorted({r.budget_flops for r in runs} | {b for r in runs for b in r.branch_budgets})


def own_runs(table: pd.DataFrame, runs: list[RunConfig], store_path: Path) -> pd.DataFrame:
    """The rows of ``table`` that belong to ``runs`` (the ladder's run names). A store can hold other
    runs (the user's own, another ladder's): the quickstart fits and reports its ladder only, and logs
    which runs it left out."""
    names = {r.name for r in runs}
    mine = table[table["run"].isin(names)]
    if len(mine) < len(table):
        others = sorted(set(table["run"]) - names)
        log.warning("the store %s holds %d run(s) outside the quickstart ladder (%s%s): left out of its fit and "
                    "report", store_path, len(others), ", ".join(others[:3]), ", ..." if len(others) > 3 else "")
    return mine


def estimate_seconds(runs: list[RunConfig], workers: int) -> float:
    """Estimated wall time of a ladder on ``workers`` single-thread workers (the throughput model)."""
    total = 0.0
    for r in runs:
        fpt = units.flops_per_token(r.n_layer, r.d_model, r.context, r.vocab, full=True)
        steps = schedules.updates_with_branches(r.schedule, r.lr, r.steps)
        evals = r.evals + len(r.schedule.branches)                   # an evaluation is forward only
        tokens = steps * r.batch_tokens + evals * r.eval_tokens / 3.0
        total += tokens * (OVERHEAD_S_PER_TOKEN + fpt / RATE_FLOPS) + STARTUP_S
    return total / max(1, workers) + WORKER_START_S


def design_runs(budgets: list[float], seed: int = 0) -> list[RunConfig]:
    """The quickstart's IsoFLOP design at ``budgets`` (full FLOPs), one run per point, before merging."""
    return design.isoflop(budgets, sizes=SIZES, tokens_per_param=TOKENS_PER_PARAM, span=SPAN, rule=SHAPE,
                          seed=seed, group="quickstart", **SETTINGS)


def design_ladder(minutes: float, workers: int, seed: int = 0,
                  ratios: tuple[float, ...] = RATIOS) -> tuple[list[RunConfig], float]:
    """The largest IsoFLOP ladder with budgets in ``ratios`` (:data:`RATIOS`) whose estimated time fits
    ``minutes`` (and the estimate): :func:`design_runs`, each shape's runs merged into its longest
    (``ladder.merge``). The budgets are ``max(budget_flops) x ratios / max(ratios)``."""
    if len(ratios) < 2 or any(not (isinstance(r, (int, float)) and r > 0) for r in ratios):
        raise ConfigError(invalid("The budget ratios", list(ratios), "two or more positive numbers"))
    ordered = tuple(sorted(ratios))
    # a time budget too short for the smallest ratios' runs (each needs its minimum steps) drops them,
    # smallest first, down to MIN_BUDGETS budgets: the largest budget is what the time buys
    for k in range(max(1, len(ordered) - MIN_BUDGETS + 1)):
        best = _largest_ladder(minutes, workers, seed, ordered[k:])
        if best:
            if k:
                log.warning("a %g-minute ladder is too short for budget ratios %s: using %s (%d budgets; "
                            "give more minutes for all %d)", minutes, _ratios_text(ordered),
                            _ratios_text(ordered[k:]), len(ordered) - k, len(ordered))
            return best, estimate_seconds(best, workers)
    raise ConfigError(invalid("The quickstart time budget 'minutes'", minutes,
                              "long enough for the smallest ladder on this machine"))


def _ratios_text(ratios: tuple[float, ...]) -> str:
    return ":".join(f"{r / ratios[0]:g}" for r in ratios)


def _largest_ladder(minutes: float, workers: int, seed: int, ratios: tuple[float, ...]) -> list[RunConfig]:
    """The largest merged ladder at ``ratios`` whose estimated time fits ``minutes``; [] if none."""
    budget_s = minutes * 60.0 * SHARE_TRAINING

    def ladder(base: float) -> list[RunConfig]:
        return [m.run for m in merge_prefixes(design_runs([base * r for r in ratios], seed))]

    lo, hi = 1e8, 1e16    # bisection on the smallest budget, in log space
    best: list[RunConfig] = []
    for _ in range(60):
        mid = float(np.sqrt(lo * hi))
        try:
            runs = ladder(mid)
            seconds = estimate_seconds(runs, workers)   # checks every run's cooldown branches too
        except ConfigError:  # a budget too small for the minimum steps or the branches: go up
            lo = mid
            continue
        if seconds <= budget_s:
            lo, best = mid, runs
        else:
            hi = mid
        if hi / lo < 1.02:
            break
    return best


def quickstart(minutes: float = 10.0, out: str | Path = "quickstart-out", *, workers: int | None = None,
               seed: int = 0, bootstrap: int = 200, progress: bool = True,
               ratios: tuple[float, ...] = RATIOS, command: str = "") -> dict[str, Any]:
    """Run the whole loop; returns the summary written to ``out/summary.json``. ``ratios``: the
    budgets' ratios (the largest is held out); ``command``: the command line, for the report's footer."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    workers = workers or cpu_count()
    store_path = out / "runs.db"
    ladder_path = out / "ladder.toml"
    if ladder_path.exists():          # resuming: the same ladder, whatever the time budget says now
        runs = ladderfile.read_toml(ladder_path)
        if any(r.schedule.branches and not r.branch_budgets for r in runs):
            raise ConfigError(f"the ladder file {str(ladder_path)!r} predates branch budgets (its merged runs "
                              "cannot say which budget each branch point belongs to); use a new 'out' directory.")
        estimate = estimate_seconds(runs, workers)
    else:
        runs, estimate = design_ladder(minutes, workers, seed, ratios)
        budgets = ladder_budgets(runs)   # the ratios used: a short time budget may drop the smallest
        ladderfile.write_toml(ladder_path, runs, {"design": "quickstart isoflop", "minutes": minutes,
                                                  "ratios": [b / budgets[0] for b in budgets], "sizes": SIZES})
    t0 = time.perf_counter()
    with Store(store_path) as store:
        summary_run = execute(runs, store, checkpoint_dir=out / "checkpoints", workers=workers, threads=1,
                              progress=progress)
    seconds = time.perf_counter() - t0
    return analyse(out, runs, seconds=seconds, estimate=estimate, summary_run=summary_run, seed=seed,
                   bootstrap=bootstrap, command=command)


def quickstart_plan(fit: Fit, flops: float, unique_tokens: int, *, seed: int = 0) -> dict[str, Any]:
    """Step 4 of :func:`quickstart`: the plan at ``flops`` (``6 N_total D``) from ``fit``, with D held to
    :data:`MAX_EPOCHS` epochs of the corpus's ``unique_tokens`` (Chinchilla assumes unique tokens; the
    embedded corpus is small). Its ``warnings`` are the fit's first (a parameter at a bound,
    non-convergence, too few points: a plan is no surer than its fit; ``plan.dispatch.plan_fit``, as
    ``scalinglab plan``), then the plan's own, then the data limit's and the epochs it repeats."""
    the_plan = plan_fit(fit, flops, seed=seed, max_tokens=MAX_EPOCHS * unique_tokens)
    the_plan["flops_convention"] = "6 N_total D"
    the_plan["unique_tokens"] = unique_tokens
    the_plan["epochs"] = the_plan["D"] / unique_tokens
    the_plan["max_epochs"] = MAX_EPOCHS
    if the_plan["data_constrained"]:
        u = the_plan["unconstrained"]
        the_plan.setdefault("warnings", []).append(
            f"the compute-optimal D = {u['D']:.3g} tokens would be {u['D'] / unique_tokens:.1f} epochs of the "
            f"corpus ({unique_tokens:,} unique training tokens); the plan holds D to {MAX_EPOCHS:g} epochs and "
            f"takes the larger model (N = {the_plan['N']:.3g} instead of {u['N']:.3g}; unconstrained loss "
            f"{u['loss']:.4f}).")
    if the_plan["epochs"] > 1.0:
        the_plan.setdefault("warnings", []).append(
            f"the planned D = {the_plan['D']:.3g} tokens is {the_plan['epochs']:.1f} epochs of the corpus "
            f"({unique_tokens:,} unique training tokens); the Chinchilla law assumes unique data (up to ~4 epochs "
            "are nearly as good, Muennighoff et al. 2023), so the run may land above the prediction "
            "(benchmarks/ladder_extrapolation.py measures it). Use a larger corpus, or the datablations law.")
    return the_plan


def analyse(out: str | Path, runs: list[RunConfig], *, seconds: float = 0.0, estimate: float = 0.0,
            summary_run: dict[str, Any] | None = None, seed: int = 0, bootstrap: int = 200,
            command: str = "") -> dict[str, Any]:
    """Steps 3-5 of :func:`quickstart` on the runs of ``runs`` in ``out/runs.db`` (however they got
    there): fit, back-test, plan, write ``out/index.html`` and ``out/summary.json``; returns the summary.
    ``seconds``, ``estimate`` and ``summary_run`` (the executor's summary) describe the training."""
    out = Path(out)
    store_path = out / "runs.db"
    ladder_path = out / "ladder.toml"
    summary_run = summary_run or {}
    with Store(store_path, create=False) as store:
        # one point per design run, under its own budget: the final points and the cooldown-branch ends;
        # of this ladder's runs only (a store may hold other runs too)
        final = own_runs(store.to_table(points="annealed"), runs, store_path)
        points = store.to_table(points="all")
        points = points[points["run"].isin({r.name for r in runs})]
        export = store_export_csv(store)

    held_out = float(final["budget_flops"].max())
    train_where = f"budget_flops < {held_out!r}"
    train = final[final["budget_flops"] < held_out]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # intervals calibrated for extrapolation on the ladder's own internal rollouts over its budgets
        # (fit.calibrate; benchmarks/calibration.py measures their rollout coverage)
        bt = run_backtest(final, LAW, train_where, bootstrap=bootstrap, seed=seed, calibrate=CALIBRATE)
        bt_alt = run_backtest(final, ALT_LAW, train_where, bootstrap=0, seed=seed)
        fit = LawFit(LAW, bootstrap=bootstrap, seed=seed, source=str(store_path), calibrate=CALIBRATE).fit(
            train).result_
    largest = final[final["budget_flops"] == held_out]
    c_plan = 10.0 * float(np.mean(6.0 * largest["N"] * largest["D"]))
    the_plan = quickstart_plan(fit, c_plan, _unique_tokens(runs[0]), seed=seed)

    points = points.rename(columns={"D": "tokens"})
    report = ladder_report(out / "index.html", final=final, points=points, fit=fit, backtest=bt, plan=the_plan,
                           held_out=held_out, title="scalinglab quickstart",
                           subtitle=f"{len(runs)} runs ({len(final)} IsoFLOP points: final points and cooldown-branch "
                                    f"ends) on corpus {runs[0].corpus!r} in {seconds / 60:.1f} min "
                                    f"(estimated {estimate / 60:.1f} min); Chinchilla fitted on the "
                                    f"{final['budget_flops'].nunique() - 1} smaller budgets, back-tested on "
                                    "the largest.",
                           footer=Footer(command=command, store=str(store_path), store_sha256=store_digest(export)),
                           store_csv=export, seed=seed)
    fit_d = fit.to_dict()
    fit_d.pop("residuals", None)
    fit_d["bootstrap"] = {k: v for k, v in fit_d["bootstrap"].items() if k != "draws"}
    bt_d = {k: v for k, v in bt.items() if k != "fit"}
    summary = {"fit": fit_d, "backtest": bt_d, "plan": the_plan, "runs": len(runs), "points": len(final),
               "backtest_alt": {k: bt_alt[k] for k in ("law", "are_mean", "are_max", "train_points", "test_points")},
               "ladder": {"file": str(ladder_path), "budgets": sorted(final["budget_flops"].unique().tolist()),
                          "held_out_budget": held_out, "estimated_seconds": estimate},
               "training": {k: v for k, v in summary_run.items() if k != "failed"} | {"seconds": seconds},
               "failed": summary_run.get("failed", {}), "report": str(report), "store": str(store_path)}
    (out / "summary.json").write_text(json.dumps(_clean(summary), indent=2) + "\n")
    return summary
