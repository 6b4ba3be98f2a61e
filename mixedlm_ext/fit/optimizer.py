"""Optimisation of the profiled deviance: EM-style start, quasi-Newton, Newton polish.

Stata's ``mixed`` runs a few EM iterations for starting values and then a
gradient-based optimiser; so does :func:`optimize`:

1. EM iterations on the random-effects covariances (:func:`em_start`), using
   the conditional moments of the random effects from the engine;
2. L-BFGS-B on the bounded ``theta`` metric, each evaluation giving the
   deviance and its analytic gradient (:meth:`Objective.value_and_gradient`);
3. Newton-Raphson in the estimation metric ``(theta, log sigma2)`` with the
   Hessian from central differences of the analytic gradient on the
   parameters not at a bound (:func:`newton_estimation`); its last Hessian
   gives the standard errors.

The iteration log, when requested, is printed in Stata's form.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Callable, Optional, TextIO

import numpy as np

from ..core.errors import ConvergenceWarning, warn_user
from .em import em_start
from .objective import Objective


@dataclass
class OptResult:
    theta: np.ndarray
    deviance: float
    converged: bool
    n_iter: int
    n_eval: int  # objective evaluations, values and value+gradient together
    message: str
    history: list = field(default_factory=list)  # (iteration, log-likelihood)
    at_bound: np.ndarray = None
    # the last Newton-Raphson Hessian of -2 loglik in psi = (theta, log sigma2),
    # over the parameters not at a bound (``psi_free``): reused for standard errors
    psi: np.ndarray = None
    psi_free: np.ndarray = None
    hessian_psi: np.ndarray = None
    n_grad: int = 0  # of n_eval, the evaluations with an analytic gradient
    evaluation: object = None  # the objective's Evaluation at theta


def _loglik(dev: float) -> float:
    return -0.5 * dev


class _Counter:
    """Counts evaluations and remembers recent ones (callbacks re-ask for them).

    ``value(x)`` is the profiled deviance, ``evaluation(x)`` all its pieces (an
    :class:`~mixedlm_ext.fit.objective.Evaluation`, None where undefined),
    ``value_grad(x)`` the deviance and its analytic gradient in one evaluation;
    ``n`` counts the values, ``n_grad`` the evaluations with a gradient.
    """

    def __init__(self, objective: Objective):
        self.objective = objective
        self.n = 0
        self.n_grad = 0
        self._cache: dict[bytes, float] = {}
        self._grads: dict[bytes, tuple[float, np.ndarray]] = {}
        self._evals: dict[bytes, object] = {}

    def __call__(self, x):
        return self.value(x)

    def evaluation(self, x):
        x = np.asarray(x, dtype=float)
        key = x.tobytes()
        if key in self._evals:
            return self._evals[key]
        self.n += 1
        try:
            ev = self.objective.evaluate(x)
        except (np.linalg.LinAlgError, FloatingPointError, ValueError):
            ev = None
        _remember(self._evals, key, ev)
        _remember(self._cache, key, np.inf if ev is None else ev.deviance)
        return ev

    def evaluate(self, x):
        """:meth:`evaluation`, with :meth:`Objective.evaluate`'s contract: raises
        ``LinAlgError`` where the deviance is undefined."""
        ev = self.evaluation(x)
        if ev is None:
            raise np.linalg.LinAlgError("the deviance is undefined at theta")
        return ev

    def value(self, x) -> float:
        key = np.asarray(x, dtype=float).tobytes()
        if key in self._cache:
            return self._cache[key]
        ev = self.evaluation(x)
        return np.inf if ev is None else ev.deviance

    def neg2ll(self, psi: np.ndarray) -> float:
        """-2 log-likelihood in the estimation metric (``sigma2 = exp(psi[-1])``), cached."""
        return self.objective.neg2ll_estimation(psi, evaluate=self.evaluate)

    def value_grad(self, x) -> tuple[float, np.ndarray]:
        key = np.asarray(x, dtype=float).tobytes()
        if key in self._grads:
            return self._grads[key]
        self.n_grad += 1
        v, g = self.objective.value_and_gradient(np.asarray(x, dtype=float))
        if not np.isfinite(v):  # L-BFGS-B backtracks from an infinite value; keep its gradient finite
            g = np.zeros_like(g)
        _remember(self._grads, key, (v, g))
        _remember(self._cache, key, v)
        return v, g


_CACHE_SIZE = 64  # evaluations kept per fit (a Newton step from values reuses up to 1 + 2k + k(k-1))


def _remember(cache: dict, key: bytes, value) -> None:
    """Keep ``value`` under ``key``, evicting the oldest entry beyond :data:`_CACHE_SIZE`."""
    if len(cache) >= _CACHE_SIZE:
        cache.pop(next(iter(cache)))
    cache[key] = value


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


class _Run:
    """The state of one optimisation: the counter, the iteration log, the budget."""

    def __init__(self, objective: Objective, maxiter: int, log: bool, stream: TextIO):
        self.objective = objective
        self.bounds = objective.theta_bounds()
        self.f = _Counter(objective)
        self.history: list[tuple[int, float]] = []
        self.maxiter = maxiter
        self.n_iter = 0
        self.messages: list[str] = []
        self.log = log
        self.stream = stream
        self.label = "Log restricted-likelihood" if objective.reml else "Log likelihood"

    def report(self, dev: float) -> None:
        k = len(self.history)
        self.history.append((k, _loglik(dev)))
        if self.log:
            self.stream.write("Iteration %d:  %s = %s\n" % (k, self.label, _fmt_ll(_loglik(dev))))

    def local(self, x0: np.ndarray) -> np.ndarray:
        """L-BFGS-B on value and analytic gradient from ``x0``."""
        import scipy.optimize as so  # about 0.1 s to import: small fits finish by Newton without it

        f = self.f
        r = so.minimize(f.value_grad, x0, method="L-BFGS-B", jac=True, bounds=self.bounds,
                        callback=lambda xk: self.report(f(xk)),
                        options=dict(maxiter=max(1, self.maxiter - self.n_iter), ftol=1e-12, gtol=1e-7))
        self.n_iter += int(r.nit)
        self.messages.append(r.message if isinstance(r.message, str) else str(r.message))
        return _project(r.x, self.bounds)

    def newton(self, theta: np.ndarray, budget: int) -> "NewtonResult":
        nr = newton_estimation(self.objective, theta, self.bounds, max_iter=min(50, budget), log=self.report,
                               count=self.f)
        self.n_iter += nr.n_iter
        return nr

    def verify(self, theta: np.ndarray, f0=None) -> tuple[np.ndarray, bool]:
        return verify_boundary(self.f, theta, self.bounds, self.local, self.objective.theta_start(), f0=f0,
                               equivalents=self.objective.equivalent_thetas)

    def minimise(self, theta: np.ndarray) -> tuple[np.ndarray, Optional["NewtonResult"], bool]:
        """From the EM start to a verified optimum: ``(theta, last Newton result or None,
        boundary verified)``.  With a closed-form Hessian (one small block) or one from
        values (a large crossed block, from its moment start) Newton-Raphson runs first,
        otherwise L-BFGS-B; a boundary stop is checked and a boundary Newton reaches is
        checked again."""
        nr = None
        if self.objective.kernel is not None or self.objective.value_hessian:
            nr = self.newton(theta, self.maxiter)
            # accepted when converged on the start's face: Newton holds what reaches a bound there, so
            # a new boundary stop goes back to the quasi-Newton stage (which can leave it again)
            if not (nr.decrement < _NR_TOL
                    and np.array_equal(_at_bound(nr.theta, self.bounds), _at_bound(theta, self.bounds))):
                nr = None
        theta = nr.theta if nr is not None else self.local(theta)
        theta, verified = self.verify(theta, None if nr is None else nr.deviance)
        if nr is not None and theta is nr.theta:
            return theta, nr, verified
        nr = None
        for _ in range(3):
            budget = max(0, self.maxiter - self.n_iter)
            if not budget:
                break
            nr = self.newton(theta, budget)
            moved, verified = self.verify(nr.theta, nr.deviance)
            if moved is nr.theta:
                break
            theta, nr = moved, None
        return theta, nr, verified


def optimize(objective: Objective, theta0: Optional[np.ndarray] = None, *, log: bool = False,
             maxiter: int = 300, stream: TextIO = None, em_iterations: int = 20,
             em_log: bool = False, em_only: bool = False, tolerance: float = 1e-8) -> OptResult:
    """Minimise the profiled deviance of ``objective``."""
    stream = stream or sys.stdout
    run = _Run(objective, maxiter, log, stream)
    f, bounds = run.f, run.bounds
    theta = objective.initial_theta() if theta0 is None else np.asarray(theta0, float)
    if objective.n_theta == 0:
        dev = f(theta)
        return OptResult(theta, dev, True, 0, f.n, "no variance parameters", [], np.zeros(0, bool))

    if log or em_log:
        stream.write("\nPerforming EM optimization ...\n")
    theta = em_start(objective, theta, iterations=em_iterations, log=em_log, stream=stream, count=f,
                     adaptive=not em_only)
    if em_only:
        dev = f(theta)
        return OptResult(theta, dev, True, em_iterations, f.n + f.n_grad, "EM only", [], _at_bound(theta, bounds),
                         n_grad=f.n_grad)
    if log:
        stream.write("\nPerforming gradient-based optimization:\n")
    run.report(f.value(theta))  # a value (cached from EM): the Newton stage may need no gradient here
    theta, nr, verified = run.minimise(theta)
    if nr is not None:
        theta, dev, decrement = nr.theta, nr.deviance, nr.decrement
    else:
        dev, decrement = f(theta), np.inf
    msg = run.messages[-1] if run.messages else ""
    # converged when the Newton decrement g'H^-1 g is negligible (Stata's nrtolerance)
    # and a boundary stop was checked against the interior next to it
    converged = bool(np.isfinite(dev) and decrement < _NR_TOL and verified)
    if not converged:
        why = ("Newton decrement %.3g" % decrement) if verified else "a boundary stop could not be verified"
        warn_user("the optimizer did not converge (%s after %d iterations): %s" % (why, run.n_iter, msg),
                  ConvergenceWarning)
    out = OptResult(theta, float(dev), converged, run.n_iter, f.n + f.n_grad, msg, run.history,
                    _at_bound(theta, bounds), n_grad=f.n_grad, evaluation=f.evaluation(theta))
    if nr is not None:
        out.psi, out.psi_free, out.hessian_psi = nr.psi, nr.free, nr.hessian
    return out


_NR_TOL = 1e-5  # Newton decrement (deviance units) below which a fit has converged
_NR_EXACT = 1e-13  # below this not even the (one-evaluation) Newton step is taken
_NR_STALE = 1e-6  # after a step from a decrement below this, the point is final (its Hessian is kept)
_NR_FAR = 1e-2  # after a decrement above this the next Hessian only steers (psi_hessian(steer=True))


def psi_hessian(objective: Objective, psi: np.ndarray, free: np.ndarray, count=None,
                rel: float = 1e-4, steer: bool = False) -> tuple[np.ndarray, np.ndarray, float, bool]:
    """``(H, g, f, exact)``: Hessian (over ``free``) and gradient of -2 log-likelihood in
    ``psi = (theta, log sigma2)``, by central differences of the analytic gradient
    in the free ``theta`` (``2 k`` gradient calls, not ``k^2`` values); the
    ``log sigma2`` row is closed form (``d2f/ds2 = r2 / sigma2``).  ``steer=True``
    (a Newton step far from the optimum) lets the Hessian from values take its
    cross terms one-sided; ``exact`` says whether ``H`` has full accuracy (the
    standard errors need it)."""
    closed = objective.estimation_hessian(psi, None if count is None else count.evaluate)
    idx = np.flatnonzero(free)
    if closed is not None:  # the single-block kernel's closed form
        if count is not None:
            count.n_grad += 1
        f0, g0, H = closed
        return H[np.ix_(idx, idx)], g0[idx], f0, True
    if objective.value_hessian:  # a large dense crossed block: values are cheaper than gradients
        f0, g0, H = objective.estimation_hessian_values(psi, free[:-1], central=not steer,
                                                       evaluate=None if count is None else count.evaluate)
        return H, g0, f0, not steer
    f0, g0 = objective.estimation_value_and_gradient(psi)
    k = idx.size
    H = np.zeros((k, k))
    for col, i in enumerate(idx[:-1] if free[-1] else idx):
        h = rel * max(abs(psi[i]), 0.05)
        up, dn = psi.copy(), psi.copy()
        up[i] += h
        dn[i] -= h
        H[:, col] = (objective.estimation_value_and_gradient(up)[1][idx]
                     - objective.estimation_value_and_gradient(dn)[1][idx]) / (2.0 * h)
        if count is not None:
            count.n_grad += 2
    if free[-1]:
        H[-1, -1] = objective.n_eff - g0[-1]  # r2 / sigma2 = n_eff - df/ds
        H[:-1, -1] = H[-1, :-1]
    H = 0.5 * (H + H.T)
    if count is not None:
        count.n_grad += 1
    return H, g0[idx], f0, True


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
                      log: Optional[Callable[[float], None]] = None, count=None) -> NewtonResult:
    """Newton-Raphson on -2 log-likelihood in the estimation metric ``psi = (theta, log sigma2)``.

    Parameters at a bound stay fixed.  The Hessian is the central difference of
    the analytic gradient (:func:`psi_hessian`).  The last Hessian is
    returned: the fit's standard errors come from it, so the final
    Newton iteration and the standard errors share one set of evaluations
    (Stata does the same).  A step taken with a decrement below ``_NR_STALE``
    leaves the point converged (quadratic convergence) and its Hessian is
    kept, as the step is tiny.
    """
    count = count if count is not None else _Counter(objective)
    sigma2 = count.evaluate(theta).r2 / objective.n_eff
    psi = np.append(np.asarray(theta, dtype=float), np.log(sigma2))
    free = np.append(~_at_bound(theta, bounds), True)
    psi_bounds = list(bounds) + [(None, None)]
    H = None
    decrement = np.inf
    exact = True  # whether H is accurate enough for the standard errors
    it = 0
    for it in range(1, max_iter + 1):
        at_H = (psi, free)
        H, g, fx, exact = psi_hessian(objective, psi, free, count, steer=decrement >= _NR_FAR)
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
            cand = psi.copy()
            cand[free] += shrink * step
            cand = _project(cand, psi_bounds)
            fc = count.neg2ll(cand)
            if np.isfinite(fc) and fc <= fx:
                psi, fx = cand, fc
                break
        else:
            break
        if log:
            log(fx)
        if decrement < _NR_STALE:
            break
        free = np.append(~_at_bound(psi[:-1], bounds), True)
    if not exact:
        # stopped on a cheap Hessian: the accurate one at the same point (the evaluations
        # the two share are cached, so this costs the k(k-1)/2 missing ones)
        H = psi_hessian(objective, *at_H, count)[0]
    theta = psi[:-1]
    dev = count.value(theta)  # profiled: sigma2 at its optimum given theta (<= fx)
    return NewtonResult(theta, float(dev), it, decrement, psi, free, H)


def _fmt_ll(v: float) -> str:
    """Stata's ``%10.0g``-like format for log likelihoods."""
    s = "%.8g" % v
    if "e" in s:
        s = "%.4e" % v
    return s
