"""Run accounting: what a run config builds and costs, without torch.

The one public place for a run's parameter counts (total, non-embedding, non-zero), the shape the
trainer builds (Sparse-IFT widening), FLOPs per token and per run, the sparsity schedule and its
phases, and the sparse-kernel FLOP accounting. NumPy only, so the designer, the executors, the store
and the trainer all count a run the same way (:func:`counts`, :func:`describe`). The methods and
references of sparse training are in :mod:`scalinglab.ladder.sparsity`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import units
from .errors import ParameterError, invalid
from .runconfig import RunConfig, SparsityConfig

# -- the schedule (pure) ---------------------------------------------------------------------------


def check_steps(total_steps: int) -> int:
    if not isinstance(total_steps, int) or isinstance(total_steps, bool) or total_steps < 1:
        raise ParameterError(invalid("The 'total_steps' parameter", total_steps, "a positive integer"))
    return total_steps


def _window(total_steps: int, start_frac: float, end_frac: float) -> tuple[int, int]:
    """First step of pruning and first step at the target: round(frac * total_steps)."""
    if not (0.0 <= start_frac <= end_frac <= 1.0):
        raise ParameterError(invalid("The pruning window (start_frac, end_frac)", (start_frac, end_frac),
                                     "fractions with 0 <= start_frac <= end_frac <= 1"))
    return round(start_frac * total_steps), round(end_frac * total_steps)


def cubic_sparsity(step: Any, total_steps: int, target: float, start_frac: float = 0.25,
                   end_frac: float = 0.75) -> Any:
    """Sparsity of the cubic schedule at ``step`` (Zhu & Gupta 2017, Eq. 1; Frantar et al. 2023).

    .. math:: s_t = S (1 - (1 - p)^3), \\quad p = \\operatorname{clip}((t - t_s) / (t_e - t_s), 0, 1)

    with ``t_s = round(start_frac * total_steps)``, ``t_e = round(end_frac * total_steps)`` (steps);
    when ``t_e = t_s`` the sparsity jumps to S at ``t_s``. Values at 0, 25, 50, 75, 100% of training
    with the defaults: 0, 0, 7S/8, S, S. ``step`` may be an int or an array of steps; fraction(s) out.
    """
    T = check_steps(total_steps)
    if not (0.0 <= target < 1.0):
        raise ParameterError(invalid("The 'target' parameter", target, "a fraction in [0, 1)"))
    t_s, t_e = _window(T, start_frac, end_frac)
    t = np.asarray(step, dtype=float)
    if t_e > t_s:
        p = np.clip((t - t_s) / (t_e - t_s), 0.0, 1.0)
    else:
        p = (t >= t_s).astype(float)
    s = target * (1.0 - (1.0 - p) ** 3)
    return float(s) if s.ndim == 0 else s


def sparsity_schedule(cfg: SparsityConfig, total_steps: int) -> np.ndarray:
    """The sparsity in force at each step 0 .. total_steps-1, as :class:`Sparsifier` applies it.

    * ``gmp``: the cubic schedule sampled at the mask updates, ``t_s + k * update_every``, and held
      between them (so it lags the continuous curve by < ``update_every`` steps); the target from t_e on.
    * ``static``, ``nm``: the target from step 0.
    * SPDF: 0 from step ``total_steps - round(dense_finetune_frac * total_steps)`` on.

    Returns a float array of length ``total_steps`` (fractions of the prunable weights).
    """
    T = check_steps(total_steps)
    t = np.arange(T)
    if cfg.target == 0.0:
        return np.zeros(T)
    if cfg.method == "gmp":
        t_s, t_e = _window(T, cfg.start_frac, cfg.end_frac)
        k = cfg.update_every
        held = np.where(t >= t_s, t_s + (t - t_s) // k * k, t)   # last mask update at or before t
        s = np.asarray(cubic_sparsity(held, T, cfg.target, cfg.start_frac, cfg.end_frac), dtype=float)
        s = np.where(t >= t_e, cfg.target, s)
    else:
        s = np.full(T, cfg.target)
    t_ft = finetune_start(cfg, T)
    return np.where(t >= t_ft, 0.0, s)


def finetune_start(cfg: SparsityConfig, total_steps: int) -> int:
    """First step of SPDF's dense fine-tuning phase (``total_steps`` when there is none)."""
    T = check_steps(total_steps)
    return T - round(cfg.dense_finetune_frac * T)


