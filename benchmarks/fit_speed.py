"""Speed of the Chinchilla fit from Hoffmann's 4,500-point grid, against a Python-loop baseline.

Baseline (measured in the same run): ``scipy.optimize.minimize(method="L-BFGS-B")`` called from each
grid point in a Python loop on the same summed Huber(1e-3) log-sum-exp objective, with L-BFGS-B's own
finite-difference gradient (the procedure of Epoch's replication notebook). scalinglab: the batched
Levenberg-Marquardt multi-start of ``scalinglab.fit`` plus its L-BFGS-B polish of the best start.

Also times the whole command ``scalinglab fit ... --law chinchilla --bootstrap 1000``.

Both sides run with one BLAS thread (``threadpoolctl.threadpool_limits(1)``): the baseline's time
otherwise swings with OpenBLAS threads on a busy machine. ``--baseline-every K`` times a sample of
the starts: every s-th start with s the smallest stride >= K coprime to every axis of the grid
(a stride of 100 on the 5 x 6 x 6 x 5 x 5 grid would sample only alpha = beta = 0), its time scaled
to the whole grid. The load average is printed with the figures.

    python benchmarks/fit_speed.py [--data ../shared/data/chinchilla-epoch/svg_extracted_data.csv]
                                   [--baseline-every K]   # time a sample of the starts (quick look)
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import logsumexp
from threadpoolctl import threadpool_limits

from scalinglab.fit import LawFit
from scalinglab.laws import get

HERE = Path(__file__).resolve().parent
DEFAULT = HERE.parent.parent / "shared" / "data" / "chinchilla-epoch" / "svg_extracted_data.csv"


def load(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path).rename(columns={"Model Size": "N", "Training FLOP": "C"})
    df = df[df["loss"].rank(ascending=False) > 5].copy()   # Epoch drop the 5 highest-loss points
    df["D"] = df["C"] / (6 * df["N"])
    return df


def baseline(df: pd.DataFrame, starts: np.ndarray) -> tuple[float, np.ndarray]:
    """One L-BFGS-B call per start; returns the best objective and its parameters (e, a, b, alpha, beta)."""
    lnN, lnD, lnL = np.log(df["N"].to_numpy()), np.log(df["D"].to_numpy()), np.log(df["loss"].to_numpy())
    delta = 1e-3

    def objective(x: np.ndarray) -> float:
        e, a, b, alpha, beta = x
        pred = logsumexp([np.full_like(lnN, e), a - alpha * lnN, b - beta * lnD], axis=0)
        r = np.abs(pred - lnL)
        return float(np.sum(np.where(r <= delta, 0.5 * r * r, delta * (r - 0.5 * delta))))

    best, best_x = np.inf, starts[0]
    for x0 in starts:
        res = optimize.minimize(objective, x0, method="L-BFGS-B")
        if res.fun < best:
            best, best_x = float(res.fun), res.x
    return best, best_x


def coprime_stride(k: int, axes: list[int]) -> int:
    """The smallest stride >= k sharing no factor with any axis length (1 when k <= 1)."""
    s = max(1, k)
    while s > 1 and any(math.gcd(s, a) != 1 for a in axes):
        s += 1
    return s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT)
    ap.add_argument("--baseline-every", type=int, default=1,
                    help="run the baseline on every K-th grid start and scale its time by K (K=1: all)")
    args = ap.parse_args()
    df = load(args.data)
    law = get("chinchilla")
    grid = law.init_grid()            # (4500, 5): ln E, ln A, ln B, alpha, beta

    axes = [len(p.grid) for p in law.params]
    stride = coprime_stride(args.baseline_every, axes)
    warnings.simplefilter("ignore")
    load0 = os.getloadavg()
    with threadpool_limits(1):
        t0 = time.perf_counter()
        fit = LawFit(law).fit(df).result_
        t_ours = time.perf_counter() - t0
        ours_obj = fit.objective["value"]

        sub = grid[::stride]
        t0 = time.perf_counter()
        base_obj, _ = baseline(df, sub)
        t_base_measured = time.perf_counter() - t0
        t_base = t_base_measured * len(grid) / len(sub)

        # ours again, after the long baseline, so both see the machine's load of the time; keep the slower
        t0 = time.perf_counter()
        LawFit(law).fit(df)
        t_ours = max(t_ours, time.perf_counter() - t0)
    load1 = os.getloadavg()

    cmd = [sys.executable, "-m", "scalinglab.cli", "fit", str(args.data), "--law", "chinchilla",
           "--map", "N=Model Size", "--map", "D=`Training FLOP` / (6 * `Model Size`)",
           "--where", "rank(-loss) > 5", "--bootstrap", "1000", "--json"]
    t0 = time.perf_counter()
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    t_cmd = time.perf_counter() - t0

    print(f"data: {args.data} ({len(df)} points), grid starts: {len(grid)} (axes {axes}); one BLAS thread")
    print(f"load average (1, 5, 15 min) before: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}, "
          f"after: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
    print(f"scalinglab multi-start fit:  {t_ours:8.2f} s   objective {ours_obj:.10g}   "
          f"({fit.n_at_best} starts reached it; the slower of two timings, before and after the baseline)")
    extrap = "" if stride == 1 else (f" (measured {t_base_measured:.1f} s on {len(sub)} starts, every "
                                     f"{stride}th, scaled; its objective is the sample's best)")
    print(f"baseline L-BFGS-B loop:      {t_base:8.2f} s   objective {base_obj:.10g}{extrap}")
    print(f"  per start: {t_base_measured / len(sub):.3f} s")
    print(f"speed-up (baseline / scalinglab): {t_base / t_ours:.1f}x")
    print(f"objective ours <= baseline best: {ours_obj <= base_obj * (1 + 1e-12)} "
          f"(ours - baseline = {ours_obj - base_obj:+.3g})")
    print(f"whole command `scalinglab fit ... --bootstrap 1000`: {t_cmd:.2f} s")


if __name__ == "__main__":
    main()
