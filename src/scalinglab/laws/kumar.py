"""Scaling laws for precision (Kumar et al. 2024): training precision shrinks the effective parameter
count, and post-training quantisation adds a loss that grows with the data.

Training in low precision (law ``kumar``):

.. math::

    L(N, D, P_w, P_a, P_{kv}) = A N_{eff}^{-\\alpha} + B D^{-\\alpha} + E,
    \\qquad N_{eff} = N (1 - e^{-P_w/\\gamma_w}) (1 - e^{-P_a/\\gamma_a}) (1 - e^{-P_{kv}/\\gamma_{kv}})

with the data exponent tied to the parameter exponent (alpha = beta, as the paper fits it).
Post-training quantisation to P_post bits (law ``kumar_ptq``, the loss increase after quantising a
model trained in high precision):

.. math::

    \\delta_{PTQ}(N, D, P_{post}) = C_T \\frac{D^{\\gamma_D}}{N^{\\gamma_N}} e^{-P_{post}/\\gamma_{post}}

* N: **non-embedding** parameters; D: training tokens; P_w, P_a, P_kv: bits of the weights, the
  activations and the attention keys/values during training (integer formats in the paper; for a
  float format ExMy use P = E + M + 1); P_post: bits of the post-training quantisation; L and delta:
  nats per token. The paper quantises the forward pass only (30-220M models, 465 runs, Dolma).
* :func:`n_eff` is the effective parameter count; :func:`optimal_training_precision` the
  compute-optimal training precision when N, D and P = P_w = P_a = P_kv are chosen together at a
  budget C = k P N D: minimising over N at fixed P leaves ``L`` a decreasing function of
  ``f(P)/P`` (f the product of the three factors) whatever alpha, beta, A, B and C are, so
  ``P* = argmax f(P)/P``, independent of compute (the paper's section 4.3 finding). With App. K's
  constants below that is 3.47 bits; the paper reports 7-8 bits from its fits, whose offsets'
  placement ``../shared/PRECISION.md`` section 4 marks unverified: the presets are for the functional
  form, as the authors say ("our contribution is not the numerical values ... but the trends and
  functional forms").
* Fitted with Huber delta = 1e-3 on log residuals (``kumar``) and least squares on log residuals
  (``kumar_ptq``: every measured increase must be positive; filter unresolved ones with
  ``--where 'dL_ptq > 0'``).

Reference: Kumar, Ankner, Spector, Bordelon, Muennighoff, Paul, Pehlevan, Ré, Raghunathan 2024,
"Scaling Laws for Precision", arXiv 2411.04330 (ICLR 2025), Eq. for N_eff and delta_PTQ, App. K
(constants as ``../shared/PRECISION.md`` section 4 gives them).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ParameterError, invalid
from ._base import Inputs, Law, Objective, Param, Params, Preset, positive_array, register, resolve_params

#: parameter names of the training-precision law, in order
PARAM_NAMES = ("A", "alpha", "B", "E", "gamma_w", "gamma_a", "gamma_kv")
#: parameter names of the post-training-quantisation law
PTQ_PARAM_NAMES = ("C_T", "gamma_D", "gamma_N", "gamma_post")

CITATION = "Kumar et al. 2024, 'Scaling Laws for Precision', arXiv 2411.04330 (ICLR 2025)"


def _factor(bits: Any, gamma: Any) -> Any:
    """``1 - exp(-P/gamma)``: the fraction of a parameter's capacity left at P bits."""
    return -np.expm1(-np.asarray(bits, dtype=float) / gamma)


def effective_fraction(p: Params, P_w: Any, P_a: Any, P_kv: Any) -> Any:
    """``N_eff / N = (1 - e^{-P_w/gamma_w}) (1 - e^{-P_a/gamma_a}) (1 - e^{-P_kv/gamma_kv})``."""
    return _factor(P_w, p["gamma_w"]) * _factor(P_a, p["gamma_a"]) * _factor(P_kv, p["gamma_kv"])


def loss(p: Params, x: Inputs) -> Any:
    """L = A N_eff^-alpha + B D^-alpha + E (nats/token); N non-embedding parameters, D tokens, P bits."""
    n, d = np.asarray(x["N"], dtype=float), np.asarray(x["D"], dtype=float)
    n_eff_ = n * effective_fraction(p, x["P_w"], x["P_a"], x["P_kv"])
    return p["A"] * n_eff_ ** (-p["alpha"]) + p["B"] * d ** (-p["alpha"]) + p["E"]


