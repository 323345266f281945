"""Units of a GPT run: parameter counts, FLOPs per token, tokens <-> steps, shapes for a parameter count.

Pure Python (no torch, no NumPy needed): the planner, the store and the ladder designer use these
numbers without the trainer. They describe exactly the model built by ``ladder.model.GPT``:

* a pre-norm decoder (LayerNorm with a weight and no bias, linear layers without biases, as nanoGPT's
  ``bias=False``), a 4x MLP, learned positional embeddings ``wpe`` (context x d_model);
* tied embeddings: the unembedding (``lm_head``) is the token embedding ``wte`` (vocab x d_model), as in
  nanoGPT and GPT-2.

Parameter counts (L = n_layer, d = d_model, T = context, V = vocab):

.. math::

    N_\\text{nonembed} = L (12 d^2 + 2 d) + d, \\qquad
    N_\\text{total} = N_\\text{nonembed} + V d + T d

Each block holds the attention projections (4 d^2: q, k, v, out), the MLP (8 d^2) and two LayerNorm
weights (2 d); the final LayerNorm adds d. ``N_nonembed`` leaves out ``wte`` (which is also the
unembedding) and ``wpe`` (Kaplan et al. 2020, section 2.1, leave out both). ``N_nonzero`` is the
non-embedding count less the weights pruned to zero (weight sparsity applies to the linear weights
of the blocks, 12 L d^2 of them, Frantar et al. 2023).
"""

from __future__ import annotations

import math

from .errors import ParameterError, invalid


