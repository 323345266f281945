"""The TensorBoard reader against tensorboard's own reader and writer, and on damaged files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from scalinglab.cli import main
from scalinglab.errors import DataError
from scalinglab.ingest import _tfrecord, tensorboard

tb_writer = pytest.importorskip("torch.utils.tensorboard")
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def _write(log_dir: Path, new_style: bool, n: int = 300) -> None:
    w = tb_writer.SummaryWriter(str(log_dir))
    rng = np.random.default_rng(0)
    for step in range(n):
        w.add_scalar("train/loss", float(rng.normal(3, 1)), step, new_style=new_style)
        if step % 7 == 0:
            w.add_scalar("eval/loss", float(rng.normal(2.5, 0.1)), step, new_style=new_style)
    w.close()


@pytest.mark.parametrize("new_style", [False, True])
def test_every_scalar_as_tensorboards_reader_sees_it(tmp_path: Path, new_style: bool) -> None:
    _write(tmp_path / "run", new_style, n=12_000)               # beyond EventAccumulator's default 10,000 per tag
    [run] = tensorboard.read(tmp_path)
    acc = event_accumulator.EventAccumulator(str(tmp_path / "run"), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    for tag in ("train/loss", "eval/loss"):
        if new_style:   # tensor-style: EventAccumulator's Scalars() misses them; they are Tensors()
            from tensorboard.util import tensor_util
            events = acc.Tensors(tag)
            want = [float(tensor_util.make_ndarray(e.tensor_proto)) for e in events]
        else:
            events = acc.Scalars(tag)
            want = [e.value for e in events]
        assert run.series[tag].steps.tolist() == [e.step for e in events]
        assert run.series[tag].values.tolist() == want                      # the same float32 values, exactly
        np.testing.assert_array_equal(run.series[tag].wall, [e.wall_time for e in events])
    assert run.series["train/loss"].steps.size == 12_000


def test_tensor_content_scalars_of_tensorboards_own_writer(tmp_path: Path) -> None:
    """Scalars as TF 2 writes them: a tensor with tensor_content bytes (float32 and float64), plugin 'scalars'."""
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, types_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    w = EventFileWriter(str(tmp_path))
    meta = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
                                       data_class=summary_pb2.DATA_CLASS_SCALAR)
    for step, (dtype, np_dtype) in enumerate([(types_pb2.DT_FLOAT, np.float32), (types_pb2.DT_DOUBLE, np.float64)] * 3):
        t = tensor_pb2.TensorProto(dtype=dtype, tensor_content=np.array(0.1 * step + 1 / 3, np_dtype).tobytes())
        value = summary_pb2.Summary.Value(tag="eval/loss", tensor=t, metadata=meta)
        w.add_event(event_pb2.Event(wall_time=1.0 + step, step=step, summary=summary_pb2.Summary(value=[value])))
        hist = summary_pb2.Summary.Value(tag="weights", histo=summary_pb2.HistogramProto(min=0, max=1))
        w.add_event(event_pb2.Event(step=step, summary=summary_pb2.Summary(value=[hist])))   # not a scalar
    w.close()
    [run] = tensorboard.read(tmp_path)
    assert list(run.series) == ["eval/loss"]
    want = [float(np.array(0.1 * s + 1 / 3, np.float32 if s % 2 == 0 else np.float64)) for s in range(6)]
    assert run.series["eval/loss"].values.tolist() == want


def test_crc32c_known_answers() -> None:
    # RFC 3720 (iSCSI) B.4: 32 bytes of zeros -> 0x8A9136AA; "123456789" -> 0xE3069283 (the CRC-32C check value)
    assert _tfrecord.crc32c(bytes(32)) == 0x8A9136AA
    assert _tfrecord.crc32c(b"123456789") == 0xE3069283


def _event_file(tmp_path: Path) -> Path:
    _write(tmp_path / "run", new_style=False, n=50)
    [f] = (tmp_path / "run").glob("events.out.tfevents.*")
    return f


def test_truncated_file_keeps_what_came_before_and_warns(tmp_path: Path) -> None:
    f = _event_file(tmp_path)
    last_start, _ = _tfrecord.records(f.read_bytes()).spans[-1]
    full = tensorboard.read(tmp_path)[0].series
    f.write_bytes(f.read_bytes()[:-7])                              # a writer killed mid-record
    [run] = tensorboard.read(tmp_path)
    assert sum(s.steps.size for s in run.series.values()) == sum(s.steps.size for s in full.values()) - 1
    assert run.series["train/loss"].steps.tolist() == full["train/loss"].steps.tolist()   # the cut one: eval/loss at 49
    [w] = run.warnings
    assert w.startswith(f"event file {str(f)!r}: truncated record at byte offset {last_start - 12} ")


def test_corrupt_record_is_dropped_and_named(tmp_path: Path) -> None:
    f = _event_file(tmp_path)
    full = tensorboard.read(tmp_path)[0].series
    buf = bytearray(f.read_bytes())
    spans = _tfrecord.records(bytes(buf)).spans
    start, length = spans[10]
    buf[start + length // 2] ^= 0xFF                                 # one flipped bit pattern in record 10's data
    f.write_bytes(bytes(buf))
    [run] = tensorboard.read(tmp_path)
    [w] = run.warnings
    assert f"data CRC mismatch, the first at byte offset {start - 12}" in w
    assert sum(s.steps.size for s in run.series.values()) == sum(s.steps.size for s in full.values()) - 1


def test_garbage_file_and_empty_directory_are_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    r = CliRunner().invoke(main, ["runs", "import", str(tmp_path / "empty"), "--from", "tensorboard", "--store",
                                  str(tmp_path / "s.db")])
    assert r.exit_code == 2 and "holds no event file" in r.stderr and not (tmp_path / "s.db").exists()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "events.out.tfevents.1.host").write_bytes(b"\x05" + bytes(40))
    with pytest.raises(DataError, match=r"holds no readable record: corrupt record length \(CRC mismatch\) at byte offset 0"):
        tensorboard.read(bad)


def test_a_resumed_run_keeps_the_last_value_of_a_step_logged_twice(tmp_path: Path) -> None:
    for attempt, steps in enumerate((range(0, 60), range(40, 80))):       # killed at 59, resumed from 40
        w = tb_writer.SummaryWriter(str(tmp_path / "run"), filename_suffix=f".{attempt}")
        for step in steps:
            w.add_scalar("eval/loss", 10.0 * attempt + step, step)
        w.close()
    [run] = tensorboard.read(tmp_path)
    s = run.series["eval/loss"]
    assert s.steps.tolist() == list(range(80))
    assert s.values.tolist() == [float(x) for x in range(40)] + [10.0 + x for x in range(40, 80)]
