"""The fake quantiser (ladder.precision.quantize) bit for bit against ml_dtypes, torch's float8 casts and
an exact oracle (every representable value enumerated in float64, nearest-even chosen by search)."""

from __future__ import annotations

import itertools

import ml_dtypes
import numpy as np
import pytest
import torch

from scalinglab.errors import ConfigError
from scalinglab.ladder.precision import Quantizer, quantize
from scalinglab.numformats import Format, parse_format, parse_ptq


def spanning(fmt: Format, n: int, seed: int = 0) -> np.ndarray:
    """``n`` float32 values log-uniform from below the smallest subnormal to beyond the max, both signs,
    with every midpoint between neighbouring values (exact ties), the values themselves, NaN, inf, +-0."""
    rng = np.random.default_rng(seed)
    lo, hi = np.log2(fmt.min_subnormal) - 3, min(np.log2(fmt.max) + 3, 127.9)
    x = 2.0 ** rng.uniform(lo, hi, n) * rng.choice([-1.0, 1.0], n)
    grid = grid_values(fmt)
    mids = (grid[1:] + grid[:-1]) / 2
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, min(fmt.max * 1.01, 3e38), -min(fmt.max * 4, 3.4e38)])
    return np.concatenate([special, grid, -grid, mids, -mids, x]).astype(np.float32)


def grid_values(fmt: Format) -> np.ndarray:
    """Every finite non-negative value of ``fmt``, ascending (index parity = code parity), float64."""
    if fmt.kind in ("fixed", "int"):
        return np.arange(0, round(fmt.max / fmt.step) + 1) * fmt.step
    out = []
    for e_code, m in itertools.product(range(2 ** fmt.e_bits), range(2 ** fmt.m_bits)):
        v = (m / 2 ** fmt.m_bits) * 2.0 ** (1 - fmt.bias) if e_code == 0 else \
            (1 + m / 2 ** fmt.m_bits) * 2.0 ** (e_code - fmt.bias)
        out.append(v)
    vals = np.array(out)
    return vals[vals <= fmt.max]


def oracle(x: np.ndarray, fmt: Format) -> np.ndarray:
    """Round to nearest, ties to the even code, saturating; NaN stays NaN (float64 arithmetic)."""
    grid = grid_values(fmt)
    a = np.minimum(np.abs(x.astype(np.float64)), fmt.max)
    nan = np.isnan(a)
    a[nan] = 0
    hi = np.clip(np.searchsorted(grid, a), 0, len(grid) - 1)
    lo = np.clip(hi - 1, 0, None)
    d_lo, d_hi = a - grid[lo], grid[hi] - a
    pick = np.where(d_hi < d_lo, hi, np.where(d_lo < d_hi, lo, np.where(hi % 2 == 0, hi, lo)))
    pick = np.where(grid[hi] == a, hi, pick)
    out = np.copysign(grid[pick], x).astype(np.float32)
    out[nan] = np.nan
    return out


def assert_bits_equal(out: np.ndarray, ref: np.ndarray, x: np.ndarray) -> None:
    both_nan = np.isnan(out) & np.isnan(ref)
    bad = (out.view(np.int32) != ref.view(np.int32)) & ~both_nan
    assert not bad.any(), f"{bad.sum()} mismatches, e.g. x={x[bad][:4]} got {out[bad][:4]} want {ref[bad][:4]}"


ML_DTYPES = [("E4M3", "ocp", ml_dtypes.float8_e4m3fn), ("E5M2", "ocp", ml_dtypes.float8_e5m2),
             ("E4M3", "ieee", ml_dtypes.float8_e4m3), ("E3M4", "ocp", ml_dtypes.float8_e3m4),
             ("E2M3", "ocp", ml_dtypes.float6_e2m3fn), ("E3M2", "ocp", ml_dtypes.float6_e3m2fn),
             ("E2M1", "ocp", ml_dtypes.float4_e2m1fn), ("E2M3", "finite", ml_dtypes.float6_e2m3fn),
             ("E2M1", "finite", ml_dtypes.float4_e2m1fn)]


@pytest.mark.parametrize(("name", "convention", "dtype"), ML_DTYPES)
@pytest.mark.parametrize("native", [True, False])
def test_bit_exact_against_ml_dtypes(name: str, convention: str, dtype: type, native: bool) -> None:
    q = Quantizer(name, convention=convention)
    if not native:
        q.native = None           # the bit-manipulation path, even where a native cast exists
    fmt = q.fmt
    info = ml_dtypes.finfo(dtype)
    assert (fmt.max, fmt.min_normal, fmt.min_subnormal) == (
        float(info.max), float(info.smallest_normal), float(info.smallest_subnormal))
    x = spanning(fmt, 1_000_000)
    ref = np.clip(x, -fmt.max, fmt.max).astype(dtype).astype(np.float32)   # clamp first: saturation
    nan = np.isnan(x)
    ref[nan] = np.nan           # the all-finite types have no NaN (ml_dtypes gives -0): NaN in, NaN out here
    out = q(torch.from_numpy(x)).numpy()
    assert_bits_equal(out, ref, x)
    assert np.isnan(out[nan]).all()


@pytest.mark.parametrize(("name", "dtype"), [("E4M3", torch.float8_e4m3fn), ("E5M2", torch.float8_e5m2)])
def test_bit_exact_against_torch_float8(name: str, dtype: torch.dtype) -> None:
    q = Quantizer(name)
    q.native = None
    x = torch.from_numpy(spanning(q.fmt, 1_000_000, seed=1))
    ref = torch.clamp(x, -q.fmt.max, q.fmt.max).to(dtype).to(torch.float32)
    assert_bits_equal(q(x).numpy(), ref.numpy(), x.numpy())


