"""The optimal-sparsity contour of a sparse plan as a figure and as an image file.

:func:`sparsity_contour_figure` draws ``plan.plan_sparse``'s contour: with the sparse ``fit``, on a
41 x 41 grid over the range of the plan's contour table (an axis of one value is widened to a third
to three times that N, a tenth to ten times that budget), else the table itself; the plan's point
is starred. ``scalinglab plan --plot`` and the HTML report's "Optimal sparsity" section use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ..errors import DataError
from ..fit.result import Fit
from ..plan import sparsity_contour
from . import plots

__all__ = ["contour_grid", "save_sparsity_contour", "sparsity_contour_figure"]


def contour_grid(res: Mapping[str, Any], fit: Fit | None = None, size: int = 41) -> dict[str, Any]:
    """The S_opt grid drawn for the sparse plan ``res``: with the sparse ``fit``, ``size`` x ``size`` over
    the range of the plan's contour table (an axis of one value widened as the module says), else the
    table itself (``plan.sparsity_contour``'s dict)."""
    drawn = dict(res["contour"])
    if fit is not None:
        n_lo, n_hi = min(drawn["N_nonzero"]), max(drawn["N_nonzero"])
        c_lo, c_hi = min(drawn["flops"]), max(drawn["flops"])
        if n_lo == n_hi:
            n_lo, n_hi = n_lo / 3, n_hi * 3
        if c_lo == c_hi:
            c_lo, c_hi = c_lo / 10, c_hi * 10
        start, end = res["pruning_window"]
        drawn = dict(sparsity_contour(fit, np.geomspace(n_lo, n_hi, size).tolist(),
                                      np.geomspace(c_lo, c_hi, size).tolist(), tokens_per_d=res["tokens_per_d"],
                                      max_sparsity=res["max_sparsity"], start_frac=start, end_frac=end))
    return drawn


def sparsity_contour_figure(res: Mapping[str, Any], fit: Fit | None = None) -> Figure:
    """The contour of S_opt over non-zero parameters N (x) and training FLOPs (y) of the sparse plan
    ``res`` (``plan_sparse``'s result), on a fine grid when the sparse ``fit`` is given (matplotlib:
    ``plan --plot``; the HTML report draws :func:`.figures.sparsity_contour_chart`)."""
    drawn = contour_grid(res, fit)
    fig = Figure(figsize=(6.5, 5))
    plots.sparsity_contour(fig.subplots(), drawn, point=(res["N_nonzero"], res["flops"]))
    return fig


def save_sparsity_contour(path: str | Path, res: Mapping[str, Any], fit: Fit | None = None) -> str:
    """Write :func:`sparsity_contour_figure` to ``path`` (.png, .svg, .pdf: matplotlib's format by the
    extension, 120 dpi); returns the path as text."""
    if res.get("law") != "sparse":
        raise DataError(f"a sparsity contour needs a plan of the sparse law; this plan is of law {res.get('law')!r}.")
    fig = sparsity_contour_figure(res, fit)
    try:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot write the plot {str(path)!r}: {exc}") from None
    return str(path)
