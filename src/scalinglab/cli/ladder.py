"""Commands that design and run ladders and read the run store: ``ladder ...`` and ``runs ...``.

Each command parses its options, makes one library call and prints a table (or one JSON object with
``--json``). Every :class:`~scalinglab.errors.ScalingLabError` becomes one line on stderr,
``error: ...``, and exit code 2, before anything in the store has changed. ``ladder run`` exits 1
when some runs failed (their errors are in ``ladder status``) and 130 when interrupted.
"""

from __future__ import annotations

import functools
import json
import math
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from ..errors import ConfigError, DataError, ScalingLabError, invalid
from ..execute import EXECUTORS, execute
from ..execute._common import DEFAULT_TRAINER
from ..ladder import design as _design
from ..ladder import schedules as _schedules
from ..runconfig import RunConfig
from ..ladder.merge import merge_prefixes as merge_prefixes_
from ..store import Store

F = TypeVar("F", bound=Callable[..., Any])


# -- helpers ----------------------------------------------------------------------------------------
def _errors(f: F) -> F:
    """Turn scalinglab's errors into ``error: ...`` on stderr and exit code 2 (no traceback)."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except ScalingLabError as exc:
            click.echo("error: " + " ".join(str(exc).split("\n")), err=True)
            raise click.exceptions.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _console() -> Console:
    c = Console(highlight=False)
    return c if c.is_terminal else Console(highlight=False, width=200)


def _clean(x: Any) -> Any:
    """JSON-safe: NaN and infinities become null, NumPy scalars plain numbers."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _emit_json(obj: Any) -> None:
    click.echo(json.dumps(_clean(obj), indent=2, default=str))


def _fmt(x: Any) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float):
        return f"{x:.4g}"
    if isinstance(x, int) and not isinstance(x, bool):
        return f"{x:,}"
    return str(x)


def _numbers(text: str | None, what: str, kind: type = float) -> list[Any] | None:
    """``"1e12,3e12"`` -> ``[1e12, 3e12]``; None stays None."""
    if text is None:
        return None
    out = []
    for item in text.split(","):
        item = item.strip()
        try:
            value = float(item)
        except ValueError:
            raise ConfigError(invalid(f"Each value of {what}", item, "a number")) from None
        if kind is int:
            if value != int(value):
                raise ConfigError(invalid(f"Each value of {what}", item, "an integer"))
            value = int(value)
        out.append(value)
    return out


