"""Ladder files: a list of :class:`RunConfig` in TOML a person can read and edit, and back.

Pure Python (no torch, no NumPy of its own)::

    # scalinglab ladder ...
    [ladder]                 # the design parameters (for the record; not read back into runs)
    design = "isoflop"
    budgets = [1e12, 3e12]
    [defaults]               # every field shared by all runs
    context = 128
    [defaults.schedule]
    name = "cosine"
    [[runs]]                 # one table per run: its name and the fields that differ
    name = "isoflop-1e12-n1d96-3f9a1c"
    n_layer = 1
    ...

A ``[[runs]]`` entry without a name gets the designer's name for its config
(:func:`scalinglab.ladder.design.run_name`); integers given for float fields read as floats, so
``lr = 1`` and ``lr = 1.0`` digest alike. Floats are written in the shortest form that reads back as
the same float, so a file round-trips to equal runs with equal digests.
"""

from __future__ import annotations

import codecs
import dataclasses
import json
import math
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..accounting import counts
from ..errors import ConfigError, ScalingLabError, invalid
from ..runconfig import RunConfig
from .design import SUBCONFIGS, run_name

#: sub-tables written only when some run sets them (added after ladder files existed)
OPTIONAL_SUBCONFIGS = ("precision",)
#: top-level fields written only when some run sets them
OPTIONAL_FIELDS = ("ptq",)

__all__ = ["EMBEDDING_RATIO", "check_corpora", "check_corpus", "dumps_toml", "embedding_warnings", "loads_toml", "read_ladder", "read_toml",
           "write_toml"]

#: a design warns when a run's embedding parameters exceed this multiple of its non-embedding count
EMBEDDING_RATIO = 10.0

_TOP_KEYS = ("ladder", "defaults", "runs")


# -- writing --------------------------------------------------------------------------------------
def _toml_float(v: float) -> str:
    r = repr(float(v))
    if not math.isfinite(v):
        return r
    for k in range(17):   # the shortest scientific form that reads back as the same float
        s = f"{v:.{k}e}"
        if float(s) == v:
            s = s.replace("e+", "e")
            mantissa, exponent = s.split("e")
            s = f"{mantissa}e{int(exponent)}"
            return s if len(s) < len(r) else r
    return r


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _toml_float(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items() if x is not None) + "}"
    item = getattr(v, "item", None)   # a NumPy scalar: its Python value
    if callable(item):
        return _toml_value(item())
    raise ConfigError(invalid("A ladder file value", v, "a string, number, boolean, list or table"))


def _toml_key(k: str) -> str:
    return k if k and all(c.isalnum() or c in "_-" for c in k) else json.dumps(k)


def _table_lines(values: Mapping[str, Any]) -> list[str]:
    return [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in values.items() if v is not None]


def dumps_toml(runs: Sequence[RunConfig], meta: Mapping[str, Any] | None = None) -> str:
    """The ladder file text for ``runs`` (see the module docstring); ``meta`` fills ``[ladder]``."""
    if not runs:
        raise ConfigError("a ladder needs at least one run.")
    dicts = [r.to_dict() for r in runs]
    fields = [k for k in dicts[0] if k != "name" and not (k in OPTIONAL_FIELDS and not any(d[k] for d in dicts))]
    shared: dict[str, Any] = {}
    for key in fields:
        if key in SUBCONFIGS:
            sub = {k: v for k, v in dicts[0][key].items() if all(d[key][k] == v for d in dicts)}
            shared[key] = sub
        elif all(d[key] == dicts[0][key] for d in dicts):
            shared[key] = dicts[0][key]
    lines = [
        f"# scalinglab ladder: {len(runs)} runs. Run it with",
        "#   scalinglab ladder run THIS_FILE --store runs.db",
        "# [defaults] holds the fields every run shares; a [[runs]] entry gives its name and the fields that",
        "# differ. Names follow from the config (group, budget or tokens, shape, digest): after editing a",
        "# run, delete its name to derive a fresh one (a store refuses a known name with a new config).",
        "",
        "[ladder]",
        *_table_lines(dict(meta or {})),
        "",
        "[defaults]",
        *_table_lines({k: v for k, v in shared.items() if k not in SUBCONFIGS}),
    ]
    quiet = {key for key in OPTIONAL_SUBCONFIGS if all(d[key] == dataclasses.asdict(SUBCONFIGS[key]()) for d in dicts)}
    for key in SUBCONFIGS:
        if shared.get(key) and key not in quiet:
            lines += ["", f"[defaults.{key}]", *_table_lines(shared[key])]
    for r, d in zip(runs, dicts):
        c = counts(r)
        own = {k: v for k, v in d.items() if k not in SUBCONFIGS and (k == "name" or k not in shared)
               and not (k in OPTIONAL_FIELDS and not v)}
        note = (f"# N_total = {c['N_total']:,}, N_nonembed = {c['N_nonembed']:,}, "
                f"C = {c['flops_per_token_full'] * r.steps * r.batch_tokens:.4g} FLOPs, {r.steps} steps")
        lines += ["", note, "[[runs]]", *_table_lines(own)]
        for key in SUBCONFIGS:
            sub = {k: v for k, v in d[key].items() if k not in shared.get(key, {}) and key not in quiet}
            if sub:
                lines += [f"[runs.{key}]", *_table_lines(sub)]
    return "\n".join(lines) + "\n"


