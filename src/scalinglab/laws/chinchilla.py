"""Chinchilla's parametric loss (Hoffmann et al. 2022, approach 3).

.. math:: L(N, D) = E + A / N^\\alpha + B / D^\\beta

* N: **total** parameters, embeddings included (Hoffmann et al. 2022, App. F); D: training tokens;
  L: cross-entropy in nats per token.
* Fitted, as in the paper and in Besiroglu et al. (2024), in log-sum-exp form on log loss:
  ``ln L = LSE(a - alpha ln N, b - beta ln D, e)`` with ``A, B, E = exp(a), exp(b), exp(e)``, Huber
  delta = 1e-3 on log residuals, **summed**, from Hoffmann's 4,500-point grid of starts
  (alpha, beta in {0, 0.5, ..., 2}; e in {-1, -0.5, ..., 1}; a, b in {0, 5, ..., 25}).

``chinchilla_tied`` is the same form with one exponent for N and D (beta = alpha), as Muennighoff et
al. (2023, App. A) fit it and Gadre et al. (2024) assume it: one parameter fewer, for small ladders
whose points cannot separate the two exponents (the A/alpha and B/beta trade-offs are the fit's
worst-determined directions). Its compute-optimal split is N_opt ~ C^0.5.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._base import Array, Inputs, Law, Objective, Param, Params, Preset, register


def loss(p: Params, x: Inputs) -> Any:
    """L = E + A/N^alpha + B/D^beta (nats/token); N total parameters, D tokens."""
    n = np.asarray(x["N"], dtype=float)
    d = np.asarray(x["D"], dtype=float)
    return p["E"] + p["A"] / n ** p["alpha"] + p["B"] / d ** p["beta"]


def _softmax_terms(p: Params, x: Inputs) -> tuple[Any, Any, Any, Any, Any]:
    """ln L = LSE(t0, t1, t2) with t0 = ln E, t1 = ln A - alpha ln N, t2 = ln B - beta ln D.

    Returns ln L, the softmax weights of t1 and t2 (that of t0 is 1 - s1 - s2), ln N and ln D.
    """
    lnN = np.log(np.asarray(x["N"], dtype=float))
    lnD = np.log(np.asarray(x["D"], dtype=float))
    t0 = np.log(p["E"])
    t1 = np.log(p["A"]) - p["alpha"] * lnN
    t2 = np.log(p["B"]) - p["beta"] * lnD
    m = np.maximum(np.maximum(t1, t2), t0)
    e1 = np.exp(t1 - m)
    e2 = np.exp(t2 - m)
    e0 = np.exp(t0 - m)
    z = e0 + e1 + e2
    inv = 1.0 / z
    return m + np.log(z), e1 * inv, e2 * inv, lnN, lnD


def log_loss(p: Params, x: Inputs) -> Any:
    """ln L in log-sum-exp form (stable for any start of the grid)."""
    return _softmax_terms(p, x)[0]


def log_jacobian(p: Params, x: Inputs) -> tuple[Any, Array]:
    """ln L and d ln L / d (ln E, ln A, ln B, alpha, beta): the softmax weights of the three terms."""
    lnL, s1, s2, lnN, lnD = _softmax_terms(p, x)
    J = np.empty(np.shape(lnL) + (5,))
    J[..., 1] = s1
    J[..., 2] = s2
    J[..., 0] = 1.0 - s1 - s2
    np.multiply(s1, -lnN, out=J[..., 3])
    np.multiply(s2, -lnD, out=J[..., 4])
    return lnL, J


_LOG_GRID = tuple(float(v) for v in np.arange(0.0, 25.0 + 1e-9, 5.0))
_E_GRID = tuple(float(v) for v in np.arange(-1.0, 1.0 + 1e-9, 0.5))
_EXP_GRID = tuple(float(v) for v in np.arange(0.0, 2.0 + 1e-9, 0.5))

PRESETS = {
    "hoffmann2022": Preset(
        "hoffmann2022",
        {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28},
        "Hoffmann et al. 2022, arXiv 2203.15556, App. D.2 (values as rounded in the text)",
        "N total parameters; MassiveText; smoothed training loss.",
    ),
    "hoffmann2022_unrounded": Preset(
        "hoffmann2022_unrounded",
        {"E": float(np.exp(0.5267228)), "A": float(np.exp(6.0073404)), "B": float(np.exp(6.0179186)),
         "alpha": 0.33917084, "beta": 0.2849083},
        "Hoffmann et al. 2022, TeX-source values (ln A = 6.0073404, ln B = 6.0179186, ln E = 0.5267228), "
        "as used by Epoch's replication (epoch-research/analyzing-chinchilla)",
    ),
    "besiroglu2024": Preset(
        "besiroglu2024",
        {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658},
        "Besiroglu et al. 2024, 'Chinchilla Scaling: A replication attempt', arXiv 2404.10102",
        "Refit on 240 points digitised from Hoffmann Fig. 4; SE: A 124.58, B 1293.23, E 0.03, "
        "alpha 0.02, beta 0.02.",
    ),
    "muennighoff2023": Preset(
        "muennighoff2023",
        {"E": float(np.exp(0.6254804)), "A": float(np.exp(6.255414)), "B": float(np.exp(7.3049974)),
         "alpha": 0.3526596, "beta": 0.3526596},
        "Muennighoff et al. 2023, arXiv 2305.16264, App. A (C4 base law, alpha = beta tied)",
    ),
}

#: E, A and B, the same in both laws of this module
_SCALES = (
    Param("E", 0.0, 1e3, _E_GRID, log=True, doc="irreducible loss (nats/token)"),
    Param("A", 0.0, 1e30, _LOG_GRID, log=True, doc="parameter-term scale"),
    Param("B", 0.0, 1e30, _LOG_GRID, log=True, doc="data-term scale"),
)

#: inputs, conventions, units and objective, the same in both laws of this module
_SHARED: dict[str, Any] = {
    "inputs": ("N", "D"), "n_input": "N", "d_input": "D", "n_convention": "total",
    "units": "N: total parameters (count); D: training tokens; L: nats/token",
    "objective": Objective("huber", 1e-3, "log"),
}

CHINCHILLA = register(Law(
    name="chinchilla",
    formula=loss,
    log_formula=log_loss,
    log_jacobian=log_jacobian,
    params=(
        *_SCALES,
        Param("alpha", 0.0, 5.0, _EXP_GRID, doc="parameter exponent"),
        Param("beta", 0.0, 5.0, _EXP_GRID, doc="data exponent"),
    ),
    **_SHARED,
    title="Chinchilla parametric loss (Hoffmann et al. 2022, approach 3)",
    formula_text="L = E + A/N^alpha + B/D^beta",
    citation="Hoffmann et al. 2022, arXiv 2203.15556; Besiroglu et al. 2024, arXiv 2404.10102",
    presets=PRESETS,
    grid_note="Hoffmann's 4,500 starts: alpha, beta in {0, .5, ..., 2}; ln E in {-1, -.5, ..., 1}; "
              "ln A, ln B in {0, 5, ..., 25}",
))


# -- Chinchilla with one exponent -------------------------------------------------------------------
def _tied(p: Params) -> dict[str, Any]:
    return {"E": p["E"], "A": p["A"], "B": p["B"], "alpha": p["alpha"], "beta": p["alpha"]}


def tied_loss(p: Params, x: Inputs) -> Any:
    """L = E + A/N^alpha + B/D^alpha (nats/token): Chinchilla with beta = alpha."""
    return loss(_tied(p), x)


def tied_log_loss(p: Params, x: Inputs) -> Any:
    return _softmax_terms(_tied(p), x)[0]


def tied_log_jacobian(p: Params, x: Inputs) -> tuple[Any, Array]:
    """ln L and d ln L / d (ln E, ln A, ln B, alpha): Chinchilla's, the alpha and beta columns summed."""
    lnL, J = log_jacobian(_tied(p), x)
    J[..., 3] += J[..., 4]
    return lnL, J[..., :4]


