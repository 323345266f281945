"""The data-constrained scaling law (Muennighoff et al. 2023, "Scaling Data-Constrained Language Models").

Chinchilla's law with *effective* data and parameters: repeated tokens and parameters in excess of the
compute-optimal count for the unique data are worth less than fresh ones, with exponential decay.

.. math::

    L(N, D, U) = E + A / N'^\\alpha + B / D'^\\beta

    D' = U_D + U_D R_D^* (1 - e^{-R_D / R_D^*}),        R_D = D / U_D - 1
    N' = U_N + U_N R_N^* (1 - e^{-R_N / R_N^*}),        R_N = \\max(N / U_N - 1, 0)
    U_N = \\min(G (U_D G)^{\\beta/\\alpha}, N),           G = (\\alpha A / (\\beta B))^{1/(\\alpha+\\beta)}

* N: **total** parameters, embeddings included, as in the Chinchilla law the base fit follows (the
  smallest of the released runs, N = 7.1M, is mostly its 6.4M-parameter GPT-2 embedding, 50257 x 128);
  D: training tokens seen; U: unique tokens in the data, so the data are seen ``D / U`` times
  (``R_D = D/U - 1`` *repetitions*, 0 for one pass). When a row has
  ``U > D`` every token seen is unique and ``U_D = D`` is used (the authors' code rejects such rows);
  for ``U <= D`` the formula is exactly theirs. L: C4 validation cross-entropy, nats per token.
* ``U_N`` is the compute-optimal parameter count for ``U_D`` tokens (Chinchilla's frontier inverted),
  capped at N; ``R_N`` counts the "excess parameters". ``R_D_star`` and ``R_N_star`` (the paper's
  ``R_D*``, ``R_N*``) are the decay constants: a repeated token loses about ``1/e`` of its value after
  ``R_D*`` repetitions. ``R* -> inf`` recovers Chinchilla; ``R* = 0`` makes repeats worth nothing.
* Fitted like Chinchilla (Huber delta = 1e-3 on log loss, L-BFGS from a grid): the authors fix the C4
  base law (A, B, E, alpha = beta) and fit only ``R_D*`` and ``R_N*`` on 182 runs from the grid
  ``R* in {0, 4, ..., 20}`` (Muennighoff et al. 2023, App. A; ``utils/parametric_fit.ipynb`` of
  huggingface/datablations). Fit it the same way with ``LawFit("datablations", fixed={...base...})``.
* The decay constants are weakly identified by those runs: the objective has several near-equal local
  minima along a valley. The published (R_D*, R_N*) = (15.39, 5.31) is the one most starts of the grid
  reach; the lowest we find is (95.4, 1.71), with an objective only 0.13% lower (0.0158047 against
  0.0158259). Read R_D* ~ 15 as "somewhere between about 10 and 100".

Reference: Muennighoff, Rush, Barak, Le Scao, Piktus, Tazi, Pyysalo, Wolf, Raffel 2023, arXiv 2305.16264
(NeurIPS 2023), App. A; formula conventions as in the authors' ``scaling_law`` (README of
huggingface/datablations).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._base import Inputs, Law, Objective, Param, Params, Preset, register

# The published values, as printed in the authors' README (a, b, e are ln A, ln B, ln E).
_A_LN, _B_LN, _E_LN, _ALPHA = 6.255414, 7.3049974, 0.6254804, 0.3526596
_R_D_STAR, _R_N_STAR = 15.387756, 5.309743


def frontier_G(p: Params) -> Any:
    """``G = (alpha A / (beta B))^(1/(alpha+beta))`` of Chinchilla's compute-optimal frontier.

    ``N_opt = G (C/6)^a`` and ``D_opt = (C/6)^b / G``; Muennighoff et al. write ``U_N = (U_D G)^(beta/alpha) G``.
    """
    return (p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1.0 / (p["alpha"] + p["beta"]))


def optimal_params_for_data(p: Params, U: Any) -> Any:
    """The compute-optimal parameter count for ``U`` tokens of data: ``G (U G)^(beta/alpha)`` (count)."""
    G = frontier_G(p)
    return G * (np.asarray(U, dtype=float) * G) ** (p["beta"] / p["alpha"])


def _decayed(U: Any, R: Any, R_star: Any) -> Any:
    """``U + U R* (1 - exp(-R/R*))``; the limit ``U`` at ``R* = 0`` (repeats worth nothing)."""
    R_star = np.asarray(R_star, dtype=float)
    pos = R_star > 0
    safe = np.where(pos, R_star, 1.0)
    gain = np.where(pos, -safe * np.expm1(-R / safe), 0.0)
    return U * (1.0 + gain)


def effective_data(p: Params, x: Inputs) -> Any:
    """``D' = U_D + U_D R_D* (1 - exp(-R_D/R_D*))`` with ``U_D = min(U, D)``, ``R_D = D/U_D - 1`` (tokens)."""
    D = np.asarray(x["D"], dtype=float)
    U_D = np.minimum(np.asarray(x["U"], dtype=float), D)
    R_D = np.maximum(D / U_D - 1.0, 0.0)
    return _decayed(U_D, R_D, p["R_D_star"])


