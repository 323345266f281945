"""Number formats by name: what an ExMy, integer or named format is, its range and its encoding.

Pure Python (no torch), so the run config, the designer and the store can read formats; the
quantiser that rounds tensors to them is :mod:`scalinglab.ladder.precision`.

Spelling (case-insensitive): ``ExMy`` with E in 0..8 exponent bits and M in 0..7 mantissa bits
(``E4M3``, ``E2M1``, ``E0M3``); ``intK``, K in 2..8 (a symmetric K-bit integer); ``fp32`` / ``float32``
(no rounding at all); ``bf16`` / ``bfloat16`` (E8M7), ``fp16`` / ``float16`` (E5M10). Every format has
a sign bit: ``P = E + M + 1`` bits (``P = K`` for ``intK``).

Floating formats (E >= 1) are IEEE-style: exponent bias ``2^(E-1) - 1``, subnormals (exponent code
0), round to nearest even. Which codes are finite is the *encoding*:

* ``finite``: every code is a number (Sun et al. 2025 and QPyTorch; OCP MX FP6/FP4): the largest
  value is ``2^(2^E - 1 - bias) (2 - 2^-M)``, E4M3 480, E5M2 114,688, E2M1 6;
* ``ieee``: the top exponent code holds inf and NaN: E5M2 57,344, E4M3 240 (ml_dtypes'
  ``float8_e4m3``), E3M4 15.5;
* ``fn``: the top exponent code is finite but for the all-ones mantissa (the one NaN code per sign):
  OCP E4M3FN, largest 448.

The run config's *conventions* pick an encoding per format: ``finite`` (every format ``finite``);
``ocp`` (the OCP FP8 and MX specifications: E4M3 ``fn``, E5M2 ``ieee``, formats of at most 6 bits
``finite``; beyond those, formats of 7 or more bits with E >= 2 ``ieee``, the rest ``finite``);
``ieee`` (``ieee`` wherever E >= 2, else ``finite``). E8 formats stop at float32's top binade (the
``finite`` encoding's extra binade 2^128 is beyond the float32 the quantiser computes in). The quantiser saturates at the largest finite
value in every encoding (no value is ever rounded to inf), so the encodings differ only in that value.

E0My (no exponent bits) is *fixed point*: the magnitudes ``k 2^(2-M)``, k = 0 .. 2^M - 1, i.e. the
value grid of E1M(M-1) (with subnormals the two are the same grid, ../shared/PRECISION.md section 2),
so E0My and E1M(y-1) compare as the same bits of precision with one bit moved. ``intK`` is the
symmetric integer grid ``-(2^(K-1) - 1) .. 2^(K-1) - 1`` (step 1), the round-to-nearest PTQ grid of
Kumar et al. 2024 (arXiv 2411.04330) and most weight-only quantisers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ConfigError, invalid

#: the largest float32 (the quantiser computes in float32)
FLOAT32_MAX = 3.4028234663852886e38
CONVENTIONS = ("ocp", "finite", "ieee")
ENCODINGS = ("finite", "ieee", "fn")
MAX_E, MAX_M = 8, 7
_EXMY = re.compile(r"e(\d+)m(\d+)")
_INT = re.compile(r"int(\d+)")
_ALIASES = {"fp32": "fp32", "float32": "fp32", "bf16": "bf16", "bfloat16": "bf16", "fp16": "fp16",
            "float16": "fp16"}
FORMAT_EXPECTED = ("a number format: ExMy with E in 0..8 and M in 0..7 (e.g. 'E4M3', 'E2M1'), 'intK' with K in "
                   "2..8, 'fp32', 'bf16' or 'fp16'")


@dataclass(frozen=True)
class Format:
    """One number format: its kind, bits, encoding and range.

    Attributes:
        name: the canonical spelling (``E4M3``, ``int4``, ``fp32``, ``bf16``, ``fp16``).
        kind: ``float`` (E >= 1), ``fixed`` (E0My), ``int`` (intK) or ``none`` (fp32: no rounding).
        e_bits, m_bits: exponent and mantissa bits (``int``: 0 and K - 1; ``none``: 8 and 23).
        encoding: ``finite``, ``ieee`` or ``fn`` for floats (module docstring); ``finite`` otherwise.
        bits: P, all bits including the sign.
        bias: the exponent bias (floats), else 0.
        max: the largest finite magnitude.
        min_normal: the smallest normal magnitude (fixed and int: the grid step).
        min_subnormal: the smallest non-zero magnitude (the grid step of fixed and int).
    """

    name: str
    kind: str
    e_bits: int
    m_bits: int
    encoding: str
    bits: int
    bias: int
    max: float
    min_normal: float
    min_subnormal: float

    @property
    def step(self) -> float:
        """The spacing of the smallest values (the subnormal spacing; the whole grid's for fixed/int)."""
        return self.min_subnormal

    @property
    def is_identity(self) -> bool:
        """fp32: quantising to it changes nothing."""
        return self.kind == "none"


def _encoding(e: int, m: int, convention: str) -> str:
    p = e + m + 1
    if convention == "finite" or e < 2:
        return "finite"
    if convention == "ieee":
        return "ieee"
    # ocp
    if (e, m) == (4, 3):
        return "fn"
    if p <= 6:
        return "finite"
    return "ieee"


def float_format(e: int, m: int, encoding: str, name: str) -> Format:
    """The floating format with ``e`` >= 1 exponent and ``m`` mantissa bits in ``encoding``."""
    bias = 2 ** (e - 1) - 1
    emin = 1 - bias
    top = 2 ** e - 1 - bias                      # the exponent of the top code
    if encoding == "ieee":
        top_max = 2.0 ** (top - 1) * (2.0 - 2.0 ** -m)
    elif encoding == "fn":
        if m < 1:
            raise ConfigError(invalid("The format", name, "at least one mantissa bit for the 'fn' encoding"))
        top_max = 2.0 ** top * (2.0 - 2.0 ** (1 - m))
    else:
        top_max = 2.0 ** top * (2.0 - 2.0 ** -m)
    if top_max > FLOAT32_MAX:     # E8 'finite' / 'fn': the extra binade 2^128 is beyond float32 (emulated in it)
        top_max = 2.0 ** 127 * (2.0 - 2.0 ** -m)
    return Format(name, "float", e, m, encoding, e + m + 1, bias, top_max, 2.0 ** emin, 2.0 ** (emin - m))


def parse_format(spec: object, convention: str = "ocp", *, what: str = "The format") -> Format:
    """The :class:`Format` named ``spec`` under ``convention`` (module docstring); a one-line
    ConfigError naming ``what`` otherwise."""
    if convention not in CONVENTIONS:
        raise ConfigError(invalid("The convention", convention, f"one of {CONVENTIONS}"))
    if isinstance(spec, Format):
        return spec
    if not isinstance(spec, str):
        raise ConfigError(invalid(what, spec, FORMAT_EXPECTED))
    s = spec.strip().lower()
    alias = _ALIASES.get(s)
    if alias == "fp32":
        return Format("fp32", "none", 8, 23, "ieee", 32, 127, FLOAT32_MAX, 2.0 ** -126, 2.0 ** -149)
    if alias == "bf16":
        return float_format(8, 7, "ieee", "bf16")
    if alias == "fp16":
        return float_format(5, 10, "ieee", "fp16")
    mi = _INT.fullmatch(s)
    if mi:
        k = int(mi.group(1))
        if not 2 <= k <= 8:
            raise ConfigError(invalid(what, spec, "an integer format 'intK' with K in 2..8"))
        return Format(f"int{k}", "int", 0, k - 1, "finite", k, 0, float(2 ** (k - 1) - 1), 1.0, 1.0)
    mf = _EXMY.fullmatch(s)
    if not mf:
        raise ConfigError(invalid(what, spec, FORMAT_EXPECTED))
    e, m = int(mf.group(1)), int(mf.group(2))
    name = f"E{e}M{m}"
    if not (0 <= e <= MAX_E and 0 <= m <= MAX_M):
        raise ConfigError(invalid(what, spec, f"E in 0..{MAX_E} and M in 0..{MAX_M} (E + M + 1 <= 16 bits)"))
    if e == 0:
        if m < 1:
            raise ConfigError(invalid(what, spec, "at least one bit besides the sign (E0M0 has no values)"))
        step = 2.0 ** (2 - m)
        return Format(name, "fixed", 0, m, "finite", m + 1, 0, (2 ** m - 1) * step, step, step)
    return float_format(e, m, _encoding(e, m, convention), name)


# -- post-training quantisation settings -------------------------------------------------------------
_PTQ = re.compile(r"(?P<fmt>[A-Za-z0-9]+?)(?:_g(?P<group>\d+))?")
PTQ_EXPECTED = ("a PTQ setting '<format>' (one scale per output channel) or '<format>_g<G>' (one per group of G "
                "input weights), the format 'intK' (K in 2..8) or 'ExMy', e.g. 'int4', 'int3_g32', 'E2M1_g32'")


@dataclass(frozen=True)
class PTQSetting:
    """One post-training quantisation setting: a format and its scale groups.

    ``group`` 0 is one absmax scale per output channel (row of a weight ``[out, in]``); G > 0 one scale
    per G consecutive input weights of a row. ``name`` is the canonical spelling and the suffix of the
    point metric ``loss_ptq_<name>``.
    """

    name: str
    format: Format
    group: int


def parse_ptq(spec: object) -> PTQSetting:
    """A PTQ setting from its spelling (:data:`PTQ_EXPECTED`); a one-line ConfigError otherwise."""
    if not isinstance(spec, str):
        raise ConfigError(invalid("The 'ptq' entry", spec, PTQ_EXPECTED))
    m = _PTQ.fullmatch(spec.strip())
    if not m:
        raise ConfigError(invalid("The 'ptq' entry", spec, PTQ_EXPECTED))
    try:
        fmt = parse_format(m.group("fmt"), "finite", what="The 'ptq' entry's format")
    except ConfigError:
        raise ConfigError(invalid("The 'ptq' entry", spec, PTQ_EXPECTED)) from None
    if fmt.kind == "none" or fmt.name in ("bf16", "fp16"):
        raise ConfigError(invalid("The 'ptq' entry", spec, PTQ_EXPECTED))
    group = int(m.group("group") or 0)
    if m.group("group") is not None and group < 2:
        raise ConfigError(invalid("The 'ptq' entry", spec, "a group size G >= 2 in '<format>_g<G>'"))
    return PTQSetting(fmt.name + (f"_g{group}" if group else ""), fmt, group)


__all__ = ["CONVENTIONS", "ENCODINGS", "FORMAT_EXPECTED", "PTQ_EXPECTED", "Format", "PTQSetting", "float_format",
           "parse_format", "parse_ptq"]
