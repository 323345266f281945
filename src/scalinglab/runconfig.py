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

    def __post_init__(self) -> None:
        check_name(self.name)
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
        self._check_dynamic_batch()

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
        ``branch_budgets``, ``noise_scale``, ``adaptive_batch_eta``, ``max_batch_tokens``; ``parametrization``
        unless ``sp``) enter the hash only when set, and ``schedule.power_a``/``power_b`` only for a 'power'
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
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        """Build from a dict (TOML table); unknown keys are errors that name the key."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(invalid("The run config key", unknown[0], f"one of {sorted(known)}"))
        d = dict(d)
        for key, sub in (("schedule", ScheduleConfig), ("sparsity", SparsityConfig)):
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
