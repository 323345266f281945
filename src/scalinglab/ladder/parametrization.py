"""Parametrizations of the ladder's GPT: initialisation, attention scale, output multiplier, and the
per-group learning-rate and weight-decay factors the optimizer gets.

A parametrization is what changes between standard practice (``sp``), μP and μnit Scaling while the
architecture stays the same. :class:`SP` is the one the trainer has always used (GPT-2's
initialisation, as nanoGPT); :func:`for_config` picks a run's.
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


PARAMETRIZATIONS: dict[str, type[Parametrization]] = {"sp": SP}


def for_config(config: RunConfig) -> Parametrization:
    """The parametrization a run trains with: ``sp`` (the run config has no field for another yet)."""
    return SP()


__all__ = ["PARAMETRIZATIONS", "SP", "Parametrization", "for_config"]
