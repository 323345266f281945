"""Ladder designs: IsoFLOP profiles, N x D grids and learning-rate x batch grids, and their TOML files.

Pure Python and NumPy (no torch, no SciPy). A design returns a list of :class:`RunConfig`; a ladder
file holds it in TOML a person can read and edit::

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

Conventions
-----------
* **FLOPs.** A run's compute is ``C = flops_per_token_full x D`` with the trainer's full count
  (:func:`scalinglab.units.flops_per_token` with ``full=True``: ``6 N_nonembed + 6 d V + 12 L T d``),
  the same count the store reports as ``C``. An IsoFLOP run gets ``D = C / flops_per_token_full``
  tokens, rounded to whole batches, so its compute meets the budget within half a batch.
* **Sizes.** The compute-optimal size at a budget is placed with Chinchilla's rule of thumb ``C = 6 N D``
  with ``D = r N`` (``r`` tokens per parameter, 20 in Hoffmann et al. 2022), ``N* = sqrt(C / (6 r))``,
  taken as a non-embedding count; an IsoFLOP profile spaces ``sizes`` targets log-uniformly over
  ``[N* / span, N* span]``.
* **Shapes.** :func:`scalinglab.units.shape_for_params`: aspect ratio ``d_model / n_layer`` near
  ``aspect`` (32), ``d_model`` a multiple of ``head_dim`` (16), ``n_head = d_model / head_dim``, at
  least ``min_layers`` layers (1).
  Targets that round to the same shape give one run.
* **Sparsity grids** (:func:`grid_sparse`, Frantar et al. 2023): the size targets are **non-zero**
  non-embedding counts, kept equal across sparsities as in the paper's T5 runs. At sparsity S the
  dense shape is the one whose non-zero count ``N_nonzero = 12 L d^2 (1 - S) + 2 L d + d`` is nearest
  the target on a log scale, at the shape rule's depth for ``N / (1 - S)`` dense parameters
  (:func:`sparse_shape`). So a sparser run
  is a larger dense model (about ``1/(1 - S)`` times the weights) with as many non-zero weights. With
  Sparse-IFT (``sparsity.ift``) the designer picks the dense shape for the target and the trainer
  widens it, which keeps the non-zero count as well.
* **Names.** ``{group}-{budget or tokens}-n{n_layer}d{d_model}[-s{S}]-{digest}``, where ``digest`` is
  the first six hex digits of :meth:`RunConfig.digest` (every field but the name) and ``s{S}`` marks
  sparse runs. Names follow from the content alone, so two stores of one ladder line up run by run.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import units
from ..errors import ConfigError, ParameterError, ScalingLabError, invalid
from ..accounting import counts, run_counts
from ..runconfig import RunConfig

#: default aspect ratio d_model / n_layer and head dimension of the shape rule (units.shape_for_params)
ASPECT = 32.0
HEAD_DIM = 16
#: fewest layers of the shape rule (1: the rule's depth even for the smallest models)
MIN_LAYERS = 1
#: fewest optimizer steps a designed run may have
MIN_STEPS = 10
_TOP_KEYS = ("ladder", "defaults", "runs")
#: the RunConfig fields that are themselves dataclasses (schedule, sparsity, ...): TOML sub-tables
_SUBCONFIGS: dict[str, type] = {
    f.name: f.default_factory for f in dataclasses.fields(RunConfig)  # type: ignore[misc]
    if f.default_factory is not dataclasses.MISSING and isinstance(f.default_factory, type)
    and dataclasses.is_dataclass(f.default_factory)}


# -- counts and names -----------------------------------------------------------------------------
def _num(x: float) -> str:
    """Compact scientific form for names: 1e12 -> '1e12', 2.5e13 -> '2.5e13'."""
    mantissa, exponent = f"{x:.1e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def run_name(config: RunConfig) -> str:
    """The deterministic name of a run: ``{group}-{budget|D}-n{L}d{d}[-s{S}]-{digest[:6]}``."""
    tag = f"{_num(config.budget_flops)}" if config.budget_flops > 0 else f"D{_num(config.steps * config.batch_tokens)}"
    sparse = f"-s{config.sparsity.target:g}" if config.sparsity.target > 0 else ""
    return f"{config.group or 'run'}-{tag}-n{config.n_layer}d{config.d_model}{sparse}-{config.digest()[:6]}"


def _named(config: RunConfig) -> RunConfig:
    return dataclasses.replace(config, name=run_name(config))


# -- validation helpers ---------------------------------------------------------------------------
def _positive_list(name: str, values: Iterable[float] | None) -> list[float]:
    if values is None:
        raise ConfigError(f"The {name!r} parameter is required.")
    out = list(values)
    if not out:
        raise ConfigError(invalid(f"The {name!r} parameter", out, "a non-empty list of positive numbers"))
    for v in out:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise ConfigError(invalid(f"Each value of the {name!r} parameter", v, "a positive finite number"))
    return [float(v) for v in out]


def _template(base: RunConfig | None, overrides: Mapping[str, Any], group: str) -> dict[str, Any]:
    """The fields every designed run shares: ``base`` (or the defaults), then ``overrides``."""
    d = (base or RunConfig()).to_dict()
    for key, value in overrides.items():
        if key in _SUBCONFIGS and isinstance(value, Mapping):
            d[key] = {**d[key], **value}
        elif key in _SUBCONFIGS and dataclasses.is_dataclass(value):
            d[key] = dataclasses.asdict(value)  # type: ignore[arg-type]
        else:
            d[key] = value
    if not d.get("group"):
        d["group"] = group
    d["name"] = ""
    batch = d.get("batch_tokens")
    if isinstance(batch, int) and not isinstance(batch, bool) and batch > 0:
        d["tokens"] = batch   # a placeholder: each run gets its own tokens
    RunConfig.from_dict(d)  # unknown or invalid fields fail here, naming the field
    return d


def _shape(n_nonembed: float, aspect: float, head_dim: int, min_layers: int = 1,
           width_step: int | None = None) -> dict[str, int]:
    try:
        s = units.shape_for_params(n_nonembed, aspect=aspect, head_dim=head_dim, min_layers=min_layers,
                                   width_step=width_step)
    except ParameterError as exc:
        raise ConfigError(str(exc)) from None
    return {"n_layer": s["n_layer"], "d_model": s["d_model"], "n_head": s["n_head"]}


def _run(template: Mapping[str, Any], shape: Mapping[str, int], tokens: float, min_steps: int,
         **fields: Any) -> RunConfig:
    """A named run of ``shape`` training on ``tokens`` rounded to whole batches (at least one)."""
    batch = int(fields.get("batch_tokens", template["batch_tokens"]))
    steps = max(1, round(tokens / batch))
    if steps < min_steps:
        raise ConfigError(
            f"a run of shape n_layer={shape['n_layer']}, d_model={shape['d_model']} would train for only "
            f"{steps} steps ({tokens:.3g} tokens at {batch} tokens per batch), fewer than min_steps = {min_steps}; "
            "raise the budget or tokens, or lower batch_tokens.")
    d = {**template, **shape, **fields, "tokens": steps * batch}
    return _named(RunConfig.from_dict(d))


def width_scaled_lr(lr: float, d_model: int, exponent: float = 0.0, ref_width: int = 64) -> float:
    """The learning rate of a model ``d_model`` wide: ``lr (ref_width / d_model) ** exponent``.

    Exponent 0 keeps one learning rate for every size (Kaplan et al. 2020's ladders). Exponent 1 is
    muP's rule for Adam on hidden matrices (Yang et al. 2022, Table 3: lr proportional to 1/fan_in):
    at the quickstart's tiny widths a single learning rate leaves the narrow models far from their
    optimum (measured: 2 layers, d = 32, 1.3e12 FLOPs: loss 1.883 at 3e-3, 1.706 at 1.2e-2; d = 80:
    2.055 at 3e-3, 2.156 at 6e-3), which bends the IsoFLOP curves the law is fitted to.
    """
    if not (isinstance(exponent, (int, float)) and math.isfinite(exponent)):
        raise ConfigError(invalid("The 'lr_width_exponent' parameter", exponent, "a finite number"))
    if isinstance(ref_width, bool) or not isinstance(ref_width, int) or ref_width < 1:
        raise ConfigError(invalid("The 'lr_ref_width' parameter", ref_width, "a positive integer"))
    return float(f"{float(lr) * (ref_width / d_model) ** exponent:.4g}")   # 4 digits: readable ladder files


def _dedupe(runs: Iterable[RunConfig]) -> list[RunConfig]:
    seen: dict[str, RunConfig] = {}
    for r in runs:
        seen.setdefault(r.name, r)
    return list(seen.values())


# -- designs --------------------------------------------------------------------------------------
def compute_optimal_params(budget: float, tokens_per_param: float = 20.0) -> float:
    """``N* = sqrt(C / (6 r))``: the size that ``C = 6 N D`` with ``D = r N`` gives (Hoffmann et al. 2022)."""
    return math.sqrt(budget / (6.0 * tokens_per_param))


def isoflop(budgets: Sequence[float], sizes: int = 5, tokens_per_param: float = 20.0, *,
            span: float = 4.0, aspect: float = ASPECT, head_dim: int = HEAD_DIM, min_layers: int = MIN_LAYERS, width_step: int | None = None,
            lr_width_exponent: float = 0.0, lr_ref_width: int = 64, min_steps: int = MIN_STEPS,
            base: RunConfig | None = None, **overrides: Any) -> list[RunConfig]:
    """IsoFLOP profiles: ``sizes`` model sizes at each compute budget (Hoffmann et al. 2022, approach 2).

    Sizes are spaced log-uniformly over ``[N*/span, N* span]`` around ``N* = sqrt(C / (6 r))``
    (``r = tokens_per_param``), shapes from the shape rule, and each run trains on
    ``D = C / flops_per_token_full`` tokens (whole batches), so ``flops_per_token_full x D`` meets the
    budget ``C`` (FLOPs) within half a batch. Other fields come from ``base`` and ``overrides`` (any
    RunConfig field: ``vocab``, ``context``, ``batch_tokens``, ``lr``, ``schedule={...}``, ``seed`` ...).
    Each run records its budget in ``budget_flops``; the group is ``isoflop`` unless given. With
    ``lr_width_exponent``, each run's learning rate is :func:`width_scaled_lr` of the template's.
    """
    budgets_ = _positive_list("budgets", budgets)
    if isinstance(sizes, bool) or not isinstance(sizes, int) or sizes < 1:
        raise ConfigError(invalid("The 'sizes' parameter", sizes, "a positive integer"))
    if not (isinstance(tokens_per_param, (int, float)) and tokens_per_param > 0):
        raise ConfigError(invalid("The 'tokens_per_param' parameter", tokens_per_param, "a positive number"))
    if not (isinstance(span, (int, float)) and span >= 1):
        raise ConfigError(invalid("The 'span' parameter", span, "a number >= 1"))
    template = _template(base, overrides, "isoflop")
    runs = []
    for budget in budgets_:
        center = compute_optimal_params(budget, tokens_per_param)
        ratios = np.geomspace(1.0 / span, span, sizes) if sizes > 1 else np.ones(1)
        for n in center * ratios:
            shape = _shape(float(n), aspect, head_dim, min_layers, width_step)
            probe = RunConfig.from_dict({**template, **shape})
            fpt = counts(probe)["flops_per_token_full"]
            lr = width_scaled_lr(template["lr"], shape["d_model"], lr_width_exponent, lr_ref_width)
            runs.append(_run(template, shape, budget / fpt, min_steps, budget_flops=budget, lr=lr))
    return _dedupe(runs)


def grid_nd(params: Sequence[float], tokens: Sequence[float], *, aspect: float = ASPECT,
            head_dim: int = HEAD_DIM, min_layers: int = MIN_LAYERS, width_step: int | None = None,
            lr_width_exponent: float = 0.0, lr_ref_width: int = 64, min_steps: int = MIN_STEPS, base: RunConfig | None = None,
            **overrides: Any) -> list[RunConfig]:
    """An N x D grid: every size target (non-embedding parameters) trained on every token count.

    Tokens are rounded to whole batches; the group is ``nd`` unless given; ``lr_width_exponent`` as
    in :func:`isoflop`.
    """
    params_, tokens_ = _positive_list("params", params), _positive_list("tokens", tokens)
    template = _template(base, overrides, "nd")
    runs = []
    for n in params_:
        shape = _shape(n, aspect, head_dim, min_layers, width_step)
        lr = width_scaled_lr(template["lr"], shape["d_model"], lr_width_exponent, lr_ref_width)
        runs.extend(_run(template, shape, d, min_steps, lr=lr) for d in tokens_)
    return _dedupe(runs)


def grid_lr_batch(lrs: Sequence[float], batches: Sequence[int], *, budgets: Sequence[float] | None = None,
                  tokens_per_param: float = 20.0, params: Sequence[float] | None = None,
                  tokens: Sequence[float] | None = None, aspect: float = ASPECT, head_dim: int = HEAD_DIM, min_layers: int = MIN_LAYERS, width_step: int | None = None,
                  min_steps: int = MIN_STEPS, base: RunConfig | None = None, **overrides: Any) -> list[RunConfig]:
    """A learning-rate x batch-size grid (as in Step Law, Li et al. 2025) at fixed model sizes and data.

    With ``budgets``: at each budget, the compute-optimal size ``N* = sqrt(C / (6 r))`` trained on
    ``C / flops_per_token_full`` tokens. Otherwise at every (``params``, ``tokens``) pair. ``batches``
    are in tokens per step (multiples of the context); the group is ``lrbatch`` unless given.
    """
    lrs_ = _positive_list("lrs", lrs)
    batches_ = [int(b) for b in _positive_list("batches", batches)]
    template = _template(base, overrides, "lrbatch")
    points: list[tuple[dict[str, int], float, float]] = []   # (shape, tokens, budget)
    if budgets is not None:
        if params is not None or tokens is not None:
            raise ConfigError("give either 'budgets' or 'params' and 'tokens' to grid_lr_batch, not both.")
        for budget in _positive_list("budgets", budgets):
            shape = _shape(compute_optimal_params(budget, tokens_per_param), aspect, head_dim, min_layers, width_step)
            fpt = counts(RunConfig.from_dict({**template, **shape}))["flops_per_token_full"]
            points.append((shape, budget / fpt, budget))
    else:
        for n in _positive_list("params", params):
            for d in _positive_list("tokens", tokens):
                points.append((_shape(n, aspect, head_dim, min_layers, width_step), d, 0.0))
    runs = [_run(template, shape, d, min_steps, lr=lr, batch_tokens=b, budget_flops=budget)
            for shape, d, budget in points for lr in lrs_ for b in batches_]
    return _dedupe(runs)


def sparse_shape(n_nonzero: float, sparsity: float, *, context: int = 128, vocab: int = 256,
                 aspect: float = ASPECT, head_dim: int = HEAD_DIM, min_layers: int = MIN_LAYERS) -> dict[str, int]:
    """The dense shape whose non-zero non-embedding count at ``sparsity`` is nearest ``n_nonzero``.

    .. math:: N_\\text{nonzero}(L, d, S) = N_\\text{nonembed}(L, d) - \\operatorname{round}(12 L d^2 S)

    (:func:`scalinglab.units.param_counts`). The depth is the shape rule's
    (:func:`scalinglab.units.shape_for_params`) for the ``n_nonzero / (1 - S)`` dense parameters of the
    model before pruning; the width is the multiple of ``head_dim`` whose non-zero count is nearest
    ``n_nonzero`` on a log scale (``n_head = d_model / head_dim``). At S = 0 this is the shape rule's
    shape. The rounding of the width leaves the non-zero count within a few percent of the target at
    the ladder's sizes (the exact count is recorded with each run). Returns the shape, ``N_nonembed``
    and ``N_nonzero``.
    """
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float)) or not 0.0 <= sparsity < 1.0:
        raise ConfigError(invalid("Each sparsity", sparsity, "a fraction in [0, 1)"))
    dense = _shape(n_nonzero / (1.0 - sparsity), aspect, head_dim, min_layers)
    L, k0 = dense["n_layer"], dense["n_head"]

    def error(k: int) -> float:
        nz = units.param_counts(L, head_dim * k, context, vocab, sparsity=sparsity)["N_nonzero"]
        return abs(math.log(nz / n_nonzero))

    k = min(range(max(1, k0 - 4), k0 + 5), key=error)
    c = units.param_counts(L, head_dim * k, context, vocab, sparsity=sparsity)
    return {"n_layer": L, "d_model": head_dim * k, "n_head": k, "N_nonembed": c["N_nonembed"],
            "N_nonzero": c["N_nonzero"]}


def grid_sparse(sparsities: Sequence[float], params: Sequence[float], tokens: Sequence[float], *,
                aspect: float = ASPECT, head_dim: int = HEAD_DIM, min_layers: int = MIN_LAYERS, min_steps: int = MIN_STEPS,
                base: RunConfig | None = None, **overrides: Any) -> list[RunConfig]:
    """A sparsity x N_nonzero x D grid (Frantar et al. 2023): each sparsity, size and token count.

    ``params`` are **non-zero** non-embedding parameter targets, equal across sparsities: a run at
    sparsity S is the dense shape of :func:`sparse_shape` (about ``N / (1 - S)`` weights, the fraction
    S of its block linear weights pruned), or, with ``sparsity={"ift": True}``, the dense shape for N
    that the trainer widens by ``1/sqrt(1 - S)`` (Sparse-IFT). The pruning method and its settings come
    from ``sparsity={...}`` in ``overrides`` (default: gradual magnitude pruning, 25%-75% cubic
    schedule); an n:m method needs the grid's sparsities to be ``1 - n/m``. ``tokens`` are rounded to
    whole batches; the group is ``sparse`` unless given.
    """
    sparsities_ = [float(s) for s in (sparsities if sparsities is not None else [])]
    if not sparsities_:
        raise ConfigError(invalid("The 'sparsities' parameter", list(sparsities or []),
                                  "a non-empty list of fractions in [0, 1)"))
    for S in sparsities_:
        if not 0.0 <= S < 1.0:
            raise ConfigError(invalid("Each value of the 'sparsities' parameter", S, "a fraction in [0, 1)"))
    params_, tokens_ = _positive_list("params", params), _positive_list("tokens", tokens)
    # the pruning settings are checked run by run, with each run's target (an n:m pattern fixes it)
    overrides = dict(overrides)
    pruning = overrides.pop("sparsity", {})
    if dataclasses.is_dataclass(pruning):
        pruning = dataclasses.asdict(pruning)  # type: ignore[arg-type]
    if not isinstance(pruning, Mapping):
        raise ConfigError(invalid("The 'sparsity' override", pruning, "a table of SparsityConfig fields"))
    template = _template(base, overrides, "sparse")
    ift = bool(pruning.get("ift", template["sparsity"].get("ift")))
    runs = []
    for S in sparsities_:
        sparsity = {**template["sparsity"], **pruning, "target": S}
        if S == 0.0:   # a dense run: no pruning settings (they would change its digest, not its training)
            sparsity = {"target": 0.0}
        for n in params_:
            if ift:
                shape = _shape(n, aspect, head_dim, min_layers)
            else:
                shape = {k: v for k, v in sparse_shape(n, S, context=template["context"], vocab=template["vocab"],
                                                       aspect=aspect, head_dim=head_dim, min_layers=min_layers).items()
                         if k in ("n_layer", "d_model", "n_head")}
            for d in tokens_:
                runs.append(_run(template, shape, d, min_steps, sparsity=sparsity))
    return _dedupe(runs)


# -- TOML -----------------------------------------------------------------------------------------
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
    if isinstance(v, np.generic):
        return _toml_value(v.item())
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
    fields = [k for k in dicts[0] if k != "name"]
    shared: dict[str, Any] = {}
    for key in fields:
        if key in _SUBCONFIGS:
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
        *_table_lines({k: v for k, v in shared.items() if k not in _SUBCONFIGS}),
    ]
    for key in _SUBCONFIGS:
        if shared.get(key):
            lines += ["", f"[defaults.{key}]", *_table_lines(shared[key])]
    for r, d in zip(runs, dicts):
        c = counts(r)
        own = {k: v for k, v in d.items() if k not in _SUBCONFIGS and (k == "name" or k not in shared)}
        note = (f"# N_total = {c['N_total']:,}, N_nonembed = {c['N_nonembed']:,}, "
                f"C = {c['flops_per_token_full'] * r.steps * r.batch_tokens:.4g} FLOPs, {r.steps} steps")
        lines += ["", note, "[[runs]]", *_table_lines(own)]
        for key in _SUBCONFIGS:
            sub = {k: v for k, v in d[key].items() if k not in shared.get(key, {})}
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


def _as_floats(d: dict[str, Any], cls: type) -> dict[str, Any]:
    """Integers given for float fields become floats, so ``lr = 1`` and ``lr = 1.0`` digest alike."""
    floats = {f.name for f in dataclasses.fields(cls) if isinstance(f.default, float)}
    return {k: float(v) if k in floats and isinstance(v, int) and not isinstance(v, bool) else v
            for k, v in d.items()}


def loads_toml(text: str, source: str = "<string>") -> tuple[list[RunConfig], dict[str, Any]]:
    """Parse ladder file text into its runs and its ``[ladder]`` table."""
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
        label = f"ladder file {source!r}, run {i}" + (f" ({entry['name']})" if entry.get("name") else "")
        merged = {**defaults, **entry}
        for key, cls in _SUBCONFIGS.items():
            parts = [x for x in (defaults.get(key), entry.get(key)) if x is not None]
            if parts and all(isinstance(x, dict) for x in parts):
                merged[key] = _as_floats({k: v for x in parts for k, v in x.items()}, cls)
        try:
            cfg = RunConfig.from_dict(_as_floats(merged, RunConfig))
        except ScalingLabError as exc:
            raise ConfigError(f"{label}: {exc}") from None
        if not cfg.name:
            cfg = _named(cfg)
        prev = names.get(cfg.name)
        if prev is not None and prev.digest() != cfg.digest():
            raise ConfigError(f"{label}: the name {cfg.name!r} is already used by a different run.")
        if prev is None:
            names[cfg.name] = cfg
            runs.append(cfg)
    return runs, meta


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


__all__ = ["ASPECT", "HEAD_DIM", "MIN_LAYERS", "MIN_STEPS", "compute_optimal_params", "counts", "dumps_toml", "grid_lr_batch",
           "grid_nd", "grid_sparse", "isoflop", "loads_toml", "read_ladder", "read_toml", "run_name",
           "sparse_shape", "width_scaled_lr", "write_toml"]
