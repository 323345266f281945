"""Ladder designs: IsoFLOP profiles, N x D grids, learning-rate x batch grids and sparsity grids.

Pure Python and NumPy (no torch, no SciPy). A design returns a list of :class:`RunConfig`;
:func:`make_design` picks one from a :class:`DesignRequest` (what ``scalinglab ladder design`` asks
for) and returns the runs with the design's record for the ladder file. Ladder files themselves are
:mod:`scalinglab.ladder.ladderfile`.

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
* **Shapes.** A :class:`ShapeRule` (:func:`scalinglab.units.shape_for_params`): aspect ratio
  ``d_model / n_layer`` near ``aspect`` (32), ``d_model`` a multiple of ``width_step`` (default
  ``head_dim``, 16), ``n_head = d_model / head_dim``, at least ``min_layers`` layers (1); the learning
  rate may follow the width (:func:`width_scaled_lr`), and no run is shorter than ``min_steps``.
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
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .. import units
from ..accounting import counts
from ..errors import ConfigError, ParameterError, invalid
from ..numformats import parse_format, parse_ptq
from ..runconfig import OPERAND_ROLES, OPERANDS, PARAMETRIZATION_NAMES, PrecisionConfig, RunConfig
from . import schedules
from .merge import merge_prefixes

#: the RunConfig fields that are themselves dataclasses (schedule, sparsity, ...): sub-tables of a
#: design's overrides and of a ladder file
SUBCONFIGS: dict[str, type] = {
    f.name: f.default_factory for f in dataclasses.fields(RunConfig)  # type: ignore[misc]
    if f.default_factory is not dataclasses.MISSING and isinstance(f.default_factory, type)
    and dataclasses.is_dataclass(f.default_factory)}


@dataclasses.dataclass(frozen=True)
class ShapeRule:
    """How a design turns a parameter target into a run: its shape, its learning rate, its least length.

    Attributes:
        aspect: the aspect ratio ``d_model / n_layer`` the shape aims at (dimensionless).
        head_dim: head size, in elements; ``n_head = d_model / head_dim``.
        min_layers: the fewest layers (1: the rule's depth even for the smallest models).
        width_step: ``d_model`` is a multiple of this many elements (None: ``head_dim``); heads stay
            at least ``head_dim`` wide (:func:`scalinglab.units.shape_for_params`).
        lr_width_exponent: a run's peak learning rate is the template's times
            ``(lr_ref_width / d_model) ** lr_width_exponent`` (:func:`width_scaled_lr`; 0: one learning
            rate for every size, 1: muP's rule for Adam).
        lr_ref_width: the width, in elements, at which a run gets the template's learning rate unscaled.
        min_steps: the fewest optimizer steps a designed run may have.
    """

    aspect: float = 32.0
    head_dim: int = 16
    min_layers: int = 1
    width_step: int | None = None
    lr_width_exponent: float = 0.0
    lr_ref_width: int = 64
    min_steps: int = 10

    def shape(self, n_nonembed: float, *, width_step: bool = True) -> dict[str, int]:
        """``n_layer``, ``d_model``, ``n_head`` for ``n_nonembed`` non-embedding parameters; with
        ``width_step=False`` the width is a multiple of ``head_dim`` whatever :attr:`width_step` says."""
        try:
            s = units.shape_for_params(n_nonembed, aspect=self.aspect, head_dim=self.head_dim,
                                       min_layers=self.min_layers,
                                       width_step=self.width_step if width_step else None)
        except ParameterError as exc:
            raise ConfigError(str(exc)) from None
        return {"n_layer": s["n_layer"], "d_model": s["d_model"], "n_head": s["n_head"]}

    def lr(self, lr: float, d_model: int) -> float:
        """The peak learning rate of a run ``d_model`` wide whose template has ``lr``
        (:func:`width_scaled_lr`; with exponent 0, ``lr`` to four digits whatever the reference width)."""
        if self.lr_width_exponent == 0:
            return width_scaled_lr(lr, d_model)
        return width_scaled_lr(lr, d_model, self.lr_width_exponent, self.lr_ref_width)

    def record(self) -> dict[str, Any]:
        """The rule's entries of a ladder file's ``[ladder]`` table: the shape fields and ``min_steps``,
        the learning-rate fields when the exponent is not 0, ``width_step`` when set."""
        out: dict[str, Any] = {"aspect": self.aspect, "head_dim": self.head_dim, "min_layers": self.min_layers,
                               "min_steps": self.min_steps}
        if self.lr_width_exponent:
            out.update(lr_width_exponent=self.lr_width_exponent, lr_ref_width=self.lr_ref_width)
        if self.width_step is not None:
            out["width_step"] = self.width_step
        return out


_RULE_FIELDS = tuple(f.name for f in dataclasses.fields(ShapeRule))


# -- counts and names -----------------------------------------------------------------------------
def _num(x: float) -> str:
    """Compact scientific form for names: 1e12 -> '1e12', 2.5e13 -> '2.5e13'."""
    mantissa, exponent = f"{x:.1e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def _name_part(group: str) -> str:
    """``group`` as the start of a run name (``runconfig.NAME_PATTERN``): other characters become '_',
    '..' becomes '_', at most 100 characters; a group that is already valid is kept as it is."""
    part = re.sub(r"[^A-Za-z0-9._+-]", "_", group)[:100]
    while ".." in part:
        part = part.replace("..", "_")
    if part and not part[0].isalnum():
        part = "g" + part[:99]
    return part


def run_name(config: RunConfig) -> str:
    """The deterministic name of a run: ``{group}-{budget|D}-n{L}d{d}[-s{S}][-mup|-mus]-{digest[:6]}``."""
    tag = f"{_num(config.budget_flops)}" if config.budget_flops > 0 else f"D{_num(config.steps * config.batch_tokens)}"
    sparse = f"-s{config.sparsity.target:g}" if config.sparsity.target > 0 else ""
    par = "" if config.parametrization.name == "sp" else f"-{config.parametrization.name}"
    quant = f"-q{_format_tag(config)}" if config.precision.active else ""
    return (f"{_name_part(config.group) or 'run'}-{tag}-n{config.n_layer}d{config.d_model}{sparse}{quant}{par}-"
            f"{config.digest()[:6]}")


def _format_tag(config: RunConfig) -> str:
    """The format of a quantised run's name: of the weights if quantised, else activations, else gradients."""
    r = config.precision.resolved()
    roles = {OPERAND_ROLES[o] for o in r["operands"]}
    for role in ("weights", "activations", "gradients"):
        if role in roles and parse_format(r[role], r["convention"]).kind != "none":
            return str(parse_format(r[role], r["convention"]).name)
    return "fp32"


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
    rule_fields = sorted(set(overrides) & set(_RULE_FIELDS))
    if rule_fields:
        raise ConfigError(f"{rule_fields[0]!r} is a field of the shape rule, not of a run: pass "
                          f"rule=ShapeRule({rule_fields[0]}=...) to the design.")
    d = (base or RunConfig()).to_dict()
    for key, value in overrides.items():
        if key in SUBCONFIGS and isinstance(value, str):   # parametrization="mus": its name
            value = {"name": value}
        if key in SUBCONFIGS and isinstance(value, Mapping):
            d[key] = {**d[key], **value}
        elif key in SUBCONFIGS and dataclasses.is_dataclass(value):
            d[key] = dataclasses.asdict(value)  # type: ignore[arg-type]
        else:
            d[key] = value
    if not d.get("group"):
        d["group"] = group
    d["name"] = ""
    batch = d.get("batch_tokens")
    if isinstance(batch, int) and not isinstance(batch, bool) and batch > 0:
        d["tokens"] = batch   # a placeholder: each run gets its own tokens
    RunConfig.from_dict(_shape_free(d))  # unknown or invalid fields fail here, naming the field
    return d


def _shape_free(d: dict[str, Any]) -> dict[str, Any]:
    """The template ``d`` to validate before any shape is chosen: a quantiser block and the PTQ groups
    must divide the width of each designed run (checked when each run is made), not the template's
    placeholder d_model, so the probe gets a width they all divide (one head, no Sparse-IFT widening)."""
    try:
        block = int(PrecisionConfig(**d["precision"]).resolved()["block"] or 0) \
            if isinstance(d.get("precision"), Mapping) else 0
        groups = [parse_ptq(s).group or 0 for s in d.get("ptq") or ()]
    except (ConfigError, TypeError):
        return d                          # the probe fails on the same field with the same message
    widths = [w for w in (block, *groups) if w > 0]
    if not widths:
        return d
    sparsity = d.get("sparsity")
    return {**d, "d_model": math.lcm(*widths), "n_head": 1,
            "sparsity": {**sparsity, "ift": False} if isinstance(sparsity, Mapping) else sparsity}


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
    """The learning rate of a model ``d_model`` wide: ``lr (ref_width / d_model) ** exponent``, to
    four significant digits (readable ladder files).

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
    return float(f"{float(lr) * (ref_width / d_model) ** exponent:.4g}")


def _dedupe(runs: Iterable[RunConfig]) -> list[RunConfig]:
    seen: dict[str, RunConfig] = {}
    for r in runs:
        seen.setdefault(r.name, r)
    return list(seen.values())


# -- designs --------------------------------------------------------------------------------------
def compute_optimal_params(budget: float, tokens_per_param: float = 20.0) -> float:
    """``N* = sqrt(C / (6 r))``: the size that ``C = 6 N D`` with ``D = r N`` gives (Hoffmann et al. 2022)."""
    return math.sqrt(budget / (6.0 * tokens_per_param))


def isoflop(budgets: Sequence[float], sizes: int = 5, tokens_per_param: float = 20.0, *, span: float = 4.0,
            rule: ShapeRule = ShapeRule(), base: RunConfig | None = None, **overrides: Any) -> list[RunConfig]:
    """IsoFLOP profiles: ``sizes`` model sizes at each compute budget (Hoffmann et al. 2022, approach 2).

    Sizes are spaced log-uniformly over ``[N*/span, N* span]`` around ``N* = sqrt(C / (6 r))``
    (``r = tokens_per_param``), shapes from the shape ``rule``, and each run trains on
    ``D = C / flops_per_token_full`` tokens (whole batches), so ``flops_per_token_full x D`` meets the
    budget ``C`` (FLOPs) within half a batch. Other fields come from ``base`` and ``overrides`` (any
    RunConfig field: ``vocab``, ``context``, ``batch_tokens``, ``lr``, ``schedule={...}``, ``seed`` ...).
    Each run records its budget in ``budget_flops``; the group is ``isoflop`` unless given. Each run's
    learning rate is the rule's (:meth:`ShapeRule.lr`) of the template's.
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
            shape = rule.shape(float(n))
            fpt = counts(RunConfig.from_dict({**template, **shape}))["flops_per_token_full"]
            lr = rule.lr(template["lr"], shape["d_model"])
            runs.append(_run(template, shape, budget / fpt, rule.min_steps, budget_flops=budget, lr=lr))
    return _dedupe(runs)


def grid_nd(params: Sequence[float], tokens: Sequence[float], *, rule: ShapeRule = ShapeRule(),
            base: RunConfig | None = None, **overrides: Any) -> list[RunConfig]:
    """An N x D grid: every size target (non-embedding parameters) trained on every token count.

    Tokens are rounded to whole batches; the group is ``nd`` unless given; shapes and learning rates
    follow the ``rule`` as in :func:`isoflop`.
    """
    params_, tokens_ = _positive_list("params", params), _positive_list("tokens", tokens)
    template = _template(base, overrides, "nd")
    runs: list[RunConfig] = []
    for n in params_:
        shape = rule.shape(n)
        lr = rule.lr(template["lr"], shape["d_model"])
        runs.extend(_run(template, shape, d, rule.min_steps, lr=lr) for d in tokens_)
    return _dedupe(runs)


#: how a batch sweep keeps its runs comparable: the same training tokens, or the same optimizer steps
BATCH_KEEP = ("tokens", "steps")
#: the learning rate of a batch B from the grid's one at the base batch B0: ``lr (B / B0) ** k``
LR_BATCH_RULES = {"none": 0.0, "sqrt": 0.5, "linear": 1.0}


def batch_scaled_lr(lr: float, batch_tokens: int, base_batch_tokens: int, rule: str = "none") -> float:
    """The learning rate at ``batch_tokens`` for ``lr`` at ``base_batch_tokens``, by ``rule``:
    ``lr (B / B0) ** k`` with k = 0 (``none``: one learning rate), 1/2 (``sqrt``: the square-root rule
    for Adam, Malladi et al. 2022, "On the SDEs and Scaling Rules for Adaptive Gradient Algorithms") or
    1 (``linear``: the linear scaling rule of SGD, Goyal et al. 2017), to four significant digits."""
    if rule not in LR_BATCH_RULES:
        raise ConfigError(invalid("The 'lr_batch_rule' parameter", rule, f"one of {tuple(LR_BATCH_RULES)}"))
    k = LR_BATCH_RULES[rule]
    return float(lr) if k == 0 else float(f"{float(lr) * (batch_tokens / base_batch_tokens) ** k:.4g}")


def grid_lr_batch(lrs: Sequence[float], batches: Sequence[int], *, budgets: Sequence[float] | None = None,
                  tokens_per_param: float = 20.0, params: Sequence[float] | None = None,
                  tokens: Sequence[float] | None = None, rule: ShapeRule = ShapeRule(), keep: str = "tokens",
                  lr_rule: str = "none", base: RunConfig | None = None, **overrides: Any) -> list[RunConfig]:
    """A learning-rate x batch-size grid (as in Step Law, Li et al. 2025) at fixed model sizes and data.

    With ``budgets``: at each budget, the compute-optimal size ``N* = sqrt(C / (6 r))`` trained on
    ``C / flops_per_token_full`` tokens. Otherwise at every (``params``, ``tokens``) pair. ``batches``
    are in tokens per step (multiples of the context); the group is ``lrbatch`` unless given. Shapes
    follow the ``rule``; the grid's learning rates are used as given (the rule's learning-rate fields
    do not apply).

    A batch sweep (McCandlish et al. 2018; Kaplan et al. 2020, Sec. 5.1) compares the batches at the
    same model: ``keep = "tokens"`` trains every batch on the same tokens (fewer steps for larger
    batches); ``keep = "steps"`` gives every batch the steps the template's batch ``B0``
    (``batch_tokens``) takes on those tokens, ``round(D / B0)``, so a batch B trains on
    ``round(D / B0) x B`` tokens (with ``params``/``tokens`` only: it changes a budget's compute).
    Each learning rate of ``lrs`` is the one at ``B0``; a batch B gets :func:`batch_scaled_lr` by
    ``lr_rule`` (``none``, ``sqrt``, ``linear``).
    """
    lrs_ = _positive_list("lrs", lrs)
    batches_ = [int(b) for b in _positive_list("batches", batches)]
    if keep not in BATCH_KEEP:
        raise ConfigError(invalid("The 'batch_keep' parameter", keep, f"one of {BATCH_KEEP}"))
    if keep == "steps" and budgets is not None:
        raise ConfigError(invalid("The 'batch_keep' parameter with 'budgets'", keep,
                                  "'tokens' (the same steps at every batch would change each budget's "
                                  "compute; give 'params' and 'tokens' instead)"))
    batch_scaled_lr(1.0, 1, 1, lr_rule)   # the rule's name checked before any work
    template = _template(base, overrides, "lrbatch")
    b0 = int(template["batch_tokens"])
    points: list[tuple[dict[str, int], float, float]] = []   # (shape, tokens, budget)
    if budgets is not None:
        if params is not None or tokens is not None:
            raise ConfigError("give either 'budgets' or 'params' and 'tokens' to grid_lr_batch, not both.")
        for budget in _positive_list("budgets", budgets):
            shape = rule.shape(compute_optimal_params(budget, tokens_per_param))
            fpt = counts(RunConfig.from_dict({**template, **shape}))["flops_per_token_full"]
            points.append((shape, budget / fpt, budget))
    else:
        for n in _positive_list("params", params):
            for d in _positive_list("tokens", tokens):
                points.append((rule.shape(n), d, 0.0))
    runs = [_run(template, shape, d if keep == "tokens" else max(1, round(d / b0)) * b, rule.min_steps,
                 lr=batch_scaled_lr(lr, b, b0, lr_rule), batch_tokens=b, budget_flops=budget)
            for shape, d, budget in points for lr in lrs_ for b in batches_]
    return _dedupe(runs)


def sparse_shape(n_nonzero: float, sparsity: float, *, context: int = 128, vocab: int = 256,
                 rule: ShapeRule = ShapeRule()) -> dict[str, int]:
    """The dense shape whose non-zero non-embedding count at ``sparsity`` is nearest ``n_nonzero``.

    .. math:: N_\\text{nonzero}(L, d, S) = N_\\text{nonembed}(L, d) - \\operatorname{round}(12 L d^2 S)

    (:func:`scalinglab.units.param_counts`). The depth is the shape rule's
    (:meth:`ShapeRule.shape`) for the ``n_nonzero / (1 - S)`` dense parameters of the model before
    pruning; the width is the multiple of the rule's ``head_dim`` whose non-zero count is nearest
    ``n_nonzero`` on a log scale (``n_head = d_model / head_dim``; the rule's ``width_step`` does not
    apply). At S = 0 this is the shape rule's shape. The rounding of the width leaves the non-zero
    count within a few percent of the target at the ladder's sizes (the exact count is recorded with
    each run). Returns the shape, ``N_nonembed`` and ``N_nonzero``.
    """
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float)) or not 0.0 <= sparsity < 1.0:
        raise ConfigError(invalid("Each sparsity", sparsity, "a fraction in [0, 1)"))
    head_dim = rule.head_dim
    dense = rule.shape(n_nonzero / (1.0 - sparsity), width_step=False)
    L, k0 = dense["n_layer"], dense["n_head"]

    def error(k: int) -> float:
        nz = units.param_counts(L, head_dim * k, context, vocab, sparsity=sparsity)["N_nonzero"]
        return abs(math.log(nz / n_nonzero))

    k = min(range(max(1, k0 - 4), k0 + 5), key=error)
    c = units.param_counts(L, head_dim * k, context, vocab, sparsity=sparsity)
    return {"n_layer": L, "d_model": head_dim * k, "n_head": k, "N_nonembed": c["N_nonembed"],
            "N_nonzero": c["N_nonzero"]}


