"""The plan a fit's law calls for: the optimal sparsity for the sparse law, else the compute-optimal N, D.

One entry point for a command or a report that plans from any fit: :func:`plan_fit` checks that the
settings given apply to the fit's law and calls :func:`scalinglab.plan.sparsity.plan_sparse`
(Frantar et al. 2023) or :func:`scalinglab.plan.compute.plan`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ParameterError, invalid
from ..fit.result import Fit
from .bits import LAWS as BITS_LAWS
from .bits import plan_bits
from .compute import plan
from .sparsity import plan_sparse

__all__ = ["plan_fit"]


def plan_fit(fit: Fit, flops: float, *, fixed: Mapping[str, float] | None = None, max_tokens: float | None = None,
             n_nonzero: float | None = None, tokens_per_d: float | None = None, max_sparsity: float = 0.99,
             contour_n: Sequence[float] | None = None, contour_flops: Sequence[float] | None = None,
             seed: int = 0, bits: Sequence[float] | None = None) -> dict[str, Any]:
    """Plan a run of ``flops`` FLOPs from ``fit``: :func:`plan_sparse` for the sparse law, :func:`plan`
    for every other law. The result's ``law`` says which.

    Args:
        fit: a fit or a preset (``Fit.from_preset``).
        flops: the training budget C, FLOPs (``C = 6 N D``; the sparse law charges ``6 N D c_mul(S)``).
        fixed: values of the law's other inputs (e.g. ``U``, tokens). For the sparse law only ``S``
            (hold the sparsity) and ``N_nonzero`` (hold the non-zero parameters) apply.
        max_tokens: the most training tokens the run may use (not for the sparse law).
        n_nonzero, tokens_per_d, max_sparsity, contour_n, contour_flops: the sparse law's settings
            (:func:`plan_sparse`); the first four are refused for any other law when given.
        seed: seed of the interval's residual draws.
        bits: bit widths P of a format plan (:func:`scalinglab.plan.bits.plan_bits`; laws
            ``precision`` and ``kumar``); ``fixed`` may then hold only ``block`` (Sun's law).

    The result's ``warnings`` hold the fit's warnings, then the plan's own (a replicate without an
    optimum; a plan below one parameter or one token). ``fixed`` may only name the law's inputs other
    than the N and D the plan chooses.
    """
    if isinstance(flops, bool) or not (isinstance(flops, (int, float)) and math.isfinite(flops) and flops > 0):
        raise ParameterError(invalid("The FLOP budget 'flops'", flops, "a positive number of FLOPs"))
    fixed = dict(fixed or {})
    if bits is not None:     # a format plan over bit widths (precision laws)
        if fit.law_.name not in BITS_LAWS:
            raise ParameterError(invalid("The law of a 'bits' plan", fit.law, f"one of {list(BITS_LAWS)}"))
        allowed = {"block"} if fit.law_.name == "precision" else set()
        bad = sorted(set(fixed) - allowed) or ([] if max_tokens is None else ["max_tokens"])
        if bad:
            raise ParameterError(invalid("The 'fixed' input of a 'bits' plan", bad[0],
                                         "only block (Sun's law; default 128)" if allowed else "none for law 'kumar'"))
        res = plan_bits(fit, flops, bits, block=fixed.get("block", 128.0))
        return res
    if fit.law_.name == "sparse":
        if max_tokens is not None:
            raise ParameterError("The 'max_tokens' parameter does not apply to the sparse law's plan.")
        unknown = sorted(set(fixed) - {"S", "N_nonzero"})
        if unknown:
            raise ParameterError(invalid("The 'fixed' input of the sparse law", unknown[0],
                                         "S (sparsity) or N_nonzero; D follows from 'flops'"))
        if "N_nonzero" in fixed and n_nonzero is not None:
            raise ParameterError("give the non-zero parameters once: 'n_nonzero' or N_nonzero in 'fixed', not both.")
        res = plan_sparse(fit, flops, n_nonzero=n_nonzero if n_nonzero is not None else fixed.get("N_nonzero"),
                          sparsity=fixed.get("S"), tokens_per_d=tokens_per_d, max_sparsity=max_sparsity,
                          seed=seed, contour_n=contour_n, contour_flops=contour_flops)
        return _with_warnings(fit, res, flops, res.get("N_nonzero"), res.get("tokens"))
    sparse_only = {"n_nonzero": n_nonzero, "tokens_per_d": tokens_per_d, "contour_n": contour_n,
                   "contour_flops": contour_flops}
    given = [repr(k) for k, v in sparse_only.items() if v is not None]
    if given:
        raise ParameterError(f"{', '.join(given)} only apply to the sparse law; this fit is of law {fit.law!r}.")
    law = fit.law_
    if law.n_input and law.d_input:
        chosen = (law.n_input, law.d_input)
        others = [c for c in law.inputs if c not in chosen]
        expected = (f"one of the law's other inputs {others} ({chosen[0]} and {chosen[1]} follow from 'flops')"
                    if others else f"none: the law's inputs {chosen[0]} and {chosen[1]} follow from 'flops'")
        for k in fixed:
            if k not in others:
                raise ParameterError(invalid(f"The 'fixed' input of law {law.name!r}", k, expected))
    res = plan(fit, flops, fixed=fixed, seed=seed, max_tokens=max_tokens)
    return _with_warnings(fit, res, flops, res.get("N"), res.get("D"))


def _with_warnings(fit: Fit, res: dict[str, Any], flops: float, n: Any, tokens: Any) -> dict[str, Any]:
    """The plan with the fit's warnings first (a plan is no surer than its fit), then its own, and a
    warning when it lands below one parameter or one token (a budget no model can use)."""
    own = list(res.get("warnings", []))
    if isinstance(n, (int, float)) and n < 1:
        own.append(f"the plan lands below one parameter (N = {n:.3g}): a budget of {flops:.3g} FLOPs is too "
                   "small for any model; these numbers are meaningless.")
    if isinstance(tokens, (int, float)) and tokens < 1:
        own.append(f"the plan lands below one token ({tokens:.3g} tokens): a budget of {flops:.3g} FLOPs is "
                   "too small to train on anything; these numbers are meaningless.")
    res["warnings"] = [*fit.warnings, *own]
    return res
