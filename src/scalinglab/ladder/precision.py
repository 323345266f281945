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
(of zero too) is kept. Under round-to-nearest, E5M2, bf16 and fp16 use torch's native casts after
clamping; every other format with 1-7 exponent bits and at least one mantissa bit (OCP E4M3 among them:
torch's E4M3 decode is scalar on the CPU) uses the magic-number rounding of
:meth:`Quantizer._nearest` (add and subtract a power of two whose float32 spacing is the format's),
in cache-sized chunks. Checked bit for bit against ``ml_dtypes`` and torch's float8 casts
(``tests/ladder/test_quantize.py``, ``tests/ladder/test_quant_fastpaths.py``).

Scaling (absmax, as Sun et al. 2025 arXiv 2501.02423 and the OCP MX specification): the tensor is
multiplied by ``S = max_format / max|X|`` over the tensor, each row of the last dimension
(``channel``), or each block of ``block`` consecutive elements of the last dimension (``block``; the
contraction dimension of a weight ``[out, in]`` and of an activation ``[..., in]``), quantised, and
divided by S again. ``scale_format="pow2"`` rounds S down to a power of two (so the scaling itself is
exact; TransformerEngine's and MX's choice). An all-zero group keeps S = 1.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import torch

from ..accounting import eval_steps
from ..errors import ConfigError, invalid
from ..numformats import Format, parse_format
from ..runconfig import OPERAND_ROLES, RunConfig
from . import schedules
from .features import Feature

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

#: formats quantised by a native torch cast under round-to-nearest (after clamping to the format's max).
#: OCP E4M3FN is not among them: torch's float8_e4m3fn -> float32 cast is scalar on the CPU (~9 ns a
#: value, 5x the E5M2 one), so E4M3 takes the magic-number path of :meth:`Quantizer._nearest` (2x faster)
_NATIVE = {("E5M2", "ieee"): torch.float8_e5m2, ("bf16", "ieee"): torch.bfloat16, ("fp16", "ieee"): torch.float16}

#: values per chunk of the magic-number rounding on the CPU (512 KiB of float32: the chunk, its result
#: and the scratch stay in a core's L2 cache across the eight passes)
CHUNK = 1 << 17

#: the float32 exponent field, and its lowest bit
_EXP_MASK, _EXP_ONE = 0x7F800000, 1 << 23


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
        self._fast = f.e_bits <= 7 and f.m_bits >= 1
        self._magic = self._fast and f.kind == "float" and rounding == "nearest"
        self._ws: torch.Tensor | None = None       # int32 scratch of _nearest, reused across calls
        self._bufs: dict[torch.dtype, torch.Tensor] = {}   # transient results (see __call__), reused

    # -- rounding of magnitudes ------------------------------------------------------------------
    def _round(self, a: torch.Tensor) -> torch.Tensor:
        """Non-negative float32 magnitudes (at most the format's max, or NaN) rounded to the format."""
        f = self.fmt
        if f.kind in ("fixed", "int"):
            t = a * (1.0 / f.step)
            t = torch.round(t) if self.rounding == "nearest" else torch.floor(t + self._uniform(a))
            return torch.clamp(t * f.step, max=f.max)
        if self._fast:
            # the spacing at a: 2^(max(e, emin) - M), built from a's exponent bits (no branches, NaN
            # propagates: its exponent code 255 gives a NaN or inf factor)
            e = torch.clamp_min(a.view(torch.int32) >> 23, 127 + 1 - f.bias)
            inv = ((254 + f.m_bits) - e).bitwise_left_shift_(23).view(torch.float32)
            ulp = (e - f.m_bits).bitwise_left_shift_(23).view(torch.float32)
            t = a * inv
            t = torch.round(t) if self.rounding == "nearest" else torch.floor(t + self._uniform(a))
            q = t * ulp
            return torch.clamp(q, max=f.max) if self.rounding != "nearest" else q
        # E8 (the spacing's inverse leaves float32's range) and M0 (ties go to the even *code*, whose
        # parity is the exponent's, not the significand's): round normals on the bit pattern instead
        shift = 23 - f.m_bits
        bits = a.view(torch.int32)
        emin = 1 - f.bias
        t = _times_pow2(torch.clamp(a, max=f.min_normal), f.m_bits - emin)   # subnormal grid multiples
        if self.rounding == "nearest":
            r = (bits + ((1 << (shift - 1)) - 1) + ((bits >> shift) & 1)) & ~((1 << shift) - 1)
            t = torch.round(t)
        else:
            noise = torch.randint(0, 1 << shift, a.shape, generator=self.generator, device=a.device,
                                  dtype=torch.int32)
            r = (bits + noise) & ~((1 << shift) - 1)
            t = torch.floor(t + noise.to(torch.float32) * _pow2(-shift))
        q = torch.where(a < f.min_normal, _times_pow2(t, emin - f.m_bits), r.view(torch.float32))
        return torch.clamp(q, max=f.max) if self.rounding != "nearest" else q

    def _uniform(self, a: torch.Tensor) -> torch.Tensor:
        return torch.rand(a.shape, generator=self.generator, device=a.device)

    def _scratch(self, n: int, device: torch.device) -> torch.Tensor:
        """A flat int32 scratch tensor of ``n`` elements (one buffer, grown as needed)."""
        ws = self._ws
        if ws is None or ws.numel() < n or ws.device != device:
            ws = self._ws = torch.empty(n, dtype=torch.int32, device=device)
        return ws[:n]

    def _buffer(self, y: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """A reused tensor of ``y``'s shape in ``dtype`` (the transient result; grown as needed)."""
        buf = self._bufs.get(dtype)
        n = y.numel()
        if buf is None or buf.numel() < n or buf.device != y.device:
            buf = self._bufs[dtype] = torch.empty(n, dtype=dtype, device=y.device)
        return buf[:n].view(y.shape)

    def _nearest(self, y: torch.Tensor, k: float | torch.Tensor = 1.0,
                 out: torch.Tensor | None = None, unscale: bool = False) -> torch.Tensor:
        """``k y`` (float32; ``k > 0``, a number or a scale broadcasting along ``y``'s last dimension)
        rounded to nearest even on the format's grid, saturating (E1-E7, M >= 1); ``unscale``: then
        divided by ``k`` again (an absmax scale's way back, in the same chunk).

        The magic-number rounding: with ``c = 2^(max(e, emin) + 23 - M)`` (e the exponent of ``|y|``),
        ``|y| + c`` lies in ``c``'s binade, whose float32 spacing is the format's spacing at ``|y|``
        (normal or subnormal), so the addition rounds to nearest even there and ``(|y| + c) - c`` is
        exact (Sterbenz). The magnitude is clamped to the format's max first (a grid value, so nothing
        rounds past it). NaN stays NaN; the sign (of zero too) is copied back. Eight elementwise
        passes, no masks, one allocation (the result); on the CPU they run over chunks of
        :data:`CHUNK` values that stay in the core's cache (2x faster than whole-tensor passes at 2M).
        """
        f = self.fmt
        if out is None:
            out = torch.empty(y.shape, dtype=y.dtype, device=y.device)
        if y.numel() == 0:
            return out
        last = y.shape[-1] if y.dim() else 1
        y2, o2 = y.reshape(-1, last), out.view(-1, last)
        k2 = k.reshape(-1, 1) if isinstance(k, torch.Tensor) and k.dim() else k
        rows = max(1, CHUNK // last) if y.device.type == "cpu" else y2.shape[0]
        ws = self._scratch(rows * last, y.device)
        for i in range(0, y2.shape[0], rows):
            yc, a = y2[i:i + rows], o2[i:i + rows]
            kc = k2[i:i + rows] if isinstance(k2, torch.Tensor) and k2.dim() else k2
            if _unit(kc):
                torch.abs(yc, out=a)
            else:
                torch.mul(yc, kc, out=a).abs_()
            a.clamp_(max=f.max)
            c = ws[:a.numel()].view(a.shape)
            cf = c.view(torch.float32)
            torch.clamp(a, min=f.min_normal, out=cf)             # the exponent, at least emin's
            c.bitwise_and_(_EXP_MASK).add_((23 - f.m_bits) * _EXP_ONE)
            a.add_(cf).sub_(cf)
            torch.copysign(a, yc, out=a)
            if unscale:
                a.div_(kc)
        return out

    def _q(self, y: torch.Tensor, k: float | torch.Tensor = 1.0, transient: bool = False,
           unscale: bool = False) -> torch.Tensor:
        """``k y`` (float32, scaled; ``k > 0``) rounded to the format, saturating; NaN stays NaN.
        ``transient``: into this quantiser's reused buffer (valid until its next transient call);
        ``unscale``: the result divided by ``k`` (``k``'s broadcast shape)."""
        if self._magic and self.native is None:
            return self._nearest(y, k, self._buffer(y, torch.float32) if transient else None, unscale)
        q = self._q_other(y, k, transient)
        return q.div_(k) if unscale else q

    def _q_other(self, y: torch.Tensor, k: float | torch.Tensor, transient: bool) -> torch.Tensor:
        f = self.fmt
        out = self._buffer(y, torch.float32) if transient and self.native is not None else None
        if self.native is not None:
            if _unit(k):
                c = torch.clamp(y, -f.max, f.max, out=out) if out is not None else torch.clamp(y, -f.max, f.max)
            else:
                c = (torch.mul(y, k, out=out) if out is not None else torch.mul(y, k)).clamp_(-f.max, f.max)
            if out is None:
                return c.to(self.native).to(torch.float32)
            b = self._buffer(y, self.native)
            b.copy_(c)                      # the same conversion as .to(dtype)
            return out.copy_(b)
        if not _unit(k):
            y = y * k
        q = torch.copysign(self._round(torch.clamp(y.abs(), max=f.max)), y)
        return q if self._fast else torch.where(torch.isnan(y), y, q)

    # -- scaling ------------------------------------------------------------------------------------
    def _scale(self, amax: torch.Tensor) -> torch.Tensor:
        s = self.fmt.max / amax
        s = torch.where((amax > 0) & torch.isfinite(s), s, torch.ones_like(s))
        return torch.exp2(torch.floor(torch.log2(s))) if self.pow2 else s

    def __call__(self, x: torch.Tensor, counts: list[torch.Tensor] | None = None,
                 prescale: float = 1.0, transient: bool = False) -> torch.Tensor:
        """``x`` quantised (``prescale * x`` when given: a positive factor applied before the
        quantiser in the same pass, as the loss scale; the result is not divided by it).

        ``transient``: the result may live in a buffer of this quantiser that its next transient call
        overwrites (no allocation; for a result used at once and dropped, as the backward's dY)."""
        if self.fmt.is_identity:
            if counts is not None:
                _add(counts, torch.zeros((), device=x.device), torch.zeros((), device=x.device))
            return x * prescale if prescale != 1.0 else x
        y = x.float()
        if prescale != 1.0 and (counts is not None or self.scaling != "none"):
            y, prescale = y * prescale, 1.0
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
            s = self._scale(_absmax(y))
        elif self.scaling in ("channel", "block") and y.dim():
            s = self._scale(_absmax(y, dim=-1))
        if counts is None:
            # the scale (> 0) enters in the first pass and leaves in the last
            q = self._q(y, s, transient, unscale=True) if s is not None else self._q(y, prescale, transient)
        else:
            ys = y * s if s is not None else y
            q = self._q(ys)
            # with absmax scales nothing saturates (the largest value lands on the max)
            sat = (ys.abs() > self.fmt.max).sum() if s is None else torch.zeros((), device=x.device)
            _add(counts, ((ys != 0) & (q == 0)).sum(), sat)
            if s is not None:
                q.div_(s)
        return q.reshape(shape).to(x.dtype)


def _absmax(y: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """``max |y|`` over the tensor or along ``dim`` (kept), NaN propagating, in one pass (no ``|y|``)."""
    lo, hi = torch.aminmax(y) if dim is None else torch.aminmax(y, dim=dim, keepdim=True)
    return torch.maximum(lo.neg_(), hi).abs_()     # abs_: +0 for an all-zero group, as |y|'s max


def _unit(k: float | torch.Tensor) -> bool:
    return not isinstance(k, torch.Tensor) and k == 1.0


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


# -- quantised linear layers ------------------------------------------------------------------------
ROLES = {"weights": "w", "activations": "a", "gradients": "g"}


class QuantContext:
    """The quantisers of a run's hidden linear layers, shared by all of them, and their telemetry.

    ``operands`` are the quantised GEMM inputs of ../shared/PRECISION.md section 3 (P1 x forward, P2 W
    forward, P3 dy for dx, P4 W for dx, P5 dy for dW, P6 x for dW). Each tensor is quantised along its
    own last dimension (W ``[out, in]`` and x ``[..., in]`` along ``in``, dy ``[..., out]`` along
    ``out``); a W (or x) quantised for both of its passes is quantised once and used twice.
    ``loss_scale`` multiplies the gradients before their quantiser and divides them after it.

    While :attr:`recording` is set, every quantiser call adds to :attr:`counts` (per role: values
    flushed to zero, values saturated, values seen); the telemetry feature sets it on sampled steps.
    """

    def __init__(self, config: Any, seed: int = 0, batch_tokens: int = 0) -> None:
        r = config.resolved()
        self.operands = frozenset(r["operands"])
        # a recipe's batch-sized static loss scale (fp8-static): the run's batch in tokens
        self.loss_scale = float(batch_tokens if r.get("loss_scale_batch") and batch_tokens else r["loss_scale"])
        self.seed = seed
        self.generator: torch.Generator | None = None
        self.stochastic = r["rounding"] == "stochastic"
        self.quantizers = {role: Quantizer(r[role], convention=r["convention"], scaling=r["scaling"],
                                           block=r["block"] or None, rounding=r["rounding"],
                                           scale_format=r["scale_format"])
                           for role in ROLES}
        self.recording = False
        self.counts: dict[str, list[Any]] = {}

    def roles(self) -> list[str]:
        """The roles some quantised operand has, in the order weights, activations, gradients."""
        used = {OPERAND_ROLES[o] for o in self.operands}
        return [r for r in ROLES if r in used and not self.quantizers[r].fmt.is_identity]

    def q(self, role: str, x: torch.Tensor, prescale: float = 1.0, transient: bool = False) -> torch.Tensor:
        """``prescale * x`` quantised as ``role`` (counted while recording; ``transient``: see
        :meth:`Quantizer.__call__`)."""
        qz = self.quantizers[role]
        if self.stochastic:
            if self.generator is None or self.generator.device != x.device:
                self.generator = torch.Generator(device=x.device).manual_seed(self.seed)
            qz.generator = self.generator
        if not self.recording:
            return qz(x, prescale=prescale, transient=transient)
        entry = self.counts.setdefault(role, [[], 0])
        out = qz(x, entry[0], prescale=prescale)
        entry[1] += x.numel()
        return out

    def fractions(self) -> dict[str, float]:
        """``underflow_<w|a|g>`` and ``saturate_<w|a|g>`` since the last :meth:`reset`, per recorded role."""
        out = {}
        for role, (counts, n) in self.counts.items():
            if n and counts:
                out[f"underflow_{ROLES[role]}"] = float(counts[0]) / n
                out[f"saturate_{ROLES[role]}"] = float(counts[1]) / n
        return out

    def reset(self) -> None:
        self.counts = {}


class _QuantizedMatmul(torch.autograd.Function):
    """y = alpha x W^T with the context's operands quantised; the gradient passes straight through each
    quantiser (straight-through estimator) into the other operand's GEMM. ``alpha`` is the GEMM's
    static output multiplier (μS, PRECISION.md section 1 item 2): it scales each GEMM's fp32 result,
    so the quantised operands are x, W and the unscaled incoming dY (dX = alpha dY W, dW = alpha dY^T x)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, w: torch.Tensor, qc: QuantContext, alpha: float = 1.0) -> torch.Tensor:
        ops = qc.operands
        xq = qc.q("activations", x) if "P1" in ops else x
        wq = qc.q("weights", w) if "P2" in ops else w
        y = torch.nn.functional.linear(xq, wq)
        if alpha != 1.0:
            y.mul_(alpha)            # in place on the GEMM's fresh result (no second tensor)
        x6 = (xq if "P1" in ops else qc.q("activations", x)) if "P6" in ops else x
        w4 = (wq if "P2" in ops else qc.q("weights", w)) if "P4" in ops else w
        ctx.save_for_backward(x6, w4)
        ctx.qc, ctx.x_dtype, ctx.w_dtype, ctx.alpha = qc, x.dtype, w.dtype, alpha
        return y

    @staticmethod
    def backward(ctx: Any, *grads: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None, None]:
        x6, w4 = ctx.saved_tensors
        qc: QuantContext = ctx.qc
        dy = grads[0].float()
        ops, ls = qc.operands, qc.loss_scale
        dq = None
        if "P3" in ops or "P5" in ops:
            # Q(ls dY): the 1/ls goes into the GEMM's output factor with alpha (one pass fewer over dY)
            # transient: dq feeds the two GEMMs below and is dropped (its buffer is reused next call)
            dq = qc.q("gradients", dy, prescale=ls, transient=True)
        dy3, f3 = (dq, ctx.alpha / ls) if "P3" in ops and dq is not None else (dy, ctx.alpha)
        dy5, f5 = (dq, ctx.alpha / ls) if "P5" in ops and dq is not None else (dy, ctx.alpha)
        dx = _scaled_mm(dy3.reshape(-1, dy3.shape[-1]), w4.float(), f3).view(*dy3.shape[:-1], w4.shape[-1])
        dw = _scaled_mm(dy5.reshape(-1, dy5.shape[-1]).t(), x6.float().reshape(-1, x6.shape[-1]), f5)
        return dx.to(ctx.x_dtype), dw.to(ctx.w_dtype), None, None


def _scaled_mm(a: torch.Tensor, b: torch.Tensor, f: float) -> torch.Tensor:
    """``f (a @ b)``, as ``(a @ b) * f`` rounds it. A power-of-two ``f`` (the loss scale's inverse) goes
    into the GEMM's own alpha (exact: scaling by 2^k commutes with every rounding of the product and
    the sums), any other ``f`` multiplies the fresh result in place."""
    if f == 1.0:
        return a @ b
    if math.frexp(f)[0] == 0.5:
        return torch.addmm(a.new_empty(()), a, b, beta=0, alpha=f)
    return (a @ b).mul_(f)


class QuantLinear(torch.nn.Linear):
    """A bias-free ``nn.Linear`` whose GEMMs see the operands of its :class:`QuantContext` quantised.

    The weight stays the fp32 master weight (what the optimizer, pruning and checkpoints see); only
    the matmul's inputs are rounded, in the forward pass and in both backward GEMMs. ``multiplier`` is
    the GEMM's static output scale alpha (1 by default; a parametrization's multiplier is folded in by
    the model through :meth:`fold_multiplier`, as μS applies it inside the FP8 matmul).
    """

    def __init__(self, in_features: int, out_features: int, qc: QuantContext) -> None:
        super().__init__(in_features, out_features, bias=False)
        self.qc = qc
        self.multiplier = 1.0

    def fold_multiplier(self, multiplier: float) -> None:
        """Take the static output multiplier into this layer's GEMMs (forward and both backward)."""
        self.multiplier = self.multiplier * multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = _QuantizedMatmul.apply(  # type: ignore[no-untyped-call]
            x, self.weight, self.qc, self.multiplier)
        return out

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, multiplier={self.multiplier:g}"


#: the linear-layer roles (``ladder.model``) that a precision config quantises: the hidden ones
QUANTISED_ROLES = ("attn.qkv", "attn.proj", "mlp.fc", "mlp.proj")


def quantized_linear_factory(config: RunConfig) -> Any:
    """``linear(in, out, role)`` giving :class:`QuantLinear` layers sharing one context for the hidden
    roles and plain ``nn.Linear`` for the rest (the tied LM head stays in full precision)."""
    qc = QuantContext(config.precision, seed=config.seed, batch_tokens=config.batch_tokens)

    def linear(in_features: int, out_features: int, role: str) -> torch.nn.Linear:
        if role in QUANTISED_ROLES:
            return QuantLinear(in_features, out_features, qc)
        return torch.nn.Linear(in_features, out_features, bias=False)

    return linear


class PrecisionFeature(Feature):
    """Telemetry of a quantised run (a trainer feature): per point, the fraction of values flushed to
    zero (``underflow_w``, ``underflow_a``, ``underflow_g``: non-zero before the quantiser, zero after)
    and saturated (``saturate_w`` ...: beyond the format's max after scaling) of each quantised role
    (weights, activations, gradients), counted over every quantiser call of the last training step
    before the point (all its micro-batches; the step before a cooldown branch's end for a branch
    point). Only those steps are counted, so the telemetry costs nothing on the others. The
    stochastic-rounding generator is the feature's state (checkpoints, resume, branches).
    """

    name = "precision"

    def __init__(self, config: RunConfig, qc: QuantContext) -> None:
        self.qc = qc
        steps = config.steps
        ends = {br.end_step for br in schedules.branches(config.schedule, config.lr, steps)}
        self.sampled = {s - 1 for s in set(eval_steps(steps, config.evals)) | ends}

    def before_forward(self, step: int) -> None:
        self.qc.recording = step in self.sampled
        if self.qc.recording:
            self.qc.reset()

    def after_step(self, step: int) -> None:
        self.qc.recording = False

    def point_fields(self, step: int) -> dict[str, Any]:
        out = self.qc.fractions() if step - 1 in self.sampled else {}
        return out

    def state_dict(self) -> dict[str, Any]:
        g = self.qc.generator
        return {"generator": None if g is None else g.get_state(), "device": None if g is None else str(g.device)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("generator") is not None:
            self.qc.generator = torch.Generator(device=state["device"])
            self.qc.generator.set_state(state["generator"])
        else:
            self.qc.generator = None


def quant_context(model: torch.nn.Module) -> QuantContext | None:
    """The :class:`QuantContext` of ``model``'s quantised linears (None when it has none)."""
    for mod in model.modules():
        if isinstance(mod, QuantLinear):
            return mod.qc
    return None


__all__ = ["BF16_MIN_WIDTH", "QUANTISED_ROLES", "ROLES", "ROUNDINGS", "PrecisionFeature", "QuantContext",
           "QuantLinear", "quant_context", "quantized_linear_factory", "SCALE_FORMATS", "SCALINGS", "Format", "Quantizer", "autocast",
           "cpu_has_bf16", "parse_format", "quantize", "resolve_dtype"]
