"""Step Law (Li et al. 2025): the formula, its closed forms and the presets (the fit: tests/fit/test_steplaw_fit.py)."""

from __future__ import annotations

import numpy as np
import pytest

from scalinglab import laws
from scalinglab.errors import ParameterError
from scalinglab.laws import steplaw

LAW = laws.get("steplaw")
PAPER = dict(LAW.preset("li2025").params)


def test_paper_preset_along_a_chinchilla_path():
    # LAWS.md section 5: with N, D ~ C^0.5, eta ~ C^-0.203 and B ~ C^0.286
    C = np.array([1e20, 1e24])
    N, D = np.sqrt(C / 120), np.sqrt(C * 20 / 6)
    eta = steplaw.optimal_lr(PAPER, N, D)
    B = steplaw.optimal_batch(PAPER, D)
    assert np.log(eta[1] / eta[0]) / np.log(C[1] / C[0]) == pytest.approx(-0.203, abs=1e-3)
    assert np.log(B[1] / B[0]) / np.log(C[1] / C[0]) == pytest.approx(0.2855, abs=1e-3)
    assert steplaw.optimal_batch(PAPER, 1e12) == pytest.approx(4125038.379189308, rel=1e-12)  # 0.58 (1e12)^0.571, bc -l


def test_errors_name_the_problem():
    with pytest.raises(ParameterError, match="token count 'D' must be a positive"):
        steplaw.optimal_batch(PAPER, -5)
