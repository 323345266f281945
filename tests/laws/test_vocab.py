"""The vocabulary law (Tao et al. 2024, approach 3): the authors' predictor, their fit's convention, a refit."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from scalinglab import laws
from scalinglab.errors import ParameterError
from scalinglab.fit import LawFit
from scalinglab.laws import vocab

LAW = laws.get("vocab")
PRESET = dict(LAW.preset("tao2024").params)


@pytest.mark.parametrize("n_nv, d, v_published, v_measured", [
    (7e9, 4096, 60_000, 59_548),           # LAWS.md section 8: approach 3 predicts ~60K
    (68.5e9, 8192, 214_000, 213_917),      # Llama-2-70B: ~214K
])
def test_optimal_vocab_reproduces_the_authors_predictor(n_nv, d, v_published, v_measured):
    # Their predictor (optimal_Nv_predict.py) sets the budget by approach 1, C = (N_nv / e^-2.48465)^2,
    # and solves dL_u/dV = 0 with D = C / (6 (N_nv + V d)) tokens.
    v = vocab.optimal_vocab(n_nv, d)
    assert v == pytest.approx(v_published, rel=0.05)
    assert v == pytest.approx(v_measured, abs=2)
    assert vocab.optimal_vocab(n_nv, d, vocab.compute_optimal_flops(n_nv)) == pytest.approx(v, rel=1e-9)


def test_compute_optimal_flops_inverts_approach_1():
    C = vocab.compute_optimal_flops(7e9)
    assert np.exp(-2.4846510161625193) * C**0.5 == pytest.approx(7e9, rel=1e-12)
    assert C == pytest.approx(7.052e21, rel=1e-3)


def test_optimal_vocab_grows_with_compute():
    v = [vocab.optimal_vocab(7e9, 4096, C) for C in (1e21, 1e22, 1e23)]
    assert np.all(np.diff(v) > 0)


def test_optimal_vocab_of_the_fitted_law_is_a_stationary_point():
    # data_term="law" minimises L_u(N_nv, V, H) as fitted (D = H f(V/1e3), H = tokens / f(V)).
    # It gives much smaller vocabularies than the authors' predictor: 34.8K and 60.0K.
    n_nv, d = 7e9, 4096
    C = vocab.compute_optimal_flops(n_nv)
    v = vocab.optimal_vocab(n_nv, d, data_term="law")
    assert v == pytest.approx(34_789, abs=5)
    assert vocab.optimal_vocab(68.5e9, 8192, data_term="law") == pytest.approx(59_965, abs=5)

    def L(V: float) -> float:
        H = C / (6 * (n_nv + V * d)) / vocab.tokens_per_char(V)
        return float(LAW.predict(PRESET, {"N_nonembed": n_nv, "V": V, "d_model": d, "H": H}))

    h = 1e-4 * v
    assert abs(L(v + h) - L(v - h)) / (2 * h) * v < 1e-7
    assert L(v) < min(L(0.9 * v), L(1.1 * v))


def test_preset_describes_the_authors_data_with_f_at_v_in_thousands():
    # Rows of sail-sg/scaling-with-vocab exp_data.csv (vocab_size, embed_dim, num_characters,
    # Non_vocab_parameters, Lossu). With f(V/1e3), as the official fit computes D, the preset is within
    # 0.25 nats; with f(V) (true tokens) it would be 0.7-1.4 off.
    rows = [(4096, 512, 3616410817.0415235, 33222784, -3.940192699432373),
            (96256, 512, 2585278878.482533, 33222784, -3.2000784873962402),
            (4096, 768, 904102704.2603809, 84834176, -2.983997106552124)]
    for V, d, H, N, Lu in rows:
        pred = float(LAW.predict(PRESET, {"N_nonembed": N, "V": V, "d_model": d, "H": H}))
        assert pred == pytest.approx(Lu, abs=0.25)


def test_tokens_per_char_is_capped_at_200k():
    assert vocab.tokens_per_char(300_000) == pytest.approx(vocab.tokens_per_char(200_000))
    # f(32000) ~ 0.25 tokens per character
    assert vocab.tokens_per_char(32_000) == pytest.approx(0.2519, abs=1e-3)


def test_objective_is_linear_because_the_loss_is_negative():
    assert (LAW.objective.kind, LAW.objective.space, LAW.objective.delta) == ("huber", "linear", 1e-3)
    assert LAW.target == "loss_u"


def test_synthetic_refit_recovers_the_parameters():
    models = {33e6: 512, 85e6: 768, 151e6: 768, 302e6: 1024, 631e6: 1536, 1130e6: 2048}
    rows = [{"N_nonembed": N, "V": V, "d_model": d, "H": h * 20 * N / 0.3}
            for (N, d), V, h in itertools.product(models.items(), [4096, 8192, 16384, 32768, 64512, 96256],
                                                  [0.25, 0.5, 1, 2])]
    df = pd.DataFrame(rows)
    rng = np.random.default_rng(0)
    df["loss_u"] = LAW.predict(PRESET, {k: df[k].to_numpy() for k in LAW.inputs}) + rng.normal(0, 0.002, len(df))
    fit = LawFit("vocab").fit(df).result_
    tol = {"A1": 0.02, "A2": 0.05, "B": 0.01, "E": 0.005, "alpha1": 0.02, "alpha2": 0.08, "beta": 0.01}
    for name, rel in tol.items():
        assert fit.params[name] == pytest.approx(PRESET[name], rel=rel), name


def test_errors_name_the_bad_value():
    with pytest.raises(ParameterError, match="'data_term' parameter of optimal_vocab must be one of"):
        vocab.optimal_vocab(7e9, 4096, data_term="chars")
    with pytest.raises(ParameterError, match="embedding width 'd' must be a positive finite number. Got -1"):
        vocab.optimal_vocab(7e9, -1)
    with pytest.raises(ParameterError, match=r"missing \['E'\]"):
        vocab.optimal_vocab(7e9, 4096, params={k: v for k, v in PRESET.items() if k != "E"})