def _positive_int(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ParameterError(invalid(f"The {name!r} parameter", value, "a positive integer"))
    return value


def param_counts(n_layer: int, d_model: int, context: int, vocab: int,
                 sparsity: float = 0.0) -> dict[str, int]:
    """Exact parameter counts of ``ladder.model.GPT`` (tied embeddings, no biases).

    Returns ``N_total``, ``N_nonembed``, ``N_nonzero``, ``N_embed`` (``wte``: V d, which is also the
    unembedding) and ``N_pos`` (``wpe``: T d), all counts. ``sparsity`` is the fraction of the block
    linear weights (12 L d^2) that are zero; ``N_nonzero = N_nonembed - round(sparsity * 12 L d^2)``.
    """
    L, d = _positive_int("n_layer", n_layer), _positive_int("d_model", d_model)
    T, V = _positive_int("context", context), _positive_int("vocab", vocab)
    if not 0.0 <= sparsity < 1.0:
        raise ParameterError(invalid("The 'sparsity' parameter", sparsity, "a fraction in [0, 1)"))
    linear = 12 * L * d * d
    nonembed = linear + 2 * L * d + d
    return {
        "N_total": nonembed + V * d + T * d,
        "N_nonembed": nonembed,
        "N_nonzero": nonembed - round(sparsity * linear),
        "N_embed": V * d,
        "N_pos": T * d,
    }


def flops_per_token(n_layer: int, d_model: int, context: int, vocab: int, *, full: bool = False) -> float:
    """Training FLOPs per token (forward + backward = 3 x forward), FLOPs/token.

    With ``full=False``: ``6 N`` with ``N = N_nonembed`` (Kaplan et al. 2020, Eq. 2.2 and the
    C = 6 N D rule). With ``full=True`` the unembedding and attention terms are added:

    .. math::

        C_\\text{token} = 6 N_\\text{nonembed} + 6 d V + 12 L T d

    ``6 d V``: the forward matmul with the unembedding is 2 d V, and backward twice that. ``12 L T d``:
    per layer and token, the attention scores (Q K^T) and the weighted sum of values are 2 T d each
    forward, counted over the whole context without halving for the causal mask, as in DeepSeek LLM's
    M = 72 L d^2 + 12 L d T (Bi et al. 2024, section 3.2). Kaplan et al. 2020 (Eq. 2.2,
    C_forward = 2N + 2 L T d) count only the scores, which would give 6 L T d. Embedding lookups,
    norms, softmax and nonlinearities are not counted.
    """
    counts = param_counts(n_layer, d_model, context, vocab)
    c = 6.0 * counts["N_nonembed"]
    if full:
        c += 6.0 * d_model * vocab + 12.0 * n_layer * context * d_model
    return c


def tokens_to_steps(tokens: int, batch_tokens: int) -> int:
    """Optimizer steps that ``tokens`` training tokens make at ``batch_tokens`` per step (rounded down)."""
    return _positive_int("tokens", tokens) // _positive_int("batch_tokens", batch_tokens)


def steps_to_tokens(steps: int, batch_tokens: int) -> int:
    """Training tokens seen after ``steps`` optimizer steps of ``batch_tokens`` each."""
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise ParameterError(invalid("The 'steps' parameter", steps, "a non-negative integer"))
    return steps * _positive_int("batch_tokens", batch_tokens)


def shape_for_params(n_nonembed: float, *, aspect: float = 32.0, head_dim: int = 16,
                     min_layers: int = 1, max_layers: int = 64, width_step: int | None = None) -> dict[str, int]:
    """A model shape (``n_layer``, ``d_model``, ``n_head``) whose non-embedding count is near a target.

    The rule: with the aspect ratio A = d_model / n_layer held near ``aspect``, N ~ 12 A^2 L^3, so

    .. math::

        L = \\min(L_\\max, \\max(L_\\min, \\operatorname{round}((N / (12 A^2))^{1/3}))), \\quad
        d = w \\cdot k, \\; k \\ge 1 \\text{ chosen to minimise } |\\ln N(L, d) - \\ln N|

    where w = ``width_step`` (default ``head_dim`` h) and the head count is the largest divisor of d
    that keeps heads at least h wide (``n_head = d / h`` when w = h; e.g. d = 40, h = 16: 2 heads of 20).
    A width step finer than the head size gives finer sizes without narrow heads, which cost 1.3-1.6x
    in tokens/s on a CPU at these sizes (measured: 2 layers, d = 32, 4 heads of 8 against 2 of 16). Kaplan et
    al. 2020 (Fig. 5) find the loss flat within a few percent over aspect ratios 20-200; at these tiny
    sizes a low aspect keeps a few layers. ``min_layers`` (L_min) keeps the smallest models deep enough
    to be transformers of one kind: a one-layer model cannot form induction heads (Olsson et al. 2022),
    and its loss sits off the curve of the deeper ones. Returns the shape and its ``N_nonembed``.
    """
    if not (isinstance(n_nonembed, (int, float)) and math.isfinite(n_nonembed) and n_nonembed > 0):
        raise ParameterError(invalid("The 'n_nonembed' parameter", n_nonembed, "a positive number"))
    if not aspect > 0:
        raise ParameterError(invalid("The 'aspect' parameter", aspect, "a positive number"))
    h = _positive_int("head_dim", head_dim)
    w = h if width_step is None else _positive_int("width_step", width_step)
    cube_root: float = (n_nonembed / (12.0 * aspect * aspect)) ** (1.0 / 3.0)
    lo, hi = _positive_int("min_layers", min_layers), _positive_int("max_layers", max_layers)
    if lo > hi:
        raise ParameterError(invalid("The 'min_layers' parameter", min_layers, f"at most max_layers = {max_layers}"))
    L = min(hi, max(lo, round(cube_root)))

    def n_of(k: int) -> int:
        return 12 * L * (w * k) ** 2 + 2 * L * w * k + w * k

    k = max(1, round(math.sqrt(n_nonembed / (12.0 * L)) / w))
    # the neighbours of the rounded width, judged on a log scale
    k = min((c for c in (k - 1, k, k + 1) if c >= 1), key=lambda c: abs(math.log(n_of(c) / n_nonembed)))
    d = w * k
    n_head = max([1] + [j for j in range(1, d // h + 1) if d % j == 0])
    return {"n_layer": L, "d_model": d, "n_head": n_head, "N_nonembed": n_of(k)}