def write_toml(path: str | Path, runs: Sequence[RunConfig], meta: Mapping[str, Any] | None = None) -> None:
    """Write a ladder file (UTF-8 TOML) that :func:`read_toml` reads back to the same runs."""
    text = dumps_toml(runs, meta)
    p = Path(path)
    try:
        p.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write ladder file {str(p)!r}: {exc.strerror}") from None


def embedding_warnings(runs: Sequence[RunConfig], ratio: float = EMBEDDING_RATIO) -> list[str]:
    """One warning (or none) when the embedding (vocab x d_model, plus positions) of some runs exceeds
    ``ratio`` times their non-embedding parameters N: such runs spend their memory and time on the
    embedding, and N no longer describes the model. (A vocab above ``runconfig.MAX_VOCAB`` is refused.)"""
    heavy = []
    for r in runs:
        c = counts(r)
        embed = c["N_total"] - c["N_nonembed"]
        if embed > ratio * max(c["N_nonembed"], 1):
            heavy.append((embed / max(c["N_nonembed"], 1), r, embed, c["N_nonembed"]))
    if not heavy:
        return []
    worst, r, embed, n = max(heavy, key=lambda h: h[0])
    return [f"in {len(heavy)} of {len(runs)} runs the embedding parameters exceed {ratio:g}x the non-embedding "
            f"count N; the most, run {r.name!r}: {embed:,} embedding parameters (vocab {r.vocab:,} x d_model "
            f"{r.d_model}) for N = {n:,} ({worst:.3g}x). A smaller vocab suits these sizes."]


# -- reading --------------------------------------------------------------------------------------
def _as_floats(d: dict[str, Any], cls: type) -> dict[str, Any]:
    """Integers given for float fields become floats, so ``lr = 1`` and ``lr = 1.0`` digest alike."""
    floats = {f.name for f in dataclasses.fields(cls) if isinstance(f.default, float)}
    return {k: float(v) if k in floats and isinstance(v, int) and not isinstance(v, bool) else v
            for k, v in d.items()}


