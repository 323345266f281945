"""Shared fixtures: the published data in ../shared/data (beside the checkout)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


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
