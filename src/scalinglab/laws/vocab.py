"""Vocabulary scaling law (Tao et al. 2024, approach 3).

.. math:: L_u(N_{nv}, V, H) = -E + \\frac{A_1}{N_{nv}^{\\alpha_1}} + \\frac{A_2}{(V d)^{\\alpha_2}}
          + \\frac{B}{D^\\beta}, \\quad D = H f(V)

* N_nv: non-vocabulary parameters (canonical column ``N_nonembed``); V: vocabulary size; d:
  embedding width (``d_model``), so V d is the vocabulary parameter count N_v; H: training
  **characters** (data is counted in characters because tokens depend on V).
* ``f(V) = 0.00639222 ln^2 V - 0.15811069 ln V + 1.20470122`` tokens per character (Tao et al.'s fit,
  ``utils.py``), V capped at 200K (:func:`tokens_per_char`).
* The formula takes raw units and normalises internally, as the authors' fit does: N_nv in 1e6,
  V in 1e3, d in 1e3 (V d in 1e6), H in 1e9 characters. **The data term evaluates f at the normalised
  V (V / 1e3)**, exactly as the official fit does (``approach3_isoloss.py`` divides the vocabulary by
  1000 before calling ``H_to_D``). The published coefficients only describe the data that way: on
  11 rows of the authors' ``exp_data.csv`` the ``tao2024`` preset is within 0.21 of the measured L_u
  with f(V / 1e3) and 0.66-1.43 off with f(V). So D in the fitted law is H f(V / 1e3), not tokens
  (true tokens are H f(V), about a third of it); see :func:`scalinglab.plan.vocab.optimal_vocab` for
  what that changes.
* L_u is the **unigram-normalised** loss (nats per token minus the unigram entropy term), comparable
  across vocabularies and negative in practice. Log residuals are impossible, so the objective is
  Huber delta = 1e-3 on **linear** residuals (summed), the authors' own choice. The target column is
  ``loss_u``.
* Tao et al. impose alpha1 = beta in their fit; the parameters here are separate (the paper's names)
  and the generic fit leaves them free. The preset has them equal.

Reference: Tao et al. 2024, "Scaling Laws with Vocabulary: Larger Models Deserve Larger
Vocabularies", arXiv 2407.13623 (NeurIPS 2024); official code sail-sg/scaling-with-vocab
(``approach3_isoloss.py``, ``optimal_Nv_predict.py``, ``utils.py``), LAWS.md section 8 [P+R].
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ParameterError, invalid
from ._base import Inputs, Law, Objective, Param, Params, Preset, register

#: parameter names of the law, in order
PARAM_NAMES = ("A1", "A2", "B", "E", "alpha1", "alpha2", "beta")

#: tokens-per-character fit f(V) = F2 ln^2 V + F1 ln V + F0 (Tao et al. 2024, utils.py), V capped at V_CAP
F2, F1, F0 = 0.00639222, -0.15811069, 1.20470122
V_CAP = 200_000.0

#: normalisation units of the fit: N_nv and N_v = V d in 1e6, V and d in 1e3, H and D in 1e9
N_UNIT, V_UNIT, H_UNIT = 1e6, 1e3, 1e9

#: Tao et al. approach 1 (IsoFLOPs): N_nv_opt = exp(K1) C^0.5, C in FLOPs (optimal_Nv_predict.py)
APPROACH1_LN_K = -2.4846510161625193
APPROACH1_EXPONENT = 0.5


def _f(v: Any) -> Any:
    lv = np.log(v)
    return F2 * lv * lv + F1 * lv + F0


def tokens_per_char(V: Any) -> Any:
    """f(V): tokens per character of a tokenizer with vocabulary V (Tao et al. 2024), V capped at 200K.

    .. math:: f(V) = 0.00639222 \\ln^2 V - 0.15811069 \\ln V + 1.20470122

    Training tokens are ``D = H f(V)`` for H characters.
    """
    return _f(np.minimum(np.asarray(V, dtype=float), V_CAP))


def fit_data(H: Any, V: Any) -> Any:
    """The D of the fitted law: H (in 1e9) times f evaluated at V in thousands, as the official fit does."""
    return (np.asarray(H, dtype=float) / H_UNIT) * _f(np.minimum(np.asarray(V, dtype=float), V_CAP) / V_UNIT)


def loss(p: Params, x: Inputs) -> Any:
    """L_u = -E + A1/N_nv^alpha1 + A2/(V d)^alpha2 + B/D^beta (normalised units; see the module docstring).

    Inputs in raw units: ``N_nonembed`` (count), ``V`` (count), ``d_model`` (count), ``H`` (characters).
    """
    n = np.asarray(x["N_nonembed"], dtype=float) / N_UNIT
    v = np.asarray(x["V"], dtype=float)
    nv = v * np.asarray(x["d_model"], dtype=float) / N_UNIT
    return (-p["E"] + p["A1"] * n ** (-p["alpha1"]) + p["A2"] * nv ** (-p["alpha2"])
            + p["B"] * fit_data(x["H"], v) ** (-p["beta"]))


# -- derived results ------------------------------------------------------------------------------
def compute_optimal_flops(N_nv: Any) -> Any:
    """The FLOP budget at which N_nv non-vocabulary parameters are compute-optimal (Tao et al. approach 1).

    Inverts ``N_nv_opt = exp(-2.4846510161625193) C^0.5``. This is the budget the authors' predictor
    uses for approach 3 when none is given (``optimal_Nv_predict.py``, ``Nnvopt_to_flops``).
    """
    n = np.asarray(N_nv, dtype=float)
    if np.any(~np.isfinite(n)) or np.any(n <= 0):
        raise ParameterError(invalid("The non-vocabulary parameter count 'N_nv'", N_nv, "a positive finite number"))
    return (n / np.exp(APPROACH1_LN_K)) ** (1.0 / APPROACH1_EXPONENT)


_SCALE_GRID = (0.0, 2.5, 5.0)
_EXP_GRID = (0.3, 0.7)

PRESETS = {
    "tao2024": Preset(
        "tao2024",
        {"A1": 1.8313851559554126, "A2": 0.19584238398665638, "B": 2.1241123120064955,
         "E": 5.5327846803337435, "alpha1": 0.44660634152009615, "alpha2": 0.6707374679896795,
         "beta": 0.44660634152009615},
        "Tao et al. 2024, arXiv 2407.13623, approach 3; coefficients as printed in the official predictor "
        "(sail-sg/scaling-with-vocab optimal_Nv_predict.py), LAWS.md section 8 [P+R] "
        "(A1 = 1.83139, A2 = 0.195842, B = 2.12411, E = 5.53278, alpha1 = beta = 0.446606, alpha2 = 0.670737)",
        "Fitted in normalised units (N_nv and V d in 1e6, H in 1e9 characters) with D = H f(V / 1e3), "
        "Huber 1e-3 on linear L_u residuals, alpha1 = beta imposed, points below 2.18e17 FLOPs dropped; "
        "models 33M-3B, V 4K-96K, SlimPajama.",
    ),
}

VOCAB = register(Law(
    name="vocab",
    formula=loss,
    params=(
        Param("A1", 0.0, 1e30, _SCALE_GRID, log=True, doc="non-vocabulary term scale"),
        Param("A2", 0.0, 1e30, _SCALE_GRID, log=True, doc="vocabulary-parameter term scale"),
        Param("B", 0.0, 1e30, _SCALE_GRID, log=True, doc="data term scale"),
        Param("E", 0.0, 1e3, (0.0, 2.0), log=True, doc="offset, L_u -> -E (nats/token)"),
        Param("alpha1", 0.0, 5.0, _EXP_GRID, doc="exponent of N_nv (1e6)"),
        Param("alpha2", 0.0, 5.0, _EXP_GRID, doc="exponent of V d (1e6)"),
        Param("beta", 0.0, 5.0, _EXP_GRID, doc="exponent of D (1e9)"),
    ),
    inputs=("N_nonembed", "V", "d_model", "H"),
    target="loss_u",
    n_input="N_nonembed",
    n_convention="non-vocabulary",
    title="Vocabulary scaling law (Tao et al. 2024, approach 3)",
    formula_text="L_u = -E + A1/N_nv^alpha1 + A2/(V d)^alpha2 + B/D^beta, D = H f(V/1e3); "
                 "N_nv, V d in 1e6, H in 1e9 characters",
    units="N_nv: non-vocabulary parameters; V: vocabulary size; d: embedding width; H: training characters; "
          "L_u: unigram-normalised loss (nats/token, negative)",
    citation="Tao et al. 2024, arXiv 2407.13623; sail-sg/scaling-with-vocab",
    objective=Objective("huber", 1e-3, "linear"),
    presets=PRESETS,
    grid_note="432 starts: ln A1, ln A2, ln B in {0, 2.5, 5}; ln E in {0, 2}; alpha1, alpha2, beta in "
              "{.3, .7} (the authors' grid, thinned: the law has no analytic Jacobian)",
))
