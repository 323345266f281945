"""Kaplan et al. 2020, "Scaling Laws for Neural Language Models": the power laws and the critical batch.

Laws (registered):

* ``kaplan``: :math:`L(N, D) = [(N_c/N)^{\\alpha_N/\\alpha_D} + D_c/D]^{\\alpha_D}` (Eq. 1.5 / 4.1)
* ``kaplan_n``: :math:`L(N) = (N_c/N)^{\\alpha_N}` (Eq. 1.1, models trained near convergence)
* ``kaplan_d``: :math:`L(D) = (D_c/D)^{\\alpha_D}` (Eq. 1.2, large models early-stopped on D tokens)
* ``kaplan_steps``: :math:`L(N, S_{min}) = (N_c/N)^{\\alpha_N} + (S_c/S_{min})^{\\alpha_S}` (Eq. 1.6 / 5.6)
* ``critical_batch``: :math:`S(B) = S_{min} (1 + B_{crit}/B)`, the steps needed to reach one target loss
  at batch size B (McCandlish et al. 2018; Kaplan Eq. 5.4). Fit it to the steps-to-target-loss of runs
  at several batch sizes; ``E_min = B_crit S_min`` tokens.

Units and conventions: N is **non-embedding** parameters (``12 n_layer d_model^2``; Kaplan Sec. 2.1);
D and B are tokens; S is optimizer steps; L is WebText2 test cross-entropy in nats per token. The input
column ``steps`` of ``kaplan_steps`` is ``S_min``, the steps a run would need at ``B >> B_crit``; convert
measured steps with :func:`s_min`.

The critical batch size depends only on the loss: ``B_crit(L) = B_* / L^(1/alpha_B)`` (:func:`b_crit`,
Eq. 1.4). The step/compute conversions :func:`s_min` and :func:`e_min` are Eq. 5.4-5.5. The prediction
recipes of Su et al. 2024 ("Unraveling the Mystery of Scaling Laws: Part I", arXiv 2403.06563) that
follow from these (loss floor, steps to a target loss, the loss curve at a batch size) are in
:mod:`scalinglab.plan.steps`.

Reference: Kaplan, McCandlish, Henighan, Brown, Chess, Child, Gray, Radford, Wu, Amodei 2020,
arXiv 2001.08361; McCandlish, Kaplan, Amodei et al. 2018, arXiv 1812.06162.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ParameterError, invalid
from ._base import Array, Inputs, Law, Objective, Param, Params, Preset, register

#: B_* of ``B_crit(L) = B_* / L^(1/alpha_B)``, tokens (Kaplan et al. 2020, Eq. 1.4; App. A Table 5 gives 2.1e8)
B_STAR = 2e8
#: alpha_B of ``B_crit(L) = B_* / L^(1/alpha_B)`` (Kaplan et al. 2020, Eq. 1.4)
ALPHA_B = 0.21

_CITATION = "Kaplan et al. 2020, arXiv 2001.08361"
_SETUP = "WebText2, byte-level BPE (n_vocab = 50257), n_ctx = 1024; N non-embedding parameters."


# -- the formulas ---------------------------------------------------------------------------------
def _ln(x: Inputs, col: str) -> Any:
    return np.log(np.asarray(x[col], dtype=float))


def _lse2(t1: Any, t2: Any) -> tuple[Any, Any]:
    """``ln(e^t1 + e^t2)`` and the softmax weight of t1, computed stably."""
    m = np.maximum(t1, t2)
    e1 = np.exp(t1 - m)
    e2 = np.exp(t2 - m)
    z = e1 + e2
    return m + np.log(z), e1 / z


def loss_nd(p: Params, x: Inputs) -> Any:
    """L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D (nats/token); N non-embedding, D tokens."""
    n = np.asarray(x["N"], dtype=float)
    d = np.asarray(x["D"], dtype=float)
    return ((p["N_c"] / n) ** (p["alpha_N"] / p["alpha_D"]) + p["D_c"] / d) ** p["alpha_D"]


def _nd_terms(p: Params, x: Inputs) -> tuple[Any, Any, Any, Any]:
    t1 = p["alpha_N"] / p["alpha_D"] * (np.log(p["N_c"]) - _ln(x, "N"))
    t2 = np.log(p["D_c"]) - _ln(x, "D")
    lse, s1 = _lse2(t1, t2)
    return lse, s1, t1, t2


def log_loss_nd(p: Params, x: Inputs) -> Any:
    """ln L(N, D) = alpha_D * LSE((alpha_N/alpha_D)(ln N_c - ln N), ln D_c - ln D)."""
    return p["alpha_D"] * _nd_terms(p, x)[0]


def log_jacobian_nd(p: Params, x: Inputs) -> tuple[Any, Array]:
    """ln L(N, D) and its derivatives with respect to (ln N_c, alpha_N, ln D_c, alpha_D)."""
    lse, s1, t1, _ = _nd_terms(p, x)
    lnL = p["alpha_D"] * lse
    J = np.empty(np.shape(lnL) + (4,))
    J[..., 0] = p["alpha_N"] * s1
    J[..., 1] = s1 * (np.log(p["N_c"]) - _ln(x, "N"))
    J[..., 2] = p["alpha_D"] * (1.0 - s1)
    J[..., 3] = lse - s1 * t1
    return lnL, J


def _single(scale: str, exponent: str, col: str) -> tuple[Any, Any, Any]:
    """Formula, log formula and log Jacobian of ``L = (scale/x)^exponent``."""

    def formula(p: Params, x: Inputs) -> Any:
        return (p[scale] / np.asarray(x[col], dtype=float)) ** p[exponent]

    def log_formula(p: Params, x: Inputs) -> Any:
        return p[exponent] * (np.log(p[scale]) - _ln(x, col))

    def log_jacobian(p: Params, x: Inputs) -> tuple[Any, Array]:
        u = np.log(p[scale]) - _ln(x, col)
        lnL = p[exponent] * u
        J = np.empty(np.shape(lnL) + (2,))
        J[..., 0] = p[exponent]
        J[..., 1] = u
        return lnL, J

    formula.__doc__ = f"L = ({scale}/{col})^{exponent} (nats/token)."
    return formula, log_formula, log_jacobian


_loss_n, _log_loss_n, _log_jacobian_n = _single("N_c", "alpha_N", "N")
_loss_d, _log_loss_d, _log_jacobian_d = _single("D_c", "alpha_D", "D")


def loss_ns(p: Params, x: Inputs) -> Any:
    """L(N, S_min) = (N_c/N)^alpha_N + (S_c/S_min)^alpha_S (nats/token); input ``steps`` is S_min."""
    n = np.asarray(x["N"], dtype=float)
    s = np.asarray(x["steps"], dtype=float)
    return (p["N_c"] / n) ** p["alpha_N"] + (p["S_c"] / s) ** p["alpha_S"]


def _ns_terms(p: Params, x: Inputs) -> tuple[Any, Any, Any, Any]:
    u1 = np.log(p["N_c"]) - _ln(x, "N")
    u2 = np.log(p["S_c"]) - _ln(x, "steps")
    lse, s1 = _lse2(p["alpha_N"] * u1, p["alpha_S"] * u2)
    return lse, s1, u1, u2


def log_loss_ns(p: Params, x: Inputs) -> Any:
    """ln L(N, S_min) = LSE(alpha_N (ln N_c - ln N), alpha_S (ln S_c - ln S_min))."""
    return _ns_terms(p, x)[0]


def log_jacobian_ns(p: Params, x: Inputs) -> tuple[Any, Array]:
    """ln L(N, S_min) and its derivatives with respect to (ln N_c, alpha_N, ln S_c, alpha_S)."""
    lnL, s1, u1, u2 = _ns_terms(p, x)
    s2 = 1.0 - s1
    J = np.empty(np.shape(lnL) + (4,))
    J[..., 0] = s1 * p["alpha_N"]
    J[..., 1] = s1 * u1
    J[..., 2] = s2 * p["alpha_S"]
    J[..., 3] = s2 * u2
    return lnL, J


def steps_at_batch(p: Params, x: Inputs) -> Any:
    """S(B) = S_min (1 + B_crit/B): steps to a target loss at batch size B (tokens)."""
    return p["S_min"] * (1.0 + p["B_crit"] / np.asarray(x["batch"], dtype=float))


def _log_steps_at_batch(p: Params, x: Inputs) -> Any:
    return np.log(p["S_min"]) + np.logaddexp(0.0, np.log(p["B_crit"]) - _ln(x, "batch"))


def _log_jacobian_steps(p: Params, x: Inputs) -> tuple[Any, Array]:
    """ln S(B) and its derivatives with respect to (ln S_min, ln B_crit)."""
    u = np.log(p["B_crit"]) - _ln(x, "batch")
    lnS = np.log(p["S_min"]) + np.logaddexp(0.0, u)
    J = np.empty(np.shape(lnS) + (2,))
    J[..., 0] = 1.0
    J[..., 1] = 1.0 / (1.0 + np.exp(-u))
    return lnS, J


# -- the learning curve at a batch size: L(N, S, B), implicit in L -----------------------------------
#: Newton iterations of the implicit solve (each one at least halves the bracket; 60 reach float precision)
_ROOT_ITER = 100
#: |change of ln L| below which the implicit solve stops
_ROOT_TOL = 1e-14


def _nsb_parts(p: Params, x: Inputs) -> tuple[Any, ...]:
    """The pieces of ``phi(u) = ln[(N_c/N)^alpha_N + (S_c Q(u)/S)^alpha_S] - u``, ``Q(u) = 1 + B_crit(e^u)/B``,
    whose root is ``u = ln L``: ``ln F``, ``ln(S_c/S)``, ``ln(B_*/B)`` and the exponents (broadcast)."""
    lnF = p["alpha_N"] * (np.log(p["N_c"]) - _ln(x, "N"))
    lnSr = np.log(p["S_c"]) - _ln(x, "step")
    lnc = np.log(p["B_star"]) - _ln(x, "batch")
    aS = np.asarray(p["alpha_S"], dtype=float)
    aB = np.asarray(p["alpha_B"], dtype=float)
    return np.broadcast_arrays(lnF, lnSr, lnc, aS, aB)


def _nsb_phi(u: Any, lnF: Any, lnSr: Any, lnc: Any, aS: Any, aB: Any) -> tuple[Any, Any, Any, Any, Any]:
    """phi(u), phi'(u), and the weight w_T of the steps term, ln T and the sigmoid s = (Q-1)/Q at u."""
    z = lnc - u / aB                        # ln(B_crit(L)/B)
    lnT = aS * (lnSr + np.logaddexp(0.0, z))
    lnG = np.logaddexp(lnF, lnT)
    wT = np.exp(lnT - lnG)
    s = 0.5 * (1.0 + np.tanh(0.5 * z))      # (Q - 1)/Q = B_crit/(B + B_crit), stable for any z
    return lnG - u, -1.0 - wT * s * aS / aB, wT, lnT, s


