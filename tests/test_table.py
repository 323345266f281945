"""Reading user files, mapping columns, filtering and validating the canonical table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalinglab import table
from scalinglab.errors import DataError

ROWS = pd.DataFrame({"Model Size": [1e8, 2e8], "Training FLOP": [6e18, 2.4e19], "loss": [3.0, 2.8]})


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_formats_and_expression_mapping(tmp_path: Path, suffix: str) -> None:
    p = tmp_path / f"runs{suffix}"
    if suffix == ".csv":
        ROWS.to_csv(p, index=False)
    elif suffix == ".tsv":
        ROWS.to_csv(p, sep="\t", index=False)
    elif suffix == ".jsonl":
        ROWS.to_json(p, orient="records", lines=True)
    else:
        ROWS.to_parquet(p)
    df = table.load(p, mapping={"N": "Model Size", "D": "`Training FLOP` / (6 * `Model Size`)"},
                    where="loss < 2.9")
    assert len(df) == 1
    assert df["D"].iloc[0] == pytest.approx(2.4e19 / (6 * 2e8))


def test_derive_c_from_n_and_d() -> None:
    df = table.derive_standard(pd.DataFrame({"N": [1e9], "D": [2e10]}))
    assert df["C"].iloc[0] == 6 * 1e9 * 2e10


def test_validation_messages() -> None:
    with pytest.raises(DataError, match=r"Column 'S' \(fraction in \[0, 1\)\) of data \(row 0\) must be a fraction in \[0, 1\). Got 1.0"):
        table.validate(pd.DataFrame({"S": [1.0]}), ["S"])
    with pytest.raises(DataError, match="lacks column"):
        table.validate(pd.DataFrame({"N": [1.0]}), ["N", "D"])
    with pytest.raises(DataError, match="no rows"):
        table.validate(pd.DataFrame({"N": []}), ["N"])
    with pytest.raises(DataError, match="does not exist"):
        table.read_table("/nonexistent/file.csv")
    with pytest.raises(DataError, match="extension"):
        table.read_table(__file__)
    with pytest.raises(DataError, match="could not be evaluated"):
        table.apply_where(ROWS, "nosuch > 1")
    with pytest.raises(DataError, match="COL=SOURCE"):
        table.parse_assignments(["N"])
    out = table.validate(pd.DataFrame({"N": ["1e9", 2]}), ["N"])
    assert out["N"].dtype == np.float64