def log_jacobian(p: Params, x: Inputs) -> tuple[Any, Any]:
    """ln L and d ln L / d theta, theta = (ln A, alpha, ln B, ln E, gamma_w, gamma_a, gamma_kv)."""
    n, d = np.asarray(x["N"], dtype=float), np.asarray(x["D"], dtype=float)
    terms = []
    for key, g in (("P_w", p["gamma_w"]), ("P_a", p["gamma_a"]), ("P_kv", p["gamma_kv"])):
        bits = np.asarray(x[key], dtype=float)
        f = _factor(bits, g)
        terms.append((f, np.exp(-bits / g) * bits / (g * g * f)))   # f and d ln f / d gamma
    ln_neff = np.log(n) + sum(np.log(f) for f, _ in terms)
    t1 = p["A"] * np.exp(-p["alpha"] * ln_neff)
    t2 = p["B"] * np.exp(-p["alpha"] * np.log(d))
    t3 = p["E"] * np.ones_like(t1 + t2)
    L = t1 + t2 + t3
    cols = [t1, -ln_neff * t1 - np.log(d) * t2, t2, t3, *(p["alpha"] * t1 * dg for _, dg in terms)]
    J = np.stack(np.broadcast_arrays(*cols), axis=-1)
    return np.log(L), J / L[..., None]


def ptq_delta(p: Params, x: Inputs) -> Any:
    """delta_PTQ = C_T D^gamma_D / N^gamma_N exp(-P_post / gamma_post) (nats/token)."""
    n, d = np.asarray(x["N"], dtype=float), np.asarray(x["D"], dtype=float)
    return (p["C_T"] * d ** p["gamma_D"] * n ** (-p["gamma_N"])
            * np.exp(-np.asarray(x["P_post"], dtype=float) / p["gamma_post"]))


def log_ptq_delta(p: Params, x: Inputs) -> Any:
    n, d = np.asarray(x["N"], dtype=float), np.asarray(x["D"], dtype=float)
    return (np.log(p["C_T"]) + p["gamma_D"] * np.log(d) - p["gamma_N"] * np.log(n)
            - np.asarray(x["P_post"], dtype=float) / p["gamma_post"])


# -- closed forms ---------------------------------------------------------------------------------
def _bits(what: str, value: Any) -> Any:
    arr = np.asarray(value, dtype=float)
    if np.any(~np.isfinite(arr)) or np.any(arr <= 0):
        raise ParameterError(invalid(what, value, "a positive number of bits"))
    return arr


def n_eff(params: Any, N: Any, P_w: Any, P_a: Any | None = None, P_kv: Any | None = None) -> Any:
    """The effective parameter count of N non-embedding parameters trained at P_w/P_a/P_kv bits
    (P_a and P_kv default to P_w: one precision for everything)."""
    p = resolve_params("kumar", PARAM_NAMES, params)
    n = positive_array("The parameter count 'N'", N)
    w = _bits("The weight bits 'P_w'", P_w)
    a = w if P_a is None else _bits("The activation bits 'P_a'", P_a)
    kv = w if P_kv is None else _bits("The key/value bits 'P_kv'", P_kv)
    return n * effective_fraction(p, w, a, kv)


def optimal_training_precision(params: Any, bits_range: tuple[float, float] = (1.0, 32.0)) -> float:
    """The compute-optimal training precision P* = argmax f(P)/P (bits, real-valued), f the product of
    the three capacity factors at P_w = P_a = P_kv = P, for C = k P N D with N and D chosen (see the
    module docstring: independent of C, k, A, B, alpha). Found on a 1e-3-bit grid, then refined
    between the neighbours of the best point (about 1e-6 bits)."""
    p = resolve_params("kumar", PARAM_NAMES, params)
    lo, hi = (float(v) for v in bits_range)
    if not (0 < lo < hi and np.isfinite(hi)):
        raise ParameterError(invalid("The 'bits_range' parameter", bits_range, "an interval (lo, hi), 0 < lo < hi"))
    P = np.linspace(lo, hi, int((hi - lo) / 1e-3) + 1)
    score = np.log(effective_fraction(p, P, P, P)) - np.log(P)
    i = int(np.argmax(score))
    fine = np.linspace(P[max(i - 1, 0)], P[min(i + 1, len(P) - 1)], 2001)
    return float(fine[int(np.argmax(np.log(effective_fraction(p, fine, fine, fine)) - np.log(fine)))])


