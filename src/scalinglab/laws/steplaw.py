"""Step Law: optimal peak learning rate and batch size (Li et al. 2025).

.. math:: \\eta_{opt}(N, D) = s_\\eta N^{e_N} D^{e_D}, \\qquad B_{opt}(D) = s_B D^{e_B}

with ``lr_scale`` = s_eta, ``lr_exp_N`` = e_N, ``lr_exp_D`` = e_D, ``batch_scale`` = s_B and
``batch_exp_D`` = e_B.

* N: parameters excluding the vocabulary / embedding matrices (the released rows count
  ``layers x (4 h^2 + 3 h ffn)``); D: training tokens; eta: peak AdamW learning rate (warmup, then
  cosine decay to a fixed minimum); B: batch size in **tokens** (the released files give sequences
  of 2048 tokens: map ``batch='bs * 2048'``).
* A hyperparameter law: the law's target is ``lr`` (inputs N, D); the batch part is
  :func:`optimal_batch`. Both are fitted together by the Step-Law procedure of the official code
  (``step-law/steplaw``, ``code/fit_tool.py``), which lives in :mod:`scalinglab.fit.steplaw` (the law
  names it with ``procedure="steplaw"``): in every (N, D) cell keep the runs whose smoothed final loss
  is within 0.25% of the cell's best, regress ``ln lr`` on ``ln N`` and ``ln D`` and ``ln B`` on
  ``ln D`` by ordinary least squares, and average the coefficients over bootstrap resamples of the kept
  runs. The table needs the canonical columns N, D, lr, batch (tokens) and loss (use the *smoothed*
  final training loss: ``--map loss='`smooth loss`'``).

Reference: Li et al. 2025, "Predictable Scale: Part I -- Optimal Hyperparameter Scaling Law in Large
Language Model Pretraining", arXiv 2503.04715; official code and data step-law/steplaw @ 32a8f4c
(LAWS.md section 5: coefficients [S], method [P]).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._base import (
    Array,
    Inputs,
    Law,
    Objective,
    Param,
    Params,
    Preset,
    positive_array,
    register,
    resolve_params,
)

#: parameter names of the law, in order
PARAM_NAMES = ("lr_scale", "lr_exp_N", "lr_exp_D", "batch_scale", "batch_exp_D")


def lr(p: Params, x: Inputs) -> Any:
    """eta_opt = lr_scale N^lr_exp_N D^lr_exp_D; N non-embedding parameters, D tokens."""
    n = np.asarray(x["N"], dtype=float)
    d = np.asarray(x["D"], dtype=float)
    return p["lr_scale"] * n ** p["lr_exp_N"] * d ** p["lr_exp_D"]


def log_jacobian(p: Params, x: Inputs) -> tuple[Any, Array]:
    """ln eta and its derivatives w.r.t. (ln lr_scale, lr_exp_N, lr_exp_D, ln batch_scale, batch_exp_D)."""
    lnN = np.log(np.asarray(x["N"], dtype=float))
    lnD = np.log(np.asarray(x["D"], dtype=float))
    ln_eta = np.log(p["lr_scale"]) + p["lr_exp_N"] * lnN + p["lr_exp_D"] * lnD
    one = np.ones_like(ln_eta)
    J = np.stack(np.broadcast_arrays(one, lnN * one, lnD * one, 0.0 * one, 0.0 * one), axis=-1)
    return ln_eta, J


def _params(params: Any) -> dict[str, float]:
    return resolve_params('steplaw', PARAM_NAMES, params)


_positive = positive_array


def optimal_lr(params: Any, N: Any, D: Any) -> Any:
    """Peak learning rate eta_opt(N, D) = lr_scale N^lr_exp_N D^lr_exp_D (N non-embedding params, D tokens)."""
    p = _params(params)
    return lr(p, {"N": _positive("The parameter count 'N'", N), "D": _positive("The token count 'D'", D)})


def optimal_batch(params: Any, D: Any) -> Any:
    """Batch size in tokens B_opt(D) = batch_scale D^batch_exp_D (D training tokens); no N dependence."""
    p = _params(params)
    return p["batch_scale"] * _positive("The token count 'D'", D) ** p["batch_exp_D"]


PRESETS = {
    "li2025": Preset(
        "li2025",
        {"lr_scale": 1.79, "lr_exp_N": -0.713, "lr_exp_D": 0.307, "batch_scale": 0.58, "batch_exp_D": 0.571},
        "Li et al. 2025, arXiv 2503.04715, as reported by several agreeing secondary sources "
        "(LAWS.md section 5, coefficients [S]; the paper body was not read)",
        "The paper's headline fit over its full dense grid. N: non-embedding parameters; D: tokens; "
        "batch in tokens.",
    ),
    "li2025_released_refit": Preset(
        "li2025_released_refit",
        {"lr_scale": 78.43, "lr_exp_N": -0.7677, "lr_exp_D": 0.1978, "batch_scale": 0.2144, "batch_exp_D": 0.6113},
        "scalinglab refit of step-law/steplaw dense_lr_bs_loss.csv @ 32a8f4c (fit_steplaw: 0.25% window "
        "on the smoothed loss, OLS, 1000 bootstrap resamples, seed 0)",
        "The 1,911 released dense runs (17 (N, D) cells, N 2.1e8-1.1e9, D 4e9-1e11 tokens; 129 runs kept "
        "by the 0.25% window) do not give the paper's coefficients: lr ~ N^-0.77 D^0.20 and B ~ D^0.61 "
        "against li2025's N^-0.713 D^0.307 and D^0.571 (an independent refit agrees: -0.77, 0.20, 0.61); "
        "a gap also reported against the authors' repository (as relayed in scalinglab issue 2; not checked here). Bootstrap SE: lr_exp_N 0.054, lr_exp_D 0.033, "
        "batch_exp_D 0.038; lr_scale and batch_scale are poorly determined (95% CI 10-670 and 0.03-1.3). "
        "Regressing ln B on ln N as well gives an N exponent of -0.27 (SE 0.05), not 0 "
        "(batch_exponents). Batch in tokens (bs x 2048).",
    ),
}

STEPLAW = register(Law(
    name="steplaw",
    formula=lr,
    log_jacobian=log_jacobian,
    params=(
        Param("lr_scale", 0.0, 1e30, (0.0,), log=True, doc="learning-rate scale"),
        Param("lr_exp_N", -5.0, 5.0, (-0.5,), doc="learning-rate exponent of N"),
        Param("lr_exp_D", -5.0, 5.0, (0.3,), doc="learning-rate exponent of D"),
        Param("batch_scale", 0.0, 1e30, (0.0,), log=True, doc="batch-size scale (tokens)"),
        Param("batch_exp_D", -5.0, 5.0, (0.5,), doc="batch-size exponent of D"),
    ),
    inputs=("N", "D"),
    target="lr",
    n_input="N",
    d_input="D",
    n_convention="non-embedding",
    title="Step Law: optimal learning rate and batch size (Li et al. 2025)",
    formula_text="lr = lr_scale N^lr_exp_N D^lr_exp_D;  B = batch_scale D^batch_exp_D (tokens)",
    units="N: non-embedding parameters (count); D: training tokens; lr: peak AdamW learning rate; "
          "B: batch size in tokens",
    citation="Li et al. 2025, arXiv 2503.04715; step-law/steplaw code/fit_tool.py",
    objective=Objective("ls", 1e-3, "log"),
    procedure="steplaw",
    presets=PRESETS,
    grid_note="not used: the Step-Law fitter is a closed-form least-squares procedure",
))
