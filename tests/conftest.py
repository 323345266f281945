"""Shared fixtures: the published data in ../shared/data (beside the checkout)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
BENCHMARKS = ROOT / "benchmarks"


def _load_benchmark(filename: str, module_name: str) -> ModuleType:
    """Import ``benchmarks/<filename>`` as ``module_name`` (benchmarks are scripts, not a package); the
    benchmarks folder is on ``sys.path`` while it loads, so it can import its siblings (``_dynamics``)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location(module_name, BENCHMARKS / filename)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return mod


@pytest.fixture(scope="session")
def load_benchmark() -> Callable[[str, str], ModuleType]:
    """``load_benchmark(filename, module_name)``: a benchmark script imported as a module."""
    return _load_benchmark


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"published data not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def epoch_chinchilla(shared_data: Path) -> pd.DataFrame:
    """Epoch's digitisation of Hoffmann Fig. 4, less the 5 highest-loss points; D = C/(6N)."""
    df = pd.read_csv(shared_data / "chinchilla-epoch" / "svg_extracted_data.csv")
    df = df.rename(columns={"Model Size": "N", "Training FLOP": "C"})
    df = df[df["loss"].rank(ascending=False) > 5].copy()
    df["D"] = df["C"] / (6 * df["N"])
    return df