CHINCHILLA_TIED = register(Law(
    name="chinchilla_tied",
    formula=tied_loss,
    log_formula=tied_log_loss,
    log_jacobian=tied_log_jacobian,
    params=(*_SCALES, Param("alpha", 0.0, 5.0, _EXP_GRID, doc="the one exponent, of N and of D")),
    **_SHARED,
    title="Chinchilla parametric loss with one exponent (alpha = beta; Muennighoff et al. 2023)",
    formula_text="L = E + A/N^alpha + B/D^alpha",
    citation="Hoffmann et al. 2022, arXiv 2203.15556; the exponents tied as in Muennighoff et al. 2023, "
             "arXiv 2305.16264 (App. A) and Gadre et al. 2024, arXiv 2403.08540",
    presets={"muennighoff2023": Preset(
        "muennighoff2023",
        {"E": float(np.exp(0.6254804)), "A": float(np.exp(6.255414)), "B": float(np.exp(7.3049974)),
         "alpha": 0.3526596},
        "Muennighoff et al. 2023, arXiv 2305.16264, App. A (C4 base law, alpha = beta tied)",
    )},
    grid_note="Hoffmann's starts with one exponent: alpha in {0, .5, ..., 2}; ln E in {-1, -.5, ..., 1}; "
              "ln A, ln B in {0, 5, ..., 25} (900 starts)",
))
