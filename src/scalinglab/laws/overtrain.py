"""Over-training and downstream error (Gadre et al. 2024, "Language models scale reliably with
over-training and on downstream tasks").

Loss law ``overtrain``, in the parametrisation of the authors' code (``powlaw_ours`` in
``scaling/laws.py`` of mlfoundations/scaling):

.. math::

    L(N, M) = \\alpha N^b + \\beta\\, 6^{b/2} (M N)^b + E,   \\qquad M = D / N,\\; b < 0

which is the paper's Eq. 4 with ``C = 6 N D = 6 M N^2``:

.. math::

    L(C, M) = E + (a M^\\eta + b' M^{-\\eta}) C^{-\\eta},  \\qquad \\eta = -b/2,\\; a = \\alpha 6^\\eta,\\; b' = \\beta

For a fixed token multiplier M the curves are parallel lines in ``log(L - E)`` against ``log C``; the
offset is smallest at ``M* = (b'/a)^(1/(2 eta))``. ``alpha`` and ``beta`` here are *coefficients*
(the code's names), not exponents as in Chinchilla; ``b`` is the shared exponent (alpha = beta of
Chinchilla imposed).

* N: parameters as the authors' open_lm configs count them (**total**, embeddings included: the
  released ``N`` column; ``N_no_embed`` is also given). D: training tokens; M = D/N tokens per
  parameter (M = 20 is "compute-optimal"). L: C4 validation cross-entropy, nats per token.
* The inputs are N and D; :func:`derive` adds the column ``M = D/N`` to a table (or ``D = M N`` when a
  table gives M instead of D).
* Fitted as in the paper with ``scipy.optimize.curve_fit``: least squares on **linear** residuals from
  a grid of starts, the lowest residual kept (the law's default objective is ``Objective('ls',
  space='linear')``). The default configuration fits 5 runs: N = 10.6M, 78.9M, 153.7M and 411.6M at
  M = 20, plus 10.6M at M = 320.

Downstream law ``overtrain_error`` (paper Eq. 5): average top-1 error as a function of C4 loss,

.. math:: \\mathrm{Err}(L) = \\epsilon - k\\, e^{-\\gamma L}

(``decay_ours`` in the authors' code, with a = k, b = gamma, e = eps), input column ``loss``, target
column ``err`` (a fraction). Fitted with ``curve_fit`` on the same 5 runs plus 1.44B at M = 20.

Reference: Gadre, Smyrnis, Shankar, Gururangan, Wortsman, Shao, Mercat, Fang, Li, Keh, Xin, Nezhurina,
Vasiljevic, Jitsev, Soldaini, Dimakis, Ilharco, Koh, Carmon, Schmidt 2024, arXiv 2403.08540; code and
losses of the 104 models at mlfoundations/scaling.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DataError, row_label
from ._base import Inputs, Law, Objective, Param, Params, Preset, register

if TYPE_CHECKING:  # `import scalinglab.laws` stays free of pandas; derive imports it when called
    import pandas as pd

_CITATION = "Gadre et al. 2024, arXiv 2403.08540"
_RERUN = ("fitted by the official code (mlfoundations/scaling @ a003c49, scaling/laws.py, default "
          "configuration: 5 runs), as re-run in LAWS.md section 9")


def derive(df: pd.DataFrame) -> pd.DataFrame:
    """Add the token multiplier ``M = D/N`` (tokens per parameter), or ``D = M N`` when only M is given.

    Existing columns are left as they are; a table with neither D nor M is returned unchanged (the fit
    then reports the missing column).
    """
    import pandas as pd

    if "N" not in df:
        return df
    if "D" in df and "M" not in df:
        return df.assign(M=pd.to_numeric(df["D"], errors="coerce") / pd.to_numeric(df["N"], errors="coerce"))
    if "M" in df and "D" not in df:
        return df.assign(D=pd.to_numeric(df["M"], errors="coerce") * pd.to_numeric(df["N"], errors="coerce"))
    if "M" in df and "D" in df:
        n = pd.to_numeric(df["N"], errors="coerce").to_numpy(dtype=float)
        m = pd.to_numeric(df["M"], errors="coerce").to_numpy(dtype=float)
        d = pd.to_numeric(df["D"], errors="coerce").to_numpy(dtype=float)
        off = ~np.isclose(m * n, d, rtol=1e-6)
        if off.any():
            i = int(np.argmax(off))
            raise DataError(f"columns 'M' and 'D' disagree: M = {m[i]!r} but D/N = {d[i] / n[i]!r} "
                            f"({row_label(df, df.index[i])}); give only one of them.")
    return df


def loss(p: Params, x: Inputs) -> Any:
    """L = alpha N^b + beta 6^(b/2) (M N)^b + E with M = D/N (nats/token); N parameters, D tokens."""
    n = np.asarray(x["N"], dtype=float)
    m = np.asarray(x["D"], dtype=float) / n
    b = p["b"]
    return p["alpha"] * n ** b + p["beta"] * 6.0 ** (b / 2.0) * (m * n) ** b + p["E"]


def error(p: Params, x: Inputs) -> Any:
    """Err = eps - k exp(-gamma L): average top-1 error (fraction) at C4 loss L (nats/token)."""
    return p["eps"] - p["k"] * np.exp(-p["gamma"] * np.asarray(x["loss"], dtype=float))


def optimal_multiplier(p: Params) -> Any:
    """``M* = (b'/a)^(1/(2 eta))``, the token multiplier that minimises the loss at fixed compute.

    With ``eta = -b/2``, ``a = alpha 6^eta`` and ``b' = beta`` (paper Eq. 4).
    """
    eta = -p["b"] / 2.0
    return (p["beta"] / (p["alpha"] * 6.0 ** eta)) ** (1.0 / (2.0 * eta))


def _loss_preset(name: str, alpha: float, beta: float, b: float, E: float, data: str) -> Preset:
    return Preset(name, {"alpha": alpha, "beta": beta, "b": b, "E": E}, f"{_CITATION}; {_RERUN}",
                  f"Trained on {data}; C4-validation loss; N total parameters.")


def _error_preset(name: str, k: float, gamma: float, eps: float, data: str, tasks: str) -> Preset:
    return Preset(name, {"k": k, "gamma": gamma, "eps": eps}, f"{_CITATION}; {_RERUN}",
                  f"Trained on {data}; average top-1 error over {tasks} against C4-validation loss.")


#: the authors' starts: alpha, beta in {1e2, 3e2, 1e3, 3e3} (ln here), b in {-0.1, -0.3}, E in {0, 1, 2, 10}
_COEF_GRID = tuple(float(np.log(v)) for v in (1e2, 3e2, 1e3, 3e3))

OVERTRAIN = register(Law(
    name="overtrain",
    formula=loss,
    params=(
        Param("alpha", 0.0, 1e12, _COEF_GRID, log=True, doc="parameter-term coefficient (a = alpha 6^eta)"),
        Param("beta", 0.0, 1e12, _COEF_GRID, log=True, doc="data-term coefficient (b' = beta)"),
        Param("b", -5.0, -1e-4, (-0.1, -0.3), doc="shared exponent, b = -2 eta"),
        Param("E", 0.0, 20.0, (0.0, 1.0, 2.0, 10.0), doc="irreducible loss (nats/token)"),
    ),
    inputs=("N", "D"),
    n_input="N",
    d_input="D",
    n_convention="total",
    derive=derive,
    title="Over-training law (Gadre et al. 2024)",
    formula_text="L = alpha N^b + beta 6^(b/2) (M N)^b + E, M = D/N  "
                 "(= E + (a M^eta + b' M^-eta) C^-eta, C = 6ND, eta = -b/2)",
    units="N: total parameters (count); D: training tokens; M = D/N: tokens per parameter; L: nats/token",
    citation=f"{_CITATION}, Eq. 4; code mlfoundations/scaling (scaling/laws.py)",
    objective=Objective("ls", space="linear"),
    presets={
        "gadre2024_c4": _loss_preset("gadre2024_c4", 113.69, 189.52, -0.24247, 1.5083, "C4"),
        "gadre2024_rpj": _loss_preset("gadre2024_rpj", 166.21, 366.69, -0.27285, 1.8366, "RedPajama"),
        "gadre2024_rw": _loss_preset("gadre2024_rw", 125.10, 246.21, -0.25439, 1.7345, "RefinedWeb"),
    },
    grid_note="the authors' curve_fit starts: alpha, beta in {1e2, 3e2, 1e3, 3e3}; b in {-0.1, -0.3}; "
              "E in {0, 1, 2, 10}",
))

OVERTRAIN_ERROR = register(Law(
    name="overtrain_error",
    formula=error,
    params=(
        Param("k", 0.0, 1e6, (0.0, 1.0, 3.0), doc="error-drop coefficient"),
        Param("gamma", 0.0, 50.0, (0.5, 1.0, 2.0), doc="loss scale of the decay (per nat)"),
        Param("eps", 0.0, 2.0, (0.5, 0.8, 1.0), doc="error as the loss grows (chance level, fraction)"),
    ),
    inputs=("loss",),
    target="err",
    n_convention="none",
    title="Downstream error against loss (Gadre et al. 2024)",
    formula_text="Err = eps - k exp(-gamma L)",
    units="loss: C4 validation loss (nats/token); err: average top-1 error (fraction)",
    citation=f"{_CITATION}, Eq. 5; code mlfoundations/scaling (scaling/laws.py, decay_ours)",
    objective=Objective("ls", space="linear"),
    presets={
        "gadre2024_c4": _error_preset("gadre2024_c4", 1.2885, 0.9722, 0.7589, "C4", "46 tasks"),
        "gadre2024_rpj": _error_preset("gadre2024_rpj", 1.3229, 0.8907, 0.7608, "RedPajama", "46 tasks"),
        "gadre2024_rw": _error_preset("gadre2024_rw", 1.1281, 0.8215, 0.7677, "RefinedWeb", "46 tasks"),
        "gadre2024_c4_17": _error_preset("gadre2024_c4_17", 2.0789, 0.7561, 0.8497, "C4",
                                         "the 17-task subset"),
        "gadre2024_rpj_17": _error_preset("gadre2024_rpj_17", 2.2065, 0.7146, 0.8570, "RedPajama",
                                          "the 17-task subset"),
        "gadre2024_rw_17": _error_preset("gadre2024_rw_17", 2.2148, 0.7070, 0.8653, "RefinedWeb",
                                         "the 17-task subset"),
    },
    grid_note="k in {0, 1, 3}; gamma in {0.5, 1, 2}; eps in {0.5, 0.8, 1} (the authors start curve_fit at "
              "scipy's default, all ones)",
))
