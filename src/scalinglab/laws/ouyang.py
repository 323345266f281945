"""Quantisation-induced degradation (Ouyang et al. 2024, "Low-Bit Quantization Favors Undertrained LLMs").

.. math::

    \\Delta L_q(N, D, P) = L_{quantised} - L_{bf16} = \\frac{k D^\\beta}{N^\\alpha P^\\gamma}

* N: **non-embedding** parameters; D: training tokens; P (input ``P_post``): bits of the
  post-training (weight-only) quantisation; Delta L: nats per token (target ``dL_ptq``). More
  training data makes a model harder to quantise; larger models and more bits make it easier.
* Fitted on GPTQ-quantised Pythia checkpoints (160M-12B, about 1e9-2e11 tokens, 2-4 bits); Kumar et
  al.'s App. F reproduces the D trend with round-to-nearest, so RTN measurements are a fair
  small-scale stand-in. Fitted here by least squares on log residuals (the law is a power law in
  every input); every measured Delta L must be positive (filter with ``--where 'dL_ptq > 0'``).
* :func:`critical_tokens` inverts the law: the training tokens at which the degradation reaches a
  tolerated Delta L.
* The confound (Catalan-Tatjer et al., arXiv 2510.06213): quantisation error grows once the learning
  rate decays, largely independently of D; Pythia's checkpoints mix the two. A WSD run's main line
  against its cooldown branches at equal D separates them.

Reference: Ouyang et al. 2024, arXiv 2411.17691 (ACL 2025), joint fit (Eq. 8):
k = 0.017, beta = 0.5251, alpha = 0.2261, gamma = 5.4967 (from the figure captions as quoted by a
secondary page: ``../shared/PRECISION.md`` section 5, LAWS.md section 11; the form and constants are
marked unverified there).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._base import Inputs, Law, Objective, Param, Params, Preset, positive_array, register, resolve_params

PARAM_NAMES = ("k", "alpha", "beta", "gamma")
CITATION = "Ouyang et al. 2024, 'Low-Bit Quantization Favors Undertrained LLMs', arXiv 2411.17691 (ACL 2025)"


def _inputs(x: Inputs) -> tuple[Any, Any, Any]:
    return (np.asarray(x["N"], dtype=float), np.asarray(x["D"], dtype=float),
            np.asarray(x["P_post"], dtype=float))


def qid(p: Params, x: Inputs) -> Any:
    """Delta L = k D^beta / (N^alpha P^gamma) (nats/token)."""
    n, d, bits = _inputs(x)
    return p["k"] * d ** p["beta"] * n ** (-p["alpha"]) * bits ** (-p["gamma"])


def log_qid(p: Params, x: Inputs) -> Any:
    n, d, bits = _inputs(x)
    return np.log(p["k"]) + p["beta"] * np.log(d) - p["alpha"] * np.log(n) - p["gamma"] * np.log(bits)


def critical_tokens(params: Any, N: Any, bits: Any, tolerance: Any) -> Any:
    """The training tokens D at which Delta L reaches ``tolerance`` nats/token:
    ``D = (tolerance N^alpha P^gamma / k)^(1/beta)``."""
    p = resolve_params("ouyang_qid", PARAM_NAMES, params)
    n = positive_array("The parameter count 'N'", N)
    b = positive_array("The bit width 'bits'", bits)
    t = positive_array("The tolerated loss increase 'tolerance'", tolerance)
    return (t * n ** p["alpha"] * b ** p["gamma"] / p["k"]) ** (1.0 / p["beta"])


PRESETS = {
    "ouyang2024": Preset(
        "ouyang2024",
        {"k": 0.017, "alpha": 0.2261, "beta": 0.5251, "gamma": 5.4967},
        f"{CITATION}, joint fit Eq. 8 (../shared/PRECISION.md section 5; unverified transcription)",
        "GPTQ at 2, 3, 4 bits on Pythia checkpoints (160M-12B non-embedding parameters, 1e9-2e11 "
        "tokens); at N = 1e5, D = 2e7: 0.19 nats at 2 bits, 0.02 at 3 bits, 0.004 at 4 bits.",
    ),
}

OUYANG_QID = register(Law(
    name="ouyang_qid",
    formula=qid,
    log_formula=log_qid,
    params=(
        Param("k", 0.0, 1e30, (-6.0, -3.0, 0.0), log=True, doc="scale of the degradation"),
        Param("alpha", 0.0, 5.0, (0.1, 0.4), doc="exponent of the parameters N"),
        Param("beta", 0.0, 5.0, (0.2, 0.6), doc="exponent of the training tokens D"),
        Param("gamma", 0.0, 20.0, (1.0, 5.0), doc="exponent of the bit width P"),
    ),
    inputs=("N", "D", "P_post"),
    target="dL_ptq",
    n_input="N",
    d_input="D",
    n_convention="non-embedding",
    title="Quantisation-induced degradation (Ouyang et al. 2024)",
    formula_text="dL_ptq = k D^beta / (N^alpha P_post^gamma)",
    units="N: non-embedding parameters; D: training tokens; P_post: bits after quantisation; "
          "dL_ptq: loss increase, nats/token",
    citation=CITATION,
    objective=Objective("ls", 1e-3, "log"),
    presets=PRESETS,
    grid_note="24 starts: ln k in {-6, -3, 0}; alpha {.1, .4}; beta {.2, .6}; gamma {1, 5}",
))

__all__ = ["OUYANG_QID", "PARAM_NAMES", "critical_tokens", "qid"]
