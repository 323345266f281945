"""Scaling law of sparsely-connected models (Frantar et al. 2023) and the training cost of pruning.

.. math:: L(S, N, D) = (a_S (1 - S)^{b_S} + c_S) (1/N)^{b_N} + (a_D / D)^{b_D} + c

* S: weight sparsity of the non-embedding weights (0 = dense); N: **non-zero non-embedding**
  parameters (the official notebook counts ``N = 12 d^2 x layers x scale x (1 - S)``); D: training
  data, in the unit the data come in (tokens or optimizer steps for language models, images for
  ViT: a preset's note says which); L: validation loss in nats per token.
* Sparsity acts multiplicatively on the capacity term; the data term is the dense one, unchanged.
* Fitted, as in the official notebook for T5, with Huber delta = 1e-3 on log residuals (summed here,
  see :class:`~scalinglab.laws.Objective`). The scale parameters a_S, c_S, a_D and c are optimised on
  a log scale, so the fit runs on raw units (N ~ 1e6-1e9, D ~ 1e5-1e9) without normalising inputs.

The optimal sparsity this law implies at a FLOP budget is planned in :mod:`scalinglab.plan.sparsity`.

Reference: Frantar, Riquelme, Houlsby, Alistarh, Evci 2023, "Scaling Laws for Sparsely-Connected
Foundation Models", arXiv 2309.08520 (ICLR 2024); official notebook and data:
google-research/jaxpruner, jaxpruner/projects/bigsparse/sparsity-scaling.ipynb @ f133ee5.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ParameterError, invalid
from ._base import (
    Array,
    Inputs,
    Law,
    Objective,
    Param,
    Params,
    Preset,
    register,
)

#: parameter names of the law, in order
PARAM_NAMES = ("a_S", "b_S", "c_S", "b_N", "a_D", "b_D", "c")


def _inputs(x: Inputs) -> tuple[Any, Any, Any]:
    return (np.asarray(x["S"], dtype=float), np.asarray(x["N_nonzero"], dtype=float),
            np.asarray(x["D"], dtype=float))


def loss(p: Params, x: Inputs) -> Any:
    """L(S, N, D) = (a_S (1-S)^b_S + c_S) N^-b_N + (a_D/D)^b_D + c (nats/token).

    S sparsity fraction, N non-zero non-embedding parameters, D data in the preset's unit.
    """
    s, n, d = _inputs(x)
    return ((p["a_S"] * (1.0 - s) ** p["b_S"] + p["c_S"]) * n ** (-p["b_N"])
            + (p["a_D"] / d) ** p["b_D"] + p["c"])


def log_jacobian(p: Params, x: Inputs) -> tuple[Any, Array]:
    """ln L and d ln L / d theta, theta = (ln a_S, b_S, ln c_S, b_N, ln a_D, b_D, ln c)."""
    s, n, d = _inputs(x)
    ln1s = np.log1p(-s)
    lnN = np.log(n)
    lnD = np.log(d)
    npow = np.exp(-p["b_N"] * lnN)                        # N^-b_N
    g = p["a_S"] * np.exp(p["b_S"] * ln1s) * npow         # a_S (1-S)^b_S N^-b_N
    h = p["c_S"] * npow                                   # c_S N^-b_N
    lnratio = np.log(p["a_D"]) - lnD                      # ln(a_D / D)
    t = np.exp(p["b_D"] * lnratio)                        # (a_D/D)^b_D
    c = p["c"] * np.ones_like(t)
    L = g + h + t + c
    J = np.stack(np.broadcast_arrays(g, ln1s * g, h, -lnN * (g + h), p["b_D"] * t, lnratio * t, c),
                 axis=-1)
    return np.log(L), J / L[..., None]


def cost_multiplier(S: Any, start_frac: float = 0.25, end_frac: float = 0.75) -> Any:
    """Training cost of gradual magnitude pruning, relative to training the final sparse model.

    .. math:: c_{mul}(S) = \\frac{t_s + (t_e - t_s)(1 - 3S/4)}{1 - S} + (1 - t_e)

    with ``t_s = start_frac`` and ``t_e = end_frac``: the model trains dense for the first ``t_s`` of
    training (1/(1-S) times the cost per step of the final model), is pruned on the cubic schedule
    ``s_t = S (1 - (1 - p)^3)`` until ``t_e`` (average density ``1 - 3S/4``), and trains at the final
    sparsity afterwards. Training compute is then ``C = 6 N D c_mul(S)`` with N non-zero parameters.
    ``c_mul(0) = 1``. The 25%/75% defaults follow the example sparse pre-training config of the
    official code (jaxpruner bigsparse, ``update_start_step = 5000``, ``update_end_step = 15000`` of
    20000); the expression is a reconstruction from that schedule (LAWS.md section 4), not the paper's.
    """
    if not (0.0 <= start_frac <= end_frac <= 1.0):
        raise ParameterError(invalid("The pruning window (start_frac, end_frac) of cost_multiplier",
                                     (start_frac, end_frac), "fractions with 0 <= start_frac <= end_frac <= 1"))
    s = np.asarray(S, dtype=float)
    if np.any(~np.isfinite(s)) or np.any((s < 0) | (s >= 1)):
        raise ParameterError(invalid("The sparsity S of cost_multiplier", S, "a fraction in [0, 1)"))
    ramp = (end_frac - start_frac) * (1.0 - 0.75 * s)
    return (start_frac + ramp) / (1.0 - s) + (1.0 - end_frac)


def data_at_budget(S: Any, N_nonzero: Any, C: Any, *, tokens_per_d: float = 1.0,
                   start_frac: float = 0.25, end_frac: float = 0.75) -> Any:
    """The data D (in the law's unit) that a budget of C FLOPs buys: D = C / (6 N c_mul(S) tokens_per_d).

    ``tokens_per_d`` is the number of tokens in one unit of the law's D: 1 when D is tokens, the
    tokens per step when D is optimizer steps (65,536 = 128 x 512 for the T5 preset, inferred).
    """
    return np.asarray(C, dtype=float) / (6.0 * np.asarray(N_nonzero, dtype=float) * tokens_per_d
                                         * cost_multiplier(S, start_frac, end_frac))


_EXP_GRID = (0.2, 0.5, 1.0)

PRESETS = {
    "frantar2023_t5": Preset(
        "frantar2023_t5",
        {"a_S": 16.787, "b_S": 0.7216, "c_S": 45.018, "b_N": 0.2451, "a_D": 1.0528e4, "b_D": 0.2027,
         "c": 0.6507},
        "Frantar et al. 2023, arXiv 2309.08520; coefficients of the official notebook fit "
        "(google-research/jaxpruner projects/bigsparse/sparsity-scaling.ipynb @ f133ee5), converted from "
        "its normalised units (N in 1e6, D in 1e5 steps) to raw units, LAWS.md section 4 [P+R]",
        "T5 encoder-decoder on C4, 48 runs. D IS IN OPTIMIZER STEPS, not tokens (a_D = 1.0528e4 steps; "
        "the paper's a_D = 6.90e8 assumes 65,536 tokens per step, an inferred figure). N: non-zero "
        "non-embedding parameters. These are not the minimum of the notebook's objective: BFGS on the "
        "*mean* Huber stopped early (summed Huber 3.65e-4; the minimum, 2.34e-4, has b_S = 1.345, "
        "b_D = 0.385, c = 0.830, b_N = 0.232). Both predict the held-out run (S = 0.75, N = 6.04e8, "
        "500k steps, measured 1.483) within 2%: 1.468 (preset) and 1.455 (minimum).",
    ),
    "frantar2023_vit": Preset(
        "frantar2023_vit",
        {"a_S": 294.39, "b_S": 0.8210, "c_S": 468.16, "b_N": 0.3922, "a_D": 2.374e8, "b_D": 0.8898,
         "c": 4.5167},
        "Frantar et al. 2023, arXiv 2309.08520; coefficients of the official notebook fit "
        "(google-research/jaxpruner projects/bigsparse/sparsity-scaling.ipynb @ f133ee5), converted from "
        "its normalised units (N in 1e6, D in 1e9 images) to raw units, LAWS.md section 4 [P+R]",
        "ViT on JFT-4B, 112 runs. D IS IN IMAGES (training examples), L is the validation loss of image "
        "classification (not nats per token); the notebook fitted it with Huber 0.01 on linear residuals.",
    ),
}

SPARSE = register(Law(
    name="sparse",
    formula=loss,
    log_jacobian=log_jacobian,
    params=(
        Param("a_S", 0.0, 1e30, (0.0, 3.0, 6.0), log=True, doc="sparsity-dependent capacity scale"),
        Param("b_S", 0.0, 5.0, (0.5, 1.0), doc="exponent of the density (1 - S)"),
        Param("c_S", 0.0, 1e30, (0.0, 3.0, 6.0), log=True, doc="sparsity-independent capacity scale"),
        Param("b_N", 0.0, 5.0, (0.1, 0.3, 0.5), doc="exponent of the non-zero parameter count"),
        Param("a_D", 0.0, 1e30, (0.0, 5.0, 10.0, 15.0, 20.0), log=True, doc="data scale (unit of D)"),
        Param("b_D", 0.0, 5.0, _EXP_GRID, doc="data exponent"),
        Param("c", 0.0, 1e3, (-1.0, 0.0, 1.0), log=True, doc="irreducible loss (nats/token)"),
    ),
    inputs=("S", "N_nonzero", "D"),
    n_input="N_nonzero",
    d_input="D",
    n_convention="non-zero non-embedding",
    title="Sparse scaling law (Frantar et al. 2023)",
    formula_text="L = (a_S (1-S)^b_S + c_S) (1/N)^b_N + (a_D/D)^b_D + c",
    units="S: sparsity fraction; N: non-zero non-embedding parameters (count); D: tokens, steps or "
          "images (see the preset); L: nats/token",
    citation="Frantar et al. 2023, arXiv 2309.08520; google-research/jaxpruner projects/bigsparse @ f133ee5",
    objective=Objective("huber", 1e-3, "log"),
    presets=PRESETS,
    grid_note="2,430 starts: ln a_S, ln c_S in {0, 3, 6}; b_S in {.5, 1}; b_N in {.1, .3, .5}; "
              "ln a_D in {0, 5, ..., 20}; b_D in {.2, .5, 1}; ln c in {-1, 0, 1}",
))
