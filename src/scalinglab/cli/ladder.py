"""Commands that design and run ladders and read the run store: ``ladder ...`` and ``runs ...``.

Each command parses its options, makes one library call and prints a table (or one JSON object with
``--json``). Every :class:`~scalinglab.errors.ScalingLabError` becomes one line on stderr,
``error: ...``, and exit code 2, before anything in the store has changed. ``ladder run`` exits 1
when some runs failed (their errors are in ``ladder status``) and 130 when interrupted.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ..accounting import counts
from ..errors import ConfigError, invalid
from ..execute import DEFAULT_TRAINER, EXECUTORS, execute
from ..ladder import design as _design
from ..ladder import ladderfile, schedules
from ..runconfig import RunConfig
from ..store import Store
from . import main
from .output import emit_json, flags, numbers, parse_set, print_rows
from .paths import table_suffix, write_table

_RULE = _design.ShapeRule()
#: the designer's names of its parameters (DesignRequest, ShapeRule) -> this command's options
DESIGN_FLAGS = {
    "budgets": "--budgets", "sizes": "--sizes", "tokens_per_param": "--tokens-per-param", "span": "--span",
    "params": "--params", "tokens": "--tokens", "sparsities": "--sparsities", "lrs": "--lr-grid",
    "batches": "--batch-grid", "batch_keep": "--batch-grid-keep", "lr_batch_rule": "--lr-batch-rule",
    "parametrizations": "--parametrizations", "wsd_branches": "--wsd-branches", "formats": "--formats",
    "blocks": "--blocks", "operands": "--operands", "merge_prefixes": "--merge-prefixes",
    "rule.aspect": "--aspect", "rule.head_dim": "--head-dim", "rule.min_layers": "--min-layers",
    "rule.width_step": "--width-step", "rule.lr_width_exponent": "--lr-width-exponent",
    "rule.lr_ref_width": "--lr-ref-width", "rule.min_steps": "--min-steps",
    "lr_width_exponent": "--lr-width-exponent", "lr_ref_width": "--lr-ref-width",
    "schedule.name = 'wsd'": "--schedule wsd", "'schedule.warmup_steps' > 0": "--warmup-steps N",
}


def _words(text: str | None) -> list[str] | None:
    """A comma-separated list of words (None when not given)."""
    return None if text is None else [w.strip() for w in text.split(",") if w.strip()]


def _run_rows(runs: Sequence[RunConfig]) -> list[dict[str, Any]]:
    rows = []
    for r in runs:
        c = counts(r)
        tokens = r.steps * r.batch_tokens
        rows.append({"name": r.name, "n_layer": r.n_layer, "d_model": r.d_model, "n_head": r.n_head,
                     "N_nonembed": c["N_nonembed"], "N_total": c["N_total"], "S": r.sparsity.target,
                     "N_nonzero": c["N_nonzero"], "tokens": tokens, "steps": r.steps,
                     "batch_tokens": r.batch_tokens, "lr": r.lr, "C": c["flops_per_token_full"] * tokens,
                     "budget_flops": r.budget_flops, "parametrization": r.parametrization.name,
                     "precision": _precision_text(r),
                     "branch_ends": [b.end_step for b in schedules.branches(r.schedule, r.lr, r.steps)]})
    return rows


def _precision_text(r: RunConfig) -> str:
    """A run's number formats in a few words: ``E2M1 P2+P4+P6 block 32`` (``fp32`` when none)."""
    if not r.precision.active:
        return "fp32"
    p = r.precision.resolved()
    fmts = "/".join(dict.fromkeys(p[k] for k in ("weights", "activations", "gradients")))
    scale = f"block {p['block']}" if p["scaling"] == "block" else p["scaling"]
    return f"{fmts} {'+'.join(p['operands'])} {scale}"


# -- ladder -----------------------------------------------------------------------------------------
@main.group("ladder")
def ladder() -> None:
    """Design a ladder of small runs, run it into a store, and follow its progress."""


