"""The TFRecord container of TensorBoard event files, and the few protobuf fields of ``Event`` we read.

A record is ``uint64 length`` (little-endian), ``uint32 masked_crc32c(length bytes)``, ``data``,
``uint32 masked_crc32c(data)``; ``masked(c) = ((c >> 15) | (c << 17)) + 0xA282EAD8 (mod 2^32)`` and
CRC-32C is the Castagnoli polynomial (reflected 0x82F63B78) (TensorFlow, ``tensorflow/core/lib/io/
record_writer.cc`` and ``core/lib/hash/crc32c.h``). The CRCs are checked for every record at once with
NumPy, byte position by byte position over the records of equal length (event files hold thousands of
records of a few lengths), so no C extension is needed.

``Event`` (``tensorboard/compat/proto/event.proto``): 1 ``wall_time`` double, 2 ``step`` int64,
5 ``summary``. ``Summary``: repeated 1 ``value``. ``Summary.Value``: 1 ``tag``, 2 ``simple_value`` float
(the legacy scalar), 8 ``tensor`` (``TensorProto``), 9 ``metadata`` (``SummaryMetadata``: 1
``plugin_data`` {1 ``plugin_name``}, 4 ``data_class``, of which ``DATA_CLASS_SCALAR`` = 1).
``TensorProto`` (``tensor.proto``): 1 ``dtype``, 2 ``tensor_shape``, 4 ``tensor_content`` bytes,
5 ``float_val``, 6 ``double_val``, 7 ``int_val``, 10 ``int64_val``, 11 ``bool_val``, 13 ``half_val``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

_POLY = 0x82F63B78
_TABLE = np.zeros(256, dtype=np.uint32)
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ _POLY if _c & 1 else _c >> 1
    _TABLE[_i] = _c
_MASK_DELTA = 0xA282EAD8


def crc32c(data: bytes) -> int:
    """CRC-32C of ``data`` (one buffer; the reader uses :func:`crc32c_many`)."""
    return int(crc32c_many(np.frombuffer(data, dtype=np.uint8)[None, :])[0])


def crc32c_many(rows: np.ndarray) -> np.ndarray:
    """CRC-32C of each row of a ``(n, length)`` uint8 array, vectorised over the rows."""
    crc = np.full(rows.shape[0], 0xFFFFFFFF, dtype=np.uint32)
    for j in range(rows.shape[1]):
        crc = _TABLE[(crc ^ rows[:, j]) & 0xFF] ^ (crc >> 8)
    return crc ^ np.uint32(0xFFFFFFFF)


def masked(crc: np.ndarray) -> np.ndarray:
    c = crc.astype(np.uint64)
    return (((c >> 15) | (c << 17)) + _MASK_DELTA) & 0xFFFFFFFF


@dataclass
class Records:
    """The good records of one file: where each one's data starts and its length (int64 arrays), and
    what stopped or spoiled the reading (a truncated or corrupt record, with its byte offset), if any."""

    starts: np.ndarray
    lengths: np.ndarray
    problem: str | None

    @property
    def spans(self) -> list[tuple[int, int]]:
        return list(zip(self.starts.tolist(), self.lengths.tolist(), strict=True))


def records(buf: bytes) -> Records:
    """Split ``buf`` into records and check both CRCs of each. Reading stops at the first record that is
    truncated or whose length CRC is wrong (nothing after it can be framed); a record whose data CRC is
    wrong is dropped and reported, and reading goes on (its frame is intact)."""
    heads: list[int] = []
    append = heads.append
    pos, n = 0, len(buf)
    problem = None
    unpack = struct.unpack_from
    while pos + 12 <= n:
        nxt = pos + 16 + unpack("<Q", buf, pos)[0]
        if nxt > n:
            break
        append(pos)
        pos = nxt
    if pos < n:
        if n - pos < 12:
            problem = f"truncated record header at byte offset {pos} ({n - pos} of 12 bytes)"
        else:
            need = 16 + unpack("<Q", buf, pos)[0]
            problem = f"truncated record at byte offset {pos} (needs {need} bytes, {n - pos} left)"
    if not heads:
        return Records(np.zeros(0, np.int64), np.zeros(0, np.int64), problem)
    arr = np.frombuffer(buf, dtype=np.uint8)
    starts = np.array(heads, dtype=np.int64)
    lengths = np.diff(np.append(starts, pos)) - 16

    def u32(at: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(arr[at[:, None] + np.arange(4)]).view("<u4").ravel().astype(np.uint64)

    bad_len = masked(crc32c_many(arr[starts[:, None] + np.arange(8)])) != u32(starts + 8)
    if bad_len.any():    # the length itself may be wrong: nothing from here on can be framed
        k = int(np.argmax(bad_len))
        problem = f"corrupt record length (CRC mismatch) at byte offset {heads[k]}"
        starts, lengths = starts[:k], lengths[:k]
    stored = u32(starts + 12 + lengths)
    ok = np.ones(starts.size, dtype=bool)
    for ln in np.unique(lengths).tolist():
        idx = np.nonzero(lengths == ln)[0]
        ok[idx] = masked(crc32c_many(arr[(starts[idx] + 12)[:, None] + np.arange(ln)])) == stored[idx]
    if not ok.all():
        k = int(np.argmax(~ok))
        bad = f"{int((~ok).sum())} record(s) with a data CRC mismatch, the first at byte offset {int(starts[k])} (dropped)"
        problem = bad if problem is None else f"{bad}; {problem}"
    return Records(starts[ok] + 12, lengths[ok], problem)


# -- protobuf ----------------------------------------------------------------------------------------
def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes, start: int, end: int) -> list[tuple[int, int, int, int, int]]:
    """``(field number, wire type, a, b, p)`` of each field of a message in ``buf[start:end]``: for
    varints and fixed-width fields ``a`` is the value (fixed ones as raw bits) and ``b`` the end of its
    bytes; for length-delimited fields ``a, b`` are the start and end of the bytes. ``p`` is where the
    value's bytes start."""
    out = []
    pos = start
    unpack = struct.unpack_from
    while pos < end:
        key, pos = _varint(buf, pos)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, nxt = _varint(buf, pos)
            out.append((num, 0, v, nxt, pos))
            pos = nxt
        elif wt == 1:
            out.append((num, 1, unpack("<Q", buf, pos)[0], pos + 8, pos))
            pos += 8
        elif wt == 2:
            ln, p = _varint(buf, pos)
            out.append((num, 2, p, p + ln, p))
            pos = p + ln
        elif wt == 5:
            out.append((num, 5, unpack("<I", buf, pos)[0], pos + 4, pos))
            pos += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wt}")
    if pos != end:
        raise ValueError("protobuf message overruns its bounds")
    return out