def _nsb_root(p: Params, x: Inputs) -> tuple[Any, tuple[Any, ...]]:
    """ln L solving ``L = (N_c/N)^alpha_N + (S_c (1 + B_crit(L)/B) / S)^alpha_S`` at every point.

    phi(u) falls with slope <= -1 everywhere (the steps term falls as L rises, since B_crit shrinks), so
    the root is unique, and from ``u0 = ln[(N_c/N)^alpha_N + (S_c/S)^alpha_S]`` (the B -> inf value, where
    phi >= 0) it lies in ``[u0, u0 + phi(u0)]``. Newton steps inside that bracket, bisecting whenever a
    step would leave it, all points and parameter vectors at once (NumPy arrays, no SciPy).
    """
    parts = _nsb_parts(p, x)
    lnF, lnSr = parts[0], parts[1]
    lo = np.logaddexp(lnF, parts[3] * lnSr)
    f0 = _nsb_phi(lo, *parts)[0]
    hi = lo + f0
    u = lo.copy()
    done = np.zeros(u.shape, dtype=bool)
    for _ in range(_ROOT_ITER):
        f, d = _nsb_phi(u, *parts)[:2]
        lo = np.where(f > 0, u, lo)
        hi = np.where(f < 0, u, hi)
        step = u - f / d
        new = np.where((step >= lo) & (step <= hi), step, 0.5 * (lo + hi))
        new = np.where(done | (f == 0), u, new)
        done |= (np.abs(new - u) <= _ROOT_TOL * np.maximum(1.0, np.abs(u))) | ~np.isfinite(new)
        u = new
        if np.all(done):
            break
    return u, parts