def _check_set_against_options(sets: Sequence[str], options: dict[str, tuple[Any, tuple[str, ...]]]) -> None:
    """A ``--set KEY=VALUE`` for a field an option of its own also sets (``--lr 1e-3 --set lr=2e-3``) is a
    ConfigError: one of the two would silently win. ``options``: flag -> (its value or None, the --set keys
    it sets)."""
    for item in sets:
        key = item.partition("=")[0].strip()
        for flag, (value, keys) in options.items():
            if value is not None and key in keys:
                raise ConfigError(invalid("The --set option", item, f"a field no other option sets (also given: "
                                          f"{flag} {value})"))


@ladder.command("design")
@click.option("--budgets", default=None, help="IsoFLOP budgets in FLOPs, comma-separated (e.g. 1e12,3e12,1e13).")
@click.option("--sizes", default=5, show_default=True, type=click.IntRange(min=1),
              help="Model sizes per IsoFLOP budget.")
@click.option("--tokens-per-param", default=20.0, show_default=True, type=float,
              help="Tokens per parameter at the centre of each IsoFLOP profile (Chinchilla: 20).")
@click.option("--span", default=4.0, show_default=True, type=float,
              help="IsoFLOP sizes span [N*/span, N* x span] around the compute-optimal N*.")
@click.option("--params", default=None, help="N x D grid: non-embedding parameter targets, comma-separated "
                                               "(non-zero counts with --sparsities).")
@click.option("--tokens", default=None, help="N x D grid: training tokens, comma-separated.")
@click.option("--sparsities", default=None,
              help="Sparsity x N_nonzero x D grid (with --params, --tokens): sparsities, e.g. 0,0.5,0.75,0.875. "
                   "Runs of one --params value have equal non-zero counts (a sparser run is a wider dense "
                   "model).")
@click.option("--sparsity-method", default=None, type=click.Choice(["gmp", "static", "nm"]),
              help="How sparse runs are pruned: gradual magnitude pruning (default), a static random mask, or "
                   "a fixed n:m pattern; other settings with --set sparsity.KEY=VALUE.")
@click.option("--nm", default=None, metavar="N:M",
              help="n:m pattern (e.g. 2:4) for the sparse runs; their sparsity must be 1 - n/m.")
@click.option("--lr-grid", default=None, help="Learning-rate x batch grid: peak learning rates.")
@click.option("--batch-grid", default=None, help="Learning-rate x batch grid: batch sizes in tokens.")
@click.option("--batch-grid-keep", default="tokens", show_default=True, type=click.Choice(["tokens", "steps"]),
              help="What every batch of --batch-grid shares: the training tokens, or the steps the --batch-tokens "
                   "batch takes on them.")
@click.option("--lr-batch-rule", default="none", show_default=True, type=click.Choice(["none", "sqrt", "linear"]),
              help="Each learning rate (--lr, --lr-grid) is at --batch-tokens; a batch B gets lr x (B / "
                   "batch_tokens)^k, k = 0, 1/2 or 1.")
@click.option("--parametrizations", default=None, metavar="P1,P2,...",
              help="The design once per parametrization: sp, mup (muP), mus (muNit Scaling; needs --set "
                   "parametrization.tau=T), e.g. sp,mus; --set parametrization.base_width=W sets mup/mus's base.")
@click.option("--formats", default=None, metavar="F1,F2,...",
              help="Number-format grid on top of the design: every run in each format (ExMy, intK, fp32 = "
                   "unquantised), e.g. E1M2,E2M1,E3M0,fp32; the format of the weights and activations, or of "
                   "every role --operands quantises (operands, scaling: --set precision.KEY=VALUE or a recipe).")
@click.option("--blocks", default=None, metavar="B1,B2,...",
              help="Scaling-block grid: block sizes in elements along each layer's input (e.g. 8,16,32,64), or "
                   "channel / tensor / none.")