#: TensorFlow DataType enum values of the scalar dtypes we read
DT_FLOAT, DT_DOUBLE, DT_INT32, DT_INT64, DT_BOOL, DT_HALF, DT_BFLOAT16 = 1, 2, 3, 9, 10, 19, 14
_CONTENT = {DT_FLOAT: "<f4", DT_DOUBLE: "<f8", DT_INT32: "<i4", DT_INT64: "<i8", DT_BOOL: "?", DT_HALF: "<f2"}


def _tensor_scalar(buf: bytes, start: int, end: int) -> float | None:
    """The single value of a scalar TensorProto, or None when it holds other than one number."""
    dtype = 0
    vals: list[float] = []
    content = None
    for num, wt, a, b, _ in _fields(buf, start, end):
        if num == 1 and wt == 0:
            dtype = a
        elif num == 4 and wt == 2:
            content = buf[a:b]
        elif num in (5, 6, 7, 10, 11, 13):
            vals.extend(_packed(buf, num, wt, a, b))
    if content:
        if dtype == DT_BFLOAT16:
            arr = (np.frombuffer(content, "<u2").astype(np.uint32) << 16).view(np.float32)
        elif dtype in _CONTENT:
            arr = np.frombuffer(content, _CONTENT[dtype])
        else:
            return None
        return float(arr[0]) if arr.size == 1 else None
    if len(vals) != 1:
        return None
    v = vals[0]
    if dtype == DT_HALF:
        v = float(np.array([int(v)], dtype=np.uint16).view(np.float16)[0])
    elif dtype == DT_BFLOAT16:
        v = float(np.array([int(v) << 16], dtype=np.uint32).view(np.float32)[0])
    return v


