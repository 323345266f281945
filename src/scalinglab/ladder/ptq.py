"""Post-training quantisation at every evaluation: the loss of the model with its weights rounded.

:class:`PTQFeature` (a trainer feature, on when ``RunConfig.ptq`` lists settings): at each evaluation
point of the main line and at each cooldown branch's end, the hidden linear weights (attention
``c_attn``, ``c_proj``; MLP ``c_fc``, ``c_proj``: ``sparsity.prunable_linears``) are rounded to
nearest in each setting's format with absmax scales per output channel (``int4``) or per group of G
consecutive input weights (``int3_g32``), the model is evaluated on the run's own evaluation windows,
and the weights are put back bit for bit. Embeddings, the tied head and the norms stay as trained.
Integer settings are the symmetric grid ``-(2^(K-1)-1) .. 2^(K-1)-1`` with scale ``absmax / (2^(K-1)-1)``
(round-to-nearest, as Kumar et al. 2024, arXiv 2411.04330, App. F use for their PTQ trends; Ouyang et
al. 2024, arXiv 2411.17691, used GPTQ); ExMy settings map the group's absmax onto the format's max
(every code finite). Nothing of the training changes: no random numbers are drawn, the stochastic
rounding generator of a quantised run is restored, and the weights are restored exactly.

Point fields: ``loss_ptq_<setting>`` (nats/token) and ``dloss_ptq_<setting>`` (that minus the point's
eval loss: the degradation ΔL).
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import ConfigError, invalid
from ..numformats import PTQSetting, parse_ptq
from ..runconfig import RunConfig
from . import precision
from .corpus import TokenData, eval_windows, mean_eval_loss
from .features import Feature
from .sparsity import prunable_linears


def quantize_weight(w: torch.Tensor, setting: PTQSetting) -> torch.Tensor:
    """``w`` ``[out, in]`` rounded to ``setting`` (absmax per row, or per group of G along ``in``)."""
    if setting.group:
        return precision.quantize(w, setting.format, convention="finite", scaling="block", block=setting.group)
    return precision.quantize(w, setting.format, convention="finite", scaling="channel")


class PTQFeature(Feature):
    """The PTQ losses of :mod:`scalinglab.ladder.ptq` at every evaluation (module docstring)."""

    name = "ptq"

    def __init__(self, config: RunConfig, model: torch.nn.Module, data: TokenData) -> None:
        self.settings = [parse_ptq(s) for s in config.ptq]
        self.model = model
        self.weights = [mod.weight for _, mod in prunable_linears(model)]
        for s in self.settings:
            for w in self.weights:
                if s.group and w.shape[1] % s.group:
                    raise ConfigError(invalid(
                        "The 'ptq' entry", s.name, f"a group size dividing every layer's input width ({w.shape[1]})"))
        dev = self.weights[0].device if self.weights else torch.device("cpu")
        d_model = int(getattr(getattr(model, "cfg", None), "d_model", 0)) or None
        self.autocast = precision.autocast(dev, precision.resolve_dtype(config.dtype, str(dev), d_model))
        self.micro = (config.micro_batch_tokens or config.batch_tokens) // config.context
        self.x, self.y = (t.to(dev) for t in eval_windows(data.val, config.eval_tokens, config.context))
        self.last: dict[str, float] = {}

    def evaluate(self) -> float:
        """The mean eval loss over the fixed windows, as the trainer computes it (``corpus.mean_eval_loss``)."""
        return mean_eval_loss(self.model, self.x, self.y, self.micro, self.autocast)

    @torch.no_grad()
    def measure(self) -> dict[str, float]:
        """``{setting name: loss}`` with the weights quantised per setting, weights restored after each."""
        qc = precision.quant_context(self.model)
        gen_state = qc.generator.get_state() if qc is not None and qc.generator is not None else None
        saved = [w.detach().clone() for w in self.weights]
        out = {}
        try:
            for s in self.settings:
                for w, w0 in zip(self.weights, saved):
                    w.copy_(quantize_weight(w0, s))
                out[s.name] = self.evaluate()
                for w, w0 in zip(self.weights, saved):
                    w.copy_(w0)
        finally:
            for w, w0 in zip(self.weights, saved):
                w.copy_(w0)
            if gen_state is not None and qc is not None and qc.generator is not None:
                qc.generator.set_state(gen_state)
        return out

    def on_eval(self, step: int, eval_loss: float, branch: int) -> None:
        losses = self.measure()
        self.last = {}
        for name, loss in losses.items():
            self.last[f"loss_ptq_{name}"] = loss
            self.last[f"dloss_ptq_{name}"] = loss - eval_loss

    def point_fields(self, step: int) -> dict[str, Any]:
        out, self.last = self.last, {}
        return out


__all__ = ["PTQFeature", "quantize_weight"]