@click.option("--operands", default=None, metavar="ARM1,ARM2,...",
              help="GEMM-operand grid: each arm a set of P1..P6 joined by '+' (P1 x, P2 W forward; P3 dy, P4 W "
                   "for dx; P5 dy, P6 x for dW), e.g. P1,P2,P3,P4,P5,P6 (one at a time) or P2+P4+P6.")
@click.option("--vocab", default=None, type=int, help="Vocabulary size (256 = bytes).")
@click.option("--context", default=None, type=int, help="Context length, tokens.")
@click.option("--batch-tokens", default=None, type=int, help="Tokens per optimizer step.")
@click.option("--lr", default=None, type=float, help="Peak learning rate.")
@click.option("--schedule", default=None, type=click.Choice(["constant", "cosine", "wsd", "linear", "power"]),
              help="Learning-rate schedule.")
@click.option("--wsd-branches", default=None, metavar="F1,F2,...",
              help="WSD cooldown branches (Hägele et al. 2024): fractions of each run's steps at which a "
                   "branch off the stable phase ends, fully annealed, e.g. 0.25,0.5 (sets --schedule wsd; "
                   "the same as --set schedule.branches=[0.25,0.5]).")
@click.option("--warmup-steps", default=None, type=click.IntRange(min=1),
              help="Linear warmup over this many steps in every run, however long (the same as --set "
                   "schedule.warmup_steps=N; default: schedule.warmup_frac of each run).")
@click.option("--merge-prefixes", is_flag=True,
              help="Train runs that differ only in length as one: the longest, with a WSD cooldown branch "
                   "ending at each shorter one's last step (bit-identical to the short run; needs --schedule "
                   "wsd and --warmup-steps). An IsoFLOP ladder's shapes at several budgets cost ~37% less.")
@click.option("--evals", default=None, type=int, help="Log-spaced evaluations per run.")
@click.option("--seed", default=None, type=int, help="Random seed of every run.")
@click.option("--corpus", default=None, help="'default' (embedded) or a path to text or tokens.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Any other run field, e.g. --set dtype=float32 --set schedule.decay_frac=0.1.")
@click.option("--aspect", default=_RULE.aspect, show_default=True, type=float,
              help="Shape rule: d_model / n_layer.")
@click.option("--head-dim", default=_RULE.head_dim, show_default=True, type=int, help="Shape rule: head size.")
@click.option("--min-layers", default=_RULE.min_layers, show_default=True, type=int,
              help="Shape rule: fewest layers.")
@click.option("--width-step", default=None, type=int,
              help="Shape rule: d_model is a multiple of this (default: the head size; heads stay >= --head-dim).")
@click.option("--lr-width-exponent", default=_RULE.lr_width_exponent, show_default=True, type=float,
              help="IsoFLOP and N x D designs: lr x (--lr-ref-width / d_model) ** this (1 = muP's Adam rule).")
@click.option("--lr-ref-width", default=_RULE.lr_ref_width, show_default=True, type=int,
              help="The width at which a run gets --lr unscaled.")