def loss_nsb(p: Params, x: Inputs) -> Any:
    """L(N, S, B): the root of ``L = (N_c/N)^alpha_N + (S_c (1 + B_crit(L)/B) / S)^alpha_S`` with
    ``B_crit(L) = B_* / L^(1/alpha_B)`` (nats/token); inputs N (non-embedding), ``step`` S and ``batch`` B
    (tokens)."""
    return np.exp(_nsb_root(p, x)[0])


def log_loss_nsb(p: Params, x: Inputs) -> Any:
    """ln L(N, S, B), the root of the implicit equation (:func:`loss_nsb`)."""
    return _nsb_root(p, x)[0]


def log_jacobian_nsb(p: Params, x: Inputs) -> tuple[Any, Array]:
    """ln L(N, S, B) and its derivatives with respect to (ln N_c, alpha_N, ln S_c, alpha_S, ln B_*, alpha_B).

    Implicit differentiation of phi(u; theta) = 0: du/dtheta = -(d phi/d theta) / phi'(u), with
    d phi/d theta = (1 - w_T) d ln F/d theta + w_T d ln T/d theta at the root."""
    u, parts = _nsb_root(p, x)
    lnF, lnSr, lnc, aS, aB = parts
    _, d, wT, _, s = _nsb_phi(u, *parts)
    wF = 1.0 - wT
    J = np.empty(np.shape(u) + (6,))
    J[..., 0] = wF * p["alpha_N"]
    J[..., 1] = wF * (np.log(p["N_c"]) - _ln(x, "N"))
    J[..., 2] = wT * aS
    J[..., 3] = wT * (lnSr + np.logaddexp(0.0, lnc - u / aB))
    J[..., 4] = wT * aS * s
    J[..., 5] = wT * aS * s * u / aB ** 2
    J /= -d[..., None]
    return u, J


