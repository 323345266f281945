"""Batched robust Levenberg-Marquardt: many starts (or bootstrap replicates) minimised at once.

Each of K problems minimises ``F_k(theta) = sum_i W_ki rho(r_i(theta))`` with the same residual
function r and its own weights W_k (all ones for multi-start, multinomial counts for the bootstrap).
For Huber, ``rho'(r) = w(r) r`` with ``w = min(1, delta/|r|)``, so a Gauss-Newton step on the
iteratively reweighted problem is a majorise-minimise step (IRLS); Levenberg-Marquardt damping keeps it
a descent step on F itself, which is checked before a step is accepted. Bounds are kept by an active
set: a parameter at a bound whose gradient points outwards is frozen for that step, and steps are
clipped to the box.

The whole batch moves together in NumPy arrays (a Jacobian of shape K x n x P, K small P x P solves),
which is what makes 4,500 starts cost seconds rather than a Python loop of 4,500 scipy calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]
ResidualFn = Callable[[Array], Array]
JacobianFn = Callable[[Array], tuple[Array, Array]]


def _side(r: Array, asym: float) -> Array | float:
    """The asymmetry factor of each residual: ``asym`` where r > 0 (over-prediction), else 1."""
    return 1.0 if asym == 1.0 else np.where(r > 0, asym, 1.0)


def rho(r: Array, kind: str, delta: float, asym: float = 1.0) -> Array:
    """The per-residual objective: Huber(delta) or least squares r^2/2, times ``asym`` where r > 0."""
    if kind == "ls":
        return 0.5 * r * r * _side(r, asym)
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta)) * _side(r, asym)


def irls_weight(r: Array, kind: str, delta: float, asym: float = 1.0) -> Array:
    """w(r) with rho'(r) = w(r) r."""
    if kind == "ls":
        return np.ones_like(r) * _side(r, asym)
    a = np.abs(r)
    with np.errstate(divide="ignore"):
        return np.where(a <= delta, 1.0, delta / np.where(a > 0, a, 1.0)) * _side(r, asym)


def objective_values(r: Array, weights: Array, kind: str, delta: float, asym: float = 1.0) -> Array:
    """F for every row of r (K x n); non-finite residuals give +inf."""
    with np.errstate(invalid="ignore", over="ignore"):
        f = np.sum(weights * rho(r, kind, delta, asym), axis=-1)
    bad = ~np.all(np.isfinite(r), axis=-1)
    return np.where(bad, np.inf, f)


