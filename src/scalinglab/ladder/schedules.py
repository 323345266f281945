"""Learning-rate schedules as pure functions, after optax: a factory validates its arguments once and
returns ``schedule(step) -> lr``.

Conventions shared by every schedule:

* ``step`` counts optimizer updates from 0: ``schedule(s)`` is the learning rate of update s + 1.
  Steps past ``total_steps`` keep the final value (as optax schedules do past ``transition_steps``).
* Linear warmup over ``warmup_steps``: ``lr(s) = peak * (s + 1) / warmup_steps`` for s < warmup_steps,
  so the first update already has a non-zero rate and update ``warmup_steps`` reaches the peak.
* After warmup the decay runs over the remaining ``total_steps - warmup_steps`` updates with
  progress ``p = (s - warmup_steps) / (total_steps - warmup_steps)`` in [0, 1); it reaches its end
  value at ``s = total_steps`` (one past the last update).

WSD cooldown branches (Hägele et al. 2024, "Scaling Laws and Compute-Optimal Training Beyond Fixed
Training Durations", Sec. 4) are described by :func:`branches`: one warmup-stable run, and off its
stable phase a branch per ``schedule.branches`` fraction that decays to the floor at its own end
step, so each gives a fully annealed loss at its own token count.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ConfigError, invalid
from ..runconfig import RunConfig, ScheduleConfig

Schedule = Callable[[int], float]

WSD_SHAPES = ("linear", "cosine", "sqrt")


def _check(peak: float, total_steps: int, warmup_steps: int, floor: float = 0.0) -> None:
    if not (isinstance(peak, (int, float)) and math.isfinite(peak) and peak > 0):
        raise ConfigError(invalid("The 'peak' learning rate", peak, "a positive number"))
    if not isinstance(total_steps, int) or total_steps <= 0:
        raise ConfigError(invalid("The 'total_steps' parameter", total_steps, "a positive integer"))
    if not isinstance(warmup_steps, int) or not 0 <= warmup_steps <= total_steps:
        raise ConfigError(invalid("The 'warmup_steps' parameter", warmup_steps,
                                  f"an integer in [0, total_steps = {total_steps}]"))
    if not 0.0 <= floor <= 1.0:
        raise ConfigError(invalid("The 'floor' parameter", floor, "a fraction of the peak in [0, 1]"))


def _decay(shape: str, p: float) -> float:
    """Decay factor from 1 at p = 0 to 0 at p = 1."""
    p = min(max(p, 0.0), 1.0)
    if shape == "linear":
        return 1.0 - p
    if shape == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * p))
    return 1.0 - math.sqrt(p)  # "sqrt": the 1 - sqrt cooldown of Hägele et al. 2024


def _decay_start(total_steps: int, warmup_steps: int, decay_steps: int, shape: str) -> int:
    """The first step of a final decay of ``decay_steps`` updates (checked to fit after the warmup)."""
    room = total_steps - warmup_steps
    if not isinstance(decay_steps, int) or not 0 <= decay_steps <= room:
        raise ConfigError(invalid("The 'decay_steps' parameter", decay_steps,
                                  f"an integer in [0, total_steps - warmup_steps = {room}]"))
    if shape not in WSD_SHAPES:
        raise ConfigError(invalid("The 'shape' parameter", shape, f"one of {WSD_SHAPES}"))
    return total_steps - decay_steps


def constant(peak: float, total_steps: int, warmup_steps: int = 0) -> Schedule:
    """Linear warmup, then ``peak`` for the rest of training."""
    _check(peak, total_steps, warmup_steps)

    def schedule(step: int) -> float:
        if step < warmup_steps:
            return peak * (step + 1) / warmup_steps
        return float(peak)

    return schedule


def cosine(peak: float, total_steps: int, warmup_steps: int = 0, floor: float = 0.1) -> Schedule:
    """Warmup, then half a cosine from ``peak`` to ``floor * peak`` (Loshchilov & Hutter 2017).

    .. math:: \\eta(p) = \\eta_\\min + (\\eta_\\text{peak} - \\eta_\\min) \\tfrac12 (1 + \\cos \\pi p)
    """
    _check(peak, total_steps, warmup_steps, floor)
    decay_steps = total_steps - warmup_steps

    def schedule(step: int) -> float:
        if step < warmup_steps:
            return peak * (step + 1) / warmup_steps
        p = (step - warmup_steps) / decay_steps if decay_steps else 1.0
        return peak * (floor + (1.0 - floor) * _decay("cosine", p))

    return schedule


def linear(peak: float, total_steps: int, warmup_steps: int = 0) -> Schedule:
    """Warmup, then a straight line from ``peak`` to zero at ``total_steps``."""
    _check(peak, total_steps, warmup_steps)
    decay_steps = total_steps - warmup_steps

    def schedule(step: int) -> float:
        if step < warmup_steps:
            return peak * (step + 1) / warmup_steps
        p = (step - warmup_steps) / decay_steps if decay_steps else 1.0
        return peak * _decay("linear", p)

    return schedule


def wsd(peak: float, total_steps: int, warmup_steps: int = 0, decay_steps: int = 0, floor: float = 0.0,
        shape: str = "linear") -> Schedule:
    """Warmup-stable-decay (Hu et al. 2024, MiniCPM; Hägele et al. 2024): warmup, ``peak`` until the
    last ``decay_steps`` updates, then a decay of the given shape (linear, cosine or 1 - sqrt) to
    ``floor * peak`` at ``total_steps``, with progress ``p = (s - (total - decay)) / decay``.
    """
    _check(peak, total_steps, warmup_steps, floor)
    decay_start = _decay_start(total_steps, warmup_steps, decay_steps, shape)

    def schedule(step: int) -> float:
        if step < warmup_steps:
            return peak * (step + 1) / warmup_steps
        if step < decay_start:
            return float(peak)
        p = (step - decay_start) / decay_steps
        return peak * (floor + (1.0 - floor) * _decay(shape, p))

    return schedule


#: the Power scheduler's coefficients (Shen et al. 2024, arXiv 2408.13359, Sec. 4, with muP): the optimal
#: learning rate of a WSD run is ``a x batch x n^b``, batch in sequences, n in tokens; see :func:`power`
POWER_A, POWER_B = 4.6, -0.51


def power(peak: float, total_steps: int, *, batch_sequences: int, tokens_per_step: int, a: float = POWER_A,
          b: float = POWER_B, warmup_steps: int = 0, decay_steps: int = 0, floor: float = 0.0,
          shape: str = "linear") -> Schedule:
    """The Power scheduler (Shen et al. 2024, "Power Scheduler: A Batch Size and Token Number Agnostic
    Learning Rate Scheduler", arXiv 2408.13359): warmup, a power-law phase, a final decay.

    ``eta_power(s) = min(peak, a x beta x n_s^b)`` with ``n_s = (s + 1) x tokens_per_step``.

    Units (the paper's convention): ``beta = batch_sequences`` is the batch size in **sequences**
    (samples) and ``n`` the **tokens** trained so far; ``a = 4.6`` and ``b = -0.51`` are the paper's
    fitted values (with muP; as catalogued in ``../shared/LAWS.md`` 12e, where the body's exact
    figures are marked unverified). IBM's open implementation (``dolomite-engine``,
    ``PowerScheduler``) computes the same ``min(lr_max, a' (steps x c)^b)`` with the batch folded into
    ``a'`` and ``c`` tokens per step. ``n_s`` counts the tokens seen *after* update ``s + 1`` so the
    first update has a finite rate. Because beta counts sequences, the same ``a`` at a shorter context
    gives a proportionally larger rate for the same batch in tokens: to keep the paper's rate per
    token of batch, scale ``a`` by ``context / T_paper`` (``T_paper`` the paper's sequence length).
    The peak ``lr`` of the run is ``eta_max``.

    Phases: linear warmup over ``warmup_steps`` to the power value at the warmup's end,
    ``lr(s) = eta_power(W - 1) (s + 1) / W``; then ``eta_power(s)``; over the last ``decay_steps``
    updates a decay of ``shape`` from ``eta_power`` at the decay's start to ``floor`` times it.
    """
    _check(peak, total_steps, warmup_steps, floor)
    for key, v in (("batch_sequences", batch_sequences), ("tokens_per_step", tokens_per_step)):
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ConfigError(invalid(f"The {key!r} parameter", v, "a positive integer"))
    if not (isinstance(a, (int, float)) and math.isfinite(a) and a > 0):
        raise ConfigError(invalid("The 'schedule.power_a' field", a, "a positive finite number"))
    if not (isinstance(b, (int, float)) and math.isfinite(b) and b < 0):
        raise ConfigError(invalid("The 'schedule.power_b' field", b, "a negative finite number"))
    decay_start = _decay_start(total_steps, warmup_steps, decay_steps, shape)

    def level(step: int) -> float:
        return min(float(peak), float(a * batch_sequences * ((step + 1) * tokens_per_step) ** b))

    def schedule(step: int) -> float:
        if step < warmup_steps:
            return level(warmup_steps - 1) * (step + 1) / warmup_steps
        if step < decay_start:
            return level(step)
        p = (step - decay_start) / decay_steps
        return level(decay_start) * (floor + (1.0 - floor) * _decay(shape, p))

    return schedule


def warmup_of(cfg: ScheduleConfig, total_steps: int) -> int:
    """The warmup of a run, in updates: ``schedule.warmup_steps`` when set, else
    ``round(warmup_frac x total_steps)``. A fixed warmup longer than the run is a ConfigError."""
    if cfg.warmup_steps:
        if cfg.warmup_steps > total_steps:
            raise ConfigError(invalid("The 'schedule.warmup_steps' field", cfg.warmup_steps,
                                      f"at most the run's {total_steps} steps"))
        return cfg.warmup_steps
    return round(cfg.warmup_frac * total_steps)


def updates_with_branches(cfg: ScheduleConfig, peak: float, total_steps: int) -> int:
    """The optimizer updates a run takes: its ``total_steps`` plus every cooldown branch's decay."""
    return total_steps + sum(b.decay_steps for b in branches(cfg, peak, total_steps))


def from_config(cfg: ScheduleConfig, peak: float, total_steps: int, *, batch_tokens: int = 0,
                context: int = 0) -> Schedule:
    """The schedule a run config names, with its fractions turned into whole steps (rounded).

    A 'power' schedule also needs the run's ``batch_tokens`` and ``context`` (tokens per sequence):
    its batch is ``batch_tokens / context`` sequences and it sees ``batch_tokens`` tokens per update;
    the warmup, ``decay_frac``, ``decay_shape`` and ``final_lr_frac`` work as for 'wsd'.
    """
    for f in ("warmup_frac", "final_lr_frac", "decay_frac"):
        v = getattr(cfg, f)
        if not 0.0 <= v <= 1.0:
            raise ConfigError(invalid(f"The 'schedule.{f}' field", v, "a fraction in [0, 1]"))
    warmup = warmup_of(cfg, total_steps)
    if cfg.name == "constant":
        return constant(peak, total_steps, warmup)
    if cfg.name == "cosine":
        return cosine(peak, total_steps, warmup, cfg.final_lr_frac)
    if cfg.name == "linear":
        return linear(peak, total_steps, warmup)
    if cfg.name in ("wsd", "power"):
        decay = round(cfg.decay_frac * total_steps)
        if warmup + decay > total_steps:
            raise ConfigError(invalid("The 'schedule.decay_frac' field", cfg.decay_frac,
                                      f"at most 1 - warmup / steps = {1 - warmup / total_steps:.4g} "
                                      f"(a {warmup}-step warmup of {total_steps} steps)"))
        if cfg.name == "wsd":
            return wsd(peak, total_steps, warmup, decay, cfg.final_lr_frac, cfg.decay_shape)
        if batch_tokens <= 0 or context <= 0 or batch_tokens % context:
            raise ConfigError(invalid("The 'batch_tokens' and 'context' of a 'power' schedule",
                                      (batch_tokens, context), "positive integers, batch_tokens a multiple of "
                                      "context (its learning rate follows the batch in sequences)"))
        return power(peak, total_steps, batch_sequences=batch_tokens // context, tokens_per_step=batch_tokens,
                     a=cfg.power_a, b=cfg.power_b, warmup_steps=warmup, decay_steps=decay,
                     floor=cfg.final_lr_frac, shape=cfg.decay_shape)
    raise ConfigError(invalid("The 'schedule.name' field", cfg.name,
                              "one of constant, cosine, wsd, linear, power"))


def for_run(config: RunConfig) -> Schedule:
    """The learning rate of ``config``'s main line: :func:`from_config` with its batch and context."""
    return from_config(config.schedule, config.lr, config.steps, batch_tokens=config.batch_tokens,
                       context=config.context)


@dataclass(frozen=True)
class Branch:
    """A cooldown branch of a WSD run: it leaves the main line after ``start_step`` updates, decays
    over the next ``decay_steps`` updates by ``schedule`` and is evaluated after ``end_step`` updates."""

    index: int            # k = 1, 2, ... in order of the end steps (the main line is branch 0)
    end_step: int         # e = round(f x total_steps), steps
    decay_steps: int      # n = max(1, round(decay_frac x e)), steps
    schedule: Schedule    # the branch's learning rate for updates start_step .. end_step - 1

    @property
    def start_step(self) -> int:
        """e - n: the main line's step (updates done) at which the branch leaves it."""
        return self.end_step - self.decay_steps


def branches(cfg: ScheduleConfig, peak: float, total_steps: int) -> list[Branch]:
    """The cooldown branches of ``cfg.branches`` for a run of ``total_steps`` updates (none if empty).

    A branch ending at ``e = round(f x total_steps)`` decays over ``n = max(1, round(decay_frac x e))``
    updates from step ``e - n``, with the main decay's shape and floor: its learning rate is
    :func:`wsd` with ``total_steps = e`` and ``decay_steps = n`` (the same warmup), so up to ``e - n``
    it is the main line's and at ``e`` it reaches ``floor x peak``. Validated here, once: each ``e``
    lies before ``total_steps`` and is distinct, and each branch starts after the warmup and no later
    than the main decay (it leaves the stable phase). Raises ConfigError naming 'schedule.branches'.
    """
    # validates the fractions and the main schedule (a 'power' one: its batch does not matter here)
    from_config(cfg, peak, total_steps, batch_tokens=1, context=1)
    if not cfg.branches:
        return []
    warmup = warmup_of(cfg, total_steps)
    decay_start = total_steps - round(cfg.decay_frac * total_steps)
    out: list[Branch] = []
    for k, f in enumerate(cfg.branches, 1):
        e = round(f * total_steps)
        n = max(1, round(cfg.decay_frac * e))
        where = f"branch {k} (fraction {f}) ends at step {e}, its {n}-step decay starts at step {e - n}"
        problem = None
        if e >= total_steps:
            problem = f"fractions ending before the run's last step {total_steps}; {where}"
        elif out and e == out[-1].end_step:
            problem = (f"fractions ending at distinct steps of the {total_steps}-step run; branches {k - 1} "
                       f"and {k} both end at step {e}")
        elif e - n < warmup:
            problem = f"fractions whose cooldowns start after the warmup ({warmup} steps); {where}"
        elif e - n > decay_start:
            problem = f"fractions whose cooldowns start in the stable phase (by step {decay_start}); {where}"
        if problem is not None:
            raise ConfigError(invalid("The 'schedule.branches' field", list(cfg.branches), problem))
        out.append(Branch(k, e, n, wsd(peak, e, warmup, n, cfg.final_lr_frac, cfg.decay_shape)))
    return out