# -- critical batch and the conversions of Kaplan Sec. 5 -------------------------------------------
def b_crit(L: Any, B_star: float = B_STAR, alpha_B: float = ALPHA_B) -> Any:
    """Critical batch size ``B_crit(L) = B_* / L^(1/alpha_B)`` (tokens) at loss L (nats/token).

    Kaplan et al. 2020, Eq. 1.4 (B_* ~ 2e8 tokens, alpha_B ~ 0.21): it roughly doubles for every 13%
    decrease in loss and depends on L only, not directly on N.
    """
    L = _positive("loss 'L'", L)
    return B_star / L ** (1.0 / alpha_B)


def s_min(S: Any, B: Any, Bcrit: Any) -> Any:
    """Minimum steps ``S_min = S / (1 + B_crit/B)``: the steps S taken at batch B, as if B >> B_crit.

    Kaplan et al. 2020, Eq. 5.4; B and B_crit in tokens.
    """
    return _positive("steps 'S'", S) / (1.0 + _positive("critical batch 'Bcrit'", Bcrit) / _positive("batch 'B'", B))


def e_min(E: Any, B: Any, Bcrit: Any) -> Any:
    """Minimum tokens ``E_min = E / (1 + B/B_crit)``: the tokens E = B S processed at batch B, as if B << B_crit.

    Kaplan et al. 2020, Eq. 5.5 in token form (``C_min = 6 N E_min``); B and B_crit in tokens.
    """
    return _positive("tokens 'E'", E) / (1.0 + _positive("batch 'B'", B) / _positive("critical batch 'Bcrit'", Bcrit))


def _positive(what: str, value: Any) -> Any:
    arr = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(arr) & (arr > 0)):
        bad = arr[~(np.isfinite(arr) & (arr > 0))].flat[0] if arr.ndim else float(arr)
        raise ParameterError(invalid(f"The {what}", float(bad), "a positive finite number"))
    return arr


# -- parameters, presets and registration ----------------------------------------------------------
#: ln of the scale constants N_c, D_c (Kaplan's are ~1e13-1e14, ln ~ 30; small exponents push them far)
_SCALE_GRID = (10.0, 20.0, 30.0, 40.0)
_EXP_GRID = (0.03, 0.1, 0.3, 1.0)
_EXPONENT_BOUNDS = (1e-3, 5.0)


def _scale(name: str, doc: str, grid: tuple[float, ...] = _SCALE_GRID, upper: float = 1e50) -> Param:
    return Param(name, 0.0, upper, grid, log=True, doc=doc)


def _exponent(name: str, doc: str, grid: tuple[float, ...] = _EXP_GRID) -> Param:
    return Param(name, *_EXPONENT_BOUNDS, grid, doc=doc)


