"""Fixtures of the import tests: the reference ladder store and its export (tests/ingest/ladder.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from ladder import reference_store, runs_of


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    path = tmp_path_factory.mktemp("ref") / "ref.db"
    with reference_store(path) as s:
        return path, s.to_table(points="all")


@pytest.fixture(scope="session")
def ladder_runs(reference: tuple[Path, pd.DataFrame]) -> list[dict[str, Any]]:
    return runs_of(reference[1])
