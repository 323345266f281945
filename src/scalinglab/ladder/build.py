"""Build what a run trains from its config: the device, the model (shape, linear layers,
parametrization), the optimizer and the trainer features.

The model's shape is :func:`scalinglab.accounting.model_shape` (Sparse-IFT widening included), so the
trainer builds exactly what the designer, the executors and the store count.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..accounting import model_shape
from ..runconfig import RunConfig
from . import noise, parametrization, precision, ptq
from .corpus import TokenData
from .features import Chain, Feature
from .model import GPT, GPTConfig, LinearFactory, dense_linear
from .sparsity import SparsityFeature, check_finetune_corpus


def resolve_device(device: str | None) -> str:
    """The device to train on: as given, else ``cuda`` when available, else ``cpu``."""
    return device or ("cuda" if torch.cuda.is_available() else "cpu")


def check(config: RunConfig) -> None:
    """What a run config's features need beyond the config's own validation (before any work)."""
    check_finetune_corpus(config)


def linear_factory(config: RunConfig) -> LinearFactory:
    """The linear layers a run trains with: plain ``nn.Linear``, or with emulated number formats
    (``config.precision``) :class:`~scalinglab.ladder.precision.QuantLinear` for the hidden layers."""
    if config.precision.active:
        factory: LinearFactory = precision.quantized_linear_factory(config)
        return factory
    return dense_linear


def build_model(config: RunConfig, device: torch.device, *, linear: LinearFactory | None = None) -> GPT:
    """The GPT of ``config`` on ``device``: initialised from a generator seeded with ``config.seed``."""
    shape = model_shape(config)
    cfg = GPTConfig(shape["n_layer"], shape["d_model"], shape["n_head"], config.context, config.vocab)
    model = GPT(cfg, generator=torch.Generator().manual_seed(config.seed),
                linear=linear or linear_factory(config), parametrization=parametrization.for_config(config))
    return model.to(device)


def build_optimizer(model: GPT, config: RunConfig) -> torch.optim.AdamW:
    """AdamW over the parametrization's groups (each with its ``lr_mult`` and weight decay).

    The fused kernel (CPU and CUDA): one pass over all parameters, 1.0-1.2x faster on tiny models.
    """
    groups = model.parametrization.param_groups(model, config.weight_decay)
    return torch.optim.AdamW(groups, lr=config.lr, betas=(config.beta1, config.beta2), fused=True)


def build_features(config: RunConfig, model: GPT, optimizer: torch.optim.Optimizer, data: TokenData,
                   extra: Sequence[Feature] = ()) -> Chain:
    """The run's trainer features, chained: sparsity (and SPDF), number-format telemetry (when
    ``precision`` quantises), post-training quantisation (when ``ptq`` lists settings), the gradient
    noise scale and the adaptive batch when the config turns them on (``noise.features_for``), then
    ``extra`` in order."""
    feats: list[Feature] = [SparsityFeature(config, model, optimizer, data)]
    qc = precision.quant_context(model)
    if qc is not None:
        feats.append(precision.PrecisionFeature(config, qc))
    if config.ptq:
        feats.append(ptq.PTQFeature(config, model, data))
    return Chain([*feats, *noise.features_for(config, model), *extra])


__all__ = ["build_features", "build_model", "build_optimizer", "check", "linear_factory", "resolve_device"]
