"""An --out that cannot be written (`fit`, `report`, `quickstart`) is one line and exit code 2, naming the
path, before any work is done: nothing is written anywhere, the store is unchanged."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from scalinglab.cli import main
from scalinglab.runconfig import RunConfig
from scalinglab.store import Store


def _csv(path: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = ["N,D,loss"]
    for n in (1e6, 3e6, 1e7, 3e7, 1e8):
        for d in (1e8, 3e8, 1e9, 3e9):
            loss = (1.7 + 400 / n**0.34 + 410 / d**0.28) * np.exp(rng.normal(0, 0.003))
            rows.append(f"{n:g},{d:g},{loss:.6f}")
    path.write_text("\n".join(rows) + "\n")
    return path


def _store(path: Path) -> Path:
    with Store(path) as st:
        cfg = RunConfig(name="r1", n_layer=1, d_model=32, n_head=2, tokens=4096 * 50)
        st.add_planned([cfg])
        st.add_point("r1", {"step": cfg.steps, "tokens": cfg.tokens, "eval_loss": 3.0})
        st.mark_done("r1", {"N_total": 30_000, "N_nonembed": 12_288, "N_nonzero": 12_288, "tokens": cfg.tokens})
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): (_digest(p) if p.is_file() else "dir") for p in sorted(root.rglob("*"))}


def _one_line_error(r: Result, *names: str) -> str:
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.output
    for name in names:
        assert name in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def blocker(tmp_path: Path) -> Path:
    """A regular file: a path under it can be written by nobody, root included."""
    f = tmp_path / "a-file"
    f.write_text("not a directory\n")
    return f


def test_fit_out_under_a_file(tmp_path: Path, blocker: Path) -> None:
    data = _csv(tmp_path / "nd.csv")
    out = blocker / "fit.json"
    before = _tree(tmp_path)
    r = CliRunner().invoke(main, ["fit", str(data), "--law", "chinchilla", "--bootstrap", "0", "--out", str(out)])
    line = _one_line_error(r, "--out", str(out))
    assert "not a directory" in line
    assert _tree(tmp_path) == before


def test_fit_out_in_a_missing_directory(tmp_path: Path) -> None:
    data = _csv(tmp_path / "nd.csv")
    out = tmp_path / "no" / "such" / "fit.json"
    before = _tree(tmp_path)
    r = CliRunner().invoke(main, ["fit", str(data), "--law", "chinchilla", "--bootstrap", "0", "--out", str(out)])
    assert "does not exist" in _one_line_error(r, "--out", str(out))
    assert _tree(tmp_path) == before


def test_fit_out_is_a_directory(tmp_path: Path) -> None:
    data = _csv(tmp_path / "nd.csv")
    out = tmp_path / "adir"
    out.mkdir()
    before = _tree(tmp_path)
    r = CliRunner().invoke(main, ["fit", str(data), "--law", "chinchilla", "--bootstrap", "0", "--out", str(out)])
    assert "is a directory" in _one_line_error(r, "--out", str(out))
    assert _tree(tmp_path) == before


def test_fit_out_from_a_store_under_a_file(tmp_path: Path, blocker: Path) -> None:
    db = _store(tmp_path / "runs.db")
    out = blocker / "fit.json"
    before = _tree(tmp_path)
    r = CliRunner().invoke(main, ["fit", "--store", str(db), "--law", "chinchilla", "--out", str(out)])
    _one_line_error(r, "--out", str(out))
    assert _tree(tmp_path) == before


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write anywhere")
def test_fit_out_in_a_read_only_directory(tmp_path: Path) -> None:
    data = _csv(tmp_path / "nd.csv")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        r = CliRunner().invoke(main, ["fit", str(data), "--law", "chinchilla", "--bootstrap", "0",
                                      "--out", str(ro / "fit.json")])
        assert "not writable" in _one_line_error(r, "--out", str(ro / "fit.json"))
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


def test_report_out_under_a_file(tmp_path: Path, blocker: Path) -> None:
    db = _store(tmp_path / "runs.db")
    out = blocker / "report"
    before = _tree(tmp_path)
    r = CliRunner().invoke(main, ["report", "--store", str(db), "--bootstrap", "0", "--out", str(out)])
    assert "not a directory" in _one_line_error(r, "--out", str(out))
    assert _tree(tmp_path) == before


def test_report_out_is_a_file(tmp_path: Path, blocker: Path) -> None:
    db = _store(tmp_path / "runs.db")
    before = _tree(tmp_path)
    r = CliRunner().invoke(main, ["report", "--store", str(db), "--bootstrap", "0", "--out", str(blocker)])
    _one_line_error(r, "--out", str(blocker))
    assert _tree(tmp_path) == before


def test_report_out_deep_under_a_file(tmp_path: Path, blocker: Path) -> None:
    db = _store(tmp_path / "runs.db")
    out = blocker / "a" / "b"
    before = _tree(tmp_path)
    r = CliRunner().invoke(main, ["report", "--store", str(db), "--bootstrap", "0", "--out", str(out)])
    _one_line_error(r, "--out", str(out), str(blocker))
    assert _tree(tmp_path) == before


def test_quickstart_out_under_a_file(tmp_path: Path, blocker: Path) -> None:
    out = blocker / "qs"
    before = _tree(tmp_path)
    r = CliRunner().invoke(main, ["quickstart", "--minutes", "0.5", "--no-progress", "--out", str(out)])
    assert "not a directory" in _one_line_error(r, "--out", str(out))
    assert _tree(tmp_path) == before


def test_quickstart_out_is_a_file(tmp_path: Path, blocker: Path) -> None:
    before = _tree(tmp_path)
    r = CliRunner().invoke(main, ["quickstart", "--minutes", "0.5", "--no-progress", "--out", str(blocker)])
    _one_line_error(r, "--out", str(blocker))
    assert _tree(tmp_path) == before
