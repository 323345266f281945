"""Number formats of training: which dtype a run computes in, and the autocast context for it.

Today this is the resolution of ``RunConfig.dtype`` (``auto`` | ``float32`` | ``bfloat16``) to a torch
autocast dtype; emulated formats (ExMy quantisers, quantised linears) belong here as well.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

#: on the CPU, ``auto`` autocasts to bf16 from this width up; narrower models train in float32
#: (single thread, torch 2.13: 1.4-1.6x faster from width 64, 0.85-1.0x at 32-48; README "Throughput")
BF16_MIN_WIDTH = 64


def cpu_has_bf16() -> bool:
    """Whether the CPU has native bf16 dot products (AVX512-BF16 or AMX); Linux only, else False."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_dtype(dtype: str, device: str, d_model: int | None = None) -> torch.dtype:
    """The autocast dtype of ``dtype`` on ``device``.

    ``auto`` is bf16 where the hardware does bf16 natively (CUDA with bf16; CPUs with AVX512-BF16 or
    AMX, and there only from ``d_model`` >= :data:`BF16_MIN_WIDTH`), float32 otherwise.
    """
    if dtype == "float32":
        return torch.float32
    if dtype == "bfloat16":
        return torch.bfloat16
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    wide = d_model is None or d_model >= BF16_MIN_WIDTH
    return torch.bfloat16 if dev.type == "cpu" and wide and cpu_has_bf16() else torch.float32


def autocast(device: torch.device, dtype: torch.dtype) -> Any:
    """A reusable autocast context to ``dtype`` on ``device``; a null context for float32."""
    return torch.autocast(device.type, dtype=dtype) if dtype != torch.float32 else contextlib.nullcontext()


__all__ = ["BF16_MIN_WIDTH", "autocast", "cpu_has_bf16", "resolve_dtype"]
