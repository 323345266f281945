"""The group calibration schemes: random group offsets, pair-weighted conformal ranks, narrowing."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from scalinglab.errors import DataError, ParameterError
from scalinglab.fit import Fit, LawFit
from scalinglab.fit.calibrate import (
    DEFAULT_SCHEME,
    SCHEMES,
    calibrated_interval,
    estimate,
    group_conformal_factor,
    group_error_model,
    offset_prior,
    small_sample_factor,
    span_of,
    with_scheme,
)
from scalinglab.fit.predict import predict

TRUE = {"E": 1.7, "A": 400.0, "B": 410.0, "alpha": 0.34, "beta": 0.28}


def ladder(noise: float, seed: int, budgets: tuple[float, ...]) -> pd.DataFrame:
    """An IsoFLOP ladder on the Chinchilla surface TRUE: 6 sizes per budget, D = C / (6 N)."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in budgets:
        for n in (c / 6) ** 0.5 / 4 * np.geomspace(0.2, 5, 6):
            d = c / (6 * n)
            loss = TRUE["E"] + TRUE["A"] / n ** TRUE["alpha"] + TRUE["B"] / d ** TRUE["beta"]
            rows.append({"N": n, "D": d, "budget_flops": c, "loss": loss * np.exp(noise * rng.standard_normal())})
    return pd.DataFrame(rows)


def start() -> list[list[float]]:
    return [[np.log(TRUE["E"]), np.log(TRUE["A"]), np.log(TRUE["B"]), TRUE["alpha"], TRUE["beta"]]]


def test_group_model_recovers_a_shared_offset() -> None:
    # 600 pairs of 8 rows: offset sd 0.02 + 0.03 x shared by a pair, row noise sd 0.01
    rng = np.random.default_rng(1)
    x_pair = rng.uniform(0.2, 2.0, 600)
    b = rng.standard_normal(600) * (0.02 + 0.03 * x_pair)
    pairs = np.repeat(np.arange(600), 8)
    e = b[pairs] + 0.01 * rng.standard_normal(pairs.size)
    s, g, a, tau = group_error_model(e, x_pair[pairs], pairs)
    assert (s, a, tau) == (pytest.approx(0.01, rel=0.05), pytest.approx(0.02, rel=0.2), pytest.approx(0.03, rel=0.15))
    assert g == 0.0                                  # no spans: no span dependence
    # the same errors shuffled across pairs carry no shared offset: it is all row noise
    s0, _, a0, tau0 = group_error_model(rng.permutation(e), x_pair[pairs], pairs)
    assert a0 + tau0 < 0.25 * (0.02 + 0.03) and s0 > 0.02


def test_group_model_recovers_row_noise_shrinking_with_the_span() -> None:
    # row noise sd 0.01 w^-1 (w = 0.25 .. 4 decades), offsets sd 0.01 + 0.02 x
    rng = np.random.default_rng(2)
    w_pair = np.exp(rng.uniform(np.log(0.25), np.log(4.0), 800))
    x_pair = rng.uniform(0.1, 1.5, 800)
    pairs = np.repeat(np.arange(800), 8)
    e = (rng.standard_normal(800) * (0.01 + 0.02 * x_pair))[pairs] \
        + 0.01 / w_pair[pairs] * rng.standard_normal(pairs.size)
    s, g, a, tau = group_error_model(e, x_pair[pairs], pairs, w_pair[pairs])
    assert (s, g) == (pytest.approx(0.01, rel=0.05), pytest.approx(1.0, abs=0.05))
    assert (a, tau) == (pytest.approx(0.01, abs=0.004), pytest.approx(0.02, rel=0.2))