@click.option("--min-steps", default=_RULE.min_steps, show_default=True, type=int,
              help="Fewest optimizer steps a run may have.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="The ladder file to write.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def design_cmd(budgets: str | None, sizes: int, tokens_per_param: float, span: float, params: str | None,
               tokens: str | None, sparsities: str | None, sparsity_method: str | None, nm: str | None,
               lr_grid: str | None, batch_grid: str | None, batch_grid_keep: str, lr_batch_rule: str,
               parametrizations: str | None, formats: str | None, blocks: str | None, operands: str | None,
               vocab: int | None,
               context: int | None, batch_tokens: int | None, lr: float | None, schedule: str | None,
               wsd_branches: str | None, warmup_steps: int | None, merge_prefixes: bool, evals: int | None,
               seed: int | None, corpus: str | None, sets: Sequence[str], aspect: float,
               head_dim: int, min_layers: int, width_step: int | None, lr_width_exponent: float,
               lr_ref_width: int, min_steps: int, out: str, as_json: bool) -> None:
    """Write a ladder file: IsoFLOP profiles (--budgets), an N x D grid (--params, --tokens), a sparsity
    grid (--sparsities with --params, --tokens) or a learning-rate x batch grid (--lr-grid, --batch-grid,
    at --budgets or --params/--tokens)."""
    overrides: dict[str, Any] = {k: v for k, v in {
        "vocab": vocab, "context": context, "batch_tokens": batch_tokens, "lr": lr, "evals": evals,
        "seed": seed, "corpus": corpus}.items() if v is not None}
    _check_set_against_options(sets, {
        "--vocab": (vocab, ("vocab",)), "--context": (context, ("context",)),
        "--batch-tokens": (batch_tokens, ("batch_tokens",)), "--lr": (lr, ("lr",)), "--evals": (evals, ("evals",)),
        "--seed": (seed, ("seed",)), "--corpus": (corpus, ("corpus",)),
        "--schedule": (schedule, ("schedule", "schedule.name")),
        "--warmup-steps": (warmup_steps, ("schedule.warmup_steps",)),
        "--sparsity-method": (sparsity_method, ("sparsity.method",)), "--nm": (nm, ("sparsity.n", "sparsity.m"))})
    overrides.update(parse_set(sets))
    if schedule is not None:
        overrides["schedule"] = {**overrides.get("schedule", {}), "name": schedule}
    if warmup_steps is not None:
        overrides["schedule"] = {**overrides.get("schedule", {}), "warmup_steps": warmup_steps}
    if sparsity_method is not None:
        overrides["sparsity"] = {**overrides.get("sparsity", {}), "method": sparsity_method}
    if nm is not None:
        n_, sep, m_ = nm.partition(":")
        if not (sep and n_.strip().isdigit() and m_.strip().isdigit()):
            raise ConfigError(invalid("The --nm argument", nm, "of the form N:M, e.g. 2:4"))
        overrides["sparsity"] = {**overrides.get("sparsity", {}), "n": int(n_), "m": int(m_)}
    request = _design.DesignRequest(
        budgets=numbers(budgets, "--budgets"), sizes=sizes, tokens_per_param=tokens_per_param, span=span,
        params=numbers(params, "--params"), tokens=numbers(tokens, "--tokens"),
        lrs=numbers(lr_grid, "--lr-grid"), batches=numbers(batch_grid, "--batch-grid", int),
        batch_keep=batch_grid_keep, lr_batch_rule=lr_batch_rule,
        sparsities=numbers(sparsities, "--sparsities"), wsd_branches=numbers(wsd_branches, "--wsd-branches"),
        rule=_design.ShapeRule(aspect=aspect, head_dim=head_dim, min_layers=min_layers, width_step=width_step,
                               lr_width_exponent=lr_width_exponent, lr_ref_width=lr_ref_width,
                               min_steps=min_steps),
        formats=_words(formats), blocks=[int(b) if b.isdigit() else b for b in _words(blocks) or []] if blocks
        else None, operands=_words(operands),
        overrides=overrides, merge_prefixes=merge_prefixes, note={"set": list(sets)} if sets else {},
        parametrizations=None if parametrizations is None else [p.strip() for p in parametrizations.split(",")])
    with flags(DESIGN_FLAGS):
        made = _design.make_design(request)
    ladderfile.write_toml(out, made.runs, made.meta)
    for w in ladderfile.embedding_warnings(made.runs):   # e.g. --vocab 1000000 at small N
        click.echo(f"warning: {w}", err=True)
    rows = _run_rows(made.runs)
    if as_json:
        emit_json({"out": out, "ladder": made.meta, "runs": rows})
        return
    columns = ["name", "n_layer", "d_model", "N_nonembed", "N_total", "tokens", "steps", "lr", "batch_tokens", "C"]
    if any(r.sparsity.target > 0 for r in made.runs):
        columns[4:4] = ["S", "N_nonzero"]
    if any(r.schedule.branches for r in made.runs):
        columns.append("branch_ends")
    if any(r.parametrization.name != "sp" for r in made.runs):
        columns.insert(1, "parametrization")
    if any(r.precision.active for r in made.runs):
        columns.append("precision")
    print_rows(rows, columns, title=f"{len(made.runs)} runs written to {out}")


@ladder.command("run")
@click.argument("ladder_file", type=click.Path(dir_okay=False))
@click.option("--store", "store_path", required=True, type=click.Path(dir_okay=False),
              help="The run store (SQLite; created if missing).")
@click.option("--workers", default=None, type=click.IntRange(min=1), help="Runs at once (default: one per core).")
@click.option("--threads", default=None, type=click.IntRange(min=1),
              help="Threads per run (default: cores / workers).")
@click.option("--executor", default="local", show_default=True, type=click.Choice(list(EXECUTORS)))
@click.option("--address", default=None, help="Ray cluster address (auto or HOST:PORT); default: a local Ray.")
@click.option("--checkpoints", default=None, type=click.Path(file_okay=False),
              help="Checkpoint directory (default: next to the store, <store>.checkpoints).")
@click.option("--device", default=None, help="Torch device for the trainer (default: it chooses).")
@click.option("--trainer", default=DEFAULT_TRAINER, show_default=True, metavar="MODULE:FUNCTION",
              help="A trainer with ladder.train.train's contract.")
@click.option("--progress/--no-progress", default=True, help="Live progress display on a terminal.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def run_cmd(ladder_file: str, store_path: str, workers: int | None, threads: int | None, executor: str,
            address: str | None, checkpoints: str | None, device: str | None, trainer: str, progress: bool,
            as_json: bool) -> None:
    """Run every run of LADDER_FILE not yet done in the store (resuming interrupted ones)."""
    runs = ladderfile.read_toml(ladder_file)
    _design.check_branches(runs)
    if not (executor == "ray" and address):   # a remote cluster's nodes may hold corpora this machine lacks
        ladderfile.check_corpora(runs)
    ckpt = Path(checkpoints) if checkpoints else Path(store_path).with_suffix(".checkpoints")
    store = Store(store_path)
    try:
        result = execute(runs, store, checkpoint_dir=ckpt, workers=workers, threads=threads, executor=executor,
                         address=address, device=device, progress=progress and not as_json, train_fn=trainer)
    except KeyboardInterrupt:
        click.echo("interrupted: run the same command again to resume from the checkpoints.", err=True)
        raise click.exceptions.Exit(130) from None
    finally:
        store.close()
    if as_json:
        emit_json({**result, "store": store_path, "checkpoints": str(ckpt)})
    else:
        click.echo(f"{result['runs']} runs: {len(result['done'])} done now, {result['skipped']} already done, "
                   f"{len(result['failed'])} failed; {result['points']} points, {result['tokens']:,} tokens "
                   f"in {result['seconds']:.1f} s (store {store_path}).")
        for name, error in result["failed"].items():
            click.echo(f"failed: {name}: {error}", err=True)
    if result["failed"]:
        raise click.exceptions.Exit(1)


@ladder.command("status")
@click.option("--store", "store_path", required=True, type=click.Path(dir_okay=False), help="The run store.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def status_cmd(store_path: str, as_json: bool) -> None:
    """How far each run of the store has got."""
    with Store(store_path, create=False) as store:
        by_status = store.counts()
        rows = []
        for r in store.runs():
            pts = store.points(r.id)
            last = pts[-1] if pts else {}
            target = r.target_tokens or r.config.steps * r.config.batch_tokens
            rows.append({"run": r.name, "status": r.status, "points": len(pts), "step": last.get("step"),
                         "steps": r.config.steps, "tokens": last.get("tokens"), "target_tokens": target,
                         "progress": (last.get("tokens") or 0) / target if target else None,
                         "loss": last.get("eval_loss"), "attempts": r.attempts, "host": r.host,
                         "error": r.error.splitlines()[0] if r.error else None})
    if as_json:
        emit_json({"store": store_path, "counts": by_status, "runs": rows})
        return
    print_rows(rows, ["run", "status", "points", "step", "steps", "loss", "attempts", "error"],
               title=", ".join(f"{n} {s}" for s, n in by_status.items()))


# -- runs -------------------------------------------------------------------------------------------
@main.group("runs")
def runs() -> None:
    """List, export and import the runs of a store."""


@runs.command("list")
@click.option("--store", "store_path", required=True, type=click.Path(dir_okay=False), help="The run store.")
@click.option("--status", default=None, type=click.Choice(["planned", "running", "done", "failed"]),
              help="Only runs with this status.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def list_cmd(store_path: str, status: str | None, as_json: bool) -> None:
    """The runs of a store: shape, parameter counts, tokens, budget and final loss."""
    with Store(store_path, create=False) as store:
        rows = []
        for r in store.runs(status):
            c = r.config
            rows.append({"run": r.name, "status": r.status, "n_layer": c.n_layer, "d_model": c.d_model,
                         "n_head": c.n_head, "N_total": r.N_total, "N_nonembed": r.N_nonembed,
                         "N_nonzero": r.N_nonzero, "tokens": r.target_tokens, "budget_flops": c.budget_flops,
                         "target_flops": r.target_flops, "lr": c.lr, "batch_tokens": c.batch_tokens,
                         "schedule": c.schedule.name, "seed": c.seed, "group": c.group,
                         "parametrization": c.parametrization.name,
                         "tau": c.parametrization.tau if c.parametrization.name == "mus" else None,
                         "final_loss": (r.summary or {}).get("final_loss"), "config": c.to_dict()})
            if r.source is not None:   # an imported run: its known fields, not the placeholder config
                f = r.source.get("fields", {})
                rows[-1].update({k: f.get(k) for k in ("n_layer", "d_model", "n_head", "seed", "schedule")},
                                lr=f.get("lr"), batch_tokens=f.get("batch"), budget_flops=f.get("budget_flops", 0.0),
                                group="imported", config=None, source=r.source)
    if as_json:
        emit_json({"store": store_path, "runs": rows})
        return
    par = ["parametrization"] if any(r["parametrization"] != "sp" for r in rows) else []
    print_rows(rows, ["run", "status", "n_layer", "d_model", *par, "N_total", "tokens", "budget_flops", "lr",
                       "batch_tokens", "final_loss"], title=f"{len(rows)} runs in {store_path}")


@runs.command("export")
@click.option("--store", "store_path", required=True, type=click.Path(dir_okay=False), help="The run store.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="The file to write: .csv, .tsv, .parquet or .jsonl.")
@click.option("--final", is_flag=True, help="Only the last point of each done run (--points final).")
@click.option("--points", "point_selection", default=None, type=click.Choice(["all", "annealed", "final"]),
              help="Which points: every one (default), the final and WSD cooldown-branch ends "
                   "(annealed), or the final ones.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def export_cmd(store_path: str, out: str, final: bool, point_selection: str | None, as_json: bool) -> None:
    """Write the run table: one row per evaluation point (run, branch, step, D = tokens, loss, C, N ...);
    branch is 0 on a run's main line and k at the end of its k-th WSD cooldown branch."""
    suffix = table_suffix(out, (".csv", ".tsv", ".parquet", ".pq", ".jsonl"))
    if final and point_selection not in (None, "final"):
        raise ConfigError(f"--final means --points final; it contradicts --points {point_selection}.")
    selection = point_selection or ("final" if final else "all")
    with Store(store_path, create=False) as store:
        df = store.to_table(points=selection)
    write_table(df, out, suffix)
    info = {"out": out, "rows": len(df), "runs": int(df["run"].nunique()), "final": selection == "final",
            "points": selection, "columns": list(df.columns)}
    if as_json:
        emit_json(info)
    else:
        click.echo(f"wrote {info['rows']} rows ({info['runs']} runs) to {out}")


@runs.command("import")
@click.argument("source", type=click.Path())
@click.option("--store", "store_path", required=True, type=click.Path(dir_okay=False),
              help="The run store to import into (created if missing).")
@click.option("--from", "fmt", type=click.Choice(["wandb", "tensorboard", "mlflow"]), default=None,
              help="SOURCE is a tracker's data, not a store: a W&B panel CSV or history dump(s), a TensorBoard "
                   "log directory, an MLflow mlruns/ folder or tracking database.")
@click.option("--map", "maps", multiple=True, metavar="TARGET=SOURCE",
              help="With --from: loss=KEY, train_loss=KEY, lr=KEY, tokens=KEY (logged keys); N=VALUE|KEY, "
                   "batch=VALUE|KEY, lr_peak=..., schedule=... (run fields: a number, a parameter or a key).")
@click.option("--run-filter", default=None, metavar="GLOB",
              help="With --from: only the runs whose name or id matches this glob (fnmatch: * ? [abc]).")
@click.option("--run-fields", "fields_file", default=None, type=click.Path(dir_okay=False),
              help="With --from: a table of run fields per run (a 'run' column, then N, batch, ...).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def import_cmd(source: str, store_path: str, fmt: str | None, maps: tuple[str, ...], run_filter: str | None,
               fields_file: str | None, as_json: bool) -> None:
    """Merge the runs, points and fits of another store SOURCE (e.g. from another machine) into --store,
    or, with --from, import the runs a tracker logged (scalinglab.ingest).

    Store: runs match by name and must have the same config; missing points are added, and a done run
    replaces an unfinished one. Tracker: each run becomes a done run with its curve points (the steps
    with a loss) and its provenance; the same source imported again changes nothing. Either way the
    import holds --store's writer lock: it fails at once while a `ladder run` writes that store.
    """
    if fmt is not None:
        from ..ingest import import_into
        with flags({"maps": "--map", "run_filter": "--run-filter", "fields_file": "--run-fields"}):
            info = import_into(store_path, source, fmt, maps, run_filter, fields_file)
        if as_json:
            emit_json(info)
            return
        for note in info["notes"]:
            click.echo(f"note: {note}", err=True)
        for warning in info["warnings"]:
            click.echo(f"warning: {warning}", err=True)
        click.echo(f"imported {info['runs_added']} new {fmt} runs ({info['runs_unchanged']} already there), added "
                   f"{info['points_added']} points from {source} into {store_path}")
        return
    if maps or run_filter or fields_file:
        raise ConfigError("--map, --run-filter and --run-fields need --from (importing a store takes none).")
    if Path(source).is_dir():
        raise ConfigError(f"SOURCE {source!r} is a directory; a store is a file (a tracker's logs need --from).")
    if Path(source).resolve() == Path(store_path).resolve():
        raise ConfigError(f"cannot import store {source!r} into itself.")
    with Store(source, create=False) as other, Store(store_path) as store, store.writer_lock():
        result = store.merge(other)   # under the writer lock: a `ladder run` on the store refuses, and vice versa
    if as_json:
        emit_json({"source": source, "store": store_path, **result})
    else:
        click.echo(f"imported {result['runs_added']} new runs, updated {result['runs_updated']}, added "
                   f"{result['points_added']} points from {source} into {store_path}")


__all__ = ["DESIGN_FLAGS", "ladder", "runs"]