def effective_params(p: Params, x: Inputs) -> Any:
    """``N' = U_N + U_N R_N* (1 - exp(-R_N/R_N*))`` with ``U_N = min(N_opt(U_D), N)`` (count)."""
    N = np.asarray(x["N"], dtype=float)
    D = np.asarray(x["D"], dtype=float)
    U_D = np.minimum(np.asarray(x["U"], dtype=float), D)
    U_N = np.minimum(N, optimal_params_for_data(p, U_D))
    R_N = np.maximum(N / U_N - 1.0, 0.0)
    return _decayed(U_N, R_N, p["R_N_star"])


def loss(p: Params, x: Inputs) -> Any:
    """L = E + A/N'^alpha + B/D'^beta (nats/token); N parameters, D tokens seen, U unique tokens."""
    return p["E"] + p["A"] / effective_params(p, x) ** p["alpha"] + p["B"] / effective_data(p, x) ** p["beta"]


_LOG_GRID = tuple(float(v) for v in np.arange(0.0, 25.0 + 1e-9, 5.0))
_E_GRID = tuple(float(v) for v in np.arange(-1.0, 1.0 + 1e-9, 0.5))
_EXP_GRID = (0.0, 0.5, 1.0, 1.5, 2.0)
#: the authors' grid of starts for the decay constants, R* in {0, 4, ..., 20}
_R_GRID = tuple(float(v) for v in np.arange(0.0, 20.0 + 1e-9, 4.0))

PRESETS = {
    "muennighoff2023": Preset(
        "muennighoff2023",
        {"A": float(np.exp(_A_LN)), "B": float(np.exp(_B_LN)), "E": float(np.exp(_E_LN)),
         "alpha": _ALPHA, "beta": _ALPHA, "R_D_star": _R_D_STAR, "R_N_star": _R_N_STAR},
        "Muennighoff et al. 2023, arXiv 2305.16264, App. A; values as in the README of "
        "huggingface/datablations (a = 6.255414, b = 7.3049974, e = 0.6254804, alpha = beta = 0.3526596, "
        "R_D* = 15.387756, R_N* = 5.309743)",
        "C4 base law with alpha = beta tied (A = 521, B = 1488, E = 1.87); R* fitted on 182 runs, "
        "7M-9B parameters, 1-500 epochs.",
    ),
}

DATABLATIONS = register(Law(
    name="datablations",
    formula=loss,
    params=(
        Param("A", 0.0, 1e30, _LOG_GRID, log=True, doc="parameter-term scale"),
        Param("B", 0.0, 1e30, _LOG_GRID, log=True, doc="data-term scale"),
        Param("E", 0.0, 1e3, _E_GRID, log=True, doc="irreducible loss (nats/token)"),
        Param("alpha", 1e-3, 5.0, _EXP_GRID[1:], doc="parameter exponent"),
        Param("beta", 1e-3, 5.0, _EXP_GRID[1:], doc="data exponent"),
        Param("R_D_star", 0.0, 1e4, _R_GRID, doc="repetitions at which repeated data lose 1/e of their value"),
        Param("R_N_star", 0.0, 1e4, _R_GRID, doc="excess-parameter ratio at which parameters lose 1/e of "
                                                   "their value"),
    ),
    inputs=("N", "D", "U"),
    n_input="N",
    d_input="D",
    n_convention="total",
    title="Data-constrained scaling law (Muennighoff et al. 2023)",
    formula_text="L = E + A/N'^alpha + B/D'^beta; D' = U_D + U_D R_D*(1 - exp(-R_D/R_D*)), R_D = D/U_D - 1; "
                 "N' = U_N + U_N R_N*(1 - exp(-R_N/R_N*)), U_N = min(N_opt(U_D), N), R_N = max(N/U_N - 1, 0)",
    units="N: parameters (count); D: training tokens seen; U: unique tokens; L: nats/token",
    citation="Muennighoff et al. 2023, arXiv 2305.16264 (NeurIPS 2023), App. A",
    objective=Objective("huber", 1e-3, "log"),
    presets=PRESETS,
    grid_note="the authors fix A, B, E, alpha, beta at the C4 base law and start R_D*, R_N* from "
              "{0, 4, ..., 20}; the other grids are Chinchilla's (Hoffmann et al. 2022)",
))