def test_pair_weighted_conformal_rank_is_exact() -> None:
    # sigma = 1 everywhere (s = 1, a = tau = 0): the scores are |e|. Pair 0 has 3 rows (weight 1/3
    # each), pairs 1..4 one row each; P = 5 pairs.
    cal = {"method": "internal-rollout", "scheme": "group", "group_s": 1.0, "group_gamma": 0.0, "group_a": 0.0,
           "group_tau": 0.0,
           "errors": [0.1, -0.2, 0.3, 1.0, -2.0, 3.0, 4.0], "distances": [1.0] * 7, "spans": [1.0] * 7,
           "pairs": [0, 0, 0, 1, 2, 3, 4]}
    # sorted scores 0.1 0.2 0.3 | 1 2 3 4 with cumulative weights 1/15 2/15 3/15 | 2/5 3/5 4/5 1
    assert group_conformal_factor(cal, 0.5) == 2.0     # target 0.5 * 6/5 = 0.6: the 5th score
    assert group_conformal_factor(cal, 0.2) == 1.0     # target 0.24 > 3/15: the 4th score
    assert group_conformal_factor(cal, 0.15) == 0.3    # target 0.18 <= 3/15
    assert group_conformal_factor(cal, 0.8) == pytest.approx(4.0)   # target 0.96: the last
    # 95%: target 1.14 > 1, too few pairs: the largest score or the normal quantile, the larger
    assert group_conformal_factor(cal, 0.95) == 4.0
    small = {**cal, "errors": [0.1, 0.2, 0.3, 0.1, 0.2, 0.3, 0.1]}
    assert group_conformal_factor(small, 0.95) == pytest.approx(1.959964, rel=1e-6)


def test_group_tq_takes_the_quantile_at_the_nominal_level() -> None:
    # the ranks of test_pair_weighted_conformal_rank_is_exact, at the level itself (no (P + 1) / P)
    cal = {"method": "internal-rollout", "scheme": "group-tq", "group_s": 1.0, "group_gamma": 0.0, "group_a": 0.0,
           "group_tau": 0.0,
           "errors": [0.1, -0.2, 0.3, 1.0, -2.0, 3.0, 4.0], "distances": [1.0] * 7, "spans": [1.0] * 7,
           "pairs": [0, 0, 0, 1, 2, 3, 4]}
    t = {**cal, "scheme": "group-t"}
    # cumulative weights 1/15 2/15 3/15 | 2/5 3/5 4/5 1 of the scores 0.1 0.2 0.3 | 1 2 3 4
    assert group_conformal_factor(cal, 0.5) == 2.0 == group_conformal_factor(t, 0.5)    # 0.5: 3/5; group-t 0.6
    assert group_conformal_factor(cal, 0.7) == 3.0 and group_conformal_factor(t, 0.7) == 4.0   # group-t 0.84
    assert group_conformal_factor(cal, 0.8) == 3.0 and group_conformal_factor(t, 0.8) == 4.0   # at 4/5 exactly
    assert group_conformal_factor(cal, 0.2) == 0.3 and group_conformal_factor(t, 0.2) == 1.0
    # the small-P rule is group-t's: at 95% the target 0.95 * 6 / 5 > 1, the Student t quantile with 5 dof
    assert group_conformal_factor(cal, 0.95) == pytest.approx(small_sample_factor(5, 0.95), rel=1e-12)
    assert group_conformal_factor(cal, 0.95) == group_conformal_factor(t, 0.95)


def t3_cdf(t: float) -> float:
    """Student's t CDF with 3 degrees of freedom in closed form: 1/2 + (u/(1 + u^2) + atan u) / pi, u = t / sqrt 3."""
    u = t / np.sqrt(3.0)
    return float(0.5 + (u / (1 + u * u) + np.arctan(u)) / np.pi)


def test_small_sample_factor_is_the_student_t_quantile() -> None:
    # closed forms: t_1(p) = tan(pi (p - 1/2)), t_2(p) = (2p - 1) / sqrt(2 p (1 - p))
    assert small_sample_factor(1, 0.8) == pytest.approx(np.tan(0.4 * np.pi), rel=1e-12)        # 3.0777
    assert small_sample_factor(1, 0.95) == pytest.approx(np.tan(0.475 * np.pi), rel=1e-12)      # 12.706
    assert small_sample_factor(2, 0.8) == pytest.approx(0.8 / np.sqrt(0.18), rel=1e-12)         # 1.8856
    assert small_sample_factor(2, 0.95) == pytest.approx(0.95 / np.sqrt(2 * 0.975 * 0.025), rel=1e-12)  # 4.3027
    assert t3_cdf(small_sample_factor(3, 0.8)) == pytest.approx(0.9, abs=1e-12)                 # 1.6377
    # between the normal quantile and far above it: wider for fewer pairs, the normal one in the limit
    assert small_sample_factor(3, 0.8) < small_sample_factor(2, 0.8) < small_sample_factor(1, 0.8)
    assert small_sample_factor(10 ** 6, 0.8) == pytest.approx(1.2815516, rel=1e-5)
    with pytest.raises(ParameterError, match="internal rollout pairs"):
        small_sample_factor(0, 0.8)


