"""A GPT decoder, after nanoGPT's ``model.py`` (Karpathy), trimmed to what a scaling ladder needs.

Pre-norm blocks (LayerNorm -> causal self-attention -> residual, LayerNorm -> 4x GELU MLP -> residual),
learned positional embeddings, no biases and no dropout, and the unembedding tied to the token
embedding. ``scalinglab.units.param_counts`` gives its exact parameter counts; the tests check the two
agree.

Two things are injected, so features change the model without editing it: ``linear``, the factory of
every linear layer (``linear(in_features, out_features, role)`` returning an ``nn.Linear`` or a subclass,
so pruning and counts keep working; roles ``attn.qkv``, ``attn.proj``, ``mlp.fc``, ``mlp.proj``,
``lm_head``), and ``parametrization`` (initialisation, attention scale, the static multipliers of
the hidden linears and the logits, pre-norm or Res-Post-LN blocks; see ``ladder.parametrization``,
default standard practice). ``ladder.build.build_model`` makes both from a
run config.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .parametrization import SP, Parametrization

#: ``linear(in_features, out_features, role) -> nn.Linear``
LinearFactory = Callable[[int, int, str], nn.Linear]


def dense_linear(in_features: int, out_features: int, role: str) -> nn.Linear:
    """A plain ``nn.Linear`` without bias: every role."""
    return nn.Linear(in_features, out_features, bias=False)


@dataclass(frozen=True)
class GPTConfig:
    n_layer: int = 2
    d_model: int = 64
    n_head: int = 2
    context: int = 128   # longest sequence, tokens
    vocab: int = 256


def _fold(layer: nn.Linear, multiplier: float) -> float:
    """The static multiplier the model still applies after ``layer``'s output: 1.0 when the layer takes
    it into its own GEMM (a layer with a ``fold_multiplier(m)`` method, e.g. a quantised linear: μS's α
    inside the matmul, so its gradient operand is the unscaled dY), else ``multiplier``."""
    fold = getattr(layer, "fold_multiplier", None)
    if multiplier != 1.0 and callable(fold):
        fold(multiplier)
        return 1.0
    return multiplier


def _scaled(y: torch.Tensor, multiplier: float) -> torch.Tensor:
    """``y x multiplier``; ``y`` itself when the multiplier is 1 (standard practice, bit for bit)."""
    return y if multiplier == 1.0 else y * multiplier


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig, linear: LinearFactory, scale: float | None,
                 parametrization: Parametrization | None = None) -> None:
        super().__init__()
        parametrization = parametrization or SP()
        self.n_head = cfg.n_head
        self.scale = scale    # None: 1/sqrt(head_dim)
        self.c_attn = linear(cfg.d_model, 3 * cfg.d_model, "attn.qkv")  # q, k, v in one matmul
        self.c_proj = linear(cfg.d_model, cfg.d_model, "attn.proj")
        self.m_attn = _fold(self.c_attn, parametrization.linear_multiplier("attn.qkv", cfg.d_model))
        self.m_proj = _fold(self.c_proj, parametrization.linear_multiplier("attn.proj", cfg.d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = torch.split(_scaled(self.c_attn(x), self.m_attn), C, dim=2)
        # (B, T, C) -> (B, n_head, T, head_dim)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        if q.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            # CPU flash attention's bf16 backward is several times slower than its float32 one
            # (measured, torch 2.13): attend in float32; the projections stay in bf16.
            with torch.autocast("cpu", enabled=False):
                y = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=True,
                                                   scale=self.scale)
        else:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scale)
        return _scaled(self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C)), self.m_proj)


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig, linear: LinearFactory, parametrization: Parametrization | None = None) -> None:
        super().__init__()
        parametrization = parametrization or SP()
        self.c_fc = linear(cfg.d_model, 4 * cfg.d_model, "mlp.fc")
        self.c_proj = linear(4 * cfg.d_model, cfg.d_model, "mlp.proj")
        self.m_fc = _fold(self.c_fc, parametrization.linear_multiplier("mlp.fc", cfg.d_model))
        self.m_proj = _fold(self.c_proj, parametrization.linear_multiplier("mlp.proj", 4 * cfg.d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.gelu(_scaled(self.c_fc(x), self.m_fc), approximate="tanh")
        return _scaled(self.c_proj(h), self.m_proj)


class Block(nn.Module):
    """Pre-norm (``x + f(LN(x))``), or Res-Post-LN (``a x + b LN(f(x))``) when the parametrization's
    ``residual`` gives ``(a, b)`` (μnit Scaling); the same LayerNorm modules in either place."""

    def __init__(self, cfg: GPTConfig, linear: LinearFactory, attention_scale: float | None,
                 parametrization: Parametrization | None = None) -> None:
        super().__init__()
        parametrization = parametrization or SP()
        self.ln_1 = nn.LayerNorm(cfg.d_model, bias=False)
        self.attn = CausalSelfAttention(cfg, linear, attention_scale, parametrization)
        self.ln_2 = nn.LayerNorm(cfg.d_model, bias=False)
        self.mlp = MLP(cfg, linear, parametrization)
        self.post_ln = parametrization.residual(cfg.n_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.post_ln is not None:
            a, b = self.post_ln
            x = a * x + b * self.ln_1(self.attn(x))
            post: torch.Tensor = a * x + b * self.ln_2(self.mlp(x))
            return post
        x = x + self.attn(self.ln_1(x))
        out: torch.Tensor = x + self.mlp(self.ln_2(x))
        return out


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig, generator: torch.Generator | None = None, *,
                 linear: LinearFactory = dense_linear, parametrization: Parametrization | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.parametrization = parametrization or SP()
        scale = self.parametrization.attention_scale(cfg.d_model // cfg.n_head)
        self.wte = nn.Embedding(cfg.vocab, cfg.d_model)
        self.wpe = nn.Embedding(cfg.context, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg, linear, scale, self.parametrization) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model, bias=False)
        self.lm_head = linear(cfg.d_model, cfg.vocab, "lm_head")
        self.lm_head.weight = self.wte.weight  # weight tying (Press & Wolf 2017), as in GPT-2
        self.logit_scale = self.parametrization.output_scale(cfg.d_model)
        self.reset_parameters(generator)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """The parametrization's initialisation of every parameter, in ``named_parameters`` order
        (standard: GPT-2's N(0, 0.02), residual projections scaled by 1/sqrt(2 n_layer)).

        ``generator`` makes the initialisation a function of its seed alone (no global RNG state).
        """
        for name, p in self.named_parameters():
            self.parametrization.init_(name, p, self.cfg.n_layer, generator)

    def nonembedding_parameters(self) -> list[nn.Parameter]:
        """The parameters that ``N_nonembed`` counts: all but ``wte`` (= ``lm_head``) and ``wpe``."""
        return [p for n, p in self.named_parameters() if not n.startswith(("wte.", "wpe."))]

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (B, T, vocab) and, given targets, the mean cross-entropy in nats/token (float32)."""
        T = idx.shape[1]
        pos = torch.arange(T, device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.blocks:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        if self.logit_scale != 1.0:
            logits = logits * self.logit_scale
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss
