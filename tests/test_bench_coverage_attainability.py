"""benchmarks/coverage_attainability.py: the simulated coverage of a perfectly calibrated interval on
correlated test groups, against answers known exactly (binomial at rho 0, all-or-nothing groups at rho 1)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from types import ModuleType

import numpy as np
import pytest
from scipy import stats


@pytest.fixture(scope="module")
def bench(load_benchmark: Callable[[str, str], ModuleType]) -> ModuleType:
    return load_benchmark("coverage_attainability.py", "coverage_attainability_bench")


def _in_band(k: int, n: int, level: float) -> bool:
    # the band, written out independently: 70% <= k/n <= 90% at 80%, k/n >= 85% at 95%
    return 70 * n <= 100 * k <= 90 * n if level == 0.8 else 100 * k >= 85 * n


def _binomial_band(n: int, level: float) -> float:
    return float(sum(stats.binom.pmf(k, n, level) for k in range(n + 1) if _in_band(k, n, level)))


def _all_or_nothing_band(sizes: list[int], level: float) -> float:
    """rho = 1: every group is wholly inside (probability ``level``) or wholly outside."""
    n, total = sum(sizes), 0.0
    for inside in itertools.product((0, 1), repeat=len(sizes)):
        k = sum(s for s, b in zip(sizes, inside) if b)
        if _in_band(k, n, level):
            total += math.prod(level if b else 1 - level for b in inside)
    return total


def test_band_edges_are_inclusive(bench: ModuleType) -> None:
    k = np.arange(11)
    assert bench.in_band_counts(k, 10, 0.8).tolist() == [False] * 7 + [True] * 3 + [False]
    assert bench.in_band_counts(np.arange(21), 20, 0.95).tolist() == [False] * 17 + [True] * 4


@pytest.mark.parametrize("n", [10, 17, 19, 166])
def test_exact_binomial_band(bench: ModuleType, n: int) -> None:
    for level in (0.8, 0.95):
        assert bench.exact_binomial_band(n, level) == pytest.approx(_binomial_band(n, level), abs=1e-12)


@pytest.mark.parametrize("sizes", [[5, 4, 4, 4], [4, 5, 5, 5], [12, 9, 11]])
def test_rho0_simulation_matches_binomial(bench: ModuleType, sizes: list[int]) -> None:
    sims = 40000
    p = bench.band_probabilities(sizes, 0.0, sims, seed=1)
    for key, level in (("p80", 0.8), ("p95", 0.95)):
        exact = _binomial_band(sum(sizes), level)
        assert abs(p[key] - exact) <= 4 * math.sqrt(exact * (1 - exact) / sims) + 1e-9, (key, p[key], exact)


@pytest.mark.parametrize("sizes", [[5, 4, 4, 4], [10, 1, 3], [1, 2, 3, 4, 5, 6]])
def test_rho1_simulation_is_all_or_nothing(bench: ModuleType, sizes: list[int]) -> None:
    sims = 40000
    counts = bench.simulate_counts(sizes, 1.0, sims, np.random.default_rng(2))
    subset_sums = {sum(c) for r in range(len(sizes) + 1) for c in itertools.combinations(sizes, r)}
    for level in (0.8, 0.95):
        assert set(np.unique(counts[level]).tolist()) <= subset_sums      # each group wholly in or out
    p = bench.band_probabilities(sizes, 1.0, sims, seed=3)
    for key, level in (("p80", 0.8), ("p95", 0.95)):
        exact = _all_or_nothing_band(sizes, level)
        assert abs(p[key] - exact) <= 4 * math.sqrt(exact * (1 - exact) / sims) + 1e-9, (key, p[key], exact)


def test_correlation_makes_the_band_harder(bench: ModuleType) -> None:
    sizes = [10] * 10
    ps = [bench.band_probabilities(sizes, rho, 20000, seed=4)["p80"] for rho in (0.0, 0.3, 0.9)]
    assert ps[0] > ps[1] > ps[2]


def test_icc_anova(bench: ModuleType) -> None:
    rng = np.random.default_rng(5)
    rho = 0.4
    groups = [np.sqrt(rho) * rng.standard_normal() + np.sqrt(1 - rho) * rng.standard_normal(int(n))
              for n in rng.integers(3, 8, size=400)]
    est = bench.icc_anova(groups)
    assert est["rho"] == pytest.approx(rho, abs=0.08)
    assert bench.pooled_icc([est]) == pytest.approx(est["rho"], abs=1e-12)
    # the same groups split in two sets, each with its own mean shifted: pooling removes the shift
    a, b = bench.icc_anova(groups[:200]), bench.icc_anova([g + 5.0 for g in groups[200:]])
    assert bench.pooled_icc([a, b]) == pytest.approx(rho, abs=0.08)
    assert bench.icc_anova([np.full(3, 1.0), np.full(4, -2.0), np.full(2, 0.5)])["rho"] == pytest.approx(1.0)
    same_mean = bench.icc_anova([np.array([-1.0, 1.0]), np.array([-2.0, 2.0]), np.array([-0.5, 0.5])])
    assert same_mean["rho_raw"] < 0 and same_mean["rho"] == 0.0
    assert math.isnan(bench.icc_anova([np.array([1.0, 2.0])])["rho"])


def test_bad_input(bench: ModuleType) -> None:
    rng = np.random.default_rng(0)
    for sizes, rho, sims in (([], 0.0, 10), ([3, 0], 0.0, 10), ([3], 1.5, 10), ([3], 0.5, 0)):
        with pytest.raises(ValueError):
            bench.simulate_counts(sizes, rho, sims, rng)
