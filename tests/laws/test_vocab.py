"""The vocabulary law (Tao et al. 2024, approach 3): the authors' predictor, their fit's convention, a refit."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from scalinglab import laws
from scalinglab.fit import LawFit
from scalinglab.laws import vocab

LAW = laws.get("vocab")
PRESET = dict(LAW.preset("tao2024").params)


def test_compute_optimal_flops_inverts_approach_1():
    C = vocab.compute_optimal_flops(7e9)
    assert np.exp(-2.4846510161625193) * C**0.5 == pytest.approx(7e9, rel=1e-12)
    assert C == pytest.approx(7.052e21, rel=1e-3)


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
