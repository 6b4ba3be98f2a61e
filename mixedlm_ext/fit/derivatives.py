"""Numerical derivatives: gradients, Hessians and Jacobians by finite differences.

Step sizes are relative to each parameter: :func:`relative_steps` for the
optimisation metric, :func:`parameter_steps` for reported parameters of a
known kind (variance, covariance, correlation, ...).
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np


def relative_steps(x: np.ndarray, rel: float) -> np.ndarray:
    """Steps ``rel * max(|x|, 0.1)``."""
    return rel * np.maximum(np.abs(x), 0.1)


def central_gradient(f, x: np.ndarray, bounds, rel: float = 1e-6, forward: bool = False) -> np.ndarray:
    """Central differences, one-sided next to a bound (``forward=True``: one-sided
    everywhere, half the evaluations, for the quasi-Newton stage that Newton finishes)."""
    h = relative_steps(x, rel)
    g = np.zeros_like(x)
    f0 = None
    for i in range(x.size):
        lo, hi = bounds[i]
        xp, xm = x.copy(), x.copy()
        xp[i] += h[i]
        xm[i] -= h[i]
        if forward and (hi is None or xp[i] <= hi):
            f0 = f(x) if f0 is None else f0
            g[i] = (f(xp) - f0) / h[i]
        elif lo is not None and xm[i] < lo:
            f0 = f(x) if f0 is None else f0
            g[i] = (f(xp) - f0) / h[i]
        elif hi is not None and xp[i] > hi:
            f0 = f(x) if f0 is None else f0
            g[i] = (f0 - f(xm)) / h[i]
        else:
            g[i] = (f(xp) - f(xm)) / (2 * h[i])
    return g


def fd_hessian_grad(f, x: np.ndarray, h: np.ndarray, f0: Optional[float] = None) -> tuple[np.ndarray, np.ndarray]:
    """Central-difference Hessian and gradient of ``f`` at ``x`` with steps ``h``.

    Off-diagonal terms use the symmetric seven-point formula (Abramowitz &
    Stegun 25.3.27), second-order accurate with two new evaluations per pair:
    ``k^2 + k`` evaluations in all.
    """
    k = x.size
    H = np.zeros((k, k))
    f0 = f(x) if f0 is None else f0
    fp = np.zeros(k)
    fm = np.zeros(k)
    for i in range(k):
        e = np.zeros(k)
        e[i] = h[i]
        fp[i], fm[i] = f(x + e), f(x - e)
        H[i, i] = (fp[i] - 2 * f0 + fm[i]) / h[i] ** 2
    for i in range(k):
        for j in range(i + 1, k):
            eij = np.zeros(k)
            eij[i], eij[j] = h[i], h[j]
            v = (f(x + eij) + f(x - eij) - fp[i] - fm[i] - fp[j] - fm[j] + 2 * f0) / (2 * h[i] * h[j])
            H[i, j] = H[j, i] = v
    return H, (fp - fm) / (2 * h)


def fd_hessian(f, x: np.ndarray, h: np.ndarray, f0: Optional[float] = None) -> np.ndarray:
    """Central-difference Hessian of ``f`` at ``x`` with steps ``h``."""
    return fd_hessian_grad(f, x, h, f0)[0]


def parameter_steps(phi: np.ndarray, kinds: list[str], rel: float) -> np.ndarray:
    """Steps relative to each parameter, by kind (``var``, ``cov``, ``est``, bounded ones)."""
    phi = np.asarray(phi, dtype=float)
    var_scale = np.array([abs(v) for v, k in zip(phi, kinds) if k == "var"] or [1.0])
    typical = float(np.exp(np.mean(np.log(np.maximum(var_scale, 1e-300)))))
    h = np.empty_like(phi)
    for i, (v, k) in enumerate(zip(phi, kinds)):
        if k == "var":
            h[i] = rel * max(abs(v), 1e-8 * typical)
        elif k == "cov":
            h[i] = rel * max(abs(v), 0.05 * typical)
        elif k == "est":  # estimation metric (theta, log sigma2): unbounded, O(1)
            h[i] = rel * max(abs(v), 0.05)
        else:  # correlations, AR/MA coefficients, rho: bounded, O(1)
            lim = 1.0 - abs(v) if k in ("corr", "phi", "theta", "rho") else 1.0
            h[i] = rel * max(min(abs(v), 1.0), 0.05) if lim > 10 * rel else rel * 0.1 * max(lim, 1e-6)
    return h


def numerical_hessian(f: Callable[[np.ndarray], float], x: np.ndarray, kinds: list[str],
                      rel: float = 3e-4, richardson: bool = False) -> np.ndarray:
    """Central-difference Hessian of ``f`` at ``x``, steps relative to each parameter.

    With steps of 3e-4 relative the truncation error is ~1e-7 relative, far
    below the tolerance of standard errors; ``richardson=True`` extrapolates
    from two step sizes (twice the evaluations).
    """
    x = np.asarray(x, dtype=float)
    f0 = f(x)
    h = parameter_steps(x, kinds, rel)
    H1 = fd_hessian(f, x, h, f0)
    if not richardson:
        return H1
    H2 = fd_hessian(f, x, h / 2.0, f0)
    return (4.0 * H2 - H1) / 3.0


def jacobian(g, x: np.ndarray, rel: float = 1e-6) -> np.ndarray:
    """Central-difference Jacobian of a cheap vector function (no likelihood calls)."""
    h = rel * np.maximum(np.abs(x), 1e-2)
    cols = []
    for i in range(x.size):
        e = np.zeros(x.size)
        e[i] = h[i]
        cols.append((g(x + e) - g(x - e)) / (2 * h[i]))
    return np.column_stack(cols) if cols else np.zeros((len(g(x)), 0))