def fd_jacobian(residual: ResidualFn, theta: Array, lower: Array, upper: Array) -> tuple[Array, Array]:
    """Residuals and their central-difference Jacobian (K x n x P), one-sided at a bound."""
    r0 = residual(theta)
    P = theta.shape[1]
    J = np.empty(r0.shape + (P,))
    for j in range(P):
        h = 1e-6 * (1.0 + np.abs(theta[:, j]))
        up = np.minimum(theta[:, j] + h, upper[j])
        dn = np.maximum(theta[:, j] - h, lower[j])
        tp = theta.copy()
        tp[:, j] = up
        tm = theta.copy()
        tm[:, j] = dn
        span = (up - dn)[:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            J[:, :, j] = (residual(tp) - residual(tm)) / np.where(span > 0, span, 1.0)
    return r0, J


@dataclass
class BatchResult:
    theta: Array          # K x P, optimisation scale
    value: Array          # K, objective at theta
    converged: NDArray[np.bool_]
    n_iter: int


def minimize_batched(
    jac: JacobianFn,
    residual: ResidualFn,
    theta0: Array,
    lower: Array,
    upper: Array,
    weights: Array,
    *,
    kind: str = "huber",
    delta: float = 1e-3,
    max_iter: int = 300,
    asym: float = 1.0,
    ftol: float = 1e-12,
    xtol: float = 1e-10,
    merge_tol: float = 0.0,
    merge_every: int = 2,
) -> BatchResult:
    """Minimise K problems from K starts. ``jac(theta) -> (r, J)``; ``residual(theta) -> r``.

    ``weights`` is (n,) or (K, n). A problem converges when an accepted step changes F by less than
    ``ftol * (1 + F)`` and theta by less than ``xtol * (1 + |theta|)``, or when no damped step can
    lower F any more (the damping exceeds 1e12): it sits at a minimum to working precision.

    ``merge_tol > 0`` (one problem, ``weights`` 1-D): every ``merge_every`` iterations, starts whose
    parameters agree to ``merge_tol`` (the same cell of a grid of that spacing on the optimisation
    scale) have joined one basin; only the one with the lowest F goes on, and the others end with
    its result (theta, F, convergence). From the same point the same problem descends the same way,
    so this drops repeated work, not minima.
    """
    theta = np.clip(np.array(theta0, dtype=float), lower, upper)
    K, P = theta.shape
    W = np.broadcast_to(weights, (K,) + np.shape(weights)[-1:]).astype(float)
    lam = np.full(K, 1e-3)
    converged = np.zeros(K, dtype=bool)
    active = np.ones(K, dtype=bool)
    follows = np.arange(K)          # the start whose result each start takes (itself unless merged)
    merge = merge_tol > 0 and np.ndim(weights) == 1

    r, J = jac(theta)
    f = objective_values(r, W, kind, delta, asym)
    # Starts where the law is not finite cannot move: leave them at +inf, unconverged.
    active &= np.isfinite(f)
    it = 0
    eye = np.eye(P)
    for it in range(1, max_iter + 1):  # noqa: B007  (read after the loop: the iterations taken)
        if merge and it % merge_every == 0:
            _merge_basins(theta, f, active, follows, merge_tol)
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        if idx.size == K:
            ra, Ja, Wa, ta = r, J, W, theta
        else:
            ra, Ja, Wa, ta = r[idx], J[idx], W[idx], theta[idx]
        w = irls_weight(ra, kind, delta, asym) * Wa
        wJ = Ja * w[:, :, None]
        g = np.matmul(wJ.transpose(0, 2, 1), ra[:, :, None])[:, :, 0]
        H = np.matmul(wJ.transpose(0, 2, 1), Ja)
        # active set: freeze parameters at a bound whose descent direction leaves the box
        at_lo = (ta <= lower + 1e-14) & (g > 0)
        at_hi = (ta >= upper - 1e-14) & (g < 0)
        frozen = at_lo | at_hi
        g = np.where(frozen, 0.0, g)
        free2 = (~frozen)[:, :, None] & (~frozen)[:, None, :]
        H = np.where(free2, H, 0.0)
        diag = np.einsum("kpp->kp", H)
        scale = np.where(diag > 0, diag, 1.0)
        A = H + (lam[idx, None, None] * scale[:, :, None] * eye) + (frozen[:, :, None] * eye)
        A = A + 1e-300 * eye
        try:
            step = -np.linalg.solve(A, g[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            step = -np.stack([np.linalg.lstsq(a, b, rcond=None)[0] for a, b in zip(A, g)])
        step = np.where(frozen | ~np.isfinite(step), 0.0, step)
        t_new = np.clip(ta + step, lower, upper)
        r_new = residual(t_new)
        f_new = objective_values(r_new, Wa, kind, delta, asym)
        accept = f_new < f[idx]
        # accepted: move, relax damping, test convergence
        acc = idx[accept]
        if acc.size:
            df = f[acc] - f_new[accept]
            dx = np.max(np.abs(t_new[accept] - theta[acc]) / (1.0 + np.abs(theta[acc])), axis=1)
            theta[acc] = t_new[accept]
            f[acc] = f_new[accept]
            lam[acc] = np.maximum(lam[acc] / 3.0, 1e-12)
            done = (df <= ftol * (1.0 + f[acc])) & (dx <= xtol * 1e3) | (dx <= xtol)
            converged[acc[done]] = True
            active[acc[done]] = False
            rest = acc[~done]
            if rest.size:
                r[rest], J[rest] = jac(theta[rest])
        rej = idx[~accept]
        if rej.size:
            lam[rej] *= 4.0
            stuck = lam[rej] > 1e12
            converged[rej[stuck]] = True
            active[rej[stuck]] = False
    if merge:   # merged starts end where the start they follow ended (chains resolved)
        for _ in range(64):
            nxt = follows[follows]
            if np.array_equal(nxt, follows):
                break
            follows = nxt
        theta, f, converged = theta[follows], f[follows], converged[follows]
    return BatchResult(theta=theta, value=f, converged=converged, n_iter=it)


def _merge_basins(theta: Array, f: Array, active: NDArray[np.bool_], follows: NDArray[np.int_],
                  tol: float) -> None:
    """Deactivate every active start that shares a ``tol`` grid cell with a lower one (in place)."""
    idx = np.flatnonzero(active | (follows == np.arange(len(follows))))   # converged starts lead too
    if idx.size < 2:
        return
    cells = np.floor(theta[idx] / tol)
    order = np.lexsort((f[idx], *cells.T[::-1]))      # by cell, then by F within a cell
    c = cells[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = np.any(c[1:] != c[:-1], axis=1)
    head = np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))
    dup = ~first & active[idx[order]]
    if dup.any():
        follows[idx[order[dup]]] = idx[order[head[dup]]]
        active[idx[order[dup]]] = False
