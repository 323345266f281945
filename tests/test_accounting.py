"""Run accounting: the one public module that counts what a run config builds and costs."""

from __future__ import annotations

from scalinglab import accounting
from scalinglab.runconfig import RunConfig, SparsityConfig


def test_cost_counts_the_sparse_ift_widened_model() -> None:
    """Sparse-IFT at S = 0.75 doubles d_model (1/sqrt(0.25)); the executor's cost must follow it."""
    dense = RunConfig(n_layer=2, d_model=64, n_head=4, context=128, vocab=256, tokens=10 * 4096, batch_tokens=4096)
    wide = RunConfig(n_layer=2, d_model=64, n_head=4, context=128, vocab=256, tokens=10 * 4096, batch_tokens=4096,
                     sparsity=SparsityConfig(target=0.75, method="static", ift=True))
    L, T, V, D = 2, 128, 256, 10 * 4096

    def full(d: int) -> int:   # 6 N_nonembed + 6 d V + 12 L T d per token, by hand
        return 6 * (12 * L * d * d + 2 * L * d + d) + 6 * d * V + 12 * L * T * d

    assert accounting.cost(dense) == D * full(64)
    assert accounting.model_shape(wide) == {"n_layer": 2, "d_model": 128, "n_head": 8}
    assert accounting.cost(wide) == D * full(128)
    c = accounting.counts(wide)
    assert c["N_nonzero"] == 12 * L * 128 * 128 // 4 + 2 * L * 128 + 128
    assert accounting.describe(wide)["flops_full"] == accounting.cost(wide)


def test_eval_steps_are_log_spaced_with_the_last() -> None:
    assert accounting.eval_steps(1000, 4) == [1, 10, 100, 1000]
    assert accounting.eval_steps(5, 1) == [5]
