"""Parameter counts and FLOPs per token against hand counts; tokens <-> steps; shapes for a target N."""

from __future__ import annotations

import math

import pytest

from scalinglab import units
from scalinglab.errors import ParameterError

# A hand-countable shape: L = 2 layers, d = 8, context T = 16, vocab V = 32.
L, D, T, V = 2, 8, 16, 32


def test_param_counts_match_a_hand_count() -> None:
    per_block = (8 * 24      # attn.c_attn: d x 3d (q, k, v)
                 + 8 * 8     # attn.c_proj: d x d
                 + 8 * 32    # mlp.c_fc: d x 4d
                 + 32 * 8    # mlp.c_proj: 4d x d
                 + 8 + 8)    # ln_1, ln_2 weights (no biases)
    nonembed = 2 * per_block + 8            # + ln_f
    assert nonembed == 1576
    c = units.param_counts(L, D, T, V)
    assert c == {"N_total": 1576 + 32 * 8 + 16 * 8,   # + wte (tied with lm_head) + wpe
                 "N_nonembed": 1576, "N_nonzero": 1576, "N_embed": 256, "N_pos": 128}


def test_nonzero_count_removes_pruned_block_weights() -> None:
    c = units.param_counts(L, D, T, V, sparsity=0.5)
    assert c["N_nonzero"] == 1576 - 768     # half of the 12 L d^2 = 1536 linear weights
    assert c["N_nonembed"] == 1576 and c["N_total"] == 1960


def test_flops_per_token_6n_and_full() -> None:
    assert units.flops_per_token(L, D, T, V) == 6 * 1576 == 9456
    # + unembedding 6 d V = 1536 + attention 12 L T d = 3072
    assert units.flops_per_token(L, D, T, V, full=True) == 9456 + 1536 + 3072


def test_tokens_and_steps() -> None:
    assert units.tokens_to_steps(10_000, 4096) == 2
    assert units.steps_to_tokens(3, 4096) == 12_288
    assert units.steps_to_tokens(0, 4096) == 0
    with pytest.raises(ParameterError, match="'batch_tokens' parameter must be a positive integer"):
        units.tokens_to_steps(10_000, 0)


@pytest.mark.parametrize("target, shape", [(2e4, (1, 48, 3)), (1e5, (2, 64, 4)), (5e5, (3, 112, 7)),
                                           (2e6, (5, 176, 11))])
def test_shape_for_params(target: float, shape: tuple[int, int, int]) -> None:
    s = units.shape_for_params(target)
    assert (s["n_layer"], s["d_model"], s["n_head"]) == shape
    assert s["d_model"] == 16 * s["n_head"]
    assert s["N_nonembed"] == units.param_counts(s["n_layer"], s["d_model"], 1, 1)["N_nonembed"]
    assert abs(math.log(s["N_nonembed"] / target)) < 0.4


def test_invalid_arguments_name_the_parameter() -> None:
    with pytest.raises(ParameterError, match="'d_model' parameter must be a positive integer. Got 0"):
        units.param_counts(2, 0, 16, 32)
    with pytest.raises(ParameterError, match="'sparsity' parameter must be a fraction"):
        units.param_counts(2, 8, 16, 32, sparsity=1.0)
    with pytest.raises(ParameterError, match="'n_nonembed' parameter must be a positive number"):
        units.shape_for_params(-5)


def test_shape_rule_min_layers_and_width_step_by_hand() -> None:
    # N = 3e4, aspect 32: L = round((3e4 / (12 * 32^2))^(1/3)) = round(1.35) = 1
    assert units.shape_for_params(3e4)["n_layer"] == 1
    # at least 2 layers: width k * 16 with 12 * 2 * d^2 + 2 * 2 * d + d nearest 3e4 on a log scale:
    # d = 32 gives 24,736 (|ln| 0.193), d = 48 gives 55,536 (0.616)
    assert units.shape_for_params(3e4, min_layers=2) == {"n_layer": 2, "d_model": 32, "n_head": 2,
                                                         "N_nonembed": 24_736}
    # widths in steps of 4: d = 36 gives 24 * 1296 + 144 + 36 = 31,284 (|ln| 0.042); heads stay >= 16
    # wide: the largest divisor j of 36 with 36 / j >= 16 is 2
    assert units.shape_for_params(3e4, min_layers=2, width_step=4) == {"n_layer": 2, "d_model": 36, "n_head": 2,
                                                                       "N_nonembed": 31_284}
    # d = 20 (step 4): no divisor but 1 keeps heads >= 16 wide
    assert units.shape_for_params(1e4, min_layers=2, width_step=4)["n_head"] == 1
    with pytest.raises(ParameterError, match="min_layers"):
        units.shape_for_params(3e4, min_layers=5, max_layers=4)