def phases(cfg: SparsityConfig, total_steps: int) -> list[dict[str, Any]]:
    """The phases of a run, to record: ``[{"phase", "start_step", "end_step", "corpus"}]`` (end exclusive).

    One ``sparse`` phase (``dense`` when the target is 0), followed by SPDF's ``dense_finetune`` phase
    when ``dense_finetune_frac > 0``; ``corpus`` is the fine-tuning corpus, '' for the run's own corpus.
    """
    T = check_steps(total_steps)
    t_ft = finetune_start(cfg, T)
    out: list[dict[str, Any]] = [{"phase": "sparse" if cfg.target > 0 else "dense", "start_step": 0,
                                  "end_step": t_ft, "corpus": ""}]
    if t_ft < T:
        out.append({"phase": "dense_finetune", "start_step": t_ft, "end_step": T,
                    "corpus": cfg.finetune_corpus})
    return out


# -- Sparse-IFT widening (pure) ----------------------------------------------------------------------


def sift_width(width: int, sparsity: float, *, widen: str = "both", multiple_of: int = 1) -> int:
    """Sparse-IFT "Sparse Wide" width (Thangarasa et al. 2023, arXiv 2303.11525): the width at which a
    layer at ``sparsity`` S costs the dense layer's FLOPs, rounded to the nearest ``multiple_of``.

    .. math::

        w' = w / \\sqrt{1 - S} \\;\\; (\\text{widen='both'}), \\qquad
        w' = w / (1 - S) \\;\\; (\\text{widen='one'})

    ``both``: the width is both the input and the output dimension of the sparse layers, so FLOPs
    scale as w'^2 (1 - S); this is d_model in ``ladder.model.GPT``, where every block linear is
    (c d) x d. ``one``: only one dimension of each layer grows, so FLOPs scale as w' (1 - S); this is
    an MLP's hidden width d_ff (the out dim of ``c_fc``, the in dim of ``c_proj``), which the ladder's
    GPT ties to 4 d_model. Widening d_model also grows the (dense) embeddings, LayerNorms and
    attention scores by 1/sqrt(1 - S); those FLOPs are not compensated.
    """
    if not isinstance(width, int) or isinstance(width, bool) or width < 1:
        raise ParameterError(invalid("The 'width' parameter", width, "a positive integer"))
    if isinstance(sparsity, bool) or not (0.0 <= sparsity < 1.0):
        raise ParameterError(invalid("The 'sparsity' parameter", sparsity, "a fraction in [0, 1)"))
    if widen not in ("both", "one"):
        raise ParameterError(invalid("The 'widen' parameter", widen, "one of ('both', 'one')"))
    if not isinstance(multiple_of, int) or multiple_of < 1:
        raise ParameterError(invalid("The 'multiple_of' parameter", multiple_of, "a positive integer"))
    factor = 1.0 / math.sqrt(1.0 - sparsity) if widen == "both" else 1.0 / (1.0 - sparsity)
    return max(multiple_of, round(width * factor / multiple_of) * multiple_of)


def model_shape(run: RunConfig) -> dict[str, int]:
    """The shape the trainer builds: ``n_layer``, ``d_model``, ``n_head``.

    The config's shape, or with ``sparsity.ift`` the Sparse-IFT widening of d_model by
    1/sqrt(1 - S), to a multiple of the head dimension d_model / n_head (kept fixed, so heads are added).
    """
    L, d, h = run.n_layer, run.d_model, run.n_head
    if run.sparsity.ift and run.sparsity.target > 0:
        head_dim = d // h
        d = sift_width(d, run.sparsity.target, multiple_of=head_dim)
        h = d // head_dim
    return {"n_layer": L, "d_model": d, "n_head": h}


# -- FLOP accounting (pure) --------------------------------------------------------------------------