def _packed(buf: bytes, num: int, wt: int, a: int, b: int) -> list[float]:
    if num == 5:       # float
        if wt == 5:
            return [struct.unpack("<f", a.to_bytes(4, "little"))[0]]
        return list(np.frombuffer(buf[a:b], "<f4").astype(float))
    if num == 6:       # double
        if wt == 1:
            return [struct.unpack("<d", a.to_bytes(8, "little"))[0]]
        return list(np.frombuffer(buf[a:b], "<f8"))
    # int_val, int64_val, bool_val, half_val (varints)
    if wt == 0:
        vals = [a]
    else:
        vals, pos = [], a
        while pos < b:
            v, pos = _varint(buf, pos)
            vals.append(v)
    out = []
    for v in vals:
        if num in (7, 10) and v >= 1 << 63:
            v -= 1 << 64
        out.append(float(v))
    return out


def scalars(buf: bytes, start: int, end: int) -> tuple[float, int, list[tuple[str, float]]] | None:
    """``(wall_time, step, [(tag, value), ...])`` of an Event's scalar summary values, or None when the
    event has no summary (the file-version event, graphs, session logs). A value is a scalar when it has
    a ``simple_value`` (legacy), or a one-element tensor with plugin ``scalars`` or data class scalar."""
    wall, step, summary = 0.0, 0, None
    for num, wt, a, b, _ in _fields(buf, start, end):
        if num == 1 and wt == 1:
            wall = struct.unpack("<d", a.to_bytes(8, "little"))[0]
        elif num == 2 and wt == 0:
            step = a - (1 << 64) if a >= 1 << 63 else a
        elif num == 5 and wt == 2:
            summary = (a, b)
    if summary is None:
        return None
    out = []
    for num, wt, a, b, _ in _fields(buf, summary[0], summary[1]):
        if num != 1 or wt != 2:
            continue
        tag, simple, tensor, plugin, data_class = "", None, None, "", 0
        for n2, w2, a2, b2, _ in _fields(buf, a, b):
            if n2 == 1 and w2 == 2:
                tag = buf[a2:b2].decode("utf-8", "replace")
            elif n2 == 7 and w2 == 2 and not tag:     # node_name, the tag of very old writers
                tag = buf[a2:b2].decode("utf-8", "replace")
            elif n2 == 2 and w2 == 5:
                simple = struct.unpack("<f", a2.to_bytes(4, "little"))[0]
            elif n2 == 8 and w2 == 2:
                tensor = (a2, b2)
            elif n2 == 9 and w2 == 2:
                for n3, w3, a3, b3, _ in _fields(buf, a2, b2):
                    if n3 == 1 and w3 == 2:
                        for n4, w4, a4, b4, _ in _fields(buf, a3, b3):
                            if n4 == 1 and w4 == 2:
                                plugin = buf[a4:b4].decode("utf-8", "replace")
                    elif n3 == 4 and w3 == 0:
                        data_class = a3
        if simple is not None:
            out.append((tag, float(simple)))
        elif tensor is not None and (plugin == "scalars" or data_class == 1):
            v = _tensor_scalar(buf, tensor[0], tensor[1])
            if v is not None:
                out.append((tag, v))
    return wall, step, out


# -- the vectorised path ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Layout:
    """Where the varying bytes of a one-scalar Event sit (offsets from the record's data start): its
    wall time (8 bytes, or absent: 0.0), its step (a varint of ``step_len`` bytes, or absent: 0) and
    its value (``dtype`` "<f4" or "<f8"). Records of one writer and tag share every other byte."""

    tag: str
    wall: int
    step: int
    step_len: int
    value: int
    dtype: str

    def varying(self, length: int) -> np.ndarray:
        mask = np.zeros(length, dtype=bool)
        if self.wall >= 0:
            mask[self.wall:self.wall + 8] = True
        mask[self.step:self.step + self.step_len] = True
        mask[self.value:self.value + (4 if self.dtype == "<f4" else 8)] = True
        return mask