ALL_FORMATS = [f"E{e}M{m}" for e in range(9) for m in range(8) if e + m >= 1 and not (e == 0 and m == 0)]


@pytest.mark.parametrize("convention", ["ocp", "finite", "ieee"])
def test_every_exmy_against_the_exact_oracle(convention: str) -> None:
    for name in ALL_FORMATS:
        q = Quantizer(name, convention=convention)
        x = spanning(q.fmt, 8_000, seed=len(name) + q.fmt.e_bits)
        assert_bits_equal(q(torch.from_numpy(x)).numpy(), oracle(x, q.fmt), x)


def test_format_ranges_and_conventions() -> None:
    assert parse_format("E4M3").max == 448 and parse_format("E4M3", "finite").max == 480
    assert parse_format("e5m2").max == 57344 and parse_format("E5M2", "finite").max == 114688
    assert parse_format("E2M1").max == 6 and parse_format("E3M2").max == 28
    assert parse_format("E4M3").min_subnormal == 2.0 ** -9 and parse_format("E5M2").min_subnormal == 2.0 ** -16
    assert parse_format("bf16").max == float(torch.finfo(torch.bfloat16).max)
    assert parse_format("int4").max == 7 and parse_format("int4").bits == 4
    assert parse_format("E4M3").bits == 8
    # E0My has E1M(y-1)'s grid
    np.testing.assert_array_equal(grid_values(parse_format("E0M3")), grid_values(parse_format("E1M2")))


@pytest.mark.parametrize("bad", ["E9M1", "E2M8", "E0M0", "int9", "int1", "fp8", "E4", 3])
def test_bad_formats_are_one_line_config_errors(bad: object) -> None:
    with pytest.raises(ConfigError) as e:
        parse_format(bad)
    assert "\n" not in str(e.value) and repr(bad) in str(e.value)


def test_integer_grid_and_bf16_native() -> None:
    x = torch.tensor([0.4, 0.5, 1.5, 2.5, -3.49, 9.0, -100.0])
    assert quantize(x, "int4").tolist() == [0.0, 0.0, 2.0, 2.0, -3.0, 7.0, -7.0]
    y = torch.randn(10000)
    assert torch.equal(quantize(y, "bf16"), y.to(torch.bfloat16).float())
    assert torch.equal(quantize(y, "fp32"), y)


def test_stochastic_rounding_is_unbiased_onto_the_two_neighbours() -> None:
    g = torch.Generator().manual_seed(0)
    for name, value in [("E4M3", 0.3), ("E4M3", 0.00291), ("E2M1", 2.6), ("E0M3", 0.7), ("int4", 2.3),
                        ("E5M2", -1e-5)]:
        x = torch.full((200_000,), value)
        q = quantize(x, name, rounding="stochastic", generator=g)
        fmt = parse_format(name)
        grid = grid_values(fmt)
        lo = grid[np.searchsorted(grid, abs(value)) - 1]
        hi = grid[np.searchsorted(grid, abs(value))]
        assert set(np.abs(q.numpy()).tolist()) <= {float(lo), float(hi)}
        sd = (hi - lo) / 2 / np.sqrt(len(x))
        assert abs(q.double().mean().item() - value) < 5 * sd, (name, value)
    # saturates at the max, never beyond
    assert quantize(torch.full((1000,), 447.0), "E4M3", rounding="stochastic", generator=g).max().item() == 448


def test_scalings() -> None:
    torch.manual_seed(0)
    w = torch.randn(8, 64) * torch.logspace(-3, 1, 8)[:, None]
    # channel scaling: each row's absmax lands on the format's max, so it is exact
    q = quantize(w, "E2M1", scaling="channel")
    assert torch.allclose(q.abs().amax(1), w.abs().amax(1))
    s = 6.0 / w.abs().amax(1, keepdim=True)
    assert torch.equal(q, quantize(w * s, "E2M1") / s)
    # block scaling of 16: the same as channel scaling of the reshaped tensor
    qb = quantize(w, "E2M1", scaling="block", block=16)
    assert torch.equal(qb, quantize(w.reshape(8, 4, 16), "E2M1", scaling="channel").reshape(8, 64))
    # tensor scaling, power-of-two scales: the scale is 2^floor(log2(max/amax))
    qt = quantize(w, "E4M3", scaling="tensor", scale_format="pow2")
    s2 = 2.0 ** np.floor(np.log2(448.0 / w.abs().max().item()))
    assert torch.equal(qt, quantize(w * s2, "E4M3") / s2)
    assert torch.equal(quantize(torch.zeros(4, 16), "E2M1", scaling="channel"), torch.zeros(4, 16))
    with pytest.raises(ConfigError, match="'block'"):
        quantize(w, "E2M1", scaling="block", block=24)
    with pytest.raises(ConfigError, match="'scaling'"):
        quantize(w, "E2M1", scaling="row")


def test_counts_of_flushed_and_saturated_values() -> None:
    x = torch.tensor([1e-4, 9e-4, 0.0, 0.1, 500.0, -1000.0, 3.0, 1e-6])
    counts: list[torch.Tensor] = []
    Quantizer("E4M3")(x, counts)   # E4M3's smallest subnormal 2^-9 ~ 1.95e-3: 1e-4, 9e-4 (< half of it) and 1e-6 flush
    assert [int(c) for c in counts] == [3, 2]


def test_ptq_settings() -> None:
    s = parse_ptq("int3_g32")
    assert (s.name, s.format.name, s.group) == ("int3_g32", "int3", 32)
    assert parse_ptq("e2m1").name == "E2M1" and parse_ptq("E2M1_g16").group == 16
    for bad in ["int3_g", "int3_g1", "fp32", "E9M1", "int4-g32", 4]:
        with pytest.raises(ConfigError, match="'ptq' entry"):
            parse_ptq(bad)
