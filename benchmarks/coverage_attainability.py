"""Is "every set's coverage within the band" attainable at all? A perfectly calibrated interval, scored
on as few and as correlated held-out points as the rollouts of ``benchmarks/calibration.py`` give.

Issue 15 asks every set's nominal 80% interval to cover 70-90% of its held-out points (95%: 85-100%).
A rollout back-test scores a set on g test groups of n_i points each, and the points of one group share
one fitted curve, so their errors are correlated. This benchmark asks how often a *perfectly calibrated*
predictive distribution would land in the band on that structure: per test group i and point j the
standardized error is ``z_ij = sqrt(rho) u_i + sqrt(1 - rho) e_ij`` (u, e independent standard normal:
each z is exactly standard normal, the points of one group correlated rho), and the point is inside the
80% (95%) interval when ``|z| <= 1.2816`` (1.9600). Simulated (numpy ``default_rng(--sim-seed)``,
``--sims`` draws) per set at

* ``rho = 0``: independent points; the exact binomial answer (``scipy.stats.binom``) is printed beside
  the simulated one as a check of the simulator;
* ``rho_hat``: the set's own intra-group correlation, a one-way random-effects (ANOVA) estimate on the
  standardized rollout residuals ``(ln y - ln yhat) / sigma``, ``sigma = ln(hi80 / lo80) / (2 * 1.2816)``
  of the set's default-scheme (``cal-group-t``) 80% interval, the test groups as the classes, clipped to
  [0, 1];
* ``rho_pool``: the same estimator pooled over all sets (each set's own mean removed).

Per set it prints P80 = P(80% coverage in [70, 90]), P95 = P(95% coverage in [85, 100]) and Pboth (both,
the ``in_band`` of ``calibration.py``), and, for reading the observed coverage, P(cov80 >= observed)
under ``rho_hat`` (how surprising an over-coverage is for a calibrated interval). The summary gives the
probability that all sets are in band at once, assuming independence between sets (the product), and
the same with ``--extra-count`` quickstart-like sets of ``--extra-sizes`` points per test group
(default 3 sets of 5,4,4,4 = 17 points: six budgets, four rollout steps; the group sizes are an
assumption, the quickstart stores being absent here) at rho = 0 and at ``rho_pool``.

It also prints the 80% coverage pooled over the sets by kind of rollout step: ``obs`` (the first step,
two groups, no calibration: the observation interval), ``t`` (the Student t fallback of too few internal
pairs) and ``conformal`` (a conformal rank), to see where a miscalibration sits.

The fits are those of ``calibration.py`` (same sets, ``--bootstrap``, ``--seed``; ``--cache DIR`` is
shared with it, so after one ``calibration.py --cache DIR`` run this costs no refits).

    python benchmarks/coverage_attainability.py [--sets porian,gadre,datablations,epoch] [--cache DIR]
                                                [--sims 20000] [--sim-seed 20261203] [--json out.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from scipy import special, stats

#: nominal level -> the issue's band of coverage, as exact fractions (inclusive on both ends)
BANDS: dict[float, tuple[Fraction, Fraction]] = {0.8: (Fraction(7, 10), Fraction(9, 10)),
                                                 0.95: (Fraction(17, 20), Fraction(1))}


def in_band_counts(k: np.ndarray, n: int, level: float) -> np.ndarray:
    """Whether k inside points of n give a coverage k / n in the band of ``level`` (exact integer
    comparison, so a coverage of exactly 70% or 90% counts as in band, as ``calibration.in_band``)."""
    lo, hi = BANDS[level]
    k = np.asarray(k, dtype=np.int64)
    return np.asarray((k * lo.denominator >= lo.numerator * n) & (k * hi.denominator <= hi.numerator * n))


def simulate_counts(sizes: Sequence[int], rho: float, n_sims: int, rng: np.random.Generator,
                    levels: Sequence[float] = (0.8, 0.95)) -> dict[float, np.ndarray]:
    """Per level the number of points inside a perfectly calibrated central interval in each of
    ``n_sims`` simulated rollouts with test groups of ``sizes`` points, the errors of one group
    correlated ``rho`` (module docstring). Returns level -> int array of shape (n_sims,)."""
    sizes_a = np.asarray(sizes, dtype=int)
    if sizes_a.ndim != 1 or sizes_a.size == 0 or (sizes_a < 1).any():
        raise ValueError(f"group sizes must be a non-empty list of integers >= 1, got {list(sizes)}")
    if not 0.0 <= rho <= 1.0:
        raise ValueError(f"rho must be in [0, 1], got {rho}")
    if n_sims < 1:
        raise ValueError(f"n_sims must be >= 1, got {n_sims}")
    grp = np.repeat(np.arange(sizes_a.size), sizes_a)
    u = rng.standard_normal((n_sims, sizes_a.size))
    e = rng.standard_normal((n_sims, grp.size))
    z = np.abs(np.sqrt(rho) * u[:, grp] + np.sqrt(1.0 - rho) * e)
    return {lev: np.count_nonzero(z <= special.ndtri(0.5 + lev / 2), axis=1) for lev in levels}


def band_probabilities(sizes: Sequence[int], rho: float, n_sims: int, seed: int,
                       observed80: float | None = None) -> dict[str, float]:
    """P80, P95 (each level's coverage in its band), Pboth (both at once) of a perfectly calibrated
    interval on test groups of ``sizes`` points correlated ``rho`` (:func:`simulate_counts`, ``n_sims``
    draws of ``default_rng(seed)``), their Monte Carlo standard errors, and with ``observed80``
    ``p_ge_obs80`` = P(80% coverage >= observed80)."""
    n = int(np.sum(sizes))
    counts = simulate_counts(sizes, rho, n_sims, np.random.default_rng(seed))
    b80, b95 = in_band_counts(counts[0.8], n, 0.8), in_band_counts(counts[0.95], n, 0.95)
    out = {"p80": float(b80.mean()), "p95": float(b95.mean()), "pboth": float((b80 & b95).mean())}
    out.update({f"{k}_mcse": float(np.sqrt(v * (1 - v) / n_sims)) for k, v in list(out.items())})
    if observed80 is not None:
        out["p_ge_obs80"] = float(np.mean(counts[0.8] >= round(observed80 * n)))
    return out


def exact_binomial_band(n: int, level: float) -> float:
    """P(k / n in the band of ``level``) for k ~ Binomial(n, level): independent points (rho = 0)."""
    k = np.arange(n + 1)
    return float(stats.binom.pmf(k, n, level)[in_band_counts(k, n, level)].sum())


def icc_anova(z_groups: Sequence[np.ndarray]) -> dict[str, float]:
    """One-way random-effects (ANOVA) estimate of the intra-class correlation of values in classes
    ``z_groups`` (unbalanced: the n0 of Searle et al. 1992): ``(MSB - MSW) / (MSB + (n0 - 1) MSW)``,
    clipped to [0, 1]. Returns ``rho`` (clipped), ``rho_raw``, ``ssb``, ``df_b``, ``ssw``, ``df_w``, ``n0``
    (``df_b * n0`` is kept as ``n0_sum`` so sets can be pooled, :func:`pooled_icc`). NaN without at
    least 2 classes and one class of 2 or more."""
    zs = [np.asarray(z, dtype=float) for z in z_groups if np.asarray(z).size]
    n_i = np.array([z.size for z in zs], dtype=float)
    big_n, g = float(n_i.sum()), len(zs)
    nan = float("nan")
    if g < 2 or big_n - g < 1:
        return {"rho": nan, "rho_raw": nan, "ssb": nan, "df_b": 0.0, "ssw": nan, "df_w": 0.0, "n0": nan,
                "n0_sum": 0.0}
    grand = float(np.concatenate(zs).mean())
    ssb = float(sum(z.size * (z.mean() - grand) ** 2 for z in zs))
    ssw = float(sum(((z - z.mean()) ** 2).sum() for z in zs))
    df_b, df_w = g - 1.0, big_n - g
    n0_sum = big_n - float((n_i * n_i).sum()) / big_n
    out = {"ssb": ssb, "df_b": df_b, "ssw": ssw, "df_w": df_w, "n0": n0_sum / df_b, "n0_sum": n0_sum}
    return {**_icc_from(out), **out}


def _icc_from(parts: dict[str, float]) -> dict[str, float]:
    msb, msw = parts["ssb"] / parts["df_b"], parts["ssw"] / parts["df_w"]
    n0 = parts["n0_sum"] / parts["df_b"]
    den = msb + (n0 - 1.0) * msw
    raw = float((msb - msw) / den) if den > 0 else float("nan")
    return {"rho_raw": raw, "rho": float(min(max(raw, 0.0), 1.0)) if np.isfinite(raw) else raw}


def pooled_icc(per_set: Sequence[dict[str, float]]) -> float:
    """The ANOVA intra-class correlation pooled over sets, each with its own mean: sums of squares,
    degrees of freedom and n0 weights added over the sets (:func:`icc_anova`), clipped to [0, 1]."""
    ok = [p for p in per_set if p["df_b"] > 0 and p["df_w"] > 0]
    if not ok:
        return float("nan")
    tot = {k: float(sum(p[k] for p in ok)) for k in ("ssb", "df_b", "ssw", "df_w", "n0_sum")}
    return _icc_from(tot)["rho"]


def standardized_residuals(spec: dict[str, Any], bootstrap: int, seed: int, cache: Path,
                           scheme: str) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Per rollout test group of a ``calibration.py`` set the standardized residuals
    ``ln(y / yhat) / sigma`` of the ``scheme`` interval (module docstring), and the set's rollout
    result from ``calibration.run_set`` (whose fits, kept in the JSON file ``cache``, are the ones used)
    with ``by_kind`` added: per kind of step the points inside the 80% interval and the points,
    ``obs`` (a fit without calibration: the observation interval), ``t`` (too few internal pairs for
    a conformal rank at 80%, ``0.8 (P + 1) / P > 1``) and ``conformal``."""
    import calibration as cb

    from scalinglab.fit import Fit
    from scalinglab.fit.calibrate import n_pairs_of, with_scheme
    from scalinglab.fit.predict import predict
    from scalinglab.fit.rollout import group_labels, sorted_groups, steps

    res = cb.run_set(spec, [f"cal-{scheme}"], bootstrap, seed, cache)[f"cal-{scheme}"]
    stored = json.loads(cache.read_text())
    fkey = json.dumps(cb.VARIANTS[f"cal-{scheme}"][0], sort_keys=True)
    labels = group_labels(spec["df"], spec["key"], spec["decades"])
    groups = sorted_groups(labels, spec["key"])
    z80 = special.ndtri(0.9)
    out: list[np.ndarray] = []
    inside = 0
    by_kind = {"obs": [0, 0], "t": [0, 0], "conformal": [0, 0]}
    for k, h in steps(len(groups), 1):
        f = Fit.from_dict(json.loads(stored[f"{fkey}|{k}"]))
        kind = "obs"
        if f.calibration.get("method") == "internal-rollout":
            f = dataclasses.replace(f, calibration=with_scheme(f.calibration, scheme))
            n_p = n_pairs_of(f.calibration)
            kind = "t" if n_p == 0 or 0.8 * (n_p + 1) / n_p > 1 else "conformal"
        test = spec["df"][labels == groups[k + h - 1]]
        p = predict(f, test, level=0.8, seed=seed, calibrated=True)
        t = test if f.law_.derive is None else f.law_.derive(test)
        y = t[f.law_.target].to_numpy(dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            sigma = np.log(p["hi"].to_numpy(dtype=float) / p["lo"].to_numpy(dtype=float)) / (2 * z80)
            z = np.log(y / p["prediction"].to_numpy(dtype=float)) / sigma
        out.append(z[np.isfinite(z)])
        ins = int(np.count_nonzero((y >= p["lo"].to_numpy(dtype=float)) & (y <= p["hi"].to_numpy(dtype=float))))
        inside += ins
        by_kind[kind][0] += ins
        by_kind[kind][1] += y.size
    if res["coverage_80"] is not None and inside != round(res["coverage_80"] * res["n_points"]):
        raise RuntimeError(f"the re-predicted 80% intervals hold {inside} points, the rollout's "
                           f"{res['coverage_80'] * res['n_points']:.0f}: the cache is not the rollout's")
    return out, {**res, "by_kind": by_kind}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="porian,gadre,datablations,epoch",
                    help="comma-separated families or set names, as calibration.py")
    ap.add_argument("--scheme", default=None, help="the calibration scheme whose residuals estimate rho "
                    "(default: the package's default scheme)")
    ap.add_argument("--bootstrap", type=int, default=100, help="the fits' bootstrap (as calibration.py)")
    ap.add_argument("--seed", type=int, default=0, help="the fits' seed (as calibration.py)")
    ap.add_argument("--cache", type=Path, default=None, help="calibration.py's --cache folder (default: a temporary one)")
    ap.add_argument("--sims", type=int, default=20000, help="simulated rollouts per set and rho (>= 20000)")
    ap.add_argument("--sim-seed", type=int, default=20261203)
    ap.add_argument("--extra-sizes", default="5,4,4,4", help="points per test group of a quickstart-like set")
    ap.add_argument("--extra-count", type=int, default=3, help="how many quickstart-like sets")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import calibration as cb

    from scalinglab.fit.calibrate import DEFAULT_SCHEME, SCHEMES
    scheme = args.scheme or DEFAULT_SCHEME
    if scheme not in SCHEMES:
        ap.error(f"--scheme: {scheme!r} is not one of {list(SCHEMES)}")
    if args.sims < 20000:
        ap.error(f"--sims: {args.sims} is below 20000")
    try:
        extra = [int(v) for v in args.extra_sizes.split(",")]
    except ValueError:
        ap.error(f"--extra-sizes: {args.extra_sizes!r} is not a comma-separated list of integers")
    if not extra or min(extra) < 1 or args.extra_count < 0:
        ap.error("--extra-sizes needs integers >= 1 and --extra-count an integer >= 0")
    wanted = args.sets.split(",")
    sets: dict[str, dict[str, Any]] = {}
    for fam, make in (("porian", cb.porian_sets), ("gadre", cb.gadre_sets),
                      ("datablations", cb.datablations_sets), ("epoch", cb.epoch_sets)):
        for name, spec in make().items():
            if fam in wanted or name in wanted:
                sets[name] = spec
    if not sets:
        ap.error(f"--sets: no set found for {args.sets!r} (data under {cb.DATA})")
    tmp = None
    if args.cache is None:
        tmp = tempfile.TemporaryDirectory(prefix="coverage-attainability-")
        args.cache = Path(tmp.name)
    args.cache.mkdir(parents=True, exist_ok=True)
    from threadpoolctl import threadpool_limits
    t0 = time.perf_counter()
    print(f"load {os.getloadavg()[0]:.2f}; fits: bootstrap {args.bootstrap}, seed {args.seed}, scheme {scheme}; "
          f"{args.sims} simulations per set and rho, default_rng({args.sim_seed})")
    info: dict[str, dict[str, Any]] = {}
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, spec in sets.items():
            zg, res = standardized_residuals(spec, args.bootstrap, args.seed,
                                             args.cache / f"{name}-b{args.bootstrap}-s{args.seed}.json", scheme)
            sizes = [int(s["n"]) for s in res["steps"] if s["interval"]]
            info[name] = {"by_kind": res["by_kind"], "sizes": sizes, "cov80": res["coverage_80"], "cov95": res["coverage_95"],
                          "icc": icc_anova(zg), "z_sd": float(np.std(np.concatenate(zg))) if zg else float("nan")}
    rho_pool = pooled_icc([v["icc"] for v in info.values()])
    kinds = {k: [sum(v["by_kind"][k][i] for v in info.values()) for i in (0, 1)] for k in ("obs", "t", "conformal")}
    print("80% coverage by kind of step, pooled over the sets (obs: no calibration; t: small-P Student t; conformal): "
          + ", ".join(f"{k} {a}/{b} = {100 * a / max(b, 1):.1f}%" for k, (a, b) in kinds.items()))
    print(f"pooled rho (ANOVA over {len(info)} sets, each its own mean): {rho_pool:.3f}")
    print("P80 = P(80% coverage in [70,90]), P95 = P(95% coverage in [85,100]), Pb = both; perfectly calibrated;"
          " exact = binomial at rho 0; P>=obs = P(cov80 >= observed) at rho_hat; zsd = sd of the standardized"
          " residuals (1 if calibrated)")
    print(f"{'set':<44} {'g':>3} {'n':>4} {'cov80':>6} {'cov95':>6} {'zsd':>5} {'rho_hat':>7} | "
          f"{'rho=0: P80 exact':>16} {'P95 exact':>10} {'Pb':>5} | {'rho_hat: P80':>12} {'P95':>5} {'Pb':>5} "
          f"{'P>=obs':>6} | {'rho_pool: P80':>13} {'P95':>5} {'Pb':>5}")
    rows: dict[str, dict[str, Any]] = {}
    for i, (name, v) in enumerate(info.items()):
        sizes, n = v["sizes"], int(np.sum(v["sizes"]))
        rho_hat = v["icc"]["rho"]
        seed = args.sim_seed + i
        r0 = band_probabilities(sizes, 0.0, args.sims, seed)
        rh = (band_probabilities(sizes, rho_hat, args.sims, seed, v["cov80"]) if np.isfinite(rho_hat)
              else {k: float("nan") for k in ("p80", "p95", "pboth", "p_ge_obs80")})
        rp = band_probabilities(sizes, rho_pool, args.sims, seed)
        ex = {lev: exact_binomial_band(n, lev) for lev in (0.8, 0.95)}
        rows[name] = {"by_kind": v["by_kind"], "sizes": sizes, "n": n, "cov80": v["cov80"], "cov95": v["cov95"], "z_sd": v["z_sd"],
                      "rho_hat": rho_hat, "rho_raw": v["icc"]["rho_raw"], "rho0": r0, "rho_hat_p": rh,
                      "rho_pool_p": rp, "exact80": ex[0.8], "exact95": ex[0.95]}
        print(f"{name:<44} {len(sizes):>3} {n:>4} {100 * v['cov80']:6.1f} {100 * v['cov95']:6.1f} {v['z_sd']:5.2f} "
              f"{rho_hat:7.3f} | {r0['p80']:7.3f} {ex[0.8]:8.3f} {r0['p95']:4.3f} {ex[0.95]:5.3f} {r0['pboth']:5.3f} | "
              f"{rh['p80']:12.3f} {rh['p95']:5.3f} {rh['pboth']:5.3f} {rh['p_ge_obs80']:6.3f} | "
              f"{rp['p80']:13.3f} {rp['p95']:5.3f} {rp['pboth']:5.3f}", flush=True)
    qs = {rho: band_probabilities(extra, rho, args.sims, args.sim_seed + len(rows)) for rho in (0.0, rho_pool)}
    print(f"quickstart-like set ({args.extra_sizes} points per group): rho 0: P80 {qs[0.0]['p80']:.3f} "
          f"(exact {exact_binomial_band(sum(extra), 0.8):.3f}), P95 {qs[0.0]['p95']:.3f}, Pb {qs[0.0]['pboth']:.3f}; "
          f"rho_pool: P80 {qs[rho_pool]['p80']:.3f}, P95 {qs[rho_pool]['p95']:.3f}, Pb {qs[rho_pool]['pboth']:.3f}")
    print(f"all in band at once (independent sets; {len(rows)} public sets, + {args.extra_count} quickstart-like):")
    summary: dict[str, Any] = {}
    for label, key, qrho in (("rho = 0 (exact)", None, 0.0), ("rho = 0 (sim)", "rho0", 0.0),
                             ("rho_hat", "rho_hat_p", rho_pool), ("rho_pool", "rho_pool_p", rho_pool)):
        line = {}
        for p in ("p80", "p95", "pboth"):
            if key is None:
                if p == "pboth":
                    continue     # the exact binomial of one level; the joint needs the simulation
                vals = [r["exact80" if p == "p80" else "exact95"] for r in rows.values()]
                qv = exact_binomial_band(sum(extra), 0.8 if p == "p80" else 0.95)
            else:
                vals = [r[key][p] for r in rows.values()]
                qv = qs[qrho][p]
            pub = float(np.prod(vals))
            line[p] = {"public": pub, "with_quickstart": pub * qv ** args.extra_count,
                       "expected_out": float(np.sum(1 - np.asarray(vals)))}
        summary[label] = line
        print(f"  {label:<16} " + "; ".join(
            f"{p}: {d['public']:.3g} ({d['with_quickstart']:.3g} with quickstart-like; "
            f"{d['expected_out']:.2f} public sets expected out)" for p, d in line.items()))
    print(f"load {os.getloadavg()[0]:.2f}; {time.perf_counter() - t0:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"rho_pool": rho_pool, "by_kind": kinds, "sets": rows, "quickstart_like": qs,
                                         "summary": summary, "args": {k: str(v) for k, v in vars(args).items()}},
                                        indent=1))
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
