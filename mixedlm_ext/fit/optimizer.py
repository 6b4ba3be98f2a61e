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


def near_bound(x, bounds, tol=1e-7) -> np.ndarray:
    """Which parameters are within ``tol`` (relative, at least absolute) of a bound."""
    return _at_bound(x, bounds, tol)


def _at_bound(x, bounds, tol=1e-7) -> np.ndarray:
    out = np.zeros(x.size, dtype=bool)
    for i, (lo, hi) in enumerate(bounds):
        if lo is not None and x[i] - lo <= tol * max(1.0, abs(lo)):
            out[i] = True
        if hi is not None and hi - x[i] <= tol * max(1.0, abs(hi)):
            out[i] = True
    return out


_PROBE_STEPS = (1e-3, 1e-2, 0.1, 0.5)  # inward steps from a bound (theta is a ratio of SDs)
_NEAR_BOUND = 1e-4  # a stop this close to a bound is checked as a boundary stop (flat there)


def _inward(value: float, bound, step: float) -> float:
    """A point ``step`` inside the bound ``value`` sits on (a fraction of the range
    for parameters bounded on both sides, such as correlations)."""
    lo, hi = bound
    if lo is not None and hi is not None:
        width = hi - lo
        return lo + step * width if value - lo <= hi - value else hi - step * width
    return lo + step if lo is not None else hi - step


def boundary_probes(x: np.ndarray, bounds, at_bound: np.ndarray) -> list[np.ndarray]:
    """Interior points next to a boundary stop: each parameter at a bound moved
    inward by each of :data:`_PROBE_STEPS`, and all of them together.

    With a scalar variance the profiled deviance is even in ``theta``, so its
    slope at ``theta = 0`` is zero whatever the optimum: the smallest step
    (``theta = 1e-3``, a variance ratio of 1e-6) measures the one-sided
    derivative in the variance metric, the larger ones catch an optimum
    further inside.
    """
    idx = np.flatnonzero(at_bound)
    out = []
    for step in _PROBE_STEPS:
        joint = x.copy()
        for i in idx:
            cand = x.copy()
            cand[i] = joint[i] = _inward(float(x[i]), bounds[i], step)
            out.append(cand)
        if idx.size > 1:
            out.append(joint)
    return out


def verify_boundary(f, x: np.ndarray, bounds, local, default_start: np.ndarray, rounds: int = 4,
                    f0: Optional[float] = None, equivalents=None) -> tuple[np.ndarray, bool]:
    """Check a stop at a bound against the interior next to it; restart if it is beaten.

    ``local(x0)`` is the local optimiser.  Candidates are the
    :func:`boundary_probes` of the stop and of each parameter vector
    ``equivalents(x)`` gives (the same covariances, parameterised
    differently where the boundary makes the parameters not unique), and the
    default (lme4-style) starting point; when
    one is lower than the stop, the local optimiser restarts from the best
    and the new stop is checked in turn.  Returns ``(x, verified)``; ``x`` is
    the input object itself when nothing beat it.
    """
    fx = f(x) if f0 is None else f0
    for _ in range(rounds):
        at = _at_bound(x, bounds, tol=_NEAR_BOUND)
        if not at.any():
            return x, True
        cands = boundary_probes(x, bounds, at)
        for alt in (equivalents(x) if equivalents is not None else []):
            cands += boundary_probes(alt, bounds, _at_bound(alt, bounds, tol=_NEAR_BOUND))
        cands.append(np.asarray(default_start, dtype=float))
        vals = np.array([f(c) for c in cands])
        k = int(np.argmin(vals))
        if not vals[k] < fx - 1e-10 * max(1.0, abs(fx)):
            return x, True
        x2 = local(cands[k])
        f2 = f(x2)
        x, fx = (x2, f2) if f2 < vals[k] else (cands[k], vals[k])
    return x, not _at_bound(x, bounds, tol=_NEAR_BOUND).any()


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
    bounds_arr = bounds
    jac = lambda x: central_gradient(f, x, bounds_arr, rel=1e-7, forward=True)  # noqa: E731
    n_iter = 0
    messages = []

    def local(x0):
        nonlocal n_iter
        r = so.minimize(f, x0, method="L-BFGS-B", jac=jac, bounds=bounds, callback=lambda xk: report(f(xk)),
                        options=dict(maxiter=max(1, maxiter - n_iter), ftol=1e-10, gtol=1e-6))
        n_iter += int(r.nit)
        messages.append(r.message if isinstance(r.message, str) else str(r.message))
        return _project(r.x, bounds)

    theta = local(theta)
    theta, verified = verify_boundary(f, theta, bounds, local, objective.theta_start(),
                                      equivalents=objective.equivalent_thetas)
    nr = None
    for _ in range(3):  # Newton on the free parameters; a boundary it reaches is verified again
        budget = max(0, maxiter - n_iter)
        if not budget:
            break
        nr = newton_estimation(objective, theta, bounds, max_iter=min(50, budget), log=report, count=f)
        n_iter += nr.n_iter
        moved, verified = verify_boundary(f, nr.theta, bounds, local, objective.theta_start(), f0=nr.deviance,
                                          equivalents=objective.equivalent_thetas)
        if moved is nr.theta:
            break
        theta, nr = moved, None
    if nr is not None:
        theta, dev, decrement = nr.theta, nr.deviance, nr.decrement
    else:
        dev, decrement = f(theta), np.inf
    res_message = messages[-1] if messages else ""
    # converged when the Newton decrement g'H^-1 g is negligible (Stata's nrtolerance)
    # and a boundary stop was checked against the interior next to it
    converged = bool(np.isfinite(dev) and decrement < _NR_TOL and verified)
    msg = res_message
    if not converged:
        why = ("Newton decrement %.3g" % decrement) if verified else "a boundary stop could not be verified"
        warn_user("the optimizer did not converge (%s after %d iterations): %s" % (why, n_iter, msg),
                  ConvergenceWarning)
    out = OptResult(theta, float(dev), converged, n_iter, f.n, msg, history, _at_bound(theta, bounds))
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