def grid_sparse(sparsities: Sequence[float], params: Sequence[float], tokens: Sequence[float], *,
                rule: ShapeRule = ShapeRule(), base: RunConfig | None = None, **overrides: Any) -> list[RunConfig]:
    """A sparsity x N_nonzero x D grid (Frantar et al. 2023): each sparsity, size and token count.

    ``params`` are **non-zero** non-embedding parameter targets, equal across sparsities: a run at
    sparsity S is the dense shape of :func:`sparse_shape` (about ``N / (1 - S)`` weights, the fraction
    S of its block linear weights pruned), or, with ``sparsity={"ift": True}``, the dense shape for N
    that the trainer widens by ``1/sqrt(1 - S)`` (Sparse-IFT). The pruning method and its settings come
    from ``sparsity={...}`` in ``overrides`` (default: gradual magnitude pruning, 25%-75% cubic
    schedule); an n:m method needs the grid's sparsities to be ``1 - n/m``. ``tokens`` are rounded to
    whole batches; the group is ``sparse`` unless given. The rule's widths are multiples of its
    ``head_dim``: a ``width_step`` or a ``lr_width_exponent`` is refused.
    """
    if rule.width_step is not None or rule.lr_width_exponent:
        raise ConfigError("'rule.width_step' and 'rule.lr_width_exponent' apply to IsoFLOP and N x D designs, "
                          "not to a sparsity grid (its widths are multiples of 'rule.head_dim').")
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
                shape = rule.shape(n, width_step=False)
            else:
                shape = {k: v for k, v in sparse_shape(n, S, context=template["context"], vocab=template["vocab"],
                                                       rule=rule).items()
                         if k in ("n_layer", "d_model", "n_head")}
            for d in tokens_:
                runs.append(_run(template, shape, d, rule.min_steps, sparsity=sparsity))
    return _dedupe(runs)