def test_group_t_differs_from_group_only_with_too_few_pairs() -> None:
    # two pairs (sigma = 1: the scores are |e|): pair 0 two rows, pair 1 one row
    cal = {"method": "internal-rollout", "scheme": "group-t", "group_s": 1.0, "group_gamma": 0.0, "group_a": 0.0,
           "group_tau": 0.0, "errors": [0.5, -1.5, 2.5], "distances": [1.0] * 3, "spans": [1.0] * 3,
           "pairs": [0, 0, 1]}
    old = {**cal, "scheme": "group"}
    # 80%: target 0.8 * 3 / 2 = 1.2 > 1. group-t: t_2(0.9); group: max(largest score 2.5, z = 1.28)
    assert group_conformal_factor(cal, 0.8) == pytest.approx(0.8 / np.sqrt(0.18), rel=1e-12)
    assert group_conformal_factor(old, 0.8) == 2.5
    # 50%: target 0.75 <= 1, the conformal rank for both: cumulative weights 1/4 (0.5), 1/2 (1.5), 1 (2.5)
    assert group_conformal_factor(cal, 0.5) == group_conformal_factor(old, 0.5) == 2.5
    assert group_conformal_factor(cal, 0.3) == group_conformal_factor(old, 0.3) == 1.5   # target 0.45
    # one pair: t_1
    one = {**cal, "errors": [0.5, -1.5], "distances": [1.0] * 2, "spans": [1.0] * 2, "pairs": [3, 3]}
    assert group_conformal_factor(one, 0.8) == pytest.approx(np.tan(0.4 * np.pi), rel=1e-12)
    # the interval beyond the data scales with the factor: half-width c * sigma, sigma = 1 here
    pts = pd.DataFrame({"C": [1e21]})
    band = {**cal, "axis": "C", "x_min": 1e18, "x_max": 1e20}
    lo, hi = calibrated_interval(band, pts, np.ones(1), np.ones(1), np.ones(1), 0.8)
    assert (np.log(hi[0]), -np.log(lo[0])) == (pytest.approx(0.8 / np.sqrt(0.18)), pytest.approx(0.8 / np.sqrt(0.18)))


def test_group_interval_narrows_and_union_does_not() -> None:
    # internal errors all 0.01 at distance 1 decade: the band is far narrower than a wide observation interval
    cal = {"method": "internal-rollout", "axis": "C", "x_min": 1e18, "x_max": 1e20, "s": 0.0,
           "errors": [0.01, -0.01] * 10, "distances": [1.0] * 20, "spans": [1.0] * 20,
           "pairs": list(range(20))}
    pts = pd.DataFrame({"C": [1e19, 1e21]})
    center = np.full(2, 2.0)
    lo, hi = center * 0.9, center * 1.1
    g = with_scheme(cal, "group")
    assert g["group_s"] + g["group_a"] + g["group_tau"] > 0
    glo, ghi = calibrated_interval(g, pts, center, lo, hi, 0.8)
    assert (glo[0], ghi[0]) == (1.8, 2.2)                    # inside the data: the observation interval
    assert 2.0 * np.exp(-0.0101) < glo[1] < 2.0 * np.exp(-0.009) and ghi[1] < 2.0 * np.exp(0.0101)
    ulo, uhi = calibrated_interval(with_scheme(cal, "group-union"), pts, center, lo, hi, 0.8)
    assert (ulo[1], uhi[1]) == (1.8, 2.2)                    # the union never narrows
    # relative distance: the full data span 2 decades, the internal fits 1. Errors 0.02 one decade
    # out and 0.04 two decades out: 2 decades beyond the full fit is x = 2 (absolute) but x = 1 (relative)
    grow = {**cal, "errors": [0.02, -0.02] * 10 + [0.04, -0.04] * 10, "distances": [1.0] * 20 + [2.0] * 20,
            "spans": [1.0] * 40, "pairs": list(range(40))}
    far = pd.DataFrame({"C": [1e22]})
    _, rhi = calibrated_interval(with_scheme(grow, "group-rel"), far, center[:1], lo[:1], hi[:1], 0.5)
    _, ahi = calibrated_interval(with_scheme(grow, "group"), far, center[:1], lo[:1], hi[:1], 0.5)
    assert np.log(ahi[0] / 2.0) > 1.5 * np.log(rhi[0] / 2.0)
    assert span_of(np.array([1e18, 1e20])) == pytest.approx(2.0)


