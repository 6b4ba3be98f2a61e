"""Optimisation of the profiled deviance: EM-style start, quasi-Newton, Newton polish.

Stata's ``mixed`` runs a few EM iterations for starting values and then a
gradient-based optimiser; so does :func:`optimize`:

1. EM iterations on the random-effects covariances (:func:`em_start`), using
   the conditional moments of the random effects from the engine;
2. L-BFGS-B on the bounded ``theta`` metric with central-difference
   gradients;
3. Newton-Raphson in the estimation metric ``(theta, log sigma2)`` with a
   finite-difference Hessian on the parameters not at a bound
   (:func:`newton_estimation`); its last Hessian gives the standard errors.

The iteration log, when requested, is printed in Stata's form.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Callable, Optional, TextIO

import numpy as np
import scipy.optimize as so

from ..core.errors import ConvergenceWarning, warn_user
from .derivatives import central_gradient, fd_hessian_grad
from .em import em_start
from .objective import Objective


@dataclass
class OptResult:
    theta: np.ndarray
    deviance: float
    converged: bool
    n_iter: int
    n_eval: int
    message: str
    history: list = field(default_factory=list)  # (iteration, log-likelihood)
    at_bound: np.ndarray = None
    # the last Newton-Raphson Hessian of -2 loglik in psi = (theta, log sigma2),
    # over the parameters not at a bound (``psi_free``): reused for standard errors
    psi: np.ndarray = None
    psi_free: np.ndarray = None
    hessian_psi: np.ndarray = None


def _loglik(dev: float) -> float:
    return -0.5 * dev


class _Counter:
    """Counts evaluations and remembers recent ones (callbacks re-ask for them)."""

    def __init__(self, f: Callable[[np.ndarray], float]):
        self.f = f
        self.n = 0
        self._cache: dict[bytes, float] = {}

    def __call__(self, x):
        key = np.asarray(x, dtype=float).tobytes()
        if key in self._cache:
            return self._cache[key]
        self.n += 1
        v = self.f(x)
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[key] = v
        return v


def _project(x: np.ndarray, bounds) -> np.ndarray:
    x = x.copy()
    for i, (lo, hi) in enumerate(bounds):
        if lo is not None and x[i] < lo:
            x[i] = lo
        if hi is not None and x[i] > hi:
            x[i] = hi
    return x


def _at_bound(x, bounds, tol=1e-7) -> np.ndarray:
    out = np.zeros(x.size, dtype=bool)
    for i, (lo, hi) in enumerate(bounds):
        if lo is not None and x[i] - lo <= tol * max(1.0, abs(lo)):
            out[i] = True
        if hi is not None and hi - x[i] <= tol * max(1.0, abs(hi)):
            out[i] = True
    return out


def optimize(objective: Objective, theta0: Optional[np.ndarray] = None, *, log: bool = False,
             maxiter: int = 300, stream: TextIO = None, em_iterations: int = 20,
             em_log: bool = False, em_only: bool = False, tolerance: float = 1e-8) -> OptResult:
    """Minimise the profiled deviance of ``objective``."""
    stream = stream or sys.stdout
    label = "Log restricted-likelihood" if objective.reml else "Log likelihood"
    bounds = objective.theta_bounds()
    f = _Counter(objective.deviance)
    history: list[tuple[int, float]] = []

    theta = objective.theta_start() if theta0 is None else np.asarray(theta0, float)
    if objective.n_theta == 0:
        dev = f(theta)
        return OptResult(theta, dev, True, 0, f.n, "no variance parameters", [], np.zeros(0, bool))

    if log or em_log:
        stream.write("\nPerforming EM optimization ...\n")
    theta = em_start(objective, theta, iterations=em_iterations, log=em_log, stream=stream)
    if em_only:
        dev = f(theta)
        return OptResult(theta, dev, True, em_iterations, f.n, "EM only", [], _at_bound(theta, bounds))

    if log:
        stream.write("\nPerforming gradient-based optimization:\n")

    def report(dev):
        k = len(history)
        history.append((k, _loglik(dev)))
        if log:
            stream.write("Iteration %d:  %s = %s\n" % (k, label, _fmt_ll(_loglik(dev))))

    report(f(theta))
    res = so.minimize(f, theta, method="L-BFGS-B", jac=lambda x: central_gradient(f, x, bounds, rel=1e-7, forward=True),
                      bounds=bounds, callback=lambda xk: report(f(xk)),
                      options=dict(maxiter=maxiter, ftol=1e-10, gtol=1e-6))
    theta = _project(res.x, bounds)
    budget = max(0, maxiter - int(res.nit))
    nr = newton_estimation(objective, theta, bounds, max_iter=min(50, budget), log=report, count=f) \
        if budget else None
    if nr is not None:
        theta, dev, n_newton, decrement = nr.theta, nr.deviance, nr.n_iter, nr.decrement
    else:
        dev, n_newton, decrement = f(theta), 0, np.inf
    # converged when the Newton decrement g'H^-1 g is negligible (Stata's nrtolerance)
    converged = bool(np.isfinite(dev) and decrement < _NR_TOL)
    msg = res.message if isinstance(res.message, str) else str(res.message)
    if not converged:
        warn_user("the optimizer did not converge (Newton decrement %.3g after %d iterations): %s"
                  % (decrement, int(res.nit) + n_newton, msg), ConvergenceWarning)
    out = OptResult(theta, float(dev), converged, int(res.nit) + n_newton, f.n, msg, history,
                    _at_bound(theta, bounds))
    if nr is not None:
        out.psi, out.psi_free, out.hessian_psi = nr.psi, nr.free, nr.hessian
    return out


_NR_TOL = 1e-5  # Newton decrement (deviance units) below which a fit has converged
_NR_EXACT = 1e-10  # below this not even the (one-evaluation) Newton step is taken
_NR_STALE = 1e-7  # after a step from a decrement below this, the point is final (its Hessian is kept)


@dataclass
class NewtonResult:
    theta: np.ndarray
    deviance: float
    n_iter: int
    decrement: float
    psi: np.ndarray
    free: np.ndarray
    hessian: np.ndarray


def newton_estimation(objective: Objective, theta: np.ndarray, bounds, max_iter: int = 10,
                      log: Optional[Callable[[float], None]] = None, count=None,
                      rel: float = 1e-3) -> NewtonResult:
    """Newton-Raphson on -2 log-likelihood in the estimation metric ``psi = (theta, log sigma2)``.

    Parameters at a bound stay fixed.  The last Hessian is returned: the fit's
    standard errors come from it, so the final Newton iteration and the
    standard errors share one set of evaluations (Stata does the same).  A
    step taken with a decrement below ``_NR_TOL`` leaves the point converged
    (quadratic convergence) and its Hessian is kept, as the step is tiny.
    """
    f = count if count is not None else objective.deviance
    sigma2 = objective.profile(theta).sigma2
    psi = np.append(np.asarray(theta, dtype=float), np.log(sigma2))
    free = np.append(~_at_bound(theta, bounds), True)
    psi_bounds = list(bounds) + [(None, None)]

    def full(z, base):
        x = base.copy()
        x[free] = z
        return x

    fx = objective.neg2ll_estimation(psi)
    H = None
    decrement = np.inf
    it = 0
    for it in range(1, max_iter + 1):
        base = psi.copy()
        z = psi[free]
        fsub = lambda zz, base=base: objective.neg2ll_estimation(full(zz, base))  # noqa: E731
        h = rel * np.maximum(np.abs(z), 0.05)
        H, g = fd_hessian_grad(fsub, z, h, fx)
        try:
            w, V = np.linalg.eigh(H)
            w = np.maximum(np.abs(w), 1e-8 * max(1.0, np.abs(w).max()))
            step = -(V / w) @ (V.T @ g)
        except np.linalg.LinAlgError:
            break
        decrement = float(-g @ step)
        if decrement < _NR_EXACT:
            break
        for shrink in (1.0, 0.5, 0.25, 0.1, 0.01):
            cand = _project(full(z + shrink * step, base), psi_bounds)
            fc = objective.neg2ll_estimation(cand)
            if np.isfinite(fc) and fc <= fx:
                psi, fx = cand, fc
                break
        else:
            break
        if log:
            log(fx)
        if decrement < _NR_STALE:
            break
        new_free = np.append(~_at_bound(psi[:-1], bounds), True)
        if not np.array_equal(new_free, free):
            free = new_free
    theta = psi[:-1]
    dev = f(theta)  # profiled: sigma2 at its optimum given theta (<= fx)
    return NewtonResult(theta, float(dev), it, decrement, psi, free, H)


def _fmt_ll(v: float) -> str:
    """Stata's ``%10.0g``-like format for log likelihoods."""
    s = "%.8g" % v
    if "e" in s:
        s = "%.4e" % v
    return s
