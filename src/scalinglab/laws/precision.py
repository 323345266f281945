"""Scaling law of floating-point quantized training (Sun et al. 2025, the "Capybara" law).

.. math::

    L(N, D, E, M, B) = \\frac{n}{N^\\alpha} + \\frac{d}{D^\\beta} + \\epsilon
        + \\frac{D^\\beta}{N^\\alpha} \\frac{\\log_2 B}{\\gamma (E + 0.5)^\\delta (M + 0.5)^\\nu}

* N: **non-embedding** parameters (the table's ``N_nonembed``): the paper's Table 3 lists its smallest
  model at 40,894,464 = 12 x (4 x 512^2 + 3 x 512 x 1536), the attention and SwiGLU weights of its 12
  blocks and nothing else (../shared/PRECISION.md section 3); D: training tokens; E, M: exponent and
  mantissa bits of the floating-point format (sign bit excluded, P = E + M + 1 bits); B: number of
  elements sharing one scaling factor (channel-wise scaling is equivalent to log2 B ~ 13.1567);
  L: cross-entropy in nats per token.
* The first three terms are the Chinchilla loss in BF16; the last is the low-precision penalty:
  "knowledge intensity" D^beta / N^alpha times the information lost to E, M and B. With B = 1
  (a scale per element) the penalty vanishes.
* Fitted here with Huber delta = 1e-3 on log residuals (the Chinchilla objective, scalinglab's
  default); n, d, eps and gamma are optimised on a log scale.

The optimisers over this law (the best integer format for P bits, the compute-optimal precision) are
in :mod:`scalinglab.plan.precision`; the closed forms (critical data size, the continuous layout, the
optimal precision at fixed data) are here.

Reference: Sun et al. 2025, "Scaling Laws for Floating-Point Quantization Training",
arXiv 2501.02423 (ICML 2025), Eq. 18/26, Table 2, Eq. 21 (critical data size) and section 5.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    positive_array,
    register,
    resolve_params,
)

#: parameter names of the law, in order (as in the paper's Table 2)
PARAM_NAMES = ("n", "alpha", "d", "beta", "eps", "gamma", "delta", "nu")

#: FLOPs per parameter, token and bit of the compute model C = k P N D (6 N D at P = 16 bits)
K_FLOPS_PER_BIT = 6.0 / 16.0


def _inputs(x: Inputs) -> tuple[Any, Any, Any, Any, Any]:
    """N (``N_nonembed``, or ``N`` as the planners pass it), D, E, M, B as float arrays."""
    n = np.asarray(x["N_nonembed"] if "N_nonembed" in x else x["N"], dtype=float)
    d, e, m, b = (np.asarray(x[k], dtype=float) for k in ("D", "e_bits", "m_bits", "block"))
    return n, d, e, m, b


def _penalty(p: Params, n: Any, d: Any, e: Any, m: Any, b: Any) -> Any:
    """The low-precision term (D^beta / N^alpha) log2 B / (gamma (E+.5)^delta (M+.5)^nu)."""
    return (d ** p["beta"] * n ** (-p["alpha"]) * np.log2(b)
            / (p["gamma"] * (e + 0.5) ** p["delta"] * (m + 0.5) ** p["nu"]))


def loss(p: Params, x: Inputs) -> Any:
    """L = n/N^alpha + d/D^beta + eps + penalty (nats/token); N non-embedding parameters, D tokens,
    E/M bits, B elements."""
    n, d, e, m, b = _inputs(x)
    return p["n"] * n ** (-p["alpha"]) + p["d"] * d ** (-p["beta"]) + p["eps"] + _penalty(p, n, d, e, m, b)


def log_jacobian(p: Params, x: Inputs) -> tuple[Any, Array]:
    """ln L and d ln L / d theta, theta = (ln n, alpha, ln d, beta, ln eps, ln gamma, delta, nu)."""
    n, d, e, m, b = _inputs(x)
    lnN, lnD = np.log(n), np.log(d)
    t1 = p["n"] * np.exp(-p["alpha"] * lnN)
    t2 = p["d"] * np.exp(-p["beta"] * lnD)
    t4 = _penalty(p, n, d, e, m, b)
    t3 = p["eps"] * np.ones_like(t1 + t4)
    L = t1 + t2 + t3 + t4
    J = np.stack(np.broadcast_arrays(t1, -lnN * (t1 + t4), t2, lnD * (t4 - t2), t3, -t4,
                                     -np.log(e + 0.5) * t4, -np.log(m + 0.5) * t4), axis=-1)
    return np.log(L), J / L[..., None]


# -- derived results ------------------------------------------------------------------------------
def _params(params: Any) -> dict[str, float]:
    return resolve_params('precision', PARAM_NAMES, params)


_positive = positive_array


def _bits(what: str, value: Any) -> Array:
    arr = np.asarray(value, dtype=float)
    if np.any(~np.isfinite(arr)) or np.any(arr < 0):
        raise ParameterError(invalid(what, value, "a non-negative number of bits"))
    return arr


def check_block(value: Any) -> Array:
    """The scaling block size B (elements per scaling factor) as an array, or a ParameterError (B > 1)."""
    arr = np.asarray(value, dtype=float)
    if np.any(~np.isfinite(arr)) or np.any(arr <= 1):
        raise ParameterError(invalid("The scaling block size 'block'", value,
                                     "a number of elements greater than 1 (B = 1 has no precision penalty)"))
    return arr


def critical_data(params: Any, N: Any, e_bits: Any, m_bits: Any, block: Any = 128) -> Any:
    """The critical data size beyond which more tokens raise the loss (Sun et al. 2025, Eq. 21).

    .. math:: D_{crit} = \\left[\\frac{d \\gamma N^\\alpha (E+0.5)^\\delta (M+0.5)^\\nu}{\\log_2 B}\\right]^{1/(2\\beta)}

    It is where dL/dD = 0: the data term's decrease equals the penalty's growth. Inputs broadcast;
    the result is in tokens. For the paper's fit and N = 1e9, B = 128: BF16 (E8M7) about 1730T tokens,
    FP8-E4M3 about 27T, FP4-E2M1 about 0.4T.
    """
    p = _params(params)
    n = _positive("The parameter count 'N'", N)
    e = _bits("The exponent bits 'e_bits'", e_bits)
    m = _bits("The mantissa bits 'm_bits'", m_bits)
    b = check_block(block)
    inner = p["d"] * p["gamma"] * n ** p["alpha"] * (e + 0.5) ** p["delta"] * (m + 0.5) ** p["nu"] / np.log2(b)
    return inner ** (1.0 / (2.0 * p["beta"]))


def optimal_layout_continuous(params: Any, total_bits: float) -> tuple[float, float]:
    """The exponent and mantissa bits that minimise the penalty for P total bits, as real numbers.

    Minimising ``(E+.5)^-delta (M+.5)^-nu`` subject to ``E + M + 1 = P`` gives (Sun et al. 2025,
    section 5)

    .. math:: E_{opt} = \\frac{\\delta P}{\\delta + \\nu} - 0.5, \\quad M_{opt} = \\frac{\\nu P}{\\delta + \\nu} - 0.5

    Returns ``(E_opt, M_opt)``.
    """
    p = _params(params)
    P = float(_positive("The total number of bits 'total_bits'", total_bits))
    s = p["delta"] + p["nu"]
    return p["delta"] * P / s - 0.5, p["nu"] * P / s - 0.5


def _gamma_rho(p: Mapping[str, float]) -> float:
    s = p["delta"] + p["nu"]
    return float(p["gamma"] * p["delta"] ** p["delta"] * p["nu"] ** p["nu"] / s ** s)


def optimal_precision_fixed_data(params: Any, D: Any, block: Any = 128) -> Any:
    """Compute-optimal total bits P at a fixed number of tokens D (Sun et al. 2025, section 5).

    With the compute model C = k P N D, N = C/(k P D), and the optimal layout for every P, setting
    dL/dP = 0 gives (independently of C and k)

    .. math:: P_{opt}^{\\delta+\\nu} = \\frac{\\delta + \\nu - \\alpha}{n \\alpha \\gamma_\\rho} D^\\beta \\log_2 B,
              \\quad \\gamma_\\rho = \\gamma \\frac{\\delta^\\delta \\nu^\\nu}{(\\delta+\\nu)^{\\delta+\\nu}}

    Returns P (real-valued bits); inputs broadcast.
    """
    p = _params(params)
    d = _positive("The token count 'D'", D)
    b = check_block(block)
    s = p["delta"] + p["nu"]
    rhs = (s - p["alpha"]) / (p["n"] * p["alpha"] * _gamma_rho(p)) * d ** p["beta"] * np.log2(b)
    return rhs ** (1.0 / s)


PRESETS = {
    "sun2025": Preset(
        "sun2025",
        {"n": 69.2343, "alpha": 0.2368, "d": 68973.0621, "beta": 0.5162, "eps": 1.9061,
         "gamma": 11334.5197, "delta": 3.1926, "nu": 2.9543},
        "Sun et al. 2025, 'Scaling Laws for Floating-Point Quantization Training', arXiv 2501.02423, "
        "Table 2 (LAWS.md section 7 [P])",
        "LLaMA architecture on a Dolma v1.7 subset; N in {41, 85, 154, 679}M, D in {10, 20, 50, 100}B "
        "tokens, 358 runs fitted; quantization simulated (QPyTorch) on the GEMM inputs of linear layers; "
        "D in tokens, B in elements per scaling factor.",
    ),
}

PRECISION = register(Law(
    name="precision",
    formula=loss,
    log_jacobian=log_jacobian,
    params=(
        Param("n", 0.0, 1e30, (0.0, 5.0, 10.0), log=True, doc="parameter-term scale"),
        Param("alpha", 0.0, 5.0, (0.2, 0.5), doc="parameter exponent (shared with the penalty)"),
        Param("d", 0.0, 1e30, (0.0, 5.0, 10.0, 15.0), log=True, doc="data-term scale"),
        Param("beta", 0.0, 5.0, (0.2, 0.5), doc="data exponent (shared with the penalty)"),
        Param("eps", 0.0, 1e3, (0.0, 1.0), log=True, doc="irreducible loss (nats/token)"),
        Param("gamma", 0.0, 1e30, (0.0, 5.0, 10.0), log=True, doc="inverse scale of the precision penalty"),
        Param("delta", 0.0, 20.0, (1.0, 3.0), doc="exponent of (E + 0.5)"),
        Param("nu", 0.0, 20.0, (1.0, 3.0), doc="exponent of (M + 0.5)"),
    ),
    inputs=("N_nonembed", "D", "e_bits", "m_bits", "block"),
    n_input="N_nonembed",
    d_input="D",
    n_convention="non-embedding",
    title="Floating-point quantized training (Sun et al. 2025)",
    formula_text="L = n/N^alpha + d/D^beta + eps + (D^beta/N^alpha) log2(B) / (gamma (E+0.5)^delta (M+0.5)^nu)",
    units="N: non-embedding parameters (count, column N_nonembed); D: training tokens; E, M: exponent and "
          "mantissa bits; B: elements per scaling factor; L: nats/token",
    citation="Sun et al. 2025, arXiv 2501.02423",
    objective=Objective("huber", 1e-3, "log"),
    presets=PRESETS,
    grid_note="1,152 starts: ln n, ln gamma in {0, 5, 10}; ln d in {0, 5, 10, 15}; alpha, beta in {.2, .5}; "
              "ln eps in {0, 1}; delta, nu in {1, 3}",
))