def test_estimate_records_pairs_and_spans() -> None:
    budgets = tuple(np.geomspace(1e17, 1e20, 4))
    df = ladder(0.005, seed=2, budgets=budgets)
    cal = estimate(df, "chinchilla", "budget_flops", decades=None, seed=0, residual_rms=0.005, fit_kwargs={},
                   best=np.asarray(start()[0]))
    assert cal["scheme"] == DEFAULT_SCHEME and cal["n_errors"] == 6 * (2 + 1)
    # k = 2 predicts budgets 3 and 4 (pairs 0, 1), k = 3 budget 4 (pair 2)
    assert cal["pairs"] == [0] * 6 + [1] * 6 + [2] * 6
    assert cal["spans"] == pytest.approx([1.0] * 12 + [2.0] * 6)
    assert cal["x_min"] == pytest.approx(1e17) and cal["x_max"] == pytest.approx(1e20)
    for sc in SCHEMES:
        assert with_scheme(cal, sc)["scheme"] == sc
    # three pairs: at 80% (target 0.8 * 4 / 3 > 1) the group-t multiplier is t_3(0.9)
    assert DEFAULT_SCHEME == "group-tp"
    # drift-p carries the shipped drift prior and the drift model of its two prefixes
    prior = offset_prior()
    dp = with_scheme(cal, "drift-p")
    assert dp["drift_prior_sd"] == prior["drift_sd"] and dp["drift_prior_n"] == prior["drift_pairs"]
    assert dp["drift_n"] == 2
    # its centre: the last prefix's one-step pair (k = 3 predicting budget 4, pair 2), mean error / mean distance
    e, d, p = (np.asarray(cal[k], dtype=float) for k in ("errors", "distances", "pairs"))
    assert dp["drift_beta"] == pytest.approx(e[p == 2].mean() / d[p == 2].mean(), rel=1e-12)
    assert t3_cdf(group_conformal_factor(with_scheme(cal, "group-t"), 0.8)) == pytest.approx(0.9, abs=1e-12)
    with pytest.raises(ParameterError, match="calibration scheme"):
        with_scheme(cal, "bogus")


def test_calibrated_fit_round_trips_and_old_records_stay_row() -> None:
    df = ladder(0.005, seed=4, budgets=tuple(np.geomspace(1e17, 1e20, 5)))
    df["loss"] *= 1 + 0.03 * np.log10(df["budget_flops"] / 1e17)   # a bend the law cannot follow
    fit = LawFit("chinchilla", bootstrap=30, starts=start(), calibrate="budget_flops").fit(df).result_
    assert fit.calibration["scheme"] == DEFAULT_SCHEME
    again = Fit.from_dict(json.loads(fit.to_json()))
    far = pd.DataFrame({"N": [1e10], "D": [1e22 / 6e10]})
    p1, p2 = predict(fit, far), predict(again, far)
    assert p1.attrs["interval"] == "extrapolation-calibrated"
    assert (p1["lo"].iloc[0], p1["hi"].iloc[0]) == (p2["lo"].iloc[0], p2["hi"].iloc[0])
    # a record written before schemes existed (no "scheme") is read as the row scheme
    old = {k: v for k, v in fit.calibration.items()
           if k not in ("scheme", "spans", "pairs", "x_min") and not k.startswith("group_")}
    legacy = with_scheme(old, "row")
    a = predict(dataclasses.replace(fit, calibration=old), far)
    b = predict(dataclasses.replace(fit, calibration=legacy), far)
    assert (a["lo"].iloc[0], a["hi"].iloc[0]) == (b["lo"].iloc[0], b["hi"].iloc[0])
    d = json.loads(fit.to_json())
    d["calibration"]["scheme"] = "bogus"
    with pytest.raises(DataError, match="calibration.scheme"):
        Fit.from_dict(d)
    d["calibration"]["scheme"] = "group"
    d["calibration"]["pairs"] = d["calibration"]["pairs"][:-1]
    with pytest.raises(DataError, match="calibration.pairs"):
        Fit.from_dict(d)


