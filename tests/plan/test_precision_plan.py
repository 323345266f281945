"""Optimisers over the floating-point quantization law (Sun et al. 2025): the best format and precision."""

from __future__ import annotations

import numpy as np
import pytest

from scalinglab import laws
from scalinglab.errors import ParameterError
from scalinglab.laws import precision
from scalinglab.plan.precision import optimal_layout, optimal_precision

LAW = laws.get("precision")
PRESET = dict(LAW.preset("sun2025").params)


@pytest.mark.parametrize("bits, layout", [(4, (2, 1)), (8, (4, 3)), (16, (8, 7))])
def test_optimal_layout_of_common_formats(bits, layout):
    # Sun et al. 2025: FP4 -> E2M1, FP8 -> E4M3, FP16 -> E8M7 (BF16)
    assert optimal_layout(PRESET, bits) == layout


def test_optimal_layout_is_the_rounded_continuous_optimum():
    for bits in range(3, 17):
        e_cont, m_cont = precision.optimal_layout_continuous(PRESET, bits)
        assert e_cont + m_cont == pytest.approx(bits - 1)
        assert optimal_layout(PRESET, bits) == (round(e_cont), bits - 1 - round(e_cont))


def test_optimal_precision_at_fixed_data_matches_the_closed_form():
    for D in (1e11, 1e12, 1e13):
        closed = precision.optimal_precision_fixed_data(PRESET, D, 128)
        numeric = optimal_precision(PRESET, 1e23, D=D, block=128)["P"]
        assert numeric == pytest.approx(closed, rel=1e-6)
    assert precision.optimal_precision_fixed_data(PRESET, 1e12) == pytest.approx(5.179, abs=1e-3)


def test_compute_optimal_precision_is_4_to_8_bits():
    # Sun et al. 2025: the cost-effective precision lies between 4 and 8 bits for C in 1e21-1e31 FLOPs
    # (B = 128) and grows with compute. Measured: 4.19 bits at 1e21, 7.58 at 1e31.
    P = [optimal_precision(PRESET, C)["P"] for C in (1e21, 1e23, 1e25, 1e27, 1e29, 1e31)]
    assert all(4.0 <= p <= 8.0 for p in P)
    assert np.all(np.diff(P) > 0)
    best = optimal_precision(PRESET, 1e23)
    assert 6 * best["N"] * best["D"] * best["P"] / 16 == pytest.approx(1e23, rel=1e-9)


def test_errors_name_the_bad_value():
    with pytest.raises(ParameterError, match=r"'total_bits' must be an integer >= 2 .*Got 7\.5 instead"):
        optimal_layout(PRESET, 7.5)
    with pytest.raises(ParameterError, match="at most one of N and D"):
        optimal_precision(PRESET, 1e23, N=1e9, D=1e12)
    with pytest.raises(ParameterError, match="scaling block size 'block' must be a number of elements greater than 1"):
        optimal_precision(PRESET, 1e23, block=1)