def layout(buf: bytes, start: int, end: int) -> Layout | None:
    """The :class:`Layout` of an Event holding exactly one scalar read from fixed-width bytes (a
    ``simple_value``, a single ``float_val``/``double_val``, a 4- or 8-byte float ``tensor_content``);
    None for any other event (those are read one by one with :func:`scalars`)."""
    wall, step, step_len, summary = -1, 0, 0, None
    for num, wt, a, b, p in _fields(buf, start, end):
        if num == 1 and wt == 1:
            wall = p - start
        elif num == 2 and wt == 0:
            if a >= 1 << 63:
                return None
            step, step_len = p - start, b - p
        elif num == 5 and wt == 2:
            summary = (a, b)
        else:
            return None
    if summary is None:
        return None
    values = _fields(buf, summary[0], summary[1])
    if len(values) != 1 or values[0][:2] != (1, 2):
        return None
    tag, where, dtype, tensor, plugin, data_class = None, -1, "", None, "", 0
    for n2, w2, a2, b2, p2 in _fields(buf, values[0][2], values[0][3]):
        if n2 == 1 and w2 == 2:
            tag = buf[a2:b2].decode("utf-8", "replace")
        elif n2 == 2 and w2 == 5:
            where, dtype = p2, "<f4"
        elif n2 == 8 and w2 == 2:
            tensor = (a2, b2)
        elif n2 == 9 and w2 == 2:
            for n3, w3, a3, b3, _ in _fields(buf, a2, b2):
                if n3 == 1 and w3 == 2:
                    plugin = next((buf[a4:b4].decode("utf-8", "replace") for n4, w4, a4, b4, _ in _fields(buf, a3, b3)
                                   if n4 == 1 and w4 == 2), "")
                elif n3 == 4 and w3 == 0:
                    data_class = a3
        else:
            return None
    if tag is None:
        return None
    if where < 0:
        if tensor is None or not (plugin == "scalars" or data_class == 1):
            return None
        kind = 0
        for n3, w3, a3, b3, p3 in _fields(buf, tensor[0], tensor[1]):
            if n3 == 1 and w3 == 0:
                kind = a3
            elif n3 == 2 and w3 == 2:
                continue                                   # the shape (of a scalar: empty)
            elif (n3, w3, b3 - a3) in ((4, 2, 4), (5, 2, 4)) or (n3, w3) == (5, 5):
                where, dtype = p3, "<f4"
            elif (n3, w3, b3 - a3) in ((4, 2, 8), (6, 2, 8)) or (n3, w3) == (6, 1):
                where, dtype = p3, "<f8"
            else:
                return None
        if where < 0 or (dtype == "<f4") != (kind == DT_FLOAT) or (dtype == "<f8") != (kind == DT_DOUBLE):
            return None
    return Layout(tag, wall, step, step_len, where - start, dtype)


def scalar_batch(buf: bytes, recs: Records) -> tuple[dict[str, list[np.ndarray]], list[int]]:
    """The scalars of many records at once: per tag ``[record index, step, value, wall]`` arrays, from the
    records that share a :class:`Layout` with others of their length, and the indices of the records
    left for :func:`scalars` (other events, or one of a kind)."""
    arr = np.frombuffer(buf, dtype=np.uint8)
    starts, lengths = recs.starts, recs.lengths
    out: dict[str, list[np.ndarray]] = {}
    rest: list[int] = []
    for ln in np.unique(lengths).tolist():
        todo = np.nonzero(lengths == ln)[0]
        rows = arr[starts[todo][:, None] + np.arange(ln)]
        while todo.size:
            first = int(todo[0])
            lay = layout(buf, int(starts[first]), int(starts[first]) + ln) if todo.size > 1 else None
            if lay is None:
                rest.append(first)
                todo, rows = todo[1:], rows[1:]
                continue
            fixed = ~lay.varying(ln)
            same = np.all(rows[:, fixed] == rows[0, fixed], axis=1)
            if lay.step_len:
                sb = rows[:, lay.step:lay.step + lay.step_len].astype(np.uint64)
                same &= np.all(sb[:, :-1] >= 0x80, axis=1) & (sb[:, -1] < 0x80)
            idx, grp = todo[same], rows[same]
            steps = np.zeros(idx.size, dtype=np.uint64)
            for k in range(lay.step_len):
                steps |= (grp[:, lay.step + k].astype(np.uint64) & np.uint64(0x7F)) << np.uint64(7 * k)
            width = 4 if lay.dtype == "<f4" else 8
            values = np.ascontiguousarray(grp[:, lay.value:lay.value + width]).view(lay.dtype).ravel().astype(np.float64)
            walls = (np.ascontiguousarray(grp[:, lay.wall:lay.wall + 8]).view("<f8").ravel() if lay.wall >= 0
                     else np.zeros(idx.size))
            out.setdefault(lay.tag, []).append(np.stack([idx.astype(np.float64), steps.astype(np.float64), values,
                                                         walls]))
            todo, rows = todo[~same], rows[~same]
    return out, rest


__all__ = ["Layout", "Records", "crc32c", "crc32c_many", "layout", "records", "scalar_batch", "scalars"]