PRESETS = {
    "kumar2024": Preset(
        "kumar2024",
        {"A": 4.299e3, "alpha": 0.4965, "B": 1.806e4, "E": 2.7648, "gamma_w": 2.6745, "gamma_a": 2.2102,
         "gamma_kv": 0.9578},
        f"{CITATION}, App. K (../shared/PRECISION.md section 4)",
        "OLMo-style models of 30-220M non-embedding parameters on Dolma, integer training precision of "
        "weights, activations and KV (forward pass), 465 runs; the fitted offsets are left out "
        "(their placement is unverified).",
    ),
}

PTQ_PRESETS = {
    "kumar2024": Preset(
        "kumar2024",
        {"C_T": 0.0598, "gamma_D": 0.5068, "gamma_N": 0.3439, "gamma_post": 0.5907},
        f"{CITATION}, App. K (../shared/PRECISION.md section 4)",
        "Post-training round-to-nearest integer quantisation of bf16-trained models, 30-220M "
        "non-embedding parameters; at N = 1e5, D = 2e7: 0.19 nats at 2 bits, 0.036 at 3 bits.",
    ),
}

KUMAR = register(Law(
    name="kumar",
    formula=loss,
    log_jacobian=log_jacobian,
    params=(
        Param("A", 0.0, 1e30, (3.0, 6.0, 9.0), log=True, doc="parameter-term scale"),
        Param("alpha", 0.01, 3.0, (0.3, 0.5), doc="exponent of N_eff and of D (tied)"),
        Param("B", 0.0, 1e30, (5.0, 10.0), log=True, doc="data-term scale"),
        Param("E", 0.0, 1e3, (0.0, 1.0), log=True, doc="irreducible loss (nats/token)"),
        Param("gamma_w", 0.01, 50.0, (1.0, 3.0), doc="bits scale of the weights' capacity factor"),
        Param("gamma_a", 0.01, 50.0, (1.0, 3.0), doc="bits scale of the activations' capacity factor"),
        Param("gamma_kv", 0.01, 50.0, (1.0, 3.0), doc="bits scale of the keys/values' capacity factor"),
    ),
    inputs=("N", "D", "P_w", "P_a", "P_kv"),
    n_input="N",
    d_input="D",
    n_convention="non-embedding",
    title="Training precision: effective parameters (Kumar et al. 2024)",
    formula_text="L = A N_eff^-alpha + B D^-alpha + E,  N_eff = N (1-e^(-P_w/gamma_w)) (1-e^(-P_a/gamma_a)) "
                 "(1-e^(-P_kv/gamma_kv))",
    units="N: non-embedding parameters; D: training tokens; P_w, P_a, P_kv: training bits of weights, "
          "activations, keys/values; L: nats/token",
    citation=CITATION,
    objective=Objective("huber", 1e-3, "log"),
    presets=PRESETS,
    grid_note="192 starts: ln A in {3, 6, 9}; alpha {.3, .5}; ln B {5, 10}; ln E {0, 1}; gammas {1, 3}",
))

KUMAR_PTQ = register(Law(
    name="kumar_ptq",
    formula=ptq_delta,
    log_formula=log_ptq_delta,
    params=(
        Param("C_T", 0.0, 1e30, (-6.0, -3.0, 0.0), log=True, doc="scale of the degradation"),
        Param("gamma_D", 0.0, 5.0, (0.2, 0.5), doc="exponent of the training tokens D"),
        Param("gamma_N", 0.0, 5.0, (0.2, 0.5), doc="exponent of the parameters N"),
        Param("gamma_post", 0.01, 50.0, (0.3, 1.0, 3.0), doc="bits scale of the post-training precision"),
    ),
    inputs=("N", "D", "P_post"),
    target="dL_ptq",
    n_input="N",
    d_input="D",
    n_convention="non-embedding",
    title="Post-training quantisation degradation (Kumar et al. 2024)",
    formula_text="dL_ptq = C_T D^gamma_D / N^gamma_N exp(-P_post/gamma_post)",
    units="N: non-embedding parameters; D: training tokens; P_post: bits after quantisation; "
          "dL_ptq: loss increase, nats/token",
    citation=CITATION,
    objective=Objective("ls", 1e-3, "log"),
    presets=PTQ_PRESETS,
    grid_note="54 starts: ln C_T in {-6, -3, 0}; gamma_D, gamma_N in {.2, .5}; gamma_post in {.3, 1, 3}",
))

__all__ = ["KUMAR", "KUMAR_PTQ", "PARAM_NAMES", "PTQ_PARAM_NAMES", "effective_fraction", "loss", "n_eff",
           "optimal_training_precision", "ptq_delta"]
