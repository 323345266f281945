"""Write the empirical offset prior of the ``group-tp`` calibration scheme (package data).

Pools the internal rollout errors of the tuning sets of ``benchmarks/calibration.py`` (the five
RefinedWeb Porian IsoFLOP sets, Chinchilla law over budgets, distance in decades of compute C; and
Gadre's C4 set, over-training law over model sizes N, distance in decades of N): for each set the
calibration record of its cached fit with the most groups (the rollout fit on all groups but the
last), its (prefix, test group) pairs kept apart across sets. The group error model
(``scalinglab.fit.calibrate.group_error_model``) fitted to the pool gives the offset sd ``a + tau x``
written as the prior; its weight is ``--pairs`` (P0) pairs. The ``drift-p`` prior (``drift_sd``,
``drift_pairs``) is the root mean square of the pooled drift innovations of the same records
(``scalinglab.fit.calibrate.one_step_slopes``: the change of the one-step bias per decade from one
internal prefix to the next, the first from 0), worth ``--drift-pairs`` innovations.

    python benchmarks/calibration.py --sets porian,gadre --bootstrap 40 --cache DIR   # the fits
    python benchmarks/offset_prior.py --cache DIR [--pairs 1] [--out src/scalinglab/fit/offset_prior.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from scalinglab.fit import Fit
from scalinglab.fit.calibrate import group_error_model, one_step_slopes

HERE = Path(__file__).resolve().parent
#: the sets the prior is estimated from (benchmarks/calibration.py's TUNE), and their laws
TUNE = {"porian-rw-base-long-kaplan-kaplan-train": "chinchilla", "porian-rw-base-long-kaplan-standard-val": "chinchilla",
        "porian-rw-base-short-chinchilla-standard-val": "chinchilla",
        "porian-rw-base-short-kaplan-standard-val": "chinchilla",
        "porian-rw-tuned-short-const-standard-val": "chinchilla", "gadre-c4_original": "overtrain"}


def pooled(cache: Path, names: list[str], bootstrap: int = 40) -> dict[str, float]:
    """The group model (``s``, ``gamma``, ``a``, ``tau``) of the pooled internal rollouts of the sets
    ``names`` (each set's cached rollout fit with the most groups), with ``n_errors`` and ``n_pairs``."""
    errs, dists, spans, pairs, innov = [], [], [], [], []
    offset = 0
    for name in names:
        text = json.loads((cache / f"{name}-b{bootstrap}-s0.json").read_text())
        fits = {int(k.rpartition("|")[2]): Fit.from_dict(json.loads(v))
                for k, v in text.items() if k.startswith('{"calibrate": true}|')}
        cal = fits[max(fits)].calibration
        pr = np.asarray(cal["pairs"], dtype=int)
        errs.append(np.asarray(cal["errors"], dtype=float))
        dists.append(np.maximum(np.asarray(cal["distances"], dtype=float), 0.0))
        spans.append(np.asarray(cal["spans"], dtype=float))
        pairs.append(pr + offset)
        b = one_step_slopes(errs[-1], np.asarray(cal["distances"], dtype=float), pr, spans[-1])
        innov.append(np.diff(np.concatenate([[0.0], b])))
        offset += int(pr.max()) + 1
    e, x, w, p = (np.concatenate(v) for v in (errs, dists, spans, pairs))
    s, gamma, a, tau = group_error_model(e, x, p, w)
    dv = np.concatenate(innov)
    return {"a": a, "tau": tau, "row_s": s, "row_gamma": gamma, "n_errors": int(e.size),
            "n_pairs": int(len(set(p.tolist()))), "drift_sd": float(np.sqrt(np.mean(dv * dv))),
            "n_drift": int(dv.size)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, required=True, help="benchmarks/calibration.py's --cache folder")
    ap.add_argument("--bootstrap", type=int, default=40, help="the cache files' bootstrap (their names)")
    ap.add_argument("--pairs", type=float, default=1.0, help="the prior's weight P0, in pairs")
    ap.add_argument("--drift-pairs", type=float, default=1.0, help="the drift prior's weight M0, in innovations")
    ap.add_argument("--out", type=Path, default=HERE.parent / "src" / "scalinglab" / "fit" / "offset_prior.json")
    args = ap.parse_args()
    fit = pooled(args.cache, list(TUNE), args.bootstrap)
    out = {"a": fit["a"], "tau": fit["tau"], "pairs": args.pairs, "row_s": fit["row_s"], "row_gamma": fit["row_gamma"],
           "n_errors": fit["n_errors"], "n_pairs": fit["n_pairs"], "drift_sd": fit["drift_sd"],
           "drift_pairs": args.drift_pairs, "n_drift": fit["n_drift"], "sets": TUNE,
           "what": ("offset sd a + tau x (log loss, x = decades beyond the training data of the distance axis: "
                    "C for the Porian sets, N for Gadre's) of the group error model fitted to the pooled internal "
                    "rollouts of the sets' largest rollout fits (bootstrap "
                    f"{args.bootstrap}, seed 0); weight P0 = pairs. drift_sd: rms change of the one-step bias "
                    "per decade between successive internal prefixes (n_drift of them), weight drift_pairs"),
           "command": "python benchmarks/offset_prior.py --cache DIR  (DIR from benchmarks/calibration.py "
                      "--sets porian,gadre --bootstrap 40 --cache DIR)"}
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