# -- number-format grids ---------------------------------------------------------------------------
BLOCK_WORDS = ("channel", "tensor", "none")


def precision_variants(formats: Sequence[str] | None, blocks: Sequence[Any] | None,
                       operands: Sequence[str] | None) -> list[dict[str, Any] | None]:
    """The precision overrides of a format x block x operand grid (None: the run as designed, fp32).

    ``formats``: each a format name (``E2M1``, ``int4``, ``fp32``: the fp32 arm quantises nothing);
    it is the format of every role its arm quantises. ``blocks``: each a block size in elements
    (scaling ``block``) or ``channel`` / ``tensor`` / ``none``. ``operands``: each arm a set of GEMM
    operands joined by ``+`` (``P2+P4+P6``, ``P5``). Without ``operands`` a format is set for the
    weights and activations (the operands come from the template: a recipe's, or P1, P2, P4, P6).
    """
    fmts = list(formats) if formats is not None else [None]
    for f in fmts:
        if f is not None:
            parse_format(f, "finite", what="Each value of the 'formats' parameter")
    arms: list[tuple[str, ...] | None] = [None]
    if operands is not None:
        arms = []
        for spec in operands:
            ops = tuple(o.strip().upper() for o in str(spec).split("+"))
            if not ops or any(o not in OPERANDS for o in ops) or len(set(ops)) != len(ops):
                raise ConfigError(invalid("Each value of the 'operands' parameter", spec,
                                          f"operand names of {OPERANDS} joined by '+' (e.g. 'P2+P4+P6')"))
            arms.append(ops)
    blks: list[dict[str, Any] | None] = [None]
    if blocks is not None:
        blks = []
        for b in blocks:
            if isinstance(b, str) and b.strip().lower() in BLOCK_WORDS:
                blks.append({"scaling": b.strip().lower(), "block": 0})
            elif isinstance(b, (int, float)) and not isinstance(b, bool) and float(b).is_integer() and b >= 1:
                blks.append({"scaling": "block", "block": int(b)})
            else:
                raise ConfigError(invalid("Each value of the 'blocks' parameter", b,
                                          f"a block size in elements or one of {BLOCK_WORDS}"))
    out: list[dict[str, Any] | None] = []
    for f in fmts:
        if f is not None and parse_format(f).kind == "none":
            out.append(None)
            continue
        for arm in arms:
            for blk in blks:
                v: dict[str, Any] = {}
                if f is not None:
                    roles = {OPERAND_ROLES[o] for o in arm} if arm else {"weights", "activations"}
                    v.update({role: f for role in roles})
                if arm is not None:
                    v["operands"] = list(arm)
                if blk is not None:
                    v.update(blk)
                out.append(v)
    return out


