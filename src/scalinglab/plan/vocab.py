"""The vocabulary size a training run should use, under the vocabulary law (Tao et al. 2024, approach 3).

:func:`optimal_vocab` minimises the law's unigram-normalised loss L_u over V at a FLOP budget
C = 6 (N_nv + V d) D (bounded minimisation over ln V, ``scipy``). Units: N_nv non-vocabulary
parameters, d embedding width, V vocabulary size (counts), C FLOPs, D tokens. The law, its
normalisation and the tokens-per-character fit f(V) are in :mod:`scalinglab.laws.vocab`.

Reference: Tao et al. 2024, "Scaling Laws with Vocabulary: Larger Models Deserve Larger
Vocabularies", arXiv 2407.13623 (NeurIPS 2024); official code sail-sg/scaling-with-vocab
(``optimal_Nv_predict.py``), LAWS.md section 8.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import optimize

from ..errors import ParameterError, invalid
from ..laws import resolve_params
from ..laws import vocab as _vocab


def _params(params: Any) -> dict[str, float]:
    if params is None:
        return dict(_vocab.PRESETS["tao2024"].params)
    return resolve_params("vocab", _vocab.PARAM_NAMES, params)


def _positive(what: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ParameterError(invalid(what, value, "a positive finite number")) from None
    if not (np.isfinite(v) and v > 0):
        raise ParameterError(invalid(what, value, "a positive finite number"))
    return v


def optimal_vocab(N_nv: float, d: float, C: float | None = None, params: Any = None, *,
                  data_term: str = "tokens", V_range: tuple[float, float] = (1e2, 1e8)) -> float:
    """The vocabulary size that minimises L_u at a FLOP budget C = 6 (N_nv + V d) D.

    For each V the budget buys D = C / (6 (N_nv + V d)) tokens, i.e. H = D / f(V) characters. Two
    readings of the data term, which differ because the published fit's D is H f(V / 1e3)
    (``laws.vocab``'s module docstring):

    * ``data_term="tokens"`` (default): B / D^beta with D the tokens (in 1e9) the budget buys. This is
      what the authors' predictor minimises (``optimal_Nv_predict.py``, ``approach3_isoloss``; it
      solves dL_u/dV = 0 with D = F / (6 (N_nv + V d))), so it reproduces their V_opt: about 60K for
      N_nv = 7e9, d = 4096 and about 214K for N_nv = 68.5e9, d = 8192 at the approach-1 budgets; these
      agree with their approaches 1 and 2 (62K / 67K and 208K / 227K).
    * ``data_term="law"``: the law as fitted, L_u(N_nv, V, H) with H = D / f(V), whose data term is
      H f(V / 1e3). Internally consistent with the preset, but it gives much smaller vocabularies
      (about 35K and 60K for the two cases above) and disagrees with approaches 1 and 2.

    Args:
        N_nv: non-vocabulary parameters.
        d: embedding width.
        C: training FLOPs; by default ``laws.vocab.compute_optimal_flops`` of N_nv (the authors' default).
        params: the vocabulary law's parameters (mapping or Fit); the ``tao2024`` preset by default.
        data_term: ``"tokens"`` or ``"law"``, see above.
        V_range: the interval of V searched (bounded minimisation over ln V, ``scipy``).

    Returns:
        V_opt (a real number; round it to a multiple of 64 or 128 for a real tokenizer).
    """
    p = _params(params)
    n = _positive("The non-vocabulary parameter count 'N_nv'", N_nv)
    dd = _positive("The embedding width 'd'", d)
    c = float(_vocab.compute_optimal_flops(n)) if C is None else _positive("The FLOP budget 'C'", C)
    if data_term not in ("tokens", "law"):
        raise ParameterError(invalid("The 'data_term' parameter of optimal_vocab", data_term,
                                     "one of 'tokens', 'law'"))
    lo, hi = (_positive("The 'V_range' bounds", v) for v in V_range)
    if not lo < hi:
        raise ParameterError(invalid("The 'V_range' parameter", V_range, "an interval (lo, hi) with lo < hi"))

    def objective(ln_v: float) -> float:
        v = float(np.exp(ln_v))
        tokens = c / (6.0 * (n + v * dd))
        if data_term == "tokens":
            data = p["B"] * (tokens / _vocab.H_UNIT) ** (-p["beta"])
        else:
            data = p["B"] * _vocab.fit_data(tokens / _vocab.tokens_per_char(v), v) ** (-p["beta"])
        return float(p["A2"] * (v * dd / _vocab.N_UNIT) ** (-p["alpha2"]) + data)

    res = optimize.minimize_scalar(objective, bounds=(np.log(lo), np.log(hi)), method="bounded",
                                   options={"xatol": 1e-10})
    return float(np.exp(res.x))


__all__ = ["optimal_vocab"]
