"""The multi-power law of the loss curve under any learning-rate schedule (Luo et al. 2025).

.. math::

    L(t) = L_0 + A\\,(S_1(t) + S_W)^{-\\alpha} - LD(t), \\qquad
    LD(t) = B \\sum_{k=1}^{t} (\\eta_{k-1} - \\eta_k)\\, G(\\eta_k^{-\\gamma} S_k(t)),

    G(x) = 1 - (C x + 1)^{-\\beta}, \\qquad S_k(t) = \\sum_{\\tau=k}^{t} \\eta_\\tau .

``t`` counts the steps after the warmup, ``S1(t) = sum_{tau=1..t} eta_tau`` is the learning-rate
area after the warmup and ``S_W`` the warmup's; ``eta_0`` is the peak learning rate (the rate at the
end of the warmup), so a constant schedule after warmup has ``LD = 0`` and the law is then
``L0 + A S^-alpha`` in the area S. Each drop of the learning rate ``eta_(k-1) - eta_k`` buys a loss
reduction that grows with the area trained since, ``S_k(t)``, and **saturates** (G <= 1): unlike
the annealing law's linear ``C S2`` (:mod:`.anneal`, Tissue et al. 2024) a long decay is not credited
without bound. Reference: Luo, Wen, Hu, Sun, Liu, Sun, Lyu, Chen 2025, "A Multi-Power Law for Loss
Curve Prediction Across Learning Rate Schedules", arXiv 2503.12811 (the law, its symbols and the
post-warmup step count are from the paper, Sec. 3 / eq. 1; the code is scalinglab's own).

scalinglab's conventions (the same warmup as :func:`.anneal.curve_areas`): a run's learning-rate
*curve* is the rate of each update, ``eta[0] .. eta[T-1]``; the warmup is the updates before the curve
first reaches its maximum; the point after ``s`` updates has seen ``eta[0] .. eta[s-1]``, so
``S1(t) + S_W`` is the whole area ``sum_{i<s} eta[i]`` (warmup ramp included) and LD sums the drops at
the post-warmup updates ``i < s``, with ``eta`` before the first post-warmup update equal to the peak.
A drop to a rate of exactly 0 has ``x = 0`` until a later update has a positive rate (then
``x = inf``, ``G = 1``).

Inputs (columns) are ``step`` (updates done) and ``curve``: the key of the run's learning-rate curve in
this module's curve cache, set by :func:`register_curve` (a ``run, step, lr`` file's interpolated curve,
a ``predict --schedule`` curve) or :func:`register_builder` (a store run's exact schedule, rebuilt from
its config when first needed, so loading a store holds no curve in memory). A curve key is a 48-bit
digest of the curve, so the same curve has the same key in every process.

A second law, ``multipower_offset`` (:data:`MULTIPOWER_OFFSET`), adds one parameter, an offset of the
warmup area: ``L = L0 + A (S1 + S_W + dS)^-alpha - LD``. The paper's law is its ``dS = 0`` (``fit
--fix dS=0`` gives it exactly). Why: on short runs the loss falls from ln V at a rate the power law in
the area cannot follow from the first post-warmup point on (L0 + A S^-alpha is steepest at small S);
dS is the area the early transient is worth, so the curve after warmup is a power law in a shifted
area. Bounds: dS >= 0 (a negative offset puts the area term's singularity at a positive area, inside a
run; with dS >= 0 the law is finite at every area, ``L0 + A dS^-alpha`` at area 0) and dS <=
:data:`DS_MAX` (no physical cap: a marker of the degenerate limit dS >> every area, where the area term
is linear in S and A, alpha, dS are identified only together; a fit there is reported at its bound).
The paper's law keeps its own name, parameters and FIT.json files.

A third law, ``multipower_transient`` (:data:`MULTIPOWER_TRANSIENT`), adds to ``multipower_offset`` an
early transient in the whole area, ``+ E exp(-(S1 + S_W) / tau)`` (E in nats/token, tau in learning rate
x steps: one fast relaxation mode, which decays exponentially in the gradient-flow time S). At E = 0 it is
``multipower_offset`` exactly (``--fix E=0 --fix tau=...``). It removes the misfit of the first points
after warmup on short CPU runs; on the benchmark's two fit runs its free fit puts alpha at its bound (the
area term turns near-linear), so it is an option, not the benchmark's law.

A fourth law, ``multipower_instant`` (:data:`MULTIPOWER_INSTANT`), adds to ``multipower_offset`` a reduction
that follows the rate at once, ``- K (eta_0 - eta_t)`` (K in nats/token per unit of learning rate; ``eta_0 -
eta_t`` is the sum of the drops the point has seen, the peak minus the rate of its last update): the limit
C -> inf of a second G term, a loss-reduction mode faster than the evaluations resolve. At K = 0 it is
``multipower_offset`` exactly (``--fix K=0``). Why: on the benchmark's CPU runs fitted on a constant and a
cosine run, the offset law credits a short WSD decay with too little of its drop (the final of a 0.1 decay
predicted ~1% high), a sign that part of the reduction is immediate. Measured there (six seeds): the fit
puts K at its bound 0, so it predicts as ``multipower_offset`` on those runs; it is an option, not the
benchmark's law.

Evaluation cost: for ``n`` points of a curve with ``m`` post-warmup updates where the rate changes,
``O(n m)`` per parameter vector (the areas ``S_k(t)`` are differences of one cumulative sum, so the
curve's length T enters only through m); a constant curve costs ``O(n)``.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DataError, ParameterError, invalid
from ._base import Array, Inputs, Law, Objective, Param, Params, register

if TYPE_CHECKING:
    import pandas as pd

#: curves kept in the cache (least recently used dropped first)
CACHE_SIZE = 256
#: elements of one K x n x m block evaluated at once
_BLOCK = 2_000_000
#: drops of a curve evaluated one by one; a curve with more is evaluated on merged drops (_group_terms)
MAX_DROPS = 256
#: ln eta of a drop to a rate of 0 (x is then huge and G = 1 once a later update has a positive rate)
LOG_ETA_FLOOR = -60.0


@dataclass(frozen=True)
class Curve:
    """A learning-rate curve prepared for the law: cumulative areas and the post-warmup drops."""

    eta: Array          # rate of each update, length T
    warmup: int         # updates before the first maximum
    area: Array         # area[s] = sum_{i<s} eta[i], length T + 1
    drop_at: Any        # post-warmup update indices i with eta[i-1] != eta[i] (eta[warmup-1] := peak)
    drop: Array         # eta[i-1] - eta[i] at those indices
    log_eta: Array      # ln eta[i] there (-inf where eta[i] = 0)

    @property
    def steps(self) -> int:
        return int(self.eta.size)


_CURVES: OrderedDict[float, Curve] = OrderedDict()
#: curves known by how to rebuild them (a store run's schedule): prepared on first use, so loading a
#: store keeps no curve in memory and an evicted curve comes back
_BUILDERS: dict[float, Callable[[], Any]] = {}


def prepare(lr: Any) -> Curve:
    """The :class:`Curve` of a learning-rate curve (one rate per update, finite, >= 0, not all 0)."""
    eta = np.array(lr, dtype=float).reshape(-1) if np.ndim(lr) <= 1 else np.asarray(lr, dtype=float)
    if eta.ndim != 1 or eta.size == 0:
        raise ParameterError(invalid("The learning-rate curve", f"shape {eta.shape}",
                                     "a non-empty 1-D array (one learning rate per update)"))
    ok = np.isfinite(eta) & (eta >= 0)
    if not ok.all():
        raise ParameterError(invalid("Every learning rate of the curve", float(eta[~ok][0]),
                                     "a finite non-negative number"))
    if not eta.max() > 0:
        raise ParameterError(invalid("The learning-rate curve", "all zero", "a curve with a positive rate"))
    warmup = int(np.argmax(eta))
    prev = np.r_[eta[warmup], eta[warmup:-1]]          # eta[i-1] for i >= warmup, the peak before the first
    fall = prev - eta[warmup:]
    at = np.flatnonzero(fall != 0.0) + warmup
    with np.errstate(divide="ignore"):
        log_eta = np.log(eta[at])
    eta.setflags(write=False)
    return Curve(eta=eta, warmup=warmup, area=np.r_[0.0, np.cumsum(eta)], drop_at=at.astype(np.int64),
                 drop=fall[at - warmup], log_eta=log_eta)


def curve_key(lr: Any) -> float:
    """The cache key of a curve: a 48-bit digest of its float64 bytes, as a float (exact)."""
    eta = np.ascontiguousarray(np.asarray(lr, dtype=np.float64).reshape(-1))
    return float(int.from_bytes(hashlib.blake2b(eta.tobytes(), digest_size=6).digest(), "big"))


def register_curve(lr: Any) -> float:
    """Prepare a learning-rate curve, keep it in the cache and return its key (the ``curve`` input)."""
    key = curve_key(lr)
    if key in _CURVES:
        _CURVES.move_to_end(key)
        return key
    _CURVES[key] = prepare(lr)
    while len(_CURVES) > CACHE_SIZE:
        _CURVES.popitem(last=False)
    return key


def register_builder(lr: Any, build: Callable[[], Any]) -> float:
    """Register a curve by a function that rebuilds it (``lr`` is used for the key only and may be freed);
    it is prepared when a prediction first needs it. Returns the key."""
    key = curve_key(lr)
    _BUILDERS[key] = build
    return key


def get_curve(key: float) -> Curve:
    """The cached curve of a key; a one-line DataError for a key no curve was registered under."""
    key = float(key)
    if key not in _CURVES and key in _BUILDERS:
        _CURVES[key] = prepare(_BUILDERS[key]())
        while len(_CURVES) > CACHE_SIZE:
            _CURVES.popitem(last=False)
    try:
        cur = _CURVES[key]
    except KeyError:
        raise DataError(invalid("The 'curve' input of the multipower law", key,
                                "the key of a registered learning-rate curve (laws.multipower.register_curve; "
                                "give the points as run, step, lr or a schedule)")) from None
    _CURVES.move_to_end(key)
    return cur


def _as_batch(p: Params, names: tuple[str, ...]) -> tuple[int, dict[str, Array]]:
    """Every parameter as a (K, 1, 1) array (scalars broadcast) and K."""
    vals = {k: np.asarray(p[k], dtype=float) for k in names}
    K = max((v.size for v in vals.values()), default=1)
    return K, {k: np.broadcast_to(v.reshape(-1), (K,)).reshape(K, 1, 1) for k, v in vals.items()}


def _group_terms(cur: Curve, steps: Array) -> tuple[Array, Array, Array, Array]:
    """For points after ``steps`` updates: the areas S_k(t) (n, m') of the drops (0 where a drop is not
    yet seen), the drops masked (n, m'), ln eta at them (m',) and the whole areas (n,).

    A curve with more than :data:`MAX_DROPS` drops is evaluated on merged drops: the drops between two
    consecutive points' steps are cut into runs of at most ``ceil(m / MAX_DROPS)`` consecutive updates,
    each run one drop (their sum) at the drop-weighted mean of its areas and of ``ln eta``. Every merged
    drop is then either seen whole or not at all by each point, and the sum is exact for a G linear
    across the run (the error is second order in the run's width; measured < 1e-5 relative on the
    benchmark's cosine curve, tests/laws/test_multipower.py)."""
    s = steps.astype(np.int64)
    at: Any = cur.drop_at
    fall, log_eta = cur.drop, np.maximum(cur.log_eta, LOG_ETA_FLOOR)
    start = cur.area[at]
    width = -(-at.size // MAX_DROPS)
    if width > 1:
        seg = np.searchsorted(np.unique(s), at, side="right")     # the first point that sees each drop
        new = np.r_[True, seg[1:] != seg[:-1]]
        pos = np.arange(at.size) - np.maximum.accumulate(np.where(new, np.arange(at.size), 0))
        piece = np.cumsum(new | (pos % width == 0)) - 1
        w = np.abs(fall)
        tot = np.bincount(piece, w)
        tot = np.where(tot > 0, tot, 1.0)
        start = np.bincount(piece, w * start) / tot
        log_eta = np.bincount(piece, w * log_eta) / tot
        fall = np.bincount(piece, fall).astype(float)
        at = np.maximum.reduceat(cur.drop_at, np.flatnonzero(np.r_[True, piece[1:] != piece[:-1]]))
    seen = at[None, :] < s[:, None]
    S = np.where(seen, cur.area[s][:, None] - start[None, :], 0.0)
    return S, np.where(seen, fall[None, :], 0.0), log_eta, cur.area[s]


def _check_steps(cur: Curve, steps: Array, key: float) -> None:
    bad = ~np.isfinite(steps) | (steps < 1) | (steps > cur.steps) | (steps != np.round(steps))
    if bad.any():
        raise DataError(invalid(f"The 'step' input on curve {key:.0f}", float(steps[np.argmax(bad)]),
                                f"an integer in [1, {cur.steps}] (the curve's updates)"))


def _x(S: Array, log_eta: Array, gamma: Array) -> Array:
    """x = eta_k^-gamma S_k(t) for a (K,1,1) gamma: (K, n, m); 0 where S = 0, inf at a rate of 0 with S > 0."""
    x = S[None] * np.exp(-gamma * log_eta[None, None, :])
    zero = log_eta <= LOG_ETA_FLOOR
    if zero.any():
        x = np.where(zero[None, None, :] & (S[None] > 0), np.inf, x)
    return x


def _blocks(K: int, n: int, m: int) -> list[slice]:
    step = max(1, _BLOCK // max(1, n * m))
    return [slice(i, min(K, i + step)) for i in range(0, K, step)]


def _evaluate(p: Params, x: Inputs, jacobian: bool, offset: bool = False,
              transient: bool = False, instant: bool = False) -> tuple[Array, Array | None]:
    """L (K, n) and, with ``jacobian``, d ln L / d (L0, ln A, alpha, ln B, ln C, beta, gamma[, dS][, ln E,
    ln tau][, ln K]) (K, n, P); ``offset``: the parameters include the warmup-area offset dS
    (:data:`MULTIPOWER_OFFSET`); ``transient`` (with ``offset``): also the early-transient term
    ``E exp(-(S1 + S_W) / tau)`` (:data:`MULTIPOWER_TRANSIENT`); ``instant`` (with ``offset``): also the
    instant reduction ``K (eta_0 - eta_t)``, K times the drops seen (:data:`MULTIPOWER_INSTANT`)."""
    names = (("L0", "A", "alpha", "B", "C", "beta", "gamma") + (("dS",) if offset else ())
             + (("E", "tau") if transient else ()) + (("K",) if instant else ()))
    K, q = _as_batch(p, names)
    steps = np.asarray(x["step"], dtype=float).reshape(-1)
    keys = np.asarray(x["curve"], dtype=float).reshape(-1)
    n = steps.size
    if keys.size != n:
        raise DataError(invalid("The 'curve' input of the multipower law", f"{keys.size} values",
                                f"{n}, one per 'step'"))
    area = np.empty(n)
    LD = np.zeros((K, n))
    seen_drop = np.zeros(n)                                   # eta_0 - eta_t: the drops each point has seen
    dG = np.zeros((K, n, 3)) if jacobian else None          # d LD / d (ln C, beta, gamma)
    for key in np.unique(keys):
        rows = np.flatnonzero(keys == key)
        cur = get_curve(float(key))
        _check_steps(cur, steps[rows], float(key))
        S, d, log_eta, area[rows] = _group_terms(cur, steps[rows])
        seen_drop[rows] = d.sum(axis=1)
        keep = np.flatnonzero(d.any(axis=0))                 # drops seen by some point
        if keep.size == 0:
            continue
        S, d, log_eta = S[:, keep], d[:, keep], log_eta[keep]
        for blk in _blocks(K, len(rows), len(keep)):
            C, beta, gamma, B = q["C"][blk], q["beta"][blk], q["gamma"][blk], q["B"][blk, :, 0]
            xx = _x(S, log_eta, gamma)
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                u = np.log1p(C * xx)                          # ln(1 + C x)
                pw = np.exp(-beta * u)                        # (1 + C x)^-beta
                LD[blk, rows] = B * np.einsum("knm,nm->kn", 1.0 - pw, d)
                if dG is not None:
                    g = np.where(np.isfinite(xx), beta * C * xx * pw / (1.0 + C * xx), 0.0)   # x dG/dx
                    lg = log_eta[None, None, :]
                    dG[blk, rows, 0] = B * np.einsum("knm,nm->kn", g, d)
                    dG[blk, rows, 1] = B * np.einsum("knm,nm->kn", np.where(np.isfinite(u), u * pw, 0.0), d)
                    dG[blk, rows, 2] = B * np.einsum("knm,nm->kn", -lg * g, d)
    L0, A, alpha = q["L0"][:, :, 0], q["A"][:, :, 0], q["alpha"][:, :, 0]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        whole = area[None, :] + q["dS"][:, :, 0] if offset else area[None, :]     # S1 + S_W (+ dS)
        t1 = A * whole ** (-alpha)
        if transient:
            t2 = q["E"][:, :, 0] * np.exp(-area[None, :] / q["tau"][:, :, 0])
            L = L0 + t1 + t2 - LD
        else:
            L = L0 + t1 - LD
        if instant:
            t3 = q["K"][:, :, 0] * seen_drop[None, :]
            L = L - t3
        if dG is None:
            return L, None
        inv = 1.0 / L
        J = np.empty((K, n, len(names)))
        J[..., 0] = inv
        J[..., 1] = t1 * inv
        J[..., 2] = -t1 * np.log(whole) * inv
        J[..., 3] = -LD * inv
        J[..., 4] = -dG[..., 0] * inv
        J[..., 5] = -dG[..., 1] * inv
        J[..., 6] = -dG[..., 2] * inv
        if offset:
            J[..., 7] = -alpha * t1 / whole * inv
        if transient:
            J[..., 8] = t2 * inv
            J[..., 9] = t2 * (area[None, :] / q["tau"][:, :, 0]) * inv
        if instant:
            J[..., len(names) - 1] = -t3 * inv
    return L, J


def _scalar_shape(p: Params, out: Array) -> Array:
    """A (1, n) result of scalar parameters as (n,), as every law returns."""
    if all(np.ndim(v) == 0 for v in p.values()):
        return np.asarray(out[0], dtype=float)
    return out


def loss(p: Params, x: Inputs) -> Any:
    """L = L0 + A (S1 + S_W)^-alpha - LD (nats/token) at the points (step, curve)."""
    L, _ = _evaluate(p, x, jacobian=False)
    return _scalar_shape(p, L)


def loss_offset(p: Params, x: Inputs) -> Any:
    """L = L0 + A (S1 + S_W + dS)^-alpha - LD (nats/token) at the points (step, curve)."""
    L, _ = _evaluate(p, x, jacobian=False, offset=True)
    return _scalar_shape(p, L)


def log_jacobian_offset(p: Params, x: Inputs) -> tuple[Any, Array]:
    """ln L of :func:`loss_offset` and its derivatives with respect to (L0, ln A, alpha, ln B, ln C, beta,
    gamma, dS)."""
    L, J = _evaluate(p, x, jacobian=True, offset=True)
    assert J is not None
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.log(L), J


def loss_transient(p: Params, x: Inputs) -> Any:
    """L = L0 + A (S1 + S_W + dS)^-alpha + E exp(-(S1 + S_W) / tau) - LD (nats/token) at the points (step,
    curve)."""
    L, _ = _evaluate(p, x, jacobian=False, offset=True, transient=True)
    return _scalar_shape(p, L)


def log_jacobian_transient(p: Params, x: Inputs) -> tuple[Any, Array]:
    """ln L of :func:`loss_transient` and its derivatives with respect to (L0, ln A, alpha, ln B, ln C, beta,
    gamma, dS, ln E, ln tau)."""
    L, J = _evaluate(p, x, jacobian=True, offset=True, transient=True)
    assert J is not None
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.log(L), J


def loss_instant(p: Params, x: Inputs) -> Any:
    """L = L0 + A (S1 + S_W + dS)^-alpha - LD - K (eta_0 - eta_t) (nats/token) at the points (step, curve)."""
    L, _ = _evaluate(p, x, jacobian=False, offset=True, instant=True)
    return _scalar_shape(p, L)


def log_jacobian_instant(p: Params, x: Inputs) -> tuple[Any, Array]:
    """ln L of :func:`loss_instant` and its derivatives with respect to (L0, ln A, alpha, ln B, ln C, beta,
    gamma, dS, ln K)."""
    L, J = _evaluate(p, x, jacobian=True, offset=True, instant=True)
    assert J is not None
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.log(L), J


def loss_drop(p: Params, lr: Any, steps: Any) -> Array:
    """LD after each of ``steps`` updates of the learning-rate curve ``lr`` (one rate per update), for
    scalar parameters B, C, beta, gamma."""
    key = register_curve(lr)
    st = np.atleast_1d(np.asarray(steps, dtype=float))
    q = {"L0": 0.0, "A": 0.0, "alpha": 0.0, **{k: float(p[k]) for k in ("B", "C", "beta", "gamma")}}
    L, _ = _evaluate(q, {"step": st, "curve": np.full(st.size, key)}, jacobian=False)
    return np.asarray(-L[0], dtype=float)


def log_jacobian(p: Params, x: Inputs) -> tuple[Any, Array]:
    """ln L and its derivatives with respect to (L0, ln A, alpha, ln B, ln C, beta, gamma)."""
    L, J = _evaluate(p, x, jacobian=True)
    assert J is not None
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.log(L), J


def derive_curves(df: pd.DataFrame) -> pd.DataFrame:
    """The law's ``derive``: a table with ``curve`` (and ``step``) is returned as is; otherwise each
    run's learning rate is interpolated linearly between its logged steps on every update
    ``1..max(step)`` (as :func:`.anneal.curve_areas_for_points` does; ``lr`` is the rate *at* each
    logged step) and registered (:func:`register_curve`); ``run`` may be absent for one run."""
    if "curve" in df.columns:
        return df
    from .anneal import _check_steps_lrs, _interpolated  # the same interpolation as the anneal law's

    one = "run" not in df.columns
    tab = df.assign(run="run") if one else df
    missing = [c for c in ("run", "step", "lr") if c not in tab.columns]
    if missing:
        raise DataError(f"the multipower law needs a curve key, or columns run, step and lr (the learning rate at "
                        f"each logged step) to build the curves; the table lacks {missing} "
                        f"(columns present: {list(df.columns)}).")
    import pandas as pd

    steps = pd.to_numeric(tab["step"], errors="coerce").to_numpy(dtype=float)
    lrs = pd.to_numeric(tab["lr"], errors="coerce").to_numpy(dtype=float)
    _check_steps_lrs(tab, steps, lrs)
    keys = np.empty(len(tab))
    for pos in tab.groupby("run", sort=False).indices.values():
        _, eta = _interpolated(tab, pos, steps, lrs)
        keys[pos] = register_curve(eta)
    return df.assign(curve=keys)


MULTIPOWER = register(Law(
    name="multipower",
    formula=loss,
    log_jacobian=log_jacobian,
    params=(
        Param("L0", 0.0, 20.0, (0.5, 1.2), doc="loss at infinite learning-rate area (nats/token)"),
        Param("A", 0.0, 1e6, (-1.0, 1.0), log=True, doc="area term scale"),
        Param("alpha", 0.0, 5.0, (0.2, 0.5), doc="area exponent"),
        Param("B", 0.0, 1e9, (2.0, 5.0), log=True, doc="loss-reduction scale (per unit of learning-rate drop)"),
        Param("C", 0.0, 1e9, (-4.0, -1.0), log=True, doc="loss-reduction rate in eta^-gamma S_k"),
        Param("beta", 0.0, 10.0, (0.5,), doc="loss-reduction saturation exponent"),
        Param("gamma", 0.0, 3.0, (0.3, 0.6), doc="exponent of the learning rate in G's argument"),
    ),
    inputs=("step", "curve"),
    derive=derive_curves,
    n_convention="none",
    title="Loss curve under any learning-rate schedule, multi-power law (Luo et al. 2025)",
    formula_text="L = L0 + A (S1 + S_W)^-alpha - B sum_k (eta_(k-1) - eta_k) G(eta_k^-gamma S_k(t)); "
                 "G(x) = 1 - (C x + 1)^-beta, S_k(t) = sum_(tau=k..t) eta_tau",
    units="step: updates; curve: key of a registered learning-rate curve; L: nats/token",
    citation="Luo et al. 2025, arXiv 2503.12811",
    objective=Objective("huber", 1e-3, "log"),
    grid_note="L0 {0.5, 1.2}; ln A {-1, 1}; alpha {0.2, 0.5}; ln B {2, 5}; ln C {-4, -1}; beta {0.5}; gamma {0.3, 0.6}",
))


#: the upper bound of the warmup-area offset dS (learning rate x steps); see :data:`MULTIPOWER_OFFSET`
DS_MAX = 1e3

MULTIPOWER_OFFSET = register(Law(
    name="multipower_offset",
    formula=loss_offset,
    log_jacobian=log_jacobian_offset,
    params=MULTIPOWER.params + (
        Param("dS", 0.0, DS_MAX, (0.0, 0.5), doc="offset of the warmup area (learning rate x steps): the area "
              "the early transient is worth"),
    ),
    inputs=("step", "curve"),
    derive=derive_curves,
    n_convention="none",
    title="Loss curve under any learning-rate schedule, multi-power law with a warmup-area offset "
          "(after Luo et al. 2025)",
    formula_text="L = L0 + A (S1 + S_W + dS)^-alpha - B sum_k (eta_(k-1) - eta_k) G(eta_k^-gamma S_k(t)); "
                 "G(x) = 1 - (C x + 1)^-beta, S_k(t) = sum_(tau=k..t) eta_tau; dS = 0 is the multipower law",
    units="step: updates; curve: key of a registered learning-rate curve; dS: learning rate x steps; L: nats/token",
    citation="Luo et al. 2025, arXiv 2503.12811 (dS is scalinglab's extension)",
    objective=Objective("huber", 1e-3, "log"),
    grid_note="as multipower; dS {0, 0.5}",
))


#: the bounds of the transient's area scale tau (learning rate x steps); see :data:`MULTIPOWER_TRANSIENT`
TAU_MIN, TAU_MAX = 1e-4, 1e2

MULTIPOWER_TRANSIENT = register(Law(
    name="multipower_transient",
    formula=loss_transient,
    log_jacobian=log_jacobian_transient,
    params=MULTIPOWER_OFFSET.params + (
        Param("E", 0.0, 20.0, (-3.0, -1.0), log=True, doc="size of the early transient (nats/token)"),
        Param("tau", TAU_MIN, TAU_MAX, (-2.0,), log=True, doc="area scale of the early transient (learning "
              "rate x steps): it falls by 1/e every tau of area"),
    ),
    inputs=("step", "curve"),
    derive=derive_curves,
    n_convention="none",
    title="Loss curve under any learning-rate schedule, multi-power law with a warmup-area offset and an "
          "early transient (after Luo et al. 2025)",
    formula_text="L = L0 + A (S1 + S_W + dS)^-alpha + E exp(-(S1 + S_W) / tau) - B sum_k (eta_(k-1) - eta_k) "
                 "G(eta_k^-gamma S_k(t)); G(x) = 1 - (C x + 1)^-beta, S_k(t) = sum_(tau=k..t) eta_tau; "
                 "E = 0 is the multipower_offset law",
    units="step: updates; curve: key of a registered learning-rate curve; dS, tau: learning rate x steps; "
          "E, L: nats/token",
    citation="Luo et al. 2025, arXiv 2503.12811 (dS, E and tau are scalinglab's extension)",
    objective=Objective("huber", 1e-3, "log"),
    grid_note="as multipower_offset; ln E {-3, -1}; ln tau {-2}",
))


MULTIPOWER_INSTANT = register(Law(
    name="multipower_instant",
    formula=loss_instant,
    log_jacobian=log_jacobian_instant,
    params=MULTIPOWER_OFFSET.params + (
        Param("K", 0.0, 1e9, (1.0, 4.0), log=True, doc="instant loss reduction per unit of learning-rate drop "
              "(nats/token per unit of learning rate): the part of the reduction that follows the rate at once"),
    ),
    inputs=("step", "curve"),
    derive=derive_curves,
    n_convention="none",
    title="Loss curve under any learning-rate schedule, multi-power law with a warmup-area offset and an "
          "instant reduction (after Luo et al. 2025)",
    formula_text="L = L0 + A (S1 + S_W + dS)^-alpha - B sum_k (eta_(k-1) - eta_k) G(eta_k^-gamma S_k(t)) "
                 "- K (eta_0 - eta_t); G(x) = 1 - (C x + 1)^-beta, S_k(t) = sum_(tau=k..t) eta_tau; "
                 "K = 0 is the multipower_offset law",
    units="step: updates; curve: key of a registered learning-rate curve; dS: learning rate x steps; "
          "K: nats/token per unit of learning rate; L: nats/token",
    citation="Luo et al. 2025, arXiv 2503.12811 (dS and K are scalinglab's extension)",
    objective=Objective("huber", 1e-3, "log"),
    grid_note="as multipower_offset; ln K {1, 4}",
))