_N_C = _scale("N_c", "parameter scale (non-embedding parameters)")
_ALPHA_N = _exponent("alpha_N", "parameter exponent")
#: the step terms of kaplan_steps and kaplan_steps_batch (S_min, optimizer steps)
_S_C = _scale("S_c", "step scale (optimizer steps)", grid=(0.0, 5.0, 10.0, 15.0), upper=1e30)
_ALPHA_S = _exponent("alpha_S", "step exponent", grid=(0.25, 0.5, 1.0, 2.0))
_D_C = _scale("D_c", "data scale (tokens)")
_ALPHA_D = _exponent("alpha_D", "data exponent")
_OBJECTIVE = Objective("huber", 1e-3, "log")
_UNITS = "N: non-embedding parameters (count); D: tokens; L: nats/token"

KAPLAN = register(Law(
    name="kaplan",
    formula=loss_nd,
    log_formula=log_loss_nd,
    log_jacobian=log_jacobian_nd,
    params=(_N_C, _ALPHA_N, _D_C, _ALPHA_D),
    inputs=("N", "D"),
    n_input="N",
    d_input="D",
    n_convention="non-embedding",
    title="Kaplan et al. 2020 joint law L(N, D)",
    formula_text="L = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D",
    units=_UNITS,
    citation=f"{_CITATION}, Eq. 1.5 / 4.1",
    objective=_OBJECTIVE,
    presets={"kaplan2020": Preset(
        "kaplan2020", {"N_c": 6.4e13, "alpha_N": 0.076, "D_c": 1.8e13, "alpha_D": 0.103},
        f"{_CITATION}, Table 2 (joint L(N, D) fit)",
        f"{_SETUP} Runs with 10% dropout and early stopping; the 2e7-token runs fit worst.")},
    grid_note="ln N_c, ln D_c in {10, 20, 30, 40}; alpha_N, alpha_D in {0.03, 0.1, 0.3, 1}",
))

KAPLAN_N = register(Law(
    name="kaplan_n",
    formula=_loss_n,
    log_formula=_log_loss_n,
    log_jacobian=_log_jacobian_n,
    params=(_N_C, _ALPHA_N),
    inputs=("N",),
    n_input="N",
    n_convention="non-embedding",
    title="Kaplan et al. 2020 L(N), models trained near convergence",
    formula_text="L = (N_c/N)^alpha_N",
    units="N: non-embedding parameters (count); L: nats/token",
    citation=f"{_CITATION}, Eq. 1.1",
    objective=_OBJECTIVE,
    presets={"kaplan2020": Preset(
        "kaplan2020", {"N_c": 8.8e13, "alpha_N": 0.076},
        f"{_CITATION}, Eq. 1.1 and App. A Table 5",
        f"{_SETUP} Models trained to near convergence on the full WebText2.")},
    grid_note="ln N_c in {10, 20, 30, 40}; alpha_N in {0.03, 0.1, 0.3, 1}",
))

KAPLAN_D = register(Law(
    name="kaplan_d",
    formula=_loss_d,
    log_formula=_log_loss_d,
    log_jacobian=_log_jacobian_d,
    params=(_D_C, _ALPHA_D),
    inputs=("D",),
    d_input="D",
    n_convention="none",
    title="Kaplan et al. 2020 L(D), large models early-stopped on D tokens",
    formula_text="L = (D_c/D)^alpha_D",
    units="D: tokens; L: nats/token",
    citation=f"{_CITATION}, Eq. 1.2",
    objective=_OBJECTIVE,
    presets={"kaplan2020": Preset(
        "kaplan2020", {"D_c": 5.4e13, "alpha_D": 0.095},
        f"{_CITATION}, Eq. 1.2 and App. A Table 5",
        f"{_SETUP} A 36-layer, d_model = 1280 model early-stopped on subsets of WebText2.")},
    grid_note="ln D_c in {10, 20, 30, 40}; alpha_D in {0.03, 0.1, 0.3, 1}",
))