def expand_precision(runs: Sequence[RunConfig], variants: Sequence[dict[str, Any] | None]) -> list[RunConfig]:
    """Every run in every precision variant (:func:`precision_variants`), renamed; None keeps the run
    fp32 (no quantisation at all, whatever the template's precision)."""
    out = []
    for r in runs:
        for v in variants:
            d = r.to_dict()
            d["name"] = ""
            d["precision"] = {} if v is None else {**d["precision"], **v}
            out.append(_named(RunConfig.from_dict(d)))
    return _dedupe(out)


# -- the design a request asks for ----------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class DesignRequest:
    """What to design (``scalinglab ladder design`` fills one from its options).

    :func:`make_design` makes the first design the fields ask for: ``sparsities`` (with ``params`` and
    ``tokens``): :func:`grid_sparse`; ``lrs`` or ``batches`` (at ``budgets``, or at ``params`` and
    ``tokens``): :func:`grid_lr_batch`; ``params`` and ``tokens``: :func:`grid_nd`; ``budgets``:
    :func:`isoflop`.

    Attributes:
        budgets: IsoFLOP budgets, FLOPs (``flops_per_token_full x D``).
        sizes: model sizes per IsoFLOP budget.
        tokens_per_param: tokens per non-embedding parameter at the centre of each IsoFLOP profile.
        span: IsoFLOP sizes span ``[N*/span, N* span]``.
        params: non-embedding parameter targets (non-zero counts with ``sparsities``).
        tokens: training tokens.
        sparsities: weight sparsities, fractions in [0, 1).
        lrs: peak learning rates of a learning-rate x batch grid (default: the template's one).
        batches: batch sizes of that grid, tokens per step (default: the template's one).
        batch_keep: what the batches of that grid share: ``tokens`` (default) or ``steps``.
        lr_batch_rule: each grid learning rate's scaling with the batch from the template's
            ``batch_tokens``: ``none`` (default), ``sqrt`` or ``linear`` (:func:`batch_scaled_lr`).
        rule: the shape rule.
        overrides: any other RunConfig field, sub-configs as mappings (``{"schedule": {"name": "wsd"}}``).
        wsd_branches: fractions of each run's steps at which a WSD cooldown branch ends (sets a
            ``wsd`` schedule; Hägele et al. 2024).
        merge_prefixes: train runs that differ only in length as one (:func:`scalinglab.ladder.merge.merge_prefixes`).
        formats, blocks, operands: a number-format grid on top of the design (:func:`precision_variants`):
            every designed run in every format x block x operand arm.
        note: entries added to the design's record (the ladder file's ``[ladder]`` table).
        parametrizations: the design repeated under each of these parametrizations (``sp``, ``mup``,
            ``mus``); ``tau`` and ``base_width`` come from ``overrides["parametrization"]`` and apply
            to the parametrizations that take them (``mus``: both; ``mup``: ``base_width``).
    """

    budgets: Sequence[float] | None = None
    sizes: int = 5
    tokens_per_param: float = 20.0
    span: float = 4.0
    params: Sequence[float] | None = None
    tokens: Sequence[float] | None = None
    sparsities: Sequence[float] | None = None
    lrs: Sequence[float] | None = None
    batches: Sequence[int] | None = None
    batch_keep: str = "tokens"
    lr_batch_rule: str = "none"
    rule: ShapeRule = ShapeRule()
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    wsd_branches: Sequence[float] | None = None
    merge_prefixes: bool = False
    formats: Sequence[str] | None = None
    blocks: Sequence[Any] | None = None
    operands: Sequence[str] | None = None
    note: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    parametrizations: Sequence[str] | None = None


