"""benchmarks/anneal_curves.py's noise floor: zero on a curve the polynomial holds exactly, the known mean
absolute deviation of a +/- e alternation added to it, and NaN on too few points."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import numpy as np
import pytest

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def bench(load_benchmark: Callable[[str, str], ModuleType]) -> ModuleType:
    return load_benchmark("anneal_curves.py", "anneal_curves_bench")


def test_smooth_floor_is_zero_on_a_power_law_in_the_step(bench: ModuleType) -> None:
    steps = np.arange(12, 1201, 12)
    loss = 1.5 + 0.0 * steps + 3.0 * steps ** -0.3          # ln loss is smooth, not a polynomial: near 0
    assert bench.smooth_floor(steps, loss) < 1e-5
    exact = np.exp(0.4 - 0.1 * np.log(steps) + 0.01 * np.log(steps) ** 2)   # exactly a polynomial in ln step
    assert bench.smooth_floor(steps, exact) < 1e-12


def test_smooth_floor_measures_an_alternation(bench: ModuleType) -> None:
    steps = np.arange(12, 1201, 12)
    e = 0.01
    sign = np.where(np.arange(steps.size) % 2 == 0, 1.0, -1.0)
    base = np.exp(0.4 - 0.1 * np.log(steps))
    # a +/- e alternation in ln loss is nearly orthogonal to a degree-10 polynomial: the floor is ~ e
    got = bench.smooth_floor(steps, base * np.exp(e * sign))
    assert got == pytest.approx(np.expm1(e), rel=0.05)
    assert np.isnan(bench.smooth_floor(steps[:21], base[:21]))