KAPLAN_STEPS = register(Law(
    name="kaplan_steps",
    formula=loss_ns,
    log_formula=log_loss_ns,
    log_jacobian=log_jacobian_ns,
    params=(_N_C, _ALPHA_N, _S_C, _ALPHA_S),
    inputs=("N", "steps"),
    n_input="N",
    n_convention="non-embedding",
    title="Kaplan et al. 2020 learning curves L(N, S_min)",
    formula_text="L = (N_c/N)^alpha_N + (S_c/S_min)^alpha_S",
    units="N: non-embedding parameters (count); steps: S_min, optimizer steps at B >> B_crit; L: nats/token",
    citation=f"{_CITATION}, Eq. 1.6 / 5.6",
    objective=_OBJECTIVE,
    presets={"kaplan2020": Preset(
        "kaplan2020", {"N_c": 6.5e13, "alpha_N": 0.077, "S_c": 2.1e3, "alpha_S": 0.76},
        f"{_CITATION}, Table 3 (all steps after warmup, Adam runs)",
        f"{_SETUP} Fits are 'mediocre at small S' (Kaplan Sec. 5).")},
    grid_note="ln N_c in {10, 20, 30, 40}; alpha_N in {0.03, 0.1, 0.3, 1}; ln S_c in {0, 5, 10, 15}; "
              "alpha_S in {0.25, 0.5, 1, 2}",
))

KAPLAN_STEPS_BATCH = register(Law(
    name="kaplan_steps_batch",
    formula=loss_nsb,
    log_formula=log_loss_nsb,
    log_jacobian=log_jacobian_nsb,
    params=(_N_C, _ALPHA_N, _S_C, _ALPHA_S,
            _scale("B_star", "critical-batch scale B_* of B_crit(L) = B_*/L^(1/alpha_B) (tokens)",
                   grid=(10.0, 20.0), upper=1e60),
            _exponent("alpha_B", "critical-batch exponent of B_crit(L) = B_*/L^(1/alpha_B)", grid=(0.1, 0.3))),
    inputs=("N", "step", "batch"),
    n_input="N",
    n_convention="non-embedding",
    title="Kaplan et al. 2020 learning curves at a batch size L(N, S, B), B_crit(L) fitted jointly",
    formula_text="L = (N_c/N)^alpha_N + (S_c (1 + B_crit(L)/B) / S)^alpha_S,  B_crit(L) = B_*/L^(1/alpha_B) "
                 "(solved for L)",
    units="N: non-embedding parameters (count); step: optimizer steps S at batch B; batch: tokens; L: nats/token",
    citation=f"{_CITATION}, Eq. 1.4, 5.4 and 5.6 (S_min = S/(1 + B_crit(L)/B) substituted into L(N, S_min))",
    objective=_OBJECTIVE,
    presets={"kaplan2020": Preset(
        "kaplan2020", {"N_c": 6.5e13, "alpha_N": 0.077, "S_c": 2.1e3, "alpha_S": 0.76,
                       "B_star": B_STAR, "alpha_B": ALPHA_B},
        f"{_CITATION}, Table 3 (L(N, S_min)) and Eq. 1.4 (B_crit(L))",
        f"{_SETUP} Kaplan fit the two parts separately; here they are one law.")},
    grid_note="ln N_c in {10, 20, 30, 40}; alpha_N in {0.03, 0.1, 0.3, 1}; ln S_c in {0, 5, 10, 15}; "
              "alpha_S in {0.25, 0.5, 1, 2}; ln B_* in {10, 20}; alpha_B in {0.1, 0.3}",
))

CRITICAL_BATCH = register(Law(
    name="critical_batch",
    formula=steps_at_batch,
    log_formula=_log_steps_at_batch,
    log_jacobian=_log_jacobian_steps,
    params=(Param("S_min", 0.0, 1e15, (0.0, 5.0, 10.0, 15.0), log=True,
                  doc="minimum steps to the target loss (B >> B_crit)"),
            Param("B_crit", 0.0, 1e15, (5.0, 10.0, 15.0, 20.0), log=True,
                  doc="critical batch size at the target loss (tokens)")),
    inputs=("batch",),
    target="steps",
    n_convention="none",
    title="Steps to a target loss against batch size (McCandlish et al. 2018; Kaplan et al. 2020)",
    formula_text="S = S_min (1 + B_crit/B);  E = B S = E_min (1 + B/B_crit),  E_min = B_crit S_min",
    units="batch: tokens; steps: optimizer steps to one target loss",
    citation=f"McCandlish et al. 2018, arXiv 1812.06162; {_CITATION}, Eq. 5.4-5.5",
    objective=_OBJECTIVE,
    grid_note="ln S_min in {0, 5, 10, 15}; ln B_crit in {5, 10, 15, 20}",
))
