"""Number formats of training: the compute dtype (autocast) and emulated ExMy / integer formats.

Two things live here:

* the resolution of ``RunConfig.dtype`` (``auto`` | ``float32`` | ``bfloat16``) to a torch autocast
  dtype (:func:`resolve_dtype`, :func:`autocast`);
* :func:`quantize`, the fake quantiser: a float tensor rounded to the values of a format
  (:mod:`scalinglab.numformats` names them and fixes their ranges) and returned in its own dtype.

The quantiser works on the float32 bit pattern: a normal value is rounded to M mantissa bits by adding
half an ulp (plus the kept bit's parity: round to nearest even) and masking, or, for stochastic
rounding, by adding uniform random low bits and masking (exactly unbiased); values below the format's
smallest normal are rounded on the subnormal grid ``k 2^(emin-M)``. Everything saturates: a magnitude
beyond the format's largest finite value (inf included) becomes that value, NaN stays NaN, the sign
(of zero too) is kept. OCP E4M3FN and E5M2 under round-to-nearest with no scaling use torch's native
float8 casts after clamping (the same values, ~3x fewer passes over memory). Checked bit for bit
against ``ml_dtypes`` and torch's float8 casts (``tests/ladder/test_quantize.py``).

Scaling (absmax, as Sun et al. 2025 arXiv 2501.02423 and the OCP MX specification): the tensor is
multiplied by ``S = max_format / max|X|`` over the tensor, each row of the last dimension
(``channel``), or each block of ``block`` consecutive elements of the last dimension (``block``; the
contraction dimension of a weight ``[out, in]`` and of an activation ``[..., in]``), quantised, and
divided by S again. ``scale_format="pow2"`` rounds S down to a power of two (so the scaling itself is
exact; TransformerEngine's and MX's choice). An all-zero group keeps S = 1.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from ..errors import ConfigError, invalid
from ..numformats import Format, parse_format

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


SCALINGS = ("none", "tensor", "channel", "block")
ROUNDINGS = ("nearest", "stochastic")
SCALE_FORMATS = ("fp32", "pow2")

#: formats quantised by a native torch cast under round-to-nearest (after clamping to the format's max)
_NATIVE = {("E4M3", "fn"): torch.float8_e4m3fn, ("E5M2", "ieee"): torch.float8_e5m2,
           ("bf16", "ieee"): torch.bfloat16, ("fp16", "ieee"): torch.float16}


def _pow2(k: int) -> float:
    return float(2.0 ** k)


def _times_pow2(t: torch.Tensor, k: int) -> torch.Tensor:
    """``t * 2**k`` exactly (two factors when 2**k is outside float32's normal range)."""
    if -126 <= k <= 127:
        return t * _pow2(k)
    half = k // 2
    return (t * _pow2(half)) * _pow2(k - half)


class Quantizer:
    """A format with its rounding and scaling, resolved once: ``q(x)`` is :func:`quantize`'s result.

    ``q(x, counts)`` also adds to ``counts`` (a list of two tensors, or empty to start them) the number
    of values flushed to zero (non-zero before, zero after) and of values saturated (beyond the
    format's max after scaling), both over the whole tensor.
    """

    def __init__(self, fmt: str | Format, *, convention: str = "ocp", scaling: str = "none",
                 block: int | None = None, rounding: str = "nearest", generator: torch.Generator | None = None,
                 scale_format: str = "fp32") -> None:
        self.fmt = parse_format(fmt, convention)
        if scaling not in SCALINGS:
            raise ConfigError(invalid("The 'scaling' field", scaling, f"one of {SCALINGS}"))
        if rounding not in ROUNDINGS:
            raise ConfigError(invalid("The 'rounding' field", rounding, f"one of {ROUNDINGS}"))
        if scale_format not in SCALE_FORMATS:
            raise ConfigError(invalid("The 'scale_format' field", scale_format, f"one of {SCALE_FORMATS}"))
        if scaling == "block":
            if isinstance(block, bool) or not isinstance(block, int) or block < 1:
                raise ConfigError(invalid("The 'block' field", block, "a positive number of elements with "
                                          "scaling = 'block'"))
        self.scaling, self.block, self.rounding = scaling, block, rounding
        self.generator, self.pow2 = generator, scale_format == "pow2"
        f = self.fmt
        self.native = _NATIVE.get((f.name, f.encoding)) if rounding == "nearest" else None

    # -- rounding of magnitudes ------------------------------------------------------------------
    def _noise(self, a: torch.Tensor, bits: int) -> torch.Tensor:
        return torch.randint(0, 1 << bits, a.shape, generator=self.generator, device=a.device, dtype=torch.int32)

    def _round(self, a: torch.Tensor) -> torch.Tensor:
        """Non-negative float32 magnitudes (at most the format's max, or NaN) rounded to the format."""
        f = self.fmt
        if f.kind in ("fixed", "int"):
            t = a / f.step
            if self.rounding == "nearest":
                t = torch.round(t)
            else:
                t = torch.floor(t + torch.rand(a.shape, generator=self.generator, device=a.device))
            return torch.clamp(t * f.step, max=f.max)
        shift = 23 - f.m_bits
        bits = a.view(torch.int32)
        emin = 1 - f.bias
        sub = torch.clamp(a, max=f.min_normal)
        t = _times_pow2(sub, f.m_bits - emin)          # the subnormal grid's integer multiples
        if self.rounding == "nearest":
            r = (bits + ((1 << (shift - 1)) - 1) + ((bits >> shift) & 1)) & ~((1 << shift) - 1)
            t = torch.round(t)
        else:
            noise = self._noise(a, shift)
            r = (bits + noise) & ~((1 << shift) - 1)
            t = torch.floor(t + noise.to(torch.float32) * _pow2(-shift))
        q = torch.where(a < f.min_normal, _times_pow2(t, emin - f.m_bits), r.view(torch.float32))
        return torch.clamp(q, max=f.max) if self.rounding != "nearest" else q

    def _q(self, y: torch.Tensor) -> torch.Tensor:
        """``y`` (float32, scaled) rounded to the format, saturating; NaN stays NaN."""
        f = self.fmt
        if self.native is not None:
            return torch.clamp(y, -f.max, f.max).to(self.native).to(torch.float32)
        q = torch.copysign(self._round(torch.clamp(y.abs(), max=f.max)), y)
        return torch.where(torch.isnan(y), y, q)

    # -- scaling ------------------------------------------------------------------------------------
    def _scale(self, amax: torch.Tensor) -> torch.Tensor:
        s = self.fmt.max / amax
        s = torch.where((amax > 0) & torch.isfinite(s), s, torch.ones_like(s))
        return torch.exp2(torch.floor(torch.log2(s))) if self.pow2 else s

    def __call__(self, x: torch.Tensor, counts: list[torch.Tensor] | None = None) -> torch.Tensor:
        if self.fmt.is_identity:
            if counts is not None:
                _add(counts, torch.zeros((), device=x.device), torch.zeros((), device=x.device))
            return x
        y = x.float()
        shape = y.shape
        if self.scaling == "block":
            assert self.block is not None
            n = shape[-1] if y.dim() else 1
            if n % self.block:
                raise ConfigError(invalid("The 'block' field", self.block,
                                          f"a divisor of the quantised tensor's last dimension ({n})"))
            y = y.reshape(*shape[:-1], n // self.block, self.block)
        s: torch.Tensor | None = None
        if self.scaling == "tensor":
            s = self._scale(y.abs().amax())
        elif self.scaling in ("channel", "block") and y.dim():
            s = self._scale(y.abs().amax(dim=-1, keepdim=True))
        ys = y * s if s is not None else y
        q = self._q(ys)
        if counts is not None:
            _add(counts, ((ys != 0) & (q == 0)).sum(), (ys.abs() > self.fmt.max).sum())
        if s is not None:
            q = q / s
        return q.reshape(shape).to(x.dtype)


def _add(counts: list[torch.Tensor], under: torch.Tensor, sat: torch.Tensor) -> None:
    if counts:
        counts[0] += under
        counts[1] += sat
    else:
        counts.extend([under.to(torch.float64), sat.to(torch.float64)])


def quantize(x: torch.Tensor, fmt: str | Format, *, convention: str = "ocp", scaling: str = "none",
             block: int | None = None, rounding: str = "nearest", generator: torch.Generator | None = None,
             scale_format: str = "fp32") -> torch.Tensor:
    """``x`` rounded to the values of ``fmt``, returned in ``x``'s dtype and shape (fake quantisation).

    Args:
        x: a float tensor (any shape, any device).
        fmt: a format name (``"E4M3"``, ``"E2M1"``, ``"E0M3"``, ``"int4"``, ``"bf16"``, ``"fp32"``: see
            :mod:`scalinglab.numformats`) or a :class:`~scalinglab.numformats.Format`.
        convention: ``"ocp"`` (E4M3FN max 448, E5M2 max 57,344, FP6/FP4 all finite), ``"finite"``
            (every code finite: E4M3 max 480, Sun et al.'s) or ``"ieee"``.
        scaling: ``"none"``, ``"tensor"``, ``"channel"`` (each row of the last dimension) or
            ``"block"`` (each ``block`` consecutive elements of the last dimension, which it must divide).
        rounding: ``"nearest"`` (ties to even) or ``"stochastic"`` (up with probability equal to the
            distance from the lower neighbour over the spacing: unbiased, onto the two neighbours only).
        generator: the random generator of stochastic rounding (on ``x``'s device).
        scale_format: the absmax scales in ``"fp32"`` or rounded down to a power of two (``"pow2"``).

    Raises ConfigError (an unknown format, scaling, rounding, or a block that does not divide the last
    dimension) naming the field.
    """
    return Quantizer(fmt, convention=convention, scaling=scaling, block=block, rounding=rounding,
                     generator=generator, scale_format=scale_format)(x)


__all__ = ["BF16_MIN_WIDTH", "ROUNDINGS", "SCALE_FORMATS", "SCALINGS", "Format", "Quantizer", "autocast",
           "cpu_has_bf16", "parse_format", "quantize", "resolve_dtype"]
