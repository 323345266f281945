"""Published scaling-law measurements shipped with scalinglab (package data), each with its licence and card.

Four sets whose licences allow redistribution (``../shared/data/PROVENANCE.md``), converted to the
canonical columns and units of :mod:`scalinglab.table` by :mod:`._build` (renames, combined files, and the
counts the papers' own code computes; nothing rounded). A dataset has one or more *tables*; a table is
named ``NAME`` (its first table) or ``NAME:TABLE``::

    from scalinglab import datasets
    datasets.names()                          # ['datablations', 'isoflops-porian', ...]
    df = datasets.load("overtraining-gadre")  # a DataFrame in canonical columns
    datasets.get("sparsity-frantar").card     # citation, source, licence, conversion (CARD.md)

On the command line: ``scalinglab data list|show NAME|export NAME --out F`` and
``scalinglab fit --dataset NAME``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

import pandas as pd

from ..errors import DataError, invalid


@dataclass(frozen=True)
class Table:
    """One file of a dataset: its name, file, rows and what one row is."""

    name: str
    file: str
    description: str


@dataclass(frozen=True)
class Dataset:
    """A bundled dataset: its tables (the first is the default), citation, source and licence."""

    name: str
    title: str
    citation: str
    source: str
    licence: str
    tables: tuple[Table, ...]
    example: str   # a command that fits it

    def table(self, name: str | None = None) -> Table:
        """The named table (the first when ``name`` is None)."""
        if name is None:
            return self.tables[0]
        for t in self.tables:
            if t.name == name:
                return t
        raise DataError(invalid(f"The table of dataset {self.name!r}", name, f"one of {[t.name for t in self.tables]}"))

    @property
    def card(self) -> str:
        """The dataset's card (CARD.md): source, citation, licence and the note of our conversion."""
        return _file(self.name, "CARD.md").read_text(encoding="utf-8")

    @property
    def license_text(self) -> str:
        """The source repository's licence file, unchanged."""
        return _file(self.name, "LICENSE").read_text(encoding="utf-8")


CATALOG: dict[str, Dataset] = {d.name: d for d in (
    Dataset(
        "datablations", "Data-constrained runs: N, D (tokens seen), U (unique tokens), loss",
        "Muennighoff, Rush, Barak, Le Scao, Piktus, Tazi, Pyysalo, Wolf, Raffel 2023, Scaling Data-Constrained "
        "Language Models, NeurIPS 2023, arXiv 2305.16264",
        "https://github.com/huggingface/datablations (commit 1370131)", "Apache-2.0",
        (Table("fit-set", "fit_set.csv", "the 182 runs the authors fit their data-constrained law to"),
         Table("all-runs", "all_runs.csv", "every run, seed replicates included (296)")),
        ("scalinglab fit --dataset datablations --law datablations --fix A=520.82495 --fix B=1487.7161 "
         "--fix E=1.8691437 --fix alpha=0.3526596 --fix beta=0.3526596")),
    Dataset(
        "overtraining-gadre", "Over-training testbed: 104 models, 11M to 6.9B parameters, token multipliers 5 to 640",
        "Gadre, Smyrnis, Shankar, Gururangan, Wortsman, Shao, Mercat, Fang, Li, Keh, Xin, Nezhurina, Vasiljevic, "
        "Jitsev, Dimakis, Ilharco, Song, Kollar, Carmon, Dave, Heckel, Muennighoff, Schmidt 2024, Language models "
        "scale reliably with over-training and on downstream tasks, arXiv 2403.08540",
        "https://github.com/mlfoundations/scaling (commit a003c49)", "MIT",
        (Table("models", "models.csv", "one model: its size, tokens, multiplier, hyperparameters and losses"),),
        ("scalinglab fit --dataset overtraining-gadre --law overtrain --where \"train_data == 'rpj' and N < 1e9 "
         "and (cc_mult == 1 or (N < 2e7 and cc_mult == 16))\"")),
    Dataset(
        "isoflops-porian", "IsoFLOP points and optimal pairs on RefinedWeb and OpenWebText2",
        "Porian, Wortsman, Jitsev, Schmidt, Carmon 2024, Resolving Discrepancies in Compute-Optimal Scaling of "
        "Language Models, NeurIPS 2024, arXiv 2406.19146",
        "https://github.com/formll/resolving-scaling-law-discrepancies (commit 0dc60d9)", "MIT",
        (Table("isoflop-points", "isoflop_points.csv", "one trained model of an IsoFLOP profile"),
         Table("optimal-pairs", "optimal_pairs.csv", "the authors' interpolated optimum of each budget and setting"),
         Table("fits", "fits.json", "the authors' power-law fits of each setting (JSON, as published)")),
        ("scalinglab fit --dataset isoflops-porian --law chinchilla --near-optimal 3 --where \"dataset == 'rw' and "
         "hparams == 'base' and warmup == 'long' and decay == 'kaplan' and param_count == 'kaplan'\"")),
    Dataset(
        "sparsity-frantar", "Sparse T5 (C4) and ViT (JFT-4B) runs: sparsity, non-zero parameters, steps or images",
        "Frantar, Riquelme, Houlsby, Alistarh, Evci 2023, Scaling Laws for Sparsely-Connected Foundation Models, "
        "ICLR 2024, arXiv 2309.08520",
        "https://github.com/google-research/jaxpruner (commit f133ee5, jaxpruner/projects/bigsparse)",
        "Apache-2.0",
        (Table("t5", "t5_c4.csv", "one T5 encoder-decoder run on C4 (48)"),
         Table("vit", "vit_jft.csv", "one ViT run on JFT-4B (112)")),
        "scalinglab fit --dataset sparsity-frantar:t5 --law sparse --map D=steps"),
)}


def _file(dataset: str, name: str) -> Traversable:
    return resources.files(__name__).joinpath(dataset, name)


def names() -> list[str]:
    """The bundled datasets, alphabetically."""
    return sorted(CATALOG)


def get(name: str) -> Dataset:
    """A dataset by name (``NAME`` or ``NAME:TABLE``; the table part is ignored here)."""
    ds = CATALOG.get(name.split(":", 1)[0])
    if ds is None:
        raise DataError(invalid("The dataset", name, f"one of {names()} (optionally NAME:TABLE)"))
    return ds


def split(name: str) -> tuple[Dataset, Table]:
    """The dataset and table that ``NAME`` or ``NAME:TABLE`` names."""
    ds = get(name)
    return ds, ds.table(name.split(":", 1)[1] if ":" in name else None)


def load(name: str) -> pd.DataFrame:
    """A bundled table (``NAME`` or ``NAME:TABLE``) as a DataFrame in canonical columns and units.

    A JSON table (``isoflops-porian:fits``) is its records, one row each, nested fields as dicts."""
    ds, table = split(name)
    text = _file(ds.name, table.file).read_text(encoding="utf-8")
    if table.file.endswith(".json"):
        return pd.DataFrame(json.loads(text))
    import io

    return pd.read_csv(io.StringIO(text))


def raw_bytes(name: str) -> bytes:
    """The bundled file of a table, as it is in the package (``data export`` to the same format)."""
    ds, table = split(name)
    return _file(ds.name, table.file).read_bytes()


__all__ = ["CATALOG", "Dataset", "Table", "get", "load", "names", "raw_bytes", "split"]
