"""Parametrizations of the ladder's GPT: initialisation, attention scale, the static multipliers of the
linear layers and of the logits, the residual block's form, and the per-group learning-rate and
weight-decay factors the optimizer gets.

A parametrization is what changes between standard practice (``sp``), μP (``mup``) and μnit Scaling
(``mus``) while the weights stay the same tensors. :class:`SP` is the one the trainer has always used
(GPT-2's initialisation, as nanoGPT); :func:`for_config` picks a run's from its ``parametrization``
field (:class:`scalinglab.runconfig.ParametrizationConfig`).

Widths: ``width_mult = d_model / base_width``; a hidden matrix is a weight of a block (``attn.c_attn``,
``attn.c_proj``, ``mlp.c_fc``, ``mlp.c_proj``); the embeddings (``wte``, tied to the head, and ``wpe``)
and the LayerNorm weights are not hidden.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..runconfig import RunConfig


class Parametrization:
    """The hooks the model and the optimizer builder call. Subclasses override what they change."""

    name = "base"
    #: logits = lm_head(ln_f(x)) x this (1.0: not multiplied at all)
    output_multiplier: float = 1.0

    @torch.no_grad()
    def init_(self, name: str, p: nn.Parameter, n_layer: int, generator: torch.Generator | None) -> None:
        """Initialise parameter ``name`` of a model with ``n_layer`` blocks in place."""
        raise NotImplementedError

    def attention_scale(self, head_dim: int) -> float | None:
        """The softmax scale of attention; None for 1/sqrt(head_dim) (the SDPA default)."""
        return None

    def output_scale(self, d_model: int) -> float:
        """The factor on the logits of a model ``d_model`` wide (1.0: none applied)."""
        return self.output_multiplier

    def linear_multiplier(self, role: str, in_features: int) -> float:
        """The static factor on the output of a hidden linear layer (role ``attn.qkv``, ``attn.proj``,
        ``mlp.fc``, ``mlp.proj``) with ``in_features`` inputs: ``y = m x W^T`` (1.0: none applied)."""
        return 1.0

    def residual(self, n_layer: int) -> tuple[float, float] | None:
        """None for pre-norm blocks (``x + f(LN(x))``); ``(a, b)`` for Res-Post-LN blocks
        (``a x + b LN(f(x))``)."""
        return None

    def param_groups(self, model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
        """The optimizer's parameter groups; each holds ``lr_mult``, the factor on the scheduled lr."""
        raise NotImplementedError


class SP(Parametrization):
    """Standard parametrization (GPT-2, nanoGPT): N(0, 0.02) matrices, residual projections
    (``c_proj``) N(0, 0.02 / sqrt(2 n_layer)), LayerNorm weights 1; attention 1/sqrt(head_dim); no
    output multiplier; weight decay on matrices only, one learning rate."""

    name = "sp"

    @torch.no_grad()
    def init_(self, name: str, p: nn.Parameter, n_layer: int, generator: torch.Generator | None) -> None:
        if p.dim() == 1:  # LayerNorm weights
            nn.init.ones_(p)
        else:
            std = 0.02 / math.sqrt(2 * n_layer) if name.endswith("c_proj.weight") else 0.02
            nn.init.normal_(p, mean=0.0, std=std, generator=generator)

    def param_groups(self, model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
        params = [p for p in model.parameters() if p.requires_grad]
        return [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay, "lr_mult": 1.0},
                {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0, "lr_mult": 1.0}]


def _is_hidden(name: str) -> bool:
    """A hidden matrix: a weight of a block's attention or MLP linear layers."""
    return name.startswith("blocks.") and name.endswith("weight") and (".attn." in name or ".mlp." in name)


def _width(model: nn.Module) -> int:
    """The model's ``d_model``: the fan-in of its MLP up projections."""
    return next(int(p.shape[1]) for n, p in model.named_parameters() if n.endswith("mlp.c_fc.weight"))


def _base_fan_in(name: str, base_width: int) -> int:
    """The fan-in of hidden matrix ``name`` in a model ``base_width`` wide (the MLP's down projection: 4x)."""
    return 4 * base_width if name.endswith("mlp.c_proj.weight") else base_width