def test_a_stored_group_fit_keeps_its_fallback() -> None:
    # a FIT.json written with scheme "group" (the default before group-t) builds its interval as before
    df = ladder(0.005, seed=4, budgets=tuple(np.geomspace(1e17, 1e20, 4)))   # 3 internal pairs: the fallback
    fit = LawFit("chinchilla", bootstrap=30, starts=start(), calibrate="budget_flops",
                 calibrate_scheme="group").fit(df).result_
    again = Fit.from_dict(json.loads(fit.to_json()))
    assert again.calibration["scheme"] == "group"
    cal = again.calibration
    scores_max = max(float(special_max(cal)), 1.2815515655446004)
    assert group_conformal_factor(cal, 0.8) == pytest.approx(scores_max, rel=1e-12)
    far = pd.DataFrame({"N": [1e10], "D": [1e22 / 6e10]})
    g, t = predict(again, far, level=0.8), predict(dataclasses.replace(again, calibration=with_scheme(cal, "group-t")),
                                                   far, level=0.8)
    assert (g["lo"].iloc[0], g["hi"].iloc[0]) != (t["lo"].iloc[0], t["hi"].iloc[0])


def special_max(cal: dict) -> float:
    """The largest score |e| / sqrt((s w^-gamma)^2 + (a + tau d)^2) of a group record, by hand."""
    e, d, w = (np.asarray(cal[k], dtype=float) for k in ("errors", "distances", "spans"))
    s_w = cal["group_s"] * w ** -cal["group_gamma"]
    return float(np.max(np.abs(e) / np.sqrt(s_w ** 2 + (cal["group_a"] + cal["group_tau"] * d) ** 2)))


def test_unknown_scheme_is_a_parameter_error() -> None:
    with pytest.raises(ParameterError, match="calibrate_scheme"):
        LawFit("chinchilla", calibrate="budget_flops", calibrate_scheme="nope").check()


