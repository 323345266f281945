"""A synthetic quickstart ladder in a store: the quickstart's tiny design (nothing trained), every
evaluation point and cooldown-branch end given a Chinchilla loss. The report tests use it."""

from __future__ import annotations

from pathlib import Path

from scalinglab.runconfig import RunConfig

#: the Chinchilla law of the synthetic ladder (Hoffmann et al. 2022, Approach 3 coefficients)
E, A, B, ALPHA, BETA = 1.69, 406.4, 410.7, 0.34, 0.28


def loss(n: float, d: float) -> float:
    return E + A / n**ALPHA + B / d**BETA


def synthetic_quickstart_store(store_path: Path) -> list[RunConfig]:
    """Write the synthetic ladder to a new store at ``store_path``; returns its runs."""
    from scalinglab import quickstart as qs
    from scalinglab.accounting import counts, describe, eval_steps
    from scalinglab.ladder import schedules
    from scalinglab.store import Store

    saved = dict(qs.SETTINGS)
    qs.SETTINGS.update(context=32, batch_tokens=256, eval_tokens=1024, evals=3)
    try:
        runs, _ = qs.design_ladder(0.5, workers=2)
    finally:
        qs.SETTINGS.clear()
        qs.SETTINGS.update(saved)
    store_path.parent.mkdir(parents=True, exist_ok=True)
    with Store(store_path) as st:
        st.add_planned(runs, describe=describe)
        for i, r in enumerate(runs):
            n = counts(r)["N_total"]
            wiggle = 1.0 + 0.004 * ((i * 7) % 5 - 2)            # deterministic scatter about the law
            for step in eval_steps(r.steps, r.evals):
                tokens = step * r.batch_tokens
                unannealed = 1.0 if step == r.steps else 1.04  # only the end of the decay is annealed
                st.add_point(r.name, {"step": step, "tokens": tokens, "eval_loss": loss(n, tokens) * wiggle * unannealed})
            for b in schedules.branches(r.schedule, r.lr, r.steps):
                tokens = b.end_step * r.batch_tokens
                st.add_point(r.name, {"branch": b.index, "step": b.end_step, "tokens": tokens,
                                      "eval_loss": loss(n, tokens) * wiggle})
            st.mark_done(r.name, {"final_loss": loss(n, r.steps * r.batch_tokens)})
    return runs
