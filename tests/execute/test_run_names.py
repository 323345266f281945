"""Run names are never paths: a strict character set checked when a ladder is read, and checkpoint
paths that cannot leave the checkpoint folder (issue 16, item 2)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from scalinglab.cli import main
from scalinglab.errors import ConfigError
from scalinglab.execute._common import checkpoint_path
from scalinglab.ladder import design, ladderfile, merge
from scalinglab.runconfig import RunConfig, check_name


def tiny() -> RunConfig:
    return RunConfig(n_layer=1, d_model=16, n_head=1, context=64, batch_tokens=512, tokens=5120, evals=2,
                     eval_tokens=512)


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("bad", ["../../../etc/evil", "../decoy", "/abs", "a/b", "..", "a..b", ".hidden",
                                 "-x", "a b", "x" * 201, "é", "a\nb", "a\x00b"])
def test_bad_names_are_one_config_error_naming_the_run(bad: str) -> None:
    with pytest.raises(ConfigError) as err:
        RunConfig(name=bad)
    msg = str(err.value)
    assert "\n" not in msg.replace(repr(bad), "") and "'name'" in msg and "letters, digits" in msg


@pytest.mark.parametrize("good", ["", "a", "isoflop-1e12-n1d96-3f9a1c", "A.b_c+d-e", "x" * 200])
def test_good_names_pass(good: str) -> None:
    check_name(good)
    assert RunConfig(name=good).name == good


def test_every_designed_name_is_valid() -> None:
    runs = [*design.isoflop([1e10, 3e10], 3, vocab=256, context=64, batch_tokens=512,
                            rule=design.ShapeRule(min_steps=5)),
            *design.grid_nd([1e4, 3e4], [1e5, 2e5], vocab=256, context=64, batch_tokens=512,
                            rule=design.ShapeRule(min_steps=5)),
            *design.grid_sparse([0.0, 0.5], [1e4], [1e5], vocab=256, context=64, batch_tokens=512,
                                rule=design.ShapeRule(min_steps=5))]
    wsd = design.isoflop([1e10, 3e10], 3, vocab=256, context=64, batch_tokens=512, schedule={"name": "wsd",
                         "warmup_steps": 2}, rule=design.ShapeRule(min_steps=5))
    merged = merge.merge_prefixes(wsd)
    assert any(m.run.schedule.branches for m in merged)
    runs += [m.run for m in merged]
    for r in runs:
        check_name(r.name)
    for group in ["a/b c..d", "../../etc", "-lead", "é" * 300, ""]:
        cfg = dataclasses.replace(tiny(), group=group)
        name = design.run_name(cfg)
        check_name(name)
        assert name and "/" not in name and ".." not in name
    assert design.run_name(dataclasses.replace(tiny(), group="isoflop")).startswith("isoflop-")


def _ladder_with_name(tmp: Path, name: str) -> Path:
    text = ladderfile.dumps_toml([dataclasses.replace(tiny(), name="placeholder-run")])
    assert 'name = "placeholder-run"' in text
    path = tmp / "ladder.toml"
    path.write_text(text.replace('name = "placeholder-run"', f"name = {ladderfile._toml_value(name)}"))
    return path


@pytest.mark.parametrize("kind", ["dotdot", "etc", "absolute"])
def test_ladder_run_refuses_a_path_name_and_touches_nothing(tmp_path: Path, kind: str) -> None:
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    decoy = tmp_path / "a" / "decoy.pt"
    decoy.write_bytes(b"precious")
    name = {"dotdot": "../../decoy", "etc": "../../../etc/evil", "absolute": str(tmp_path / "a" / "decoy")}[kind]
    ladder = _ladder_with_name(work, name)
    before = snapshot(tmp_path)
    r = CliRunner().invoke(main, ["ladder", "run", str(ladder), "--store", str(work / "runs.db"),
                                  "--checkpoints", str(work / "ck"), "--no-progress"], prog_name="scalinglab")
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1
    assert "'name'" in r.stderr and "letters, digits" in r.stderr
    assert snapshot(tmp_path) == before and decoy.read_bytes() == b"precious"
    assert not (work / "runs.db").exists() and not (work / "ck").exists()


def test_checkpoint_paths_stay_in_the_folder(tmp_path: Path) -> None:
    ck = tmp_path / "ck"
    ck.mkdir()
    assert checkpoint_path(ck, "run-1") == (ck / "run-1.pt").resolve()
    for bad in ["../x", "/etc/passwd", "", "a/b"]:
        with pytest.raises(ConfigError):
            checkpoint_path(ck, bad)
    outside = tmp_path / "outside.pt"
    outside.write_bytes(b"keep")
    os.symlink(outside, ck / "linked.pt")   # a checkpoint that is a link out of the folder is refused
    with pytest.raises(ConfigError, match="outside the checkpoint folder"):
        checkpoint_path(ck, "linked")
    assert outside.read_bytes() == b"keep"


def test_ray_address_that_answers_nothing_fails_fast(tmp_path: Path) -> None:
    import socket
    import time

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()   # nothing listens there now
    ladder = tmp_path / "l.toml"
    ladderfile.write_toml(ladder, [dataclasses.replace(tiny(), name="r1")])
    store = tmp_path / "runs.db"
    t0 = time.monotonic()
    r = CliRunner().invoke(main, ["ladder", "run", str(ladder), "--store", str(store), "--executor", "ray",
                                  "--address", f"127.0.0.1:{port}", "--no-progress"], prog_name="scalinglab")
    assert time.monotonic() - t0 < 30
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1 and "does not answer" in r.stderr
    assert not (tmp_path / "runs.checkpoints").exists()
    if store.exists():   # the store, if the command made one, holds no run and no lock
        from scalinglab.store import Store
        with Store(store) as st:
            assert st.runs() == []
            with st.writer_lock():
                pass
    r = CliRunner().invoke(main, ["ladder", "run", str(ladder), "--store", str(store), "--executor", "ray",
                                  "--address", "nonsense", "--no-progress"])
    assert r.exit_code == 2 and "Ray address" in r.stderr
