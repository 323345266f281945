"""Rebuild the bundled datasets from the published files (``../shared/data``, see its PROVENANCE.md).

``python -m scalinglab.datasets._build SOURCE_DIR`` writes every table of :data:`..CATALOG` into this
package; ``tests/datasets/test_datasets.py`` rebuilds them into a temporary folder and checks the result
is byte for byte what the package holds. Each conversion only renames columns, combines files with the
same columns, and computes the counts the papers' own code computes (documented in each card); values
are written with pandas' round-trip float format, so nothing is rounded.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd

#: Frantar et al. 2023's notebook: non-embedding (transformer-block) parameters of scale 1, 12 d^2 per
#: layer: T5 24 layers of width 768, ViT 12 layers of width 768
T5_PARAMS = 24 * 12 * 768 ** 2
VIT_PARAMS = 12 * 12 * 768 ** 2

_PORIAN_SETS = ("summary_df", "summary_df_att", "summary_df_kaplan_tuned_hparams", "summary_df_owt2")
_PORIAN_KEYS = ["dataset", "hparams", "warmup", "decay", "param_count"]


def _datablations(src: Path, name: str) -> pd.DataFrame:
    raw = pd.read_csv(src / "datablations" / name)
    return pd.DataFrame({"run": raw["run_name"], "N": raw["N"], "D": raw["D"], "U": raw["U"],
                         "loss": raw["val_loss"]})


def _gadre(src: Path) -> pd.DataFrame:
    raw = pd.read_csv(src / "overtraining-gadre" / "models_flat.csv")
    out = pd.DataFrame({
        "run": raw["name"], "train_data": raw["dataset"], "model": raw["model"], "N": raw["N"],
        "N_total": raw["N"], "N_nonembed": raw["N_no_embed"], "D": raw["D"], "M": 20 * raw["cc_mult"],
        "cc_mult": raw["cc_mult"], "lr": raw["lr"], "weight_decay": raw["wd"], "warmup_steps": raw["warmup"],
        "batch_sequences": raw["global_bs"], "loss": raw["loss_c4_val"]})
    for col in raw.columns:
        if col.startswith("loss_") and col != "loss_c4_val":
            out[col] = raw[col]
    return out


def _porian(src: Path, kind: str) -> pd.DataFrame:
    frames = []
    for stem in _PORIAN_SETS:
        path = src / "isoflops-porian" / f"{stem}_{kind}.csv"
        if path.exists():
            frames.append(pd.read_csv(path))
    raw = pd.concat(frames, ignore_index=True)
    out = raw[_PORIAN_KEYS].copy()
    out["loss_split"] = raw["val"]
    out["budget_flops"] = raw["flops"]
    out["N"] = raw["n"]
    out["D"] = raw["t"]
    if kind == "optimal_pairs":
        out["M"] = raw["multiplier"]
    out["loss"] = raw["loss"]
    for col in ("n_star_std", "multiplier_star_std", "t_star_std", "loss_star_std"):
        if col in raw:
            out[col] = raw[col]
    return out


def _porian_fits(src: Path) -> list[object]:
    fits: list[object] = []
    for stem in _PORIAN_SETS:
        fits.extend(json.loads((src / "isoflops-porian" / f"{stem}_fits.json").read_text()))
    return fits


def _t5(src: Path) -> pd.DataFrame:
    raw = pd.read_csv(src / "sparsity-frantar" / "t5_c4.csv", index_col=0)
    return pd.DataFrame({"S": raw["sparsity"], "scale": raw["scale"],
                         "N_nonzero": raw["scale"] * (1 - raw["sparsity"]) * T5_PARAMS, "steps": raw["steps"],
                         "loss": raw["val-loss"]})


def _vit(src: Path) -> pd.DataFrame:
    raw = pd.DataFrame(json.loads((src / "sparsity-frantar" / "vit_jft.json").read_text()))
    return pd.DataFrame({"S": raw["sparsity"], "scale": raw["scale"],
                         "N_nonzero": raw["scale"] * (1 - raw["sparsity"]) * VIT_PARAMS,
                         "examples": raw["total_examples"], "loss": raw["val-loss"]})


#: (dataset folder, file written) -> how to build it from the published files
BUILDERS: dict[tuple[str, str], Callable[[Path], pd.DataFrame | list[object]]] = {
    ("datablations", "fit_set.csv"): lambda s: _datablations(s, "datablations_fit_set_182.csv"),
    ("datablations", "all_runs.csv"): lambda s: _datablations(s, "datablations_all_runs.csv"),
    ("overtraining-gadre", "models.csv"): _gadre,
    ("isoflops-porian", "isoflop_points.csv"): lambda s: _porian(s, "isoflop_points"),
    ("isoflops-porian", "optimal_pairs.csv"): lambda s: _porian(s, "optimal_pairs"),
    ("isoflops-porian", "fits.json"): _porian_fits,
    ("sparsity-frantar", "t5_c4.csv"): _t5,
    ("sparsity-frantar", "vit_jft.csv"): _vit,
}
#: dataset folder -> the published folder whose LICENSE.source is copied unchanged as LICENSE
LICENSES = {"datablations": "datablations", "overtraining-gadre": "overtraining-gadre",
            "isoflops-porian": "isoflops-porian", "sparsity-frantar": "sparsity-frantar"}


def build(src: Path, dest: Path) -> list[Path]:
    """Write every bundled file (tables and licences) from ``src`` (the published data) into ``dest``."""
    written = []
    for (folder, name), make in BUILDERS.items():
        (dest / folder).mkdir(parents=True, exist_ok=True)
        path = dest / folder / name
        value = make(src)
        if isinstance(value, pd.DataFrame):
            value.to_csv(path, index=False, float_format=None, lineterminator="\n")
        else:
            path.write_text(json.dumps(value, indent=1) + "\n")
        written.append(path)
    for folder, source in LICENSES.items():
        path = dest / folder / "LICENSE"
        path.write_bytes((src / source / "LICENSE.source").read_bytes())
        written.append(path)
    return written


def check(src: Path) -> list[str]:
    """Rebuild into a temporary folder and list the bundled files that differ from the rebuild."""
    import tempfile

    here = Path(__file__).parent
    with tempfile.TemporaryDirectory() as tmp:
        written = build(src, Path(tmp))
        return [str(p.relative_to(tmp)) for p in written
                if p.read_bytes() != (here / p.relative_to(tmp)).read_bytes()]


if __name__ == "__main__":  # pragma: no cover
    # python -m scalinglab.datasets._build SRC          rewrite the bundle from the published data in SRC
    # python -m scalinglab.datasets._build --check SRC  exit 1 when the bundle differs from a rebuild
    if sys.argv[1] == "--check":
        differ = check(Path(sys.argv[2]))
        for name in differ:
            print(f"differs from its rebuild: {name}")
        print("bundle: identical to its rebuild" if not differ else f"bundle: {len(differ)} files differ")
        sys.exit(1 if differ else 0)
    for p in build(Path(sys.argv[1]), Path(__file__).parent):
        print(p)