def test_group_tp_shrinks_the_offset_towards_the_prior() -> None:
    # one pair whose offset the ladder estimated as 0 (a = tau = 0), row noise s = 0.01 (gamma 0);
    # prior a0 + tau0 x = 0.02 + 0.04 x worth P0 = 1 pair. At x = 0.5 decades: offset variance
    # (1 * 0 + 1 * 0.04^2) / 2 = 0.0008, sigma = sqrt(0.0001 + 0.0008) = 0.03; multiplier t_(1+1)
    cal = {"method": "internal-rollout", "scheme": "group-tp", "axis": "C", "x_min": 1e18, "x_max": 1e20,
           "group_s": 0.01, "group_gamma": 0.0, "group_a": 0.0, "group_tau": 0.0,
           "group_prior_a": 0.02, "group_prior_tau": 0.04, "group_prior_pairs": 1.0,
           "errors": [0.001, -0.002], "distances": [0.3, 0.3], "spans": [1.0, 1.0], "pairs": [0, 0]}
    pts = pd.DataFrame({"C": [1e20 * 10 ** 0.5, 1e19]})
    center = np.full(2, 3.0)
    lo, hi = calibrated_interval(cal, pts, center, center * 0.99, center * 1.01, 0.8)
    t2 = 0.8 / np.sqrt(0.18)                                   # t_2(0.9) = 1.8856
    assert group_conformal_factor(cal, 0.8) == pytest.approx(t2, rel=1e-12)
    assert np.log(hi[0] / 3.0) == pytest.approx(t2 * 0.03, rel=1e-12)
    assert np.log(3.0 / lo[0]) == pytest.approx(t2 * 0.03, rel=1e-12)
    assert (lo[1], hi[1]) == (pytest.approx(2.97), pytest.approx(3.03))     # inside the data: observation
    # the same record without the prior (group-t): sigma = s = 0.01, multiplier t_1
    bare = {k: v for k, v in cal.items() if not k.startswith("group_prior")} | {"scheme": "group-t"}
    _, hi_t = calibrated_interval(bare, pts, center, center * 0.99, center * 1.01, 0.8)
    assert np.log(hi_t[0] / 3.0) == pytest.approx(np.tan(0.4 * np.pi) * 0.01, rel=1e-12)
    # three pairs, own offset 0.05 flat, prior 0.02 flat worth 1: variance (3 * 0.0025 + 0.0004) / 4
    # = 0.001975, s = 0; at 95% the t quantile with 3 + 1 = 4 degrees of freedom, 2.7764451
    three = {**cal, "group_s": 0.0, "group_a": 0.05, "group_prior_tau": 0.0, "errors": [0.01, 0.02, 0.03],
             "distances": [0.3] * 3, "spans": [1.0] * 3, "pairs": [0, 1, 2]}
    assert group_conformal_factor(three, 0.95) == pytest.approx(2.7764451, rel=1e-6)
    _, hi3 = calibrated_interval(three, pts, center, center, center, 0.95)
    assert np.log(hi3[0] / 3.0) == pytest.approx(2.7764451 * np.sqrt(0.001975), rel=1e-6)


def test_group_tp_copies_the_shipped_prior_and_keeps_it_when_stored(monkeypatch: pytest.MonkeyPatch) -> None:
    prior = offset_prior()
    assert prior["pairs"] == 1.0 and 0 < prior["a"] < 0.1 and 0 < prior["tau"] < 0.1
    assert sorted(prior["sets"]) == sorted([
        "porian-rw-base-long-kaplan-kaplan-train", "porian-rw-base-long-kaplan-standard-val",
        "porian-rw-base-short-chinchilla-standard-val", "porian-rw-base-short-kaplan-standard-val",
        "porian-rw-tuned-short-const-standard-val", "gadre-c4_original"])
    df = ladder(0.005, seed=4, budgets=tuple(np.geomspace(1e17, 1e20, 4)))
    df["loss"] *= 1 + 0.03 * np.log10(df["budget_flops"] / 1e17)
    fit = LawFit("chinchilla", bootstrap=30, starts=start(), calibrate="budget_flops",
                 calibrate_scheme="group-tp").fit(df).result_
    cal = fit.calibration
    assert (cal["group_prior_a"], cal["group_prior_tau"], cal["group_prior_pairs"]) == (
        prior["a"], prior["tau"], prior["pairs"])
    # its own (s, gamma, a, tau) are group-t's: only the prior is added
    t_cal = with_scheme(cal, "group-t")
    assert all(cal[k] == t_cal[k] for k in ("group_s", "group_gamma", "group_a", "group_tau"))
    far = pd.DataFrame({"N": [1e10], "D": [1e22 / 6e10]})
    before = predict(fit, far, level=0.8)
    # a later package with another prior does not change a stored fit
    monkeypatch.setattr("scalinglab.fit.calibrate.offset_prior", lambda: {"a": 0.5, "tau": 0.5, "pairs": 9.0})
    again = Fit.from_dict(json.loads(fit.to_json()))
    after = predict(again, far, level=0.8)
    assert (after["lo"].iloc[0], after["hi"].iloc[0]) == (before["lo"].iloc[0], before["hi"].iloc[0])
    assert with_scheme(cal, "group-tp")["group_prior_pairs"] == 9.0          # a rebuild takes the new one
    d = json.loads(fit.to_json())
    d["calibration"]["group_prior_pairs"] = -1
    with pytest.raises(DataError, match="calibration.group_prior_pairs"):
        Fit.from_dict(d)
