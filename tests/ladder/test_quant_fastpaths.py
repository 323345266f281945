"""The quantiser's fast paths give the plain computation's values bit for bit: the cache-sized chunks of
the magic-number rounding (chunk boundaries inside rows, scales per row or block), the prescale (the
loss scale) taken into the first pass, the transient (reused) result buffer, the one-pass absmax, and
the power-of-two GEMM factor in BLAS's alpha."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
import torch

from scalinglab.ladder import precision
from scalinglab.ladder.precision import Quantizer, _absmax, _scaled_mm


def values(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """Log-uniform magnitudes from 2^-30 to 2^20, both signs, with NaN, +-inf and +-0 sprinkled in."""
    g = torch.Generator().manual_seed(seed)
    n = int(np.prod(shape))
    x = torch.exp2(torch.rand(n, generator=g) * 50 - 30) * (torch.randint(0, 2, (n,), generator=g) * 2 - 1)
    x[::97] = float("nan")
    x[5::101] = float("inf")
    x[7::103] = -float("inf")
    x[9::89] = 0.0
    x[11::83] = -0.0
    return x.reshape(shape)


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    nan = torch.isnan(a) & torch.isnan(b)
    return bool(((a.view(torch.int32) == b.view(torch.int32)) | nan).all())


@pytest.mark.parametrize("fmt", ["E4M3", "E2M1", "E3M2", "E5M2"])
@pytest.mark.parametrize(("scaling", "block"), [("none", None), ("channel", None), ("block", 8), ("tensor", None)])
def test_chunked_magic_rounding_equals_one_pass(monkeypatch: pytest.MonkeyPatch, fmt: str, scaling: str,
                                                block: int | None) -> None:
    x = values((37, 24)) if scaling == "none" else values((37, 24)).nan_to_num(nan=1.0, posinf=3.0, neginf=-5.0)
    q = Quantizer(fmt, scaling=scaling, block=block)
    q.native = None                          # E5M2 through the magic path too
    monkeypatch.setattr(precision, "CHUNK", 1 << 30)
    whole = q(x)
    monkeypatch.setattr(precision, "CHUNK", 7)   # 1 row a chunk; and rows of blocks: chunks of 8 elements
    assert same_bits(q(x), whole)
    monkeypatch.setattr(precision, "CHUNK", 100)  # several rows a chunk, the last chunk short
    assert same_bits(q(x), whole)
    if scaling == "none" and fmt == "E4M3":
        ref = np.clip(x.numpy(), -448, 448).astype(ml_dtypes.float8_e4m3fn).astype(np.float32)
        ref[np.isnan(x.numpy())] = np.nan
        assert same_bits(whole, torch.from_numpy(ref))


@pytest.mark.parametrize("fmt", ["E4M3", "E5M2", "E2M1", "E8M3", "int4", "fp32"])
@pytest.mark.parametrize("k", [4096.0, 3.0, 2.0 ** -7])
def test_prescale_is_the_quantiser_of_the_scaled_tensor(fmt: str, k: float) -> None:
    x = values((16, 40), seed=1) * 1e-3
    q = Quantizer(fmt)
    assert same_bits(q(x, prescale=k), q(x * k))
    assert same_bits(q(x, prescale=k, transient=True), q(x * k))
    qs = Quantizer(fmt, scaling="channel")
    y = x.nan_to_num(nan=0.5, posinf=1.0, neginf=-1.0)
    assert same_bits(qs(y, prescale=k), qs(y * k))


@pytest.mark.parametrize("fmt", ["E5M2", "E4M3"])
def test_transient_results_reuse_one_buffer_and_leave_the_input_alone(fmt: str) -> None:
    q = Quantizer(fmt)
    a, b = values((8, 64), seed=2), values((8, 64), seed=3)
    a0 = a.clone()
    ra = q(a, prescale=16.0, transient=True)
    want_a = q(a * 16.0)
    assert same_bits(ra, want_a) and same_bits(a, a0)
    ptr = ra.data_ptr()
    rb = q(b, transient=True)
    assert rb.data_ptr() == ptr and same_bits(rb, q(b))     # the buffer was overwritten (by design)
    assert q(a).data_ptr() != ptr                           # a plain call allocates its result


def test_one_pass_absmax_equals_abs_amax() -> None:
    x = values((12, 33), seed=4)
    finite = x.nan_to_num(nan=0.0, posinf=7.0, neginf=-9.0)
    for t in (x, finite, -finite, torch.zeros(3, 5)):
        assert same_bits(_absmax(t), t.abs().amax())
        assert same_bits(_absmax(t, dim=-1), t.abs().amax(dim=-1, keepdim=True))


@pytest.mark.parametrize("f", [2.0 ** -12, 2.0 ** -3, 0.37, 1.0])
def test_scaled_gemm_equals_the_product_times_the_factor(f: float) -> None:
    g = torch.Generator().manual_seed(5)
    for m, k, n in [(512, 384, 128), (128, 512, 64), (7, 13, 5)]:
        a, b = torch.randn(m, k, generator=g) * 1e-3, torch.randn(k, n, generator=g) * 0.02
        assert same_bits(_scaled_mm(a, b, f), (a @ b) * f)
        assert same_bits(_scaled_mm(a.t().contiguous().t(), b, f), (a @ b) * f)