def training_flops(prunable_flops_per_token: float, tokens_per_step: float,
                   sparsity_per_step: Sequence[float] | np.ndarray, *,
                   other_flops_per_token: float = 0.0) -> dict[str, float]:
    """Training FLOPs of a sparse run, counted analytically.

    With P = ``prunable_flops_per_token`` (6 x the prunable weights, FLOPs/token: forward 2, backward
    4 per weight), Q = ``other_flops_per_token`` (dense terms: norms, and with the full count the
    unembedding and attention), B = ``tokens_per_step`` and s_t the sparsity at step t:

    * ``flops_spent_dense_kernels`` = sum_t (P + Q) B: what masked dense matmuls execute (this code);
    * ``flops_sparse_kernel`` = sum_t (P (1 - s_t) + Q) B: what a sparse kernel following the schedule
      would need; the dense start and the ramp of gradual pruning count in full (Frantar et al. 2023);
    * ``flops_nonzero_final`` = sum_t (P (1 - max_t s_t) + Q) B: training the final sparse model
      throughout, the ``6 N D`` of the law with N non-zero;
    * ``c_mul`` = flops_sparse_kernel / flops_nonzero_final, the cost multiplier. With Q = 0 and the
      25/50/25 cubic schedule it tends to LAWS.md section 4's
      ``[0.25 + 0.5 (1 - 0.75 S)] / (1 - S) + 0.25`` (``laws.sparse.cost_multiplier``) as the mask
      updates get dense; ``update_every`` k adds O(k / steps).
    """
    s = np.asarray(sparsity_per_step, dtype=float)
    if s.ndim != 1 or s.size == 0 or np.any(~np.isfinite(s)) or np.any((s < 0) | (s >= 1)):
        raise ParameterError(invalid("The 'sparsity_per_step' parameter", sparsity_per_step,
                                     "a non-empty 1-D sequence of fractions in [0, 1)"))
    for name, v in (("prunable_flops_per_token", prunable_flops_per_token),
                    ("tokens_per_step", tokens_per_step), ("other_flops_per_token", other_flops_per_token)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise ParameterError(invalid(f"The {name!r} parameter", v, "a non-negative finite number"))
    P, Q, B, n = float(prunable_flops_per_token), float(other_flops_per_token), float(tokens_per_step), s.size
    sparse = float(B * (P * np.sum(1.0 - s) + Q * n))
    final = B * n * (P * (1.0 - float(s.max())) + Q)
    return {"flops_spent_dense_kernels": B * n * (P + Q), "flops_sparse_kernel": sparse,
            "flops_nonzero_final": final, "c_mul": sparse / final if final > 0 else math.nan}


def run_training_flops(run: RunConfig, steps_done: int | None = None, *,
                       full: bool = False) -> dict[str, float]:
    """:func:`training_flops` of a run config over its first ``steps_done`` steps (all by default).

    P = 6 x 12 L d^2 (the block linears of :func:`model_shape`, Sparse-IFT widening included);
    Q = the rest of ``units.flops_per_token`` (6 x the LayerNorm weights; with ``full=True`` also the
    unembedding 6 d V and attention 12 L T d).
    """
    shape = model_shape(run)
    L, d = shape["n_layer"], shape["d_model"]
    steps = run.steps if steps_done is None else steps_done
    if not isinstance(steps, int) or not 1 <= steps <= run.steps:
        raise ParameterError(invalid("The 'steps_done' parameter", steps_done,
                                     f"an integer in [1, {run.steps}]"))
    prunable = 6.0 * 12 * L * d * d
    other = units.flops_per_token(L, d, run.context, run.vocab, full=full) - prunable
    return training_flops(prunable, run.batch_tokens, sparsity_schedule(run.sparsity, run.steps)[:steps],
                          other_flops_per_token=other)


# -- parameter counts of the model a run builds (pure) -------------------------------------------------


def run_counts(run: RunConfig) -> dict[str, Any]:
    """Parameter counts and FLOPs per token of the model a run trains (:func:`model_shape`).

    ``n_layer``, ``d_model``, ``n_head``: the shape built (Sparse-IFT widened when ``sparsity.ift``);
    ``N_total``, ``N_nonembed`` (counts, :func:`scalinglab.units.param_counts`); ``N_nonzero``: the
    non-embedding count less the ``round(S x 12 L d^2)`` block weights pruned at the target sparsity S,
    the model of the sparse phase (the ``N`` of Frantar et al. 2023); ``flops_per_token``
    (6 N_nonembed) and ``flops_per_token_full`` (+ 6 d V + 12 L T d), FLOPs/token, as dense kernels
    execute them (masked weights cost as much as others). ``N_nonzero_final``: the model at the end of
    training, ``N_nonembed`` after SPDF's dense fine-tuning, ``N_nonzero`` otherwise.
    """
    shape = model_shape(run)
    L, d, T, V = shape["n_layer"], shape["d_model"], run.context, run.vocab
    c = units.param_counts(L, d, T, V, sparsity=run.sparsity.target)
    final = c["N_nonembed"] if run.sparsity.dense_finetune_frac > 0 else c["N_nonzero"]
    return {**shape, "N_total": c["N_total"], "N_nonembed": c["N_nonembed"], "N_nonzero": c["N_nonzero"],
            "N_nonzero_final": final, "flops_per_token": units.flops_per_token(L, d, T, V),
            "flops_per_token_full": units.flops_per_token(L, d, T, V, full=True)}


def counts(run: RunConfig) -> dict[str, float]:
    """``N_total``, ``N_nonembed``, ``N_nonzero`` (counts; N_nonzero at the target sparsity),
    ``flops_per_token`` (6 N_nonembed) and ``flops_per_token_full`` (with attention and unembedding),
    FLOPs/token, of the model the trainer builds (Sparse-IFT widening included): what the store keeps
    of a planned run."""
    c = run_counts(run)
    return {k: c[k] for k in ("N_total", "N_nonembed", "N_nonzero", "flops_per_token", "flops_per_token_full")}


def describe(run: RunConfig) -> dict[str, Any]:
    """Parameter counts and FLOPs of a run without training it (no data, no torch work).

    ``N_total``, ``N_nonembed``, ``N_nonzero`` (counts of the model built, Sparse-IFT widening
    included; N_nonzero at the target sparsity, :func:`run_counts`), ``shape`` (``n_layer``,
    ``d_model``, ``n_head`` built), ``flops_per_token`` (6 N_nonembed) and ``flops_per_token_full``
    (6 N_nonembed + 6 d V + 12 L T d), FLOPs/token, as dense kernels spend them; ``steps``; ``tokens``
    (steps x batch_tokens); ``flops`` and ``flops_full`` (x tokens).
    """
    c = run_counts(run)
    fpt, fpt_full = c["flops_per_token"], c["flops_per_token_full"]
    tokens = run.steps * run.batch_tokens
    return {"N_total": c["N_total"], "N_nonembed": c["N_nonembed"], "N_nonzero": c["N_nonzero"],
            "shape": {k: c[k] for k in ("n_layer", "d_model", "n_head")},
            "flops_per_token": fpt, "flops_per_token_full": fpt_full,
            "steps": run.steps, "tokens": tokens, "flops": fpt * tokens, "flops_full": fpt_full * tokens}


def cost(run: RunConfig) -> float:
    """Training FLOPs of a run (full count: attention and unembedding included) of the model it
    builds, Sparse-IFT widening included; the executors order work by it."""
    return float(run.steps * run.batch_tokens * run_counts(run)["flops_per_token_full"])


def sparse_flops(run: RunConfig, steps_done: int) -> dict[str, float]:
    """The FLOP accounting of a run's first ``steps_done`` steps (Frantar et al. 2023's cost model).

    ``flops_spent_dense_kernels`` (what the trainer executes: 6 N_nonembed per token, masked weights
    included), ``flops_sparse_kernel`` (what a kernel skipping masked weights would need, following
    the schedule: the dense start and ramp of gradual pruning and SPDF's dense phase count in full),
    ``flops_nonzero_final`` (6 N_nonzero per token throughout) and ``c_mul`` (their ratio), all in the
    6 N_nonembed count (FLOPs; :func:`run_training_flops`); and ``flops_sparse_kernel_full``, the
    sparse-kernel count with attention and the unembedding added, comparable to ``flops_full``.
    """
    out = run_training_flops(run, steps_done)
    out["flops_sparse_kernel_full"] = run_training_flops(run, steps_done, full=True)["flops_sparse_kernel"]
    return out


def eval_steps(steps: int, evals: int) -> list[int]:
    """``evals`` log-spaced steps over 1..steps (rounded, so repeats at the low end merge), always
    including the last step (and step 1 when evals > 1)."""
    spaced = np.rint(np.geomspace(1, steps, evals)) if evals > 1 else np.zeros(0)
    return sorted({int(s) for s in spaced} | {steps})
