"""The bundled datasets: rebuilt from the published files byte for byte, in canonical columns, shipped in
the wheel, and read by `data list|show|export` and `fit --dataset`."""

from __future__ import annotations

import fnmatch
import json
import tomllib
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from scalinglab import datasets, laws, table
from scalinglab.cli import main
from scalinglab.datasets import _build

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "scalinglab" / "datasets"


# The bundle against a rebuild from ../shared/data is `make check-datasets` (CI runs it where the
# published data are), so that a fresh clone without them skips only the two unbundled sets' tests.
@pytest.mark.parametrize("name, rows", [
    ("datablations", 182), ("datablations:all-runs", 296), ("overtraining-gadre", 104),
    ("isoflops-porian", 1745), ("isoflops-porian:optimal-pairs", 177), ("isoflops-porian:fits", 15),
    ("sparsity-frantar", 48), ("sparsity-frantar:vit", 112)])
def test_tables_have_their_rows_and_valid_canonical_columns(name: str, rows: int) -> None:
    df = datasets.load(name)
    assert len(df) == rows
    canonical = [c for c in df.columns if c in table.COLUMNS and table.COLUMNS[c][2] != "text"]
    if name.endswith("optimal-pairs"):
        df = df.dropna(subset=["N"])            # budgets whose optimum the authors could not locate
    if not name.endswith("fits"):
        assert {"loss"} <= set(canonical)
        table.validate(df, canonical, source=name)


def test_conversions_keep_the_source_relations() -> None:
    g = datasets.load("overtraining-gadre")
    assert (g["D"] / g["N"] == g["M"]).all() and (g["N"] == g["N_total"]).all()
    t5 = datasets.load("sparsity-frantar:t5")
    # Frantar et al. 2023: the four non-zero sizes, equal across sparsities (LAWS.md section 4)
    assert sorted(t5["N_nonzero"].unique()) == [1327104.0, 5308416.0, 21233664.0, 84934656.0]
    pts = datasets.load("isoflops-porian")
    kaplan = pts[pts["param_count"] == "kaplan"]
    assert ((kaplan["budget_flops"] / (6 * kaplan["N"] * kaplan["D"]) - 1).abs() < 1e-9).all()   # t = C / (6 n)


def test_every_bundled_file_ships_in_the_wheel() -> None:
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["scalinglab"]
    files = [p.relative_to(PACKAGE.parent).as_posix() for p in PACKAGE.rglob("*")
             if p.is_file() and p.suffix != ".py" and "__pycache__" not in p.parts]
    assert len(files) == 4 * 2 + len(_build.BUILDERS)           # a LICENSE and a CARD.md per dataset, the tables
    for f in files:
        assert any(fnmatch.fnmatch(f, pat) for pat in patterns), f
    for name in datasets.names():
        ds = datasets.get(name)
        assert ds.licence in ds.card and ds.source.split(" ")[0] in ds.card
        assert ("Apache License" in ds.license_text) == (ds.licence == "Apache-2.0")
        assert ("Permission is hereby granted" in ds.license_text) == (ds.licence == "MIT")


def test_porian_licence_is_reproduced_as_it_is() -> None:
    # PROVENANCE.md: its copyright line names another project; reproduced unchanged
    assert datasets.get("isoflops-porian").license_text.startswith("Copyright (c) 2012-2024 Scott Chacon and others")


def test_data_list_show_export(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["data", "list", "--json"])
    assert r.exit_code == 0, r.output
    names = [d["name"] for d in json.loads(r.stdout)["datasets"]]
    assert names[0] == "datablations" and "sparsity-frantar:vit" in names and len(names) == 8
    r = CliRunner().invoke(main, ["data", "show", "sparsity-frantar:vit"])
    assert r.exit_code == 0 and "arXiv:2309.08520" in r.stdout and "112 rows" in r.stdout
    out = tmp_path / "t5.csv"
    r = CliRunner().invoke(main, ["data", "export", "sparsity-frantar", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert out.read_bytes() == (PACKAGE / "sparsity-frantar" / "t5_c4.csv").read_bytes()
    for suffix in (".jsonl", ".parquet", ".tsv"):
        out = tmp_path / f"g{suffix}"
        r = CliRunner().invoke(main, ["data", "export", "overtraining-gadre", "--out", str(out)])
        assert r.exit_code == 0, r.output
        back = table.read_table(out).reset_index(drop=True)     # a file's rows are labelled by their file line
        pd.testing.assert_frame_equal(back, datasets.load("overtraining-gadre"), check_dtype=False)


@pytest.mark.parametrize("args, message", [
    (["data", "show", "chinchilla-epoch"], "Got 'chinchilla-epoch'"),          # not bundled: no licence
    (["data", "show", "datablations:nope"], "The table of dataset 'datablations'"),
    (["data", "export", "datablations", "--out", "x.xlsx"], "The extension of --out"),
    (["data", "export", "datablations", "--out", "/no/such/dir/x.csv"], "does not exist"),
    (["fit", "--dataset", "nope", "--law", "chinchilla"], "Got 'nope'"),
    (["fit", "x.csv", "--dataset", "datablations", "--law", "chinchilla"], "give one of"),
])
def test_bad_names_are_one_line(args: list[str], message: str) -> None:
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.output


def test_fit_dataset_reproduces_gadre_et_al() -> None:
    # the README's one-line reproduction: the official code's RedPajama fit on its 5 default runs
    where = "train_data == 'rpj' and N < 1e9 and (cc_mult == 1 or (N < 2e7 and cc_mult == 16))"
    r = CliRunner().invoke(main, ["fit", "--dataset", "overtraining-gadre", "--law", "overtrain", "--where", where,
                                  "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["n_points"] == 5 and d["data"]["source"] == "dataset overtraining-gadre"
    for k, v in laws.get("overtrain").preset("gadre2024_rpj").params.items():
        assert d["params"][k] == pytest.approx(v, rel=2e-4), k


def test_backtest_dataset_sparse_t5() -> None:
    r = CliRunner().invoke(main, ["backtest", "--dataset", "sparsity-frantar:t5", "--law", "sparse", "--map",
                                  "D=steps", "--train-where", "N_nonzero < 5e7", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert (d["train_points"], d["test_points"]) == (36, 12)
