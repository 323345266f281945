"""Run configuration: one frozen dataclass per run, loaded from TOML, stored with every run.

This module is pure Python (no torch): the ladder designer, the store and the executors read it; the
trainer (``ladder.train``) consumes it. Every field has a unit in its name or its comment.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError, invalid
from .numformats import CONVENTIONS, parse_format, parse_ptq

SCHEDULES = ("constant", "cosine", "wsd", "linear", "power")
SPARSITY_METHODS = ("gmp", "static", "nm")

#: a run name: it names the run's checkpoint file, so letters, digits and ``._+-`` only, starting with a
#: letter or digit, at most 200 characters, and no ``..`` (never a path: no ``/``, no absolute name)
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,199}")
NAME_EXPECTED = ("a run name of letters, digits and '._+-' (starting with a letter or digit, at most 200 "
                 "characters, no '..')")


#: the largest vocabulary a run may have (2**24 = 16,777,216 tokens): beyond it the embedding alone needs
#: gigabytes at any width a ladder trains, and BPE training on a ladder corpus cannot fill it
MAX_VOCAB = 2 ** 24
#: seeds are integers in [0, 2**63) (torch's generator takes 64 bits; NumPy's SeedSequence any int >= 0)
MAX_SEED = 2 ** 63
WSD_SHAPES = ("linear", "cosine", "sqrt")


#: the Power scheduler's coefficients of Shen et al. 2024 (``ladder.schedules.power``)
_POWER_DEFAULTS = {"power_a": 4.6, "power_b": -0.51}


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_number(field_name: str, v: object, lo: float, hi: float = math.inf, *, lo_open: bool = False,
                  hi_open: bool = False, expected: str = "") -> None:
    """A ConfigError naming ``field_name`` unless ``v`` is a finite int or float (not a bool) in the range."""
    ok = _is_number(v)
    if ok:
        x = float(v)  # type: ignore[arg-type]
        ok = (x > lo if lo_open else x >= lo) and (x < hi if hi_open else x <= hi)
    if not ok:
        if not expected:
            lo_s = "(" if lo_open else "["
            hi_s = ")" if hi_open or hi == math.inf else "]"
            expected = f"a finite number in {lo_s}{lo:g}, {'inf' if hi == math.inf else f'{hi:g}'}{hi_s}"
        raise ConfigError(invalid(f"The {field_name!r} field", v, expected))


def _check_str(field_name: str, v: object, choices: tuple[str, ...] | None = None) -> None:
    if not isinstance(v, str):
        raise ConfigError(invalid(f"The {field_name!r} field", v, "a string" if choices is None else
                                  f"one of {choices}"))
    if choices is not None and v not in choices:
        raise ConfigError(invalid(f"The {field_name!r} field", v, f"one of {choices}"))


def _check_int(field_name: str, v: object, lo: int, hi: int | None = None, expected: str = "") -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < lo or (hi is not None and v >= hi):
        raise ConfigError(invalid(f"The {field_name!r} field", v, expected or (
            f"an integer >= {lo}" + (f" and < {hi}" if hi is not None else ""))))


def check_name(name: object) -> None:
    """Raise a ConfigError unless ``name`` is empty (derived later) or a valid run name."""
    if not isinstance(name, str):
        raise ConfigError(invalid("The 'name' field", name, "a string"))
    if name and (not NAME_PATTERN.fullmatch(name) or ".." in name):
        raise ConfigError(invalid(f"The 'name' field of run {name!r}", name, NAME_EXPECTED))


@dataclass(frozen=True)
class ScheduleConfig:
    """Learning-rate schedule (see ``ladder.schedules``): all fractions are of the total steps."""

    name: str = "cosine"            # constant | cosine | wsd | linear (to zero)
    warmup_frac: float = 0.05       # linear warmup from 0 over this fraction of steps
    # linear warmup over this many updates instead, when > 0: the same warmup for every run of a ladder,
    # however long (short runs with a fractional warmup start too fast: Porian et al. 2024 scale it)
    warmup_steps: int = 0
    final_lr_frac: float = 0.1      # cosine / wsd floor, as a fraction of the peak lr
    decay_frac: float = 0.2         # wsd: fraction of steps in the final decay
    decay_shape: str = "linear"     # wsd decay shape: linear | cosine | sqrt
    # wsd: cooldown branches (Hägele et al. 2024): fractions of steps in (0, 1), increasing, at which a
    # branch off the stable phase *ends*, after decaying over decay_frac of its own length
    branches: tuple[float, ...] = ()
    # power (Shen et al. 2024, ``ladder.schedules.power``): lr = min(lr, power_a x batch_sequences x n^power_b),
    # n tokens seen; the paper's coefficients by default (they enter the digest only of a 'power' schedule)
    power_a: float = 4.6
    power_b: float = -0.51

    def __post_init__(self) -> None:
        _check_str("schedule.name", self.name, SCHEDULES)
        _check_number("schedule.power_a", self.power_a, 0.0, lo_open=True, expected="a positive finite number")
        _check_number("schedule.power_b", self.power_b, -10.0, 0.0, hi_open=True,
                      expected="a negative number in [-10, 0)")
        if self.name != "power":
            for key in ("power_a", "power_b"):
                if getattr(self, key) != _POWER_DEFAULTS[key]:
                    raise ConfigError(invalid(f"The 'schedule.{key}' field", getattr(self, key),
                                              f"its default {_POWER_DEFAULTS[key]} for schedule.name = "
                                              f"{self.name!r} (it sets the 'power' schedule)"))
        for key in ("warmup_frac", "final_lr_frac", "decay_frac"):
            _check_number(f"schedule.{key}", getattr(self, key), 0.0, 1.0, expected="a fraction in [0, 1]")
        _check_str("schedule.decay_shape", self.decay_shape, WSD_SHAPES)
        # a TOML or JSON list becomes a tuple (the config is frozen and hashable)
        w = self.warmup_steps
        if isinstance(w, bool) or not isinstance(w, int) or w < 0:
            raise ConfigError(invalid("The 'schedule.warmup_steps' field", w,
                                      "a non-negative integer (0: use warmup_frac)"))
        b = self.branches
        if isinstance(b, list):
            b = tuple(b)
            object.__setattr__(self, "branches", b)
        expected = "a list of fractions in (0, 1), strictly increasing"
        if not isinstance(b, tuple):
            raise ConfigError(invalid("The 'schedule.branches' field", b, expected))
        for f in b:
            if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0.0 < f < 1.0:
                raise ConfigError(invalid("The 'schedule.branches' field", list(b), expected))
        if any(b1 >= b2 for b1, b2 in itertools.pairwise(b)):
            raise ConfigError(invalid("The 'schedule.branches' field", list(b), expected))
        if b and self.name != "wsd":
            raise ConfigError(invalid("The 'schedule.branches' field", list(b),
                                      f"empty for schedule.name = {self.name!r} (cooldown branches leave the "
                                      "stable phase of a 'wsd' schedule)"))


@dataclass(frozen=True)
class SparsityConfig:
    """Weight sparsity of the non-embedding linear layers (Frantar et al. 2023); 0 means dense."""

    target: float = 0.0             # final sparsity S in [0, 1)
    method: str = "gmp"             # gmp (gradual magnitude pruning) | static | nm
    start_frac: float = 0.25        # gmp: pruning starts at this fraction of training
    end_frac: float = 0.75          # gmp: and reaches the target here
    update_every: int = 10          # steps between mask updates
    n: int = 0                      # n:m pattern (n non-zero of every m); 0 for unstructured
    m: int = 0
    scope: str = "layer"            # layer (uniform per layer) | global magnitude ranking
    dense_finetune_frac: float = 0.0  # SPDF: the last fraction of steps trains dense (masks lifted)
    finetune_corpus: str = ""       # SPDF: corpus of the dense phase; '' = the run's corpus
    ift: bool = False               # Sparse-IFT: widen d_model by 1/sqrt(1-S) (iso non-zero FLOPs)

    def __post_init__(self) -> None:
        # the target's range is checked by RunConfig; its type here (the n:m check below computes with it)
        _check_number("sparsity.target", self.target, 0.0, 1.0, hi_open=True, expected="a fraction in [0, 1)")
        for f in ("start_frac", "end_frac", "dense_finetune_frac"):
            _check_number(f"sparsity.{f}", getattr(self, f), 0.0, 1.0, expected="a fraction in [0, 1]")
        for f in ("n", "m"):
            _check_int(f"sparsity.{f}", getattr(self, f), 0, expected="a non-negative integer")
        _check_str("sparsity.finetune_corpus", self.finetune_corpus)
        if self.method not in SPARSITY_METHODS:
            raise ConfigError(invalid("The 'sparsity.method' field", self.method,
                                      f"one of {SPARSITY_METHODS}"))
        if self.scope not in ("layer", "global"):
            raise ConfigError(invalid("The 'sparsity.scope' field", self.scope, "one of ('layer', 'global')"))
        if not (0.0 <= self.start_frac <= self.end_frac <= 1.0):
            window = (self.start_frac, self.end_frac)
            raise ConfigError(invalid("The 'sparsity' fields (start_frac, end_frac)", window,
                                      "fractions with 0 <= start <= end <= 1"))
        k = self.update_every
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ConfigError(invalid("The 'sparsity.update_every' field", k, "a positive integer"))
        if self.n or self.m or self.method == "nm":
            if not (isinstance(self.n, int) and isinstance(self.m, int) and 0 < self.n < self.m):
                raise ConfigError(invalid("The 'sparsity' fields (n, m)", (self.n, self.m),
                                          "integers with 0 < n < m (n non-zero weights of every m)"))
            nm_sparsity = 1.0 - self.n / self.m
            if abs(self.target - nm_sparsity) > 1e-9:
                raise ConfigError(invalid("The 'sparsity.target' field", self.target,
                                          f"1 - n/m = {nm_sparsity} for the {self.n}:{self.m} pattern"))
        if not (0.0 <= self.dense_finetune_frac < 1.0):
            raise ConfigError(invalid("The 'sparsity.dense_finetune_frac' field", self.dense_finetune_frac,
                                      "a fraction in [0, 1)"))
        if self.method == "gmp" and self.end_frac > 1.0 - self.dense_finetune_frac:
            raise ConfigError(invalid("The 'sparsity.end_frac' field", self.end_frac,
                                      f"at most 1 - dense_finetune_frac = {1.0 - self.dense_finetune_frac} "
                                      "(pruning ends before the dense fine-tuning phase)"))
        if self.finetune_corpus and not self.dense_finetune_frac:
            raise ConfigError(invalid("The 'sparsity.finetune_corpus' field", self.finetune_corpus,
                                      "empty when dense_finetune_frac is 0 (there is no fine-tuning phase)"))
        if not isinstance(self.ift, bool):
            raise ConfigError(invalid("The 'sparsity.ift' field", self.ift, "a boolean"))


# -- parametrization (sp | mup | mus) ----------------------------------------------------------------
PARAMETRIZATION_NAMES = ("sp", "mup", "mus")
#: the width at which mup and mus runs get their hyperparameters unscaled, when not given
DEFAULT_BASE_WIDTH = 64


@dataclass(frozen=True)
class ParametrizationConfig:
    """How init, multipliers, the block and per-layer learning rates follow the width (``ladder.parametrization``).

    ``sp``: standard practice (GPT-2 init, pre-norm); ``mup``: muP by hand (Yang et al. 2022);
    ``mus``: muNit Scaling (Narayan et al. 2025), which needs ``tau``. ``base_width`` (mup, mus) is the
    d_model at which every multiplier is 1 (0: :data:`DEFAULT_BASE_WIDTH`); sp takes neither.
    A bare string (``parametrization = "mus"`` in TOML, ``--set parametrization=mus``) sets ``name``.
    """

    name: str = "sp"
    tau: float = 0.0                # mus: residual branch weight, x <- sqrt(1-tau) x + sqrt(tau) LN(f(x))
    base_width: int = 0             # mup, mus: the reference d_model, elements (0: DEFAULT_BASE_WIDTH)

    def __post_init__(self) -> None:
        _check_str("parametrization.name", self.name, PARAMETRIZATION_NAMES)
        mus = self.name == "mus"
        expected = ("a residual fraction in (0, 1) for 'mus' (0.4 at 4 layers in Narayan et al. 2025)" if mus
                    else f"0 for {self.name!r} (only 'mus' has a residual tau)")
        _check_number("parametrization.tau", self.tau, 0.0, 1.0, lo_open=mus, hi_open=True, expected=expected)
        if not mus and self.tau:
            raise ConfigError(invalid("The 'parametrization.tau' field", self.tau, expected))
        sp = self.name == "sp"
        _check_int("parametrization.base_width", self.base_width, 0, 1 if sp else None,
                   expected="0 ('sp' has no base width)" if sp else "a positive width in elements (0: the default)")
        if not sp and not self.base_width:
            object.__setattr__(self, "base_width", DEFAULT_BASE_WIDTH)
        object.__setattr__(self, "tau", float(self.tau))


#: the six GEMM operands of a linear layer y = x W^T (Sun et al. 2025, arXiv 2501.02423, Fig. 2):
#: P1 x (forward), P2 W (forward), P3 dy (for dx), P4 W (for dx), P5 dy (for dW), P6 x (for dW)
OPERANDS = ("P1", "P2", "P3", "P4", "P5", "P6")
#: the role (and so the format) of each operand: activations, weights or gradients
OPERAND_ROLES = {"P1": "activations", "P2": "weights", "P3": "gradients", "P4": "weights", "P5": "gradients",
                 "P6": "activations"}
PRECISION_SCALINGS = ("none", "tensor", "channel", "block")
PRECISION_ROUNDINGS = ("nearest", "stochastic")
#: named recipes (``precision.recipe``): the values of the fields a config leaves unset
PRECISION_RECIPES: dict[str, dict[str, Any]] = {
    # unit-scaled FP8 (Narayan et al. 2025, arXiv 2502.05967): E4M3 weights and activations, E5M2
    # gradients in every hidden GEMM, clipped to the format's range, no dynamic scale factors; one
    # static loss scale, the batch in tokens (the gradients of a sum- rather than a mean-reduced loss:
    # with loss scale 1, 50-90% of the E5M2 gradients flush to zero and the run ends 8% above fp32,
    # benchmarks/fp8_training.py)
    "fp8-static": {"weights": "E4M3", "activations": "E4M3", "gradients": "E5M2", "operands": OPERANDS,
                   "scaling": "none", "convention": "ocp", "loss_scale_batch": True},
    # TransformerEngine-style: the same formats with a per-tensor scale from the current absmax
    "fp8-dynamic": {"weights": "E4M3", "activations": "E4M3", "gradients": "E5M2", "operands": OPERANDS,
                    "scaling": "tensor", "convention": "ocp"},
    # Sun et al. 2025: weights in both passes and the activation saved for dW (P2, P4, P6), absmax
    # scales per channel (set scaling = 'block' and block = B for blocks), every code finite
    "sun": {"weights": "E4M3", "activations": "E4M3", "gradients": "fp32", "operands": ("P2", "P4", "P6"),
            "scaling": "channel", "convention": "finite"},
}


@dataclass(frozen=True)
class PrecisionConfig:
    """Emulated number formats of the hidden linear layers (``ladder.precision``); all unset: fp32.

    An empty field takes the recipe's value (:data:`PRECISION_RECIPES`), else its default: formats
    ``fp32``, operands every one whose role has a format other than fp32, scaling ``none`` (``block``
    when ``block`` is set), rounding ``nearest``, convention ``ocp``, scales ``fp32``, loss scale 1.
    :meth:`resolved` gives the values in force.
    """

    recipe: str = ""                # '' | fp8-static | fp8-dynamic | sun
    weights: str = ""               # format of P2, P4 (e.g. E4M3, E2M1, int4, fp32)
    activations: str = ""           # format of P1, P6
    gradients: str = ""             # format of P3, P5
    operands: tuple[str, ...] = ()  # which of P1..P6 are quantised
    scaling: str = ""               # none | tensor | channel | block (absmax scales)
    block: int = 0                  # elements per scale along the last (contraction) dimension
    rounding: str = ""              # nearest | stochastic
    convention: str = ""            # ocp | finite | ieee
    scale_format: str = ""          # fp32 | pow2
    # the gradients reaching the quantiser are multiplied by this and divided after it (a static loss
    # scale: what scaling the loss does to the quantised gradients; the update is unchanged)
    loss_scale: float = 0.0

    def __post_init__(self) -> None:
        for key in ("recipe", "weights", "activations", "gradients", "scaling", "rounding", "convention",
                    "scale_format"):
            _check_str(f"precision.{key}", getattr(self, key))
        if self.recipe and self.recipe not in PRECISION_RECIPES:
            raise ConfigError(invalid("The 'precision.recipe' field", self.recipe,
                                      f"one of {tuple(PRECISION_RECIPES)} (or empty)"))
        ops = self.operands
        if isinstance(ops, (list, str)):
            ops = tuple([ops] if isinstance(ops, str) else ops)
            object.__setattr__(self, "operands", ops)
        if not isinstance(ops, tuple) or any(o not in OPERANDS for o in ops) or len(set(ops)) != len(ops):
            raise ConfigError(invalid("The 'precision.operands' field", list(ops) if isinstance(ops, tuple) else ops,
                                      f"distinct operand names of {OPERANDS}"))
        _check_int("precision.block", self.block, 0, expected="a non-negative number of elements (0: none)")
        _check_number("precision.loss_scale", self.loss_scale, 0.0, expected="a positive number (0: unset, 1)")
        r = self.resolved()
        for key, choices in (("scaling", PRECISION_SCALINGS), ("rounding", PRECISION_ROUNDINGS),
                             ("convention", CONVENTIONS), ("scale_format", ("fp32", "pow2"))):
            _check_str(f"precision.{key}", r[key], choices)
        for role in ("weights", "activations", "gradients"):
            parse_format(r[role], r["convention"], what=f"The 'precision.{role}' field")
        if r["scaling"] == "block" and r["block"] < 1:
            raise ConfigError(invalid("The 'precision.block' field", self.block,
                                      "a positive number of elements with scaling = 'block'"))
        if r["block"] and r["scaling"] != "block":
            raise ConfigError(invalid("The 'precision.block' field", self.block,
                                      f"0 with scaling = {r['scaling']!r} (a block needs scaling = 'block')"))

    def resolved(self) -> dict[str, Any]:
        """The values in force: this config's, else the recipe's, else the defaults (class docstring)."""
        rec = PRECISION_RECIPES.get(self.recipe, {})
        out: dict[str, Any] = {}
        for role in ("weights", "activations", "gradients"):
            out[role] = getattr(self, role) or rec.get(role, "fp32")
        ops = self.operands or rec.get("operands") or tuple(
            o for o in OPERANDS if out[OPERAND_ROLES[o]].strip().lower() not in ("fp32", "float32"))
        out["operands"] = tuple(ops)
        out["block"] = self.block
        out["scaling"] = self.scaling or rec.get("scaling") or ("block" if self.block else "none")
        out["rounding"] = self.rounding or rec.get("rounding", "nearest")
        out["convention"] = self.convention or rec.get("convention", "ocp")
        out["scale_format"] = self.scale_format or rec.get("scale_format", "fp32")
        out["loss_scale"] = float(self.loss_scale or rec.get("loss_scale", 1.0))
        # the recipe's static loss scale is the run's batch in tokens (set by the trainer), unless given
        out["loss_scale_batch"] = not self.loss_scale and bool(rec.get("loss_scale_batch", False))
        return out

    @property
    def active(self) -> bool:
        """Whether any operand is quantised to a format other than fp32."""
        r = self.resolved()
        return any(parse_format(r[OPERAND_ROLES[o]], r["convention"]).kind != "none" for o in r["operands"])


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines one training run (and so its curve, given the machine)."""

    name: str = ""                  # deterministic run name; derived from the fields when empty
    n_layer: int = 2
    d_model: int = 64
    n_head: int = 2
    context: int = 128              # tokens per sequence
    vocab: int = 256                # 256 = byte-level; larger = BPE trained to this size
    corpus: str = "default"         # 'default' (embedded), or a path (text, dir, jsonl, parquet, .bin)
    tokens: int = 1_000_000         # training tokens D (target; rounded to whole steps)
    batch_tokens: int = 4096        # tokens per optimizer step (context x sequences)
    micro_batch_tokens: int = 0     # tokens per forward pass; 0 = the whole batch (no accumulation)
    lr: float = 3e-3                # peak learning rate
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    sparsity: SparsityConfig = field(default_factory=SparsityConfig)
    parametrization: ParametrizationConfig = field(default_factory=ParametrizationConfig)
    dtype: str = "auto"             # auto | float32 | bfloat16 (autocast)
    evals: int = 12                 # number of log-spaced evaluation points (plus the last step)
    eval_tokens: int = 65_536       # held-out tokens per evaluation
    seed: int = 0
    budget_flops: float = 0.0       # the IsoFLOP budget this run belongs to (0 if none), FLOPs
    # a merged run (ladder.merge): the IsoFLOP budget of each cooldown branch's point, in the order of
    # schedule.branches (empty: the branches carry budget_flops)
    branch_budgets: tuple[float, ...] = ()
    group: str = ""                 # free label (e.g. 'isoflop', 'grid')
    # the gradient noise scale B_simple (McCandlish et al. 2018, App. A) at every point; needs two or more
    # micro-batches per step (``ladder.noise.NoiseScaleFeature``)
    noise_scale: bool = False
    # adaptive batch by the norm test (Byrd et al. 2012; Lau et al. 2024): > 0 grows the batch, in whole
    # micro-batches up to max_batch_tokens, when the gradient variance says it is too small (``ladder.noise``)
    adaptive_batch_eta: float = 0.0
    max_batch_tokens: int = 0       # the largest batch the adaptive batch may reach, tokens (0: no growth)
    # emulated number formats of the hidden linear layers (default: none, fp32)
    precision: PrecisionConfig = field(default_factory=PrecisionConfig)
    # post-training quantisation settings measured at every evaluation ('int4', 'int3_g32', 'E2M1_g32':
    # numformats.parse_ptq); each adds the point metric loss_ptq_<setting>
    ptq: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_name(self.name)
        if not isinstance(self.precision, PrecisionConfig):
            raise ConfigError(invalid("The 'precision' field", self.precision, "a table of precision settings"))
        ptq = self.ptq
        if isinstance(ptq, (list, str)):
            ptq = tuple([ptq] if isinstance(ptq, str) else ptq)
        if not isinstance(ptq, tuple):
            raise ConfigError(invalid("The 'ptq' field", ptq, "a list of PTQ settings such as ['int4', 'int3_g32']"))
        names = [parse_ptq(p).name for p in ptq]
        if len(set(names)) != len(names):
            raise ConfigError(invalid("The 'ptq' field", list(ptq), "distinct PTQ settings"))
        object.__setattr__(self, "ptq", tuple(ptq))
        if not isinstance(self.schedule, ScheduleConfig):
            raise ConfigError(invalid("The 'schedule' field", self.schedule, "a table of schedule settings"))
        if not isinstance(self.sparsity, SparsityConfig):
            raise ConfigError(invalid("The 'sparsity' field", self.sparsity, "a table of sparsity settings"))
        if isinstance(self.parametrization, str):     # "mus": the name alone
            object.__setattr__(self, "parametrization", ParametrizationConfig(name=self.parametrization))
        if not isinstance(self.parametrization, ParametrizationConfig):
            raise ConfigError(invalid("The 'parametrization' field", self.parametrization,
                                      f"one of {PARAMETRIZATION_NAMES} or a table (name, tau, base_width)"))
        for f in ("n_layer", "d_model", "n_head", "context", "vocab", "tokens", "batch_tokens", "evals",
                  "eval_tokens"):
            v = getattr(self, f)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ConfigError(invalid(f"The {f!r} field of run {self.name or '(unnamed)'}", v,
                                          "a positive integer"))
        if self.vocab > MAX_VOCAB:
            raise ConfigError(invalid("The 'vocab' field", self.vocab,
                                      f"at most {MAX_VOCAB:,} (2**24) tokens"))
        _check_int("micro_batch_tokens", self.micro_batch_tokens, 0, expected="a non-negative integer")
        _check_number("lr", self.lr, 0.0, lo_open=True, expected="a positive finite number")
        _check_number("weight_decay", self.weight_decay, 0.0, expected="a non-negative finite number")
        _check_number("beta1", self.beta1, 0.0, 1.0, hi_open=True, expected="a number in [0, 1)")
        _check_number("beta2", self.beta2, 0.0, 1.0, hi_open=True, expected="a number in [0, 1)")
        _check_number("grad_clip", self.grad_clip, 0.0, expected="a non-negative finite number (0: no clipping)")
        _check_number("budget_flops", self.budget_flops, 0.0, expected="a non-negative finite number of FLOPs")
        _check_int("seed", self.seed, 0, MAX_SEED, expected="an integer in [0, 2**63)")
        if not isinstance(self.corpus, str) or not self.corpus:
            raise ConfigError(invalid("The 'corpus' field", self.corpus,
                                      "'default', 'python-docs' or a path (a non-empty string)"))
        _check_str("group", self.group)
        if self.d_model % self.n_head:
            raise ConfigError(invalid("The 'd_model' field", self.d_model,
                                      f"a multiple of n_head = {self.n_head}"))
        if self.batch_tokens % self.context:
            raise ConfigError(invalid("The 'batch_tokens' field", self.batch_tokens,
                                      f"a multiple of context = {self.context}"))
        mb = self.micro_batch_tokens
        if mb < 0 or (mb and (mb % self.context or self.batch_tokens % mb)):
            raise ConfigError(invalid("The 'micro_batch_tokens' field", mb,
                                      "0 or a multiple of context that divides batch_tokens"))
        if not (self.lr > 0):
            raise ConfigError(invalid("The 'lr' field", self.lr, "a positive number"))
        if self.schedule.name not in SCHEDULES:
            raise ConfigError(invalid("The 'schedule.name' field", self.schedule.name, f"one of {SCHEDULES}"))
        if not (0 <= self.sparsity.target < 1):
            raise ConfigError(invalid("The 'sparsity.target' field", self.sparsity.target, "a fraction in [0, 1)"))
        if self.dtype not in ("auto", "float32", "bfloat16"):
            raise ConfigError(invalid("The 'dtype' field", self.dtype, "one of 'auto', 'float32', 'bfloat16'"))
        if self.tokens < self.batch_tokens:
            raise ConfigError(invalid("The 'tokens' field", self.tokens,
                                      f"at least one batch ({self.batch_tokens} tokens)"))
        bb = self.branch_budgets
        expected = f"{len(self.schedule.branches)} positive FLOP budgets, one per schedule.branches entry, or none"
        if not isinstance(bb, (list, tuple)):
            raise ConfigError(invalid("The 'branch_budgets' field", bb, expected))
        if bb and (len(bb) != len(self.schedule.branches) or any(
                not _is_number(x) or not x > 0 for x in bb)):
            raise ConfigError(invalid("The 'branch_budgets' field", list(bb), expected))
        object.__setattr__(self, "branch_budgets", tuple(float(x) for x in bb))
        rp = self.precision.resolved()
        groups = [g for g in (parse_ptq(s).group for s in self.ptq) if g]
        if rp["block"] or groups:
            d, width = self._built_width()
            if rp["block"] and d % rp["block"]:
                raise ConfigError(invalid("The 'precision.block' field", rp["block"],
                                          f"a divisor of {width} (blocks run along each linear "
                                          "layer's input dimension)"))
            for s in self.ptq:
                g = parse_ptq(s).group
                if g and d % g:
                    raise ConfigError(invalid("The 'ptq' entry", s, f"a group size dividing {width}"))
        self._check_dynamic_batch()

    def _built_width(self) -> tuple[int, str]:
        """The d_model the trainer builds (Sparse-IFT widens it: ``accounting.model_shape``) and its
        description for a message: a quantiser block or a PTQ group must divide that width, not only
        the configured one, or the run would fail when it starts."""
        if not (self.sparsity.ift and self.sparsity.target > 0):
            return self.d_model, f"d_model = {self.d_model}"
        from .accounting import model_shape  # accounting imports this module

        d = model_shape(self)["d_model"]
        return d, (f"the Sparse-IFT width d_model = {d} (d_model {self.d_model} widened at sparsity.target "
                   f"{self.sparsity.target:g})")

    def _check_dynamic_batch(self) -> None:
        """The noise-scale and adaptive-batch fields (both need two or more micro-batches per step)."""
        if not isinstance(self.noise_scale, bool):
            raise ConfigError(invalid("The 'noise_scale' field", self.noise_scale, "a boolean"))
        _check_number("adaptive_batch_eta", self.adaptive_batch_eta, 0.0,
                      expected="a non-negative finite number (0: a fixed batch)")
        _check_int("max_batch_tokens", self.max_batch_tokens, 0, expected="a non-negative integer")
        mb = self.micro_batch_tokens
        n_micro = self.batch_tokens // mb if mb else 1
        for key, on in (("noise_scale", self.noise_scale), ("adaptive_batch_eta", self.adaptive_batch_eta > 0)):
            if on and n_micro < 2:
                raise ConfigError(invalid(f"The {key!r} field with micro_batch_tokens", mb,
                                          f"a micro-batch of at most half of batch_tokens = {self.batch_tokens} "
                                          "(the estimate compares two or more micro-batches per step)"))
        mx = self.max_batch_tokens
        if self.adaptive_batch_eta > 0:
            if mx <= self.batch_tokens or mx % mb:
                raise ConfigError(invalid("The 'max_batch_tokens' field", mx,
                                          f"a multiple of micro_batch_tokens = {mb} above batch_tokens = "
                                          f"{self.batch_tokens} (the adaptive batch grows up to it)"))
            if self.schedule.name == "power":
                raise ConfigError(invalid("The 'adaptive_batch_eta' field", self.adaptive_batch_eta,
                                          "0 with schedule.name = 'power' (its learning rate follows a fixed batch)"))
        elif mx:
            raise ConfigError(invalid("The 'max_batch_tokens' field", mx,
                                      "0 when adaptive_batch_eta is 0 (there is no adaptive batch)"))

    @property
    def steps(self) -> int:
        """Optimizer steps: tokens rounded down to whole batches."""
        return self.tokens // self.batch_tokens

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def digest(self) -> str:
        """A short hash of every field but the name: equal configs give equal digests.

        Fields added after stores existed (``schedule.branches``, ``schedule.warmup_steps``,
        ``branch_budgets``, ``noise_scale``, ``adaptive_batch_eta``, ``max_batch_tokens``, ``precision``,
        ``ptq``; ``parametrization`` unless ``sp``) enter the hash only when set, and ``schedule.power_a``/``power_b`` only for a 'power'
        schedule, so a config that does not use them keeps the digest (and the run name) it always had.
        """
        d = self.to_dict()
        d.pop("name")
        if not d["branch_budgets"]:
            del d["branch_budgets"]
        for key in ("noise_scale", "adaptive_batch_eta", "max_batch_tokens"):
            if not d[key]:
                del d[key]
        if d["schedule"]["name"] != "power":
            for key in _POWER_DEFAULTS:
                del d["schedule"][key]
        for key in ("branches", "warmup_steps"):
            if not d["schedule"][key]:
                del d["schedule"][key]
        if d["parametrization"] == dataclasses.asdict(ParametrizationConfig()):
            del d["parametrization"]
        if d["precision"] == dataclasses.asdict(PrecisionConfig()):
            del d["precision"]
        if not d["ptq"]:
            del d["ptq"]
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        """Build from a dict (TOML table); unknown keys are errors that name the key."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(invalid("The run config key", unknown[0], f"one of {sorted(known)}"))
        d = dict(d)
        for key, sub in (("schedule", ScheduleConfig), ("sparsity", SparsityConfig),
                         ("precision", PrecisionConfig)):
            if key in d and isinstance(d[key], dict):
                sk = {f.name for f in dataclasses.fields(sub)}
                bad = sorted(set(d[key]) - sk)
                if bad:
                    raise ConfigError(invalid(f"The {key} config key", bad[0], f"one of {sorted(sk)}"))
                d[key] = sub(**d[key])
        if isinstance(d.get("parametrization"), dict):
            pk = {f.name for f in dataclasses.fields(ParametrizationConfig)}
            bad = sorted(set(d["parametrization"]) - pk)
            if bad:
                raise ConfigError(invalid("The parametrization config key", bad[0], f"one of {sorted(pk)}"))
            d["parametrization"] = ParametrizationConfig(**d["parametrization"])
        try:
            return cls(**d)
        except TypeError as exc:
            raise ConfigError(f"invalid run config: {exc}") from None