@dataclasses.dataclass(frozen=True)
class Design:
    """A designed ladder: its runs (merged, with ``merge_prefixes``) and its record for the ladder
    file's ``[ladder]`` table (the design, its parameters, the shape rule's)."""

    runs: list[RunConfig]
    meta: dict[str, Any]


def _sub(overrides: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = overrides.get(key, {})
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else dict(value)  # type: ignore[arg-type]


def _listed(values: Sequence[Any] | None) -> list[Any] | None:
    return None if values is None else list(values)


def _per_parametrization(request: DesignRequest) -> Design:
    """The design once per parametrization of ``request.parametrizations``, runs concatenated."""
    names = list(request.parametrizations or [])
    if not names or any(not isinstance(n, str) or n not in PARAMETRIZATION_NAMES for n in names) \
            or len(set(names)) != len(names):
        raise ConfigError(invalid("The 'parametrizations' parameter", names,
                                  f"a non-empty list of distinct names from {PARAMETRIZATION_NAMES}"))
    given = request.overrides.get("parametrization", {})
    given = {"name": given} if isinstance(given, str) else _sub(request.overrides, "parametrization")
    runs: list[RunConfig] = []
    meta: dict[str, Any] = {}
    for name in names:
        takes = {"sp": (), "mup": ("base_width",), "mus": ("tau", "base_width")}[name]
        par = {"name": name, **{k: v for k, v in given.items() if k in takes}}
        one = make_design(dataclasses.replace(request, parametrizations=None,
                                              overrides={**request.overrides, "parametrization": par}))
        runs.extend(one.runs)
        meta = one.meta
    meta["parametrizations"] = names
    return Design(_dedupe(runs), meta)


def make_design(request: DesignRequest) -> Design:
    """The ladder ``request`` asks for (see :class:`DesignRequest`), every run's cooldown branches
    checked (:func:`check_branches`). Errors name the request's fields (``'budgets'``, ``'rule.width_step'``)."""
    q = request
    if q.parametrizations is not None:
        return _per_parametrization(q)
    overrides = dict(q.overrides)
    fractions = _listed(q.wsd_branches)
    if fractions is not None:
        overrides["schedule"] = {"name": "wsd", **_sub(overrides, "schedule"), "branches": fractions}
    budgets, params, tokens = _listed(q.budgets), _listed(q.params), _listed(q.tokens)
    lrs, batches, sparsities = _listed(q.lrs), _listed(q.batches), _listed(q.sparsities)
    meta: dict[str, Any]
    if sparsities is not None:
        if params is None or tokens is None:
            raise ConfigError("a sparsity grid needs 'params' (non-zero counts) and 'tokens' with 'sparsities'.")
        if budgets is not None or lrs is not None or batches is not None:
            raise ConfigError("'sparsities' makes a sparsity x N_nonzero x D grid: drop 'budgets', 'lrs' and "
                              "'batches'.")
        runs = grid_sparse(sparsities, params, tokens, rule=q.rule, **overrides)
        meta = {"design": "sparse", "sparsities": sparsities, "params": params, "tokens": tokens}
    elif lrs is not None or batches is not None:
        base = RunConfig.from_dict({k: v for k, v in overrides.items() if k in ("lr", "batch_tokens")})
        lrs, batches = lrs or [base.lr], batches or [base.batch_tokens]
        if budgets is None and (params is None or tokens is None):
            raise ConfigError("a learning-rate x batch grid needs 'budgets', or 'params' and 'tokens'.")
        runs = grid_lr_batch(lrs, batches, budgets=budgets, tokens_per_param=q.tokens_per_param,
                             params=None if budgets else params, tokens=None if budgets else tokens,
                             rule=q.rule, keep=q.batch_keep, lr_rule=q.lr_batch_rule, **overrides)
        meta = {"design": "lr_batch", "lrs": lrs, "batches": batches}
        if (q.batch_keep, q.lr_batch_rule) != ("tokens", "none"):
            meta.update(batch_keep=q.batch_keep, lr_batch_rule=q.lr_batch_rule, base_batch_tokens=base.batch_tokens)
        meta.update({"budgets": budgets, "tokens_per_param": q.tokens_per_param} if budgets else
                    {"params": params, "tokens": tokens})
    elif (q.batch_keep, q.lr_batch_rule) != ("tokens", "none"):
        raise ConfigError("'batch_keep' and 'lr_batch_rule' shape a batch sweep: give 'batches' with them.")
    elif params is not None or tokens is not None:
        if params is None or tokens is None:
            raise ConfigError("an N x D grid needs both 'params' and 'tokens'.")
        runs = grid_nd(params, tokens, rule=q.rule, **overrides)
        meta = {"design": "nd", "params": params, "tokens": tokens}
    elif budgets is not None:
        runs = isoflop(budgets, q.sizes, q.tokens_per_param, span=q.span, rule=q.rule, **overrides)
        meta = {"design": "isoflop", "budgets": budgets, "sizes": q.sizes, "tokens_per_param": q.tokens_per_param,
                "span": q.span}
    else:
        raise ConfigError("say what to design: 'budgets' (IsoFLOP profiles), 'params' and 'tokens' (N x D grid), "
                          "or 'lrs'/'batches' (learning-rate x batch grid).")
    meta.update(q.rule.record())
    if q.formats is not None or q.blocks is not None or q.operands is not None:
        runs = expand_precision(runs, precision_variants(_listed(q.formats), _listed(q.blocks), _listed(q.operands)))
        meta.update({k: list(v) for k, v in (("formats", q.formats), ("blocks", q.blocks), ("operands", q.operands))
                     if v is not None})
    if fractions is not None:
        meta["wsd_branches"] = fractions
    meta.update(q.note)
    if q.merge_prefixes:
        sched = runs[0].schedule
        if sched.name != "wsd" or not sched.warmup_steps or fractions is not None:
            raise ConfigError(invalid(
                "The 'merge_prefixes' parameter with schedule",
                f"{sched.name} (warmup_steps {sched.warmup_steps}, branches {list(sched.branches)})",
                "schedule.name = 'wsd' with 'schedule.warmup_steps' > 0 and no 'wsd_branches' (a run is a "
                "prefix of a longer one only with a fixed warmup)"))
        meta["merge_prefixes"] = True
        n_design = len(runs)
        runs = [m.run for m in merge_prefixes(runs)]
        meta["design_runs"] = n_design
    check_branches(runs)
    return Design(runs, meta)


def check_branches(runs: Sequence[RunConfig]) -> None:
    """Every run's cooldown branches fit its own steps (``schedules.branches``); the error names the run."""
    for r in runs:
        try:
            schedules.branches(r.schedule, r.lr, r.steps)
        except ConfigError as exc:
            raise ConfigError(f"run {r.name!r} ({r.steps} steps): {exc}") from None


__all__ = ["BATCH_KEEP", "LR_BATCH_RULES", "SUBCONFIGS", "Design", "batch_scaled_lr", "DesignRequest", "ShapeRule", "check_branches", "compute_optimal_params",
           "expand_precision", "grid_lr_batch", "grid_nd", "grid_sparse", "isoflop", "make_design",
           "precision_variants", "run_name",
           "sparse_shape", "width_scaled_lr"]