class MuP(SP):
    """μP by hand (Yang et al. 2022, "Tensor Programs V", arXiv 2203.03466, Table 3 for Adam; the
    ``mup`` package's ``MuReadout``/``MuAdam`` form): equal to :class:`SP` at ``d_model = base_width``;
    at other widths, with ``width_mult = d_model / base_width``,

    * hidden matrices are initialised with SP's std times ``sqrt(base_fan_in / fan_in)`` (variance
      proportional to 1/fan_in); embeddings and LayerNorm weights as SP;
    * the logits are multiplied by ``1 / width_mult`` (the readout, tied to the embedding, keeps SP's
      init and learning rate);
    * attention scores are scaled by ``1 / head_dim`` instead of ``1 / sqrt(head_dim)``;
    * the hidden matrices' Adam learning rate is divided by ``width_mult``; weight decay as SP
      (coupled with the learning rate, as ``torch.optim.AdamW``).
    """

    name = "mup"

    def __init__(self, base_width: int) -> None:
        self.base_width = base_width

    @torch.no_grad()
    def init_(self, name: str, p: nn.Parameter, n_layer: int, generator: torch.Generator | None) -> None:
        super().init_(name, p, n_layer, generator)
        if _is_hidden(name):
            p.mul_(math.sqrt(_base_fan_in(name, self.base_width) / p.shape[1]))

    def attention_scale(self, head_dim: int) -> float | None:
        return 1.0 / head_dim

    def output_scale(self, d_model: int) -> float:
        return self.base_width / d_model

    def param_groups(self, model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
        d_model = _width(model)
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        hidden = [p for n, p in named if _is_hidden(n)]
        other = [p for n, p in named if not _is_hidden(n) and p.dim() >= 2]
        vectors = [p for n, p in named if p.dim() < 2]
        return [{"params": hidden, "weight_decay": weight_decay, "lr_mult": self.base_width / d_model},
                {"params": other, "weight_decay": weight_decay, "lr_mult": 1.0},
                {"params": vectors, "weight_decay": 0.0, "lr_mult": 1.0}]


class MuS(Parametrization):
    """μnit Scaling (Narayan, Gupta, Paul, Blalock 2025, "μnit Scaling: Simple and Scalable FP8 LLM
    Training", arXiv 2502.05967, Table 6; ``../shared/PRECISION.md`` section 1):

    * every matrix (embeddings, tied head, hidden) initialised N(0, 1); LayerNorm weights 1;
    * static multipliers: a hidden linear layer computes ``(1/sqrt(fan_in)) x W^T``, the logits
      ``1/fan_in = 1/d_model``, the embedding 1 (applied to the layer's output: autograd then carries
      the factor into dX and dW as a GEMM's alpha would);
    * Res-Post-LayerNorm blocks with a fixed variance-preserving residual,
      ``x <- sqrt(1 - tau) x + sqrt(tau) LN(f(x))``, one ``tau`` for every block;
    * standard attention ``softmax(Q K^T / sqrt(head_dim)) V``;
    * hidden matrices train at ``lr sqrt(base_width / d_model)``; embeddings, head and LayerNorm at lr;
    * weight decay decoupled from the width's learning-rate factor: every decayed matrix shrinks by
      ``weight_decay x lr_t`` per step (``lr_t`` the run's scheduled lr) at every width, which is
      AdamW's decay at the base width (the paper: lambda the same at every width).

    The learned position embedding (the paper's models have none) is initialised N(0, 1) as well, so
    the residual stream starts with variance 2; the Res-Post-LN residual pulls it toward 1.
    """

    name = "mus"

    def __init__(self, tau: float, base_width: int) -> None:
        self.tau = tau
        self.base_width = base_width

    @torch.no_grad()
    def init_(self, name: str, p: nn.Parameter, n_layer: int, generator: torch.Generator | None) -> None:
        if p.dim() == 1:
            nn.init.ones_(p)
        else:
            nn.init.normal_(p, mean=0.0, std=1.0, generator=generator)

    def output_scale(self, d_model: int) -> float:
        return 1.0 / d_model

    def linear_multiplier(self, role: str, in_features: int) -> float:
        return 1.0 / math.sqrt(in_features)

    def residual(self, n_layer: int) -> tuple[float, float] | None:
        return math.sqrt(1.0 - self.tau), math.sqrt(self.tau)

    def param_groups(self, model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
        d_model = _width(model)
        mult = math.sqrt(self.base_width / d_model)
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        hidden = [p for n, p in named if _is_hidden(n)]
        other = [p for n, p in named if not _is_hidden(n) and p.dim() >= 2]
        vectors = [p for n, p in named if p.dim() < 2]
        # AdamW decays by lr_group x wd_group = (lr_t x mult) x (wd / mult) = lr_t x wd at every width
        return [{"params": hidden, "weight_decay": weight_decay / mult, "lr_mult": mult},
                {"params": other, "weight_decay": weight_decay, "lr_mult": 1.0},
                {"params": vectors, "weight_decay": 0.0, "lr_mult": 1.0}]


PARAMETRIZATIONS: dict[str, type[Parametrization]] = {"sp": SP, "mup": MuP, "mus": MuS}


def for_config(config: RunConfig) -> Parametrization:
    """The parametrization a run trains with, from its ``parametrization`` field."""
    pc = config.parametrization
    if pc.name == "mup":
        return MuP(pc.base_width)
    if pc.name == "mus":
        return MuS(pc.tau, pc.base_width)
    return SP()


__all__ = ["PARAMETRIZATIONS", "SP", "MuP", "MuS", "Parametrization", "for_config"]