def _parse_set(items: Sequence[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` (TOML values; bare words are strings; ``schedule.name=wsd`` for sub-tables)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(invalid("The --set argument", item, "of the form KEY=VALUE"))
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()
        head, dot, sub = key.partition(".")
        if dot:
            out.setdefault(head, {})[sub] = value
        else:
            out[key] = value
    return out


def _check_branches(runs: Sequence[RunConfig]) -> None:
    """Every run's cooldown branches fit its own steps (``schedules.branches``), before anything runs."""
    for r in runs:
        try:
            _schedules.branches(r.schedule, r.lr, r.steps)
        except ConfigError as exc:
            raise ConfigError(f"run {r.name!r} ({r.steps} steps): {exc}") from None


def _run_rows(runs: Sequence[RunConfig]) -> list[dict[str, Any]]:
    rows = []
    for r in runs:
        c = _design.counts(r)
        tokens = r.steps * r.batch_tokens
        rows.append({"name": r.name, "n_layer": r.n_layer, "d_model": r.d_model, "n_head": r.n_head,
                     "N_nonembed": c["N_nonembed"], "N_total": c["N_total"], "S": r.sparsity.target,
                     "N_nonzero": c["N_nonzero"], "tokens": tokens, "steps": r.steps,
                     "batch_tokens": r.batch_tokens, "lr": r.lr, "C": c["flops_per_token_full"] * tokens,
                     "budget_flops": r.budget_flops,
                     "branch_ends": [b.end_step for b in _schedules.branches(r.schedule, r.lr, r.steps)]})
    return rows


def _print_rows(rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str | None = None) -> None:
    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col, justify="left" if col in ("name", "run", "status", "error") else "right")
    for row in rows:
        table.add_row(*(_fmt(row.get(c)) for c in columns))
    _console().print(table)


# -- ladder -----------------------------------------------------------------------------------------
@click.group()
def ladder() -> None:
    """Design a ladder of small runs, run it into a store, and follow its progress."""


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
@click.option("--vocab", default=None, type=int, help="Vocabulary size (256 = bytes).")
@click.option("--context", default=None, type=int, help="Context length, tokens.")
@click.option("--batch-tokens", default=None, type=int, help="Tokens per optimizer step.")
@click.option("--lr", default=None, type=float, help="Peak learning rate.")
@click.option("--schedule", default=None, type=click.Choice(["constant", "cosine", "wsd", "linear"]),
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
@click.option("--aspect", default=_design.ASPECT, show_default=True, type=float,
              help="Shape rule: d_model / n_layer.")
@click.option("--head-dim", default=_design.HEAD_DIM, show_default=True, type=int, help="Shape rule: head size.")
@click.option("--min-layers", default=_design.MIN_LAYERS, show_default=True, type=int,
              help="Shape rule: fewest layers.")
@click.option("--width-step", default=None, type=int,
              help="Shape rule: d_model is a multiple of this (default: the head size; heads stay >= --head-dim).")
@click.option("--lr-width-exponent", default=0.0, show_default=True, type=float,
              help="IsoFLOP and N x D designs: lr x (--lr-ref-width / d_model) ** this (1 = muP's Adam rule).")
@click.option("--lr-ref-width", default=64, show_default=True, type=int,
              help="The width at which a run gets --lr unscaled.")
@click.option("--min-steps", default=_design.MIN_STEPS, show_default=True, type=int,
              help="Fewest optimizer steps a run may have.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="The ladder file to write.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@_errors
def design_cmd(budgets: str | None, sizes: int, tokens_per_param: float, span: float, params: str | None,
               tokens: str | None, sparsities: str | None, sparsity_method: str | None, nm: str | None,
               lr_grid: str | None, batch_grid: str | None, vocab: int | None,
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
    overrides.update(_parse_set(sets))
    if schedule is not None:
        overrides["schedule"] = {**overrides.get("schedule", {}), "name": schedule}
    if warmup_steps is not None:
        overrides["schedule"] = {**overrides.get("schedule", {}), "warmup_steps": warmup_steps}
    fractions = _numbers(wsd_branches, "--wsd-branches")
    if fractions is not None:
        overrides["schedule"] = {"name": "wsd", **overrides.get("schedule", {}), "branches": fractions}
    shape: dict[str, Any] = {"aspect": aspect, "head_dim": head_dim, "min_layers": min_layers,
                             "min_steps": min_steps}
    if width_step is not None:
        shape["width_step"] = width_step
    lr_rule = {"lr_width_exponent": lr_width_exponent, "lr_ref_width": lr_ref_width} if lr_width_exponent else {}
    budgets_ = _numbers(budgets, "--budgets")
    params_, tokens_ = _numbers(params, "--params"), _numbers(tokens, "--tokens")
    lrs, batches = _numbers(lr_grid, "--lr-grid"), _numbers(batch_grid, "--batch-grid", int)
    sparsities_ = _numbers(sparsities, "--sparsities")
    if sparsity_method is not None:
        overrides["sparsity"] = {**overrides.get("sparsity", {}), "method": sparsity_method}
    if nm is not None:
        n_, sep, m_ = nm.partition(":")
        if not (sep and n_.strip().isdigit() and m_.strip().isdigit()):
            raise ConfigError(invalid("The --nm argument", nm, "of the form N:M, e.g. 2:4"))
        overrides["sparsity"] = {**overrides.get("sparsity", {}), "n": int(n_), "m": int(m_)}
    meta: dict[str, Any]
    if sparsities_ is not None:
        if params_ is None or tokens_ is None:
            raise ConfigError("a sparsity grid needs --params (non-zero counts) and --tokens with --sparsities.")
        if budgets_ is not None or lrs is not None or batches is not None:
            raise ConfigError("--sparsities makes a sparsity x N_nonzero x D grid: drop --budgets, --lr-grid and "
                              "--batch-grid.")
        if width_step is not None or lr_rule:
            raise ConfigError("--width-step and --lr-width-exponent apply to IsoFLOP and N x D designs, not to a "
                              "sparsity grid (its widths are multiples of --head-dim).")
        runs = _design.grid_sparse(sparsities_, params_, tokens_, **shape, **overrides)
        meta = {"design": "sparse", "sparsities": sparsities_, "params": params_, "tokens": tokens_}
    elif lrs is not None or batches is not None:
        base = RunConfig.from_dict({k: v for k, v in overrides.items() if k in ("lr", "batch_tokens")})
        lrs, batches = lrs or [base.lr], batches or [base.batch_tokens]
        if budgets_ is None and (params_ is None or tokens_ is None):
            raise ConfigError("a learning-rate x batch grid needs --budgets, or --params and --tokens.")
        runs = _design.grid_lr_batch(lrs, batches, budgets=budgets_, tokens_per_param=tokens_per_param,
                                     params=None if budgets_ else params_, tokens=None if budgets_ else tokens_,
                                     **shape, **overrides)
        meta = {"design": "lr_batch", "lrs": lrs, "batches": batches}
        meta.update({"budgets": budgets_, "tokens_per_param": tokens_per_param} if budgets_ else
                    {"params": params_, "tokens": tokens_})
    elif params_ is not None or tokens_ is not None:
        if params_ is None or tokens_ is None:
            raise ConfigError("an N x D grid needs both --params and --tokens.")
        runs = _design.grid_nd(params_, tokens_, **shape, **lr_rule, **overrides)
        meta = {"design": "nd", "params": params_, "tokens": tokens_}
    elif budgets_ is not None:
        runs = _design.isoflop(budgets_, sizes, tokens_per_param, span=span, **shape, **lr_rule, **overrides)
        meta = {"design": "isoflop", "budgets": budgets_, "sizes": sizes, "tokens_per_param": tokens_per_param,
                "span": span}
    else:
        raise ConfigError("say what to design: --budgets (IsoFLOP profiles), --params and --tokens (N x D grid), "
                          "or --lr-grid/--batch-grid (learning-rate x batch grid).")
    meta.update(aspect=aspect, head_dim=head_dim, min_layers=min_layers, min_steps=min_steps, **lr_rule)
    if width_step is not None:
        meta["width_step"] = width_step
    if fractions is not None:
        meta["wsd_branches"] = fractions
    if sets:
        meta["set"] = list(sets)
    if merge_prefixes:
        sched = runs[0].schedule
        if sched.name != "wsd" or not sched.warmup_steps or fractions is not None:
            raise ConfigError(invalid("--merge-prefixes with schedule", f"{sched.name} (warmup_steps "
                                      f"{sched.warmup_steps}, branches {list(sched.branches)})",
                                      "--schedule wsd with --warmup-steps N and no --wsd-branches (a run "
                                      "is a prefix of a longer one only with a fixed warmup)"))
        meta["merge_prefixes"] = True
        n_design = len(runs)
        runs = [m.run for m in merge_prefixes_(runs)]
        meta["design_runs"] = n_design
    _check_branches(runs)
    _design.write_toml(out, runs, meta)
    rows = _run_rows(runs)
    if as_json:
        _emit_json({"out": out, "ladder": meta, "runs": rows})
        return
    columns = ["name", "n_layer", "d_model", "N_nonembed", "N_total", "tokens", "steps", "lr", "batch_tokens", "C"]
    if any(r.sparsity.target > 0 for r in runs):
        columns[4:4] = ["S", "N_nonzero"]
    if any(r.schedule.branches for r in runs):
        columns.append("branch_ends")
    _print_rows(rows, columns, title=f"{len(runs)} runs written to {out}")


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
@_errors
def run_cmd(ladder_file: str, store_path: str, workers: int | None, threads: int | None, executor: str,
            address: str | None, checkpoints: str | None, device: str | None, trainer: str, progress: bool,
            as_json: bool) -> None:
    """Run every run of LADDER_FILE not yet done in the store (resuming interrupted ones)."""
    runs = _design.read_toml(ladder_file)
    _check_branches(runs)
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
        _emit_json({**result, "store": store_path, "checkpoints": str(ckpt)})
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
@_errors
def status_cmd(store_path: str, as_json: bool) -> None:
    """How far each run of the store has got."""
    with Store(store_path, create=False) as store:
        counts = store.counts()
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
        _emit_json({"store": store_path, "counts": counts, "runs": rows})
        return
    _print_rows(rows, ["run", "status", "points", "step", "steps", "loss", "attempts", "error"],
                title=", ".join(f"{n} {s}" for s, n in counts.items()))


# -- runs -------------------------------------------------------------------------------------------
@click.group()
def runs() -> None:
    """List, export and import the runs of a store."""


@runs.command("list")
@click.option("--store", "store_path", required=True, type=click.Path(dir_okay=False), help="The run store.")
@click.option("--status", default=None, type=click.Choice(["planned", "running", "done", "failed"]),
              help="Only runs with this status.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@_errors
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
                         "final_loss": (r.summary or {}).get("final_loss"), "config": c.to_dict()})
    if as_json:
        _emit_json({"store": store_path, "runs": rows})
        return
    _print_rows(rows, ["run", "status", "n_layer", "d_model", "N_total", "tokens", "budget_flops", "lr",
                       "batch_tokens", "final_loss"], title=f"{len(rows)} runs in {store_path}")


_WRITERS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl"}


@runs.command("export")
@click.option("--store", "store_path", required=True, type=click.Path(dir_okay=False), help="The run store.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="The file to write: .csv, .tsv, .parquet or .jsonl.")
@click.option("--final", is_flag=True, help="Only the last point of each done run (--points final).")
@click.option("--points", "point_selection", default=None, type=click.Choice(["all", "annealed", "final"]),
              help="Which points: every one (default), the final and WSD cooldown-branch ends "
                   "(annealed), or the final ones.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@_errors
def export_cmd(store_path: str, out: str, final: bool, point_selection: str | None, as_json: bool) -> None:
    """Write the run table: one row per evaluation point (run, branch, step, D = tokens, loss, C, N ...);
    branch is 0 on a run's main line and k at the end of its k-th WSD cooldown branch."""
    kind = _WRITERS.get(Path(out).suffix.lower())
    if kind is None:
        raise DataError(invalid(f"The extension of --out {out!r}", Path(out).suffix, f"one of {sorted(_WRITERS)}"))
    if final and point_selection not in (None, "final"):
        raise ConfigError(f"--final means --points final; it contradicts --points {point_selection}.")
    selection = point_selection or ("final" if final else "all")
    with Store(store_path, create=False) as store:
        df = store.to_table(points=selection)
    try:
        if kind == "csv":
            df.to_csv(out, index=False)
        elif kind == "tsv":
            df.to_csv(out, index=False, sep="\t")
        elif kind == "jsonl":
            df.to_json(out, orient="records", lines=True)
        else:
            df.to_parquet(out, index=False)
    except ImportError:
        raise DataError("writing Parquet needs pyarrow: pip install 'scalinglab[parquet]'.") from None
    except OSError as exc:
        raise DataError(f"cannot write {out!r}: {exc.strerror or exc}") from None
    info = {"out": out, "rows": len(df), "runs": int(df["run"].nunique()), "final": selection == "final",
            "points": selection, "columns": list(df.columns)}
    if as_json:
        _emit_json(info)
    else:
        click.echo(f"wrote {info['rows']} rows ({info['runs']} runs) to {out}")


@runs.command("import")
@click.argument("source", type=click.Path(dir_okay=False))
@click.option("--store", "store_path", required=True, type=click.Path(dir_okay=False),
              help="The run store to import into (created if missing).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@_errors
def import_cmd(source: str, store_path: str, as_json: bool) -> None:
    """Merge the runs, points and fits of another store SOURCE (e.g. from another machine) into --store.

    Runs match by name and must have the same config; missing points are added, and a done run
    replaces an unfinished one.
    """
    if Path(source).resolve() == Path(store_path).resolve():
        raise ConfigError(f"cannot import store {source!r} into itself.")
    with Store(source, create=False) as other, Store(store_path) as store:
        result = store.merge(other)
    if as_json:
        _emit_json({"source": source, "store": store_path, **result})
    else:
        click.echo(f"imported {result['runs_added']} new runs, updated {result['runs_updated']}, added "
                   f"{result['points_added']} points from {source} into {store_path}")


def _register() -> None:
    """Add the groups to the ``scalinglab`` command (cli/__init__.py imports this module)."""
    from . import main

    main.add_command(ladder)
    main.add_command(runs)


_register()

__all__ = ["ladder", "runs"]
