"""The optimal vocabulary under the vocabulary law (Tao et al. 2024, approach 3): the authors' predictor."""

from __future__ import annotations

import numpy as np
import pytest

from scalinglab import laws
from scalinglab.errors import ParameterError
from scalinglab.laws import vocab
from scalinglab.plan.vocab import optimal_vocab

LAW = laws.get("vocab")
PRESET = dict(LAW.preset("tao2024").params)


@pytest.mark.parametrize("n_nv, d, v_published, v_measured", [
    (7e9, 4096, 60_000, 59_548),           # LAWS.md section 8: approach 3 predicts ~60K
    (68.5e9, 8192, 214_000, 213_917),      # Llama-2-70B: ~214K
])
def test_optimal_vocab_reproduces_the_authors_predictor(n_nv, d, v_published, v_measured):
    # Their predictor (optimal_Nv_predict.py) sets the budget by approach 1, C = (N_nv / e^-2.48465)^2,
    # and solves dL_u/dV = 0 with D = C / (6 (N_nv + V d)) tokens.
    v = optimal_vocab(n_nv, d)
    assert v == pytest.approx(v_published, rel=0.05)
    assert v == pytest.approx(v_measured, abs=2)
    assert optimal_vocab(n_nv, d, vocab.compute_optimal_flops(n_nv)) == pytest.approx(v, rel=1e-9)


def test_optimal_vocab_grows_with_compute():
    v = [optimal_vocab(7e9, 4096, C) for C in (1e21, 1e22, 1e23)]
    assert np.all(np.diff(v) > 0)


def test_optimal_vocab_of_the_fitted_law_is_a_stationary_point():
    # data_term="law" minimises L_u(N_nv, V, H) as fitted (D = H f(V/1e3), H = tokens / f(V)).
    # It gives much smaller vocabularies than the authors' predictor: 34.8K and 60.0K.
    n_nv, d = 7e9, 4096
    C = vocab.compute_optimal_flops(n_nv)
    v = optimal_vocab(n_nv, d, data_term="law")
    assert v == pytest.approx(34_789, abs=5)
    assert optimal_vocab(68.5e9, 8192, data_term="law") == pytest.approx(59_965, abs=5)

    def L(V: float) -> float:
        H = C / (6 * (n_nv + V * d)) / vocab.tokens_per_char(V)
        return float(LAW.predict(PRESET, {"N_nonembed": n_nv, "V": V, "d_model": d, "H": H}))

    h = 1e-4 * v
    assert abs(L(v + h) - L(v - h)) / (2 * h) * v < 1e-7
    assert L(v) < min(L(0.9 * v), L(1.1 * v))


def test_errors_name_the_bad_value():
    with pytest.raises(ParameterError, match="'data_term' parameter of optimal_vocab must be one of"):
        optimal_vocab(7e9, 4096, data_term="chars")
    with pytest.raises(ParameterError, match="embedding width 'd' must be a positive finite number. Got -1"):
        optimal_vocab(7e9, -1)
    with pytest.raises(ParameterError, match=r"missing \['E'\]"):
        optimal_vocab(7e9, 4096, params={k: v for k, v in PRESET.items() if k != "E"})
