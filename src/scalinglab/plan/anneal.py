"""The best WSD decay of a run of a given length, from a fitted annealing law (Tissue et al. 2024).

For a warmup-stable-decay run (Hu et al. 2024; Hägele et al. 2024) of ``steps`` updates at peak
``lr``, the annealing law ``L = L0 + A S1^-alpha - C S2`` trades the forward area S1 a longer decay
gives up against the annealing area S2 it gains. :func:`best_wsd_decay` evaluates the predicted final
loss on a grid of decay fractions for every decay shape the trainer knows (linear, cosine, 1 - sqrt)
and returns the best, with the whole table. Tissue et al. report the law explains a best WSD decay of
about 10-20% of training (OpenReview record, LAWS.md section 6).

Reference: Tissue, Wang, Wang et al. 2024, arXiv 2408.11029.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ParameterError, invalid
from ..fit.anneal import predict_curve, schedule_curve
from ..fit.result import Fit
from ..ladder.schedules import WSD_SHAPES

#: decay fractions searched by default: 0.01 .. 0.9
DECAY_FRACS: tuple[float, ...] = tuple(
    round(float(f), 4) for f in np.r_[np.arange(0.01, 0.1, 0.01), np.arange(0.1, 0.905, 0.025)])

__all__ = ["DECAY_FRACS", "best_wsd_decay"]


def best_wsd_decay(fit: Fit, steps: int, lr: float, *, warmup_steps: int = 0, warmup_frac: float = 0.0,
                   final_lr_frac: float = 0.1, shapes: Sequence[str] = WSD_SHAPES,
                   fracs: Sequence[float] = DECAY_FRACS, seed: int = 0) -> dict[str, Any]:
    """The decay fraction and shape of a WSD run of ``steps`` updates with the lowest predicted final loss.

    Returns ``{"best": {"decay_frac", "decay_shape", "loss", "interval"}, "by_shape": {shape: the best of
    that shape}, "table": [{"decay_shape", "decay_frac", "loss"}, ...], "warnings": the fit's, then the first
    decay whose interval was clipped at 0 or whose loss is <= 0 (:func:`scalinglab.fit.predict.predict`; its row
    has ``"reliable": False``) and how many there were, "interval_kind" and "level": the intervals' kind and
    nominal level (``predict``'s)}``.
    Fractions that leave no room after the warmup are skipped.
    """
    unknown = [s for s in shapes if s not in WSD_SHAPES]
    if unknown or not shapes:
        raise ParameterError(invalid("The decay shapes", list(shapes), f"a non-empty subset of {WSD_SHAPES}"))
    table: list[dict[str, Any]] = []
    warns = list(fit.warnings)
    kind: dict[str, Any] = {}
    for shape in shapes:
        for f in fracs:
            warm = warmup_steps or round(warmup_frac * steps)
            if warm + round(f * steps) > steps:
                continue
            eta = schedule_curve("wsd", steps, lr, warmup_steps=warmup_steps, warmup_frac=warmup_frac,
                                 decay_frac=float(f), decay_shape=shape, final_lr_frac=final_lr_frac)
            pred = predict_curve(fit, eta, stride=steps, seed=seed)
            kind = {"interval_kind": pred.attrs["interval"], "level": pred.attrs["level"]}
            row = pred.iloc[-1]
            trouble = [w for w in pred.attrs["warnings"] if w not in fit.warnings]
            interval = None if np.isnan(row["lo"]) else [float(row["lo"]), float(row["hi"])]
            table.append({"decay_shape": shape, "decay_frac": float(f), "loss": float(row["prediction"]),
                          "interval": interval, "reliable": not trouble})
            if trouble and all(r["reliable"] for r in table[:-1]):   # the first decay in trouble says why
                warns.append(f"{shape} decay over {f:g} of the run: {trouble[0]}")
    if not table:
        raise ParameterError(invalid("The decay fractions", list(fracs), "at least one that fits after the warmup"))
    # the lowest loss among the reliable decays (where the law's prediction holds); only when none is
    # reliable the lowest of all, with a warning that it is not to be trusted
    def lowest(rows: list[dict[str, Any]]) -> dict[str, Any]:
        return min([r for r in rows if r["reliable"]] or rows, key=lambda r: r["loss"])

    by_shape = {s: lowest([r for r in table if r["decay_shape"] == s])
                for s in shapes if any(r["decay_shape"] == s for r in table)}
    best = lowest(list(by_shape.values()))
    bad = [r for r in table if not r["reliable"]]
    if bad:
        lower = any(r["loss"] < best["loss"] for r in bad)
        warns.append(f"{len(bad)} of {len(table)} decays tried have an interval clipped at 0 or a loss <= 0 "
                     "('reliable': false)"
                     + (": none is reliable, so the best is one of them: its loss and decay are not to be trusted."
                        if not best["reliable"] else
                        "; the best is the lowest of the reliable ones" + (" (an unreliable decay predicts lower)"
                                                                           if lower else "") + "."))
    return {"steps": int(steps), "lr": float(lr), "best": best, "by_shape": by_shape, "table": table,
            **kind, "warnings": warns}
