"""DeepSeek LLM's hyperparameter laws (DeepSeek-AI 2024, arXiv 2401.02954, LAWS.md section 12a).

.. math:: \\eta_{opt} = 0.3118\\, C^{-0.1250}, \\qquad B_{opt} = 0.2920\\, C^{0.3271}

with C the training compute in FLOPs counted as ``M D`` (M non-embedding FLOPs per token, attention
included: ``72 n_layer d_model^2 + 12 n_layer d_model l_seq``) and B in tokens. Fitted on budgets of
1e17 to 2e19 FLOPs (near-optimal: within 0.25% of the best generalisation error). The paper's own
check: 7B at C = 8.5e22 gives eta 4.25e-4 and B 9.2M tokens (used: 4.2e-4 and 9.44M).
Coefficients [S] (secondary sources with a self-consistency check, LAWS.md section 12a).
"""

from __future__ import annotations

from typing import Any

from ._base import positive_array

#: eta_opt = LR_SCALE * C^LR_EXP (DeepSeek-AI 2024, arXiv 2401.02954, Sec. 3.1)
LR_SCALE, LR_EXP = 0.3118, -0.1250
#: B_opt = BATCH_SCALE * C^BATCH_EXP, tokens (ibid.)
BATCH_SCALE, BATCH_EXP = 0.2920, 0.3271
CITATION = "DeepSeek-AI 2024, arXiv 2401.02954 (Sec. 3.1; LAWS.md section 12a)"


def optimal_lr(C: Any) -> Any:
    """Peak learning rate ``0.3118 C^-0.125`` at a budget of C FLOPs (DeepSeek's M x D count)."""
    return LR_SCALE * positive_array("The compute 'C'", C) ** LR_EXP


def optimal_batch(C: Any) -> Any:
    """Batch size in tokens ``0.2920 C^0.3271`` at a budget of C FLOPs (DeepSeek's M x D count)."""
    return BATCH_SCALE * positive_array("The compute 'C'", C) ** BATCH_EXP