def loads_toml(text: str, source: str = "<string>") -> tuple[list[RunConfig], dict[str, Any]]:
    """Parse ladder file text into its runs and its ``[ladder]`` table; ``source`` names it in errors."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"ladder file {source!r} is not valid TOML: {exc}") from None
    for key in doc:
        if key not in _TOP_KEYS:
            raise ConfigError(invalid(f"The top-level key of ladder file {source!r}", key, f"one of {_TOP_KEYS}"))
    meta, defaults, entries = doc.get("ladder", {}), doc.get("defaults", {}), doc.get("runs")
    if not isinstance(meta, dict) or not isinstance(defaults, dict):
        raise ConfigError(f"ladder file {source!r}: [ladder] and [defaults] must be tables.")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"ladder file {source!r} has no runs (a [[runs]] table per run).")
    runs: list[RunConfig] = []
    names: dict[str, RunConfig] = {}
    for i, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            raise ConfigError(f"ladder file {source!r}, run {i}: a [[runs]] entry must be a table.")
        label = f"ladder file {source!r}, run {i}" + (f" ({entry['name']!r})" if entry.get("name") else "")
        merged = {**defaults, **entry}
        for key, cls in SUBCONFIGS.items():
            parts = [x for x in (defaults.get(key), entry.get(key)) if x is not None]
            if parts and all(isinstance(x, dict) for x in parts):
                merged[key] = _as_floats({k: v for x in parts for k, v in x.items()}, cls)
        try:
            cfg = RunConfig.from_dict(_as_floats(merged, RunConfig))
        except ScalingLabError as exc:
            raise ConfigError(f"{label}: {exc}") from None
        if not cfg.name:
            cfg = dataclasses.replace(cfg, name=run_name(cfg))
        prev = names.get(cfg.name)
        if prev is not None and prev.digest() != cfg.digest():
            raise ConfigError(f"{label}: the name {cfg.name!r} is already used by a different run.")
        if prev is None:
            names[cfg.name] = cfg
            runs.append(cfg)
    return runs, meta


#: the corpora embedded in scalinglab (not paths)
_NAMED_CORPORA = ("default", "python-docs")
#: bytes of a text corpus file read to tell text from binary
_SNIFF_BYTES = 8192


def check_corpus(corpus: str, what: str = "The corpus") -> None:
    """A cheap check of a run's corpus (no tokenising): a ConfigError unless it is a named corpus, a
    non-empty ``.bin``/``.jsonl``/``.parquet`` file, a non-empty file that starts as UTF-8 text, or a
    directory with a non-empty non-hidden file. (The trainer reads it in full later.)"""
    if corpus in _NAMED_CORPORA:
        return
    p = Path(corpus).expanduser()
    try:
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                rel = f.relative_to(p)
                if f.is_file() and not any(part.startswith(".") for part in rel.parts) and f.stat().st_size:
                    return
            raise ConfigError(f"{what} {corpus!r} is an empty directory (no non-empty, non-hidden file).")
        if not p.exists():
            raise ConfigError(f"{what} {corpus!r} does not exist (give 'default', 'python-docs' or a path).")
        if not p.is_file():
            raise ConfigError(f"{what} {corpus!r} is neither a file nor a directory.")
        if p.stat().st_size == 0:
            raise ConfigError(f"{what} {corpus!r} is an empty file.")
        if p.suffix in (".bin", ".jsonl", ".parquet"):
            return
        with p.open("rb") as fh:
            head = fh.read(_SNIFF_BYTES)
    except OSError as exc:
        raise ConfigError(f"cannot read {what.lower()} {corpus!r}: {exc.strerror or exc}") from None
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)   # a cut last character is fine
        text = b"\0" not in head
    except UnicodeDecodeError:
        text = False
    if not text:
        raise ConfigError(f"{what} {corpus!r} is not UTF-8 text (a binary file); token files must end in "
                          "'.bin', records in '.jsonl' or '.parquet'.")


def check_corpora(runs: Sequence[RunConfig]) -> None:
    """:func:`check_corpus` for every distinct corpus of ``runs`` (their SPDF fine-tuning corpora too)."""
    seen: set[str] = set()
    for r in runs:
        for corpus, what in ((r.corpus, f"The corpus of run {r.name!r}"),
                             (r.sparsity.finetune_corpus, f"The sparsity.finetune_corpus of run {r.name!r}")):
            if corpus and corpus not in seen:
                seen.add(corpus)
                check_corpus(corpus, what)


def read_ladder(path: str | Path) -> tuple[list[RunConfig], dict[str, Any]]:
    """Read a ladder file: its runs and its ``[ladder]`` table (the design parameters)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"ladder file {str(p)!r} does not exist.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read ladder file {str(p)!r}: {exc}") from None
    return loads_toml(text, str(p))


def read_toml(path: str | Path) -> list[RunConfig]:
    """The runs of a ladder file; unknown keys are ConfigErrors naming the key and the run."""
    return read_ladder(path)[0]
