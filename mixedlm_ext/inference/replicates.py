"""Refitting a model to many responses: the work of the parametric bootstrap.

Every replicate shares the design: ``X``, ``Z``, the groupings, ``Z'Z``,
``Z'X`` and ``X'X`` never change, only ``Z'y``, ``X'y`` and ``y'y`` do
(:func:`~.simulate.design_for_response`).  Two ways to refit:

* :func:`refit_one`: the full optimiser (:func:`~mixedlm_ext.fit.optimizer.optimize`,
  with its boundary verification) on the design carrying one response,
  started from the estimate.  Any model.
* :class:`SingleLevelBatch`: for the common two-level case (one grouping
  level, independent residuals, no weights, a covariance structure whose
  relative factor is linear in ``theta``) the profiled deviance of *all*
  replicates, each at its own ``theta``, in one vectorised evaluation, and
  Newton's method on all of them at once (central-difference gradient and
  Hessian in ``theta``, a batched line search).  A replicate whose Newton
  iterations do not converge in the interior (a variance near zero, say)
  is refitted by :func:`refit_one`, so the fast path never accepts a stop it
  cannot verify.
"""
from __future__ import annotations

import warnings
from typing import Optional

import numpy as np

from ..core.linalg import batched_cholesky, batched_lower_solve
from ..design.types import Design
from ..fit.objective import Objective
from ..fit.optimizer import optimize

PASS_ELEMS = 4_000_000  # bound on the per-pass temporaries of the batched deviance (elements)


def params_at(objective: Objective, theta: np.ndarray, beta: np.ndarray, sigma2: float) -> np.ndarray:
    """``(beta, phi)``: the fixed effects and the reported variance components."""
    return np.concatenate([beta, objective.natural_from_theta(theta, sigma2)])


def refit_one(objective: Objective, design: Design, theta0: np.ndarray) -> tuple[np.ndarray, bool, float]:
    """Full refit of ``design`` (a design of ``objective``'s model with a new response)
    from ``theta0``; returns ``(params, converged, deviance)``."""
    ob = Objective(design, reml=objective.reml)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt = optimize(ob, theta0, em_iterations=0)
    prof = ob.profile(opt.theta)
    return params_at(ob, opt.theta, prof.beta, prof.sigma2), bool(opt.converged), float(opt.deviance)


def interior_starts(x0: np.ndarray, bounds) -> list[np.ndarray]:
    """``x0`` and, when some parameters sit at a bound, ``x0`` with them moved inward
    by 0.1 and 0.5: at ``theta = 0`` the deviance is flat (even in ``theta``), so a
    local optimiser started there never leaves, though the optimum may be inside."""
    at = [i for i, (lo, hi) in enumerate(bounds[: x0.size]) if lo is not None and x0[i] - lo < 1e-4]
    out = [x0]
    for step in (0.1, 0.5):
        if at:
            x = x0.copy()
            x[at] = [bounds[i][0] + step for i in at]
            out.append(x)
    return out


def linear_factor_map(objective: Objective) -> Optional[np.ndarray]:
    """``A`` with ``Lambda(theta) = sum_k theta_k A[k]`` when the relative factor is
    linear in ``theta`` (identity, independent, unstructured), else None."""
    k = objective.n_theta
    if k == 0:
        return None
    rng = np.random.default_rng(0)
    try:
        A = np.stack([objective.lambda_from_theta(np.eye(k)[i]) for i in range(k)])
        for _ in range(2):
            t = rng.uniform(0.2, 2.0, k) * rng.choice([-1.0, 1.0], k)
            if not np.allclose(objective.lambda_from_theta(t), np.tensordot(t, A, axes=1), rtol=1e-12, atol=1e-12):
                return None
    except (np.linalg.LinAlgError, ValueError, FloatingPointError):
        return None
    return A


class SingleLevelBatch:
    """Profiled deviances of many responses on one single-level design (see the module docstring)."""

    def __init__(self, objective: Objective, A: np.ndarray):
        d = objective.design
        self.objective = objective
        self.A = A  # (k, Q, Q)
        self.p = d.p
        self.ZtZ = d.ZtZ  # (G, Q, Q)
        self.ZtX = d.ZtXY[:, :, : d.p]  # (G, Q, p)
        self.XtX = d.XYtXY[: d.p, : d.p]
        self.n_eff = objective.n_eff
        self.reml = objective.reml
        self.logdet_Rx2 = d.logdet_Rx2
        self.bounds = objective.theta_bounds()

    @classmethod
    def of(cls, objective: Objective) -> Optional["SingleLevelBatch"]:
        """The batch for ``objective``'s model, or None when the model is not of that kind."""
        d = objective.design
        single = len(d.re_level_indices()) == 1 and d.levels[-1].q > 0
        plain = objective.residual.n_params == 0 and d.spec.residual.kind == "independent"
        if d.sparse_re or not single or not plain or d.weights is not None or d.ZtZ is None:
            return None
        A = linear_factor_map(objective)
        return None if A is None else cls(objective, A)

    def pieces(self, Theta: np.ndarray, Zty: np.ndarray, yty: np.ndarray):
        """``(deviance, beta_w, r2)`` per row of ``Theta`` (``(B, k)``) for the responses
        with per-group ``Z'y`` ``Zty`` (``(B, G, Q)``) and ``y'y`` ``yty`` (working metric)."""
        B = Theta.shape[0]
        G, Q, _ = self.ZtZ.shape
        Lam = np.tensordot(Theta, self.A, axes=1)  # (B, Q, Q)
        if Q == 1:
            lam = Lam[:, 0, 0]
            l = np.sqrt(lam[:, None] ** 2 * self.ZtZ[None, :, 0, 0] + 1.0)  # (B, G)
            logdet = 2.0 * np.log(l).sum(axis=1)
            UX = (lam[:, None, None] * self.ZtX[None, :, 0, :]) / l[:, :, None]  # (B, G, p)
            Uy = lam[:, None] * Zty[:, :, 0] / l  # (B, G)
        else:
            LamT = np.swapaxes(Lam, 1, 2)[:, None]  # (B, 1, Q, Q)
            M = LamT @ self.ZtZ[None] @ Lam[:, None] + np.eye(Q)  # (B, G, Q, Q)
            L = batched_cholesky(M.reshape(B * G, Q, Q))
            logdet = 2.0 * np.log(np.diagonal(L, axis1=1, axis2=2)).reshape(B, G * Q).sum(axis=1)
            CX = (LamT @ self.ZtX[None]).reshape(B * G, Q, self.p)
            Cy = (Zty @ Lam).reshape(B * G, Q, 1)  # row g: (Lambda' Z_g'y)'
            UX = batched_lower_solve(L, CX).reshape(B, G * Q, self.p)
            Uy = batched_lower_solve(L, Cy).reshape(B, G * Q)
        BXX = self.XtX[None] - np.swapaxes(UX, 1, 2) @ UX
        BXy = -(np.swapaxes(UX, 1, 2) @ Uy[:, :, None])[:, :, 0]
        Byy = yty - (Uy * Uy).sum(axis=1)
        if self.p:
            RX = np.linalg.cholesky(BXX)
            beta_w = np.linalg.solve(BXX, BXy[:, :, None])[:, :, 0]
            r2 = Byy - np.einsum("bi,bi->b", BXy, beta_w)
            logdet_X = 2.0 * np.log(np.diagonal(RX, axis1=1, axis2=2)).sum(axis=1) + self.logdet_Rx2
        else:
            beta_w, r2, logdet_X = np.zeros((B, 0)), Byy, np.zeros(B)
        r2 = np.maximum(r2, 1e-300)
        dev = logdet + self.n_eff * (1.0 + np.log(2.0 * np.pi * r2 / self.n_eff))
        if self.reml:
            dev = dev + logdet_X
        return dev, beta_w, r2

    def deviance(self, Theta: np.ndarray, Zty: np.ndarray, yty: np.ndarray,
                 which: Optional[np.ndarray] = None) -> np.ndarray:
        """Deviance of each row of ``Theta`` for the response ``which[i]`` (default ``i``),
        in passes of bounded size (temporary memory ``O(PASS_ELEMS)``)."""
        which = np.arange(Theta.shape[0]) if which is None else which
        G, Q, _ = self.ZtZ.shape
        rows = max(1, PASS_ELEMS // max(1, G * Q * (Q + self.p + 2)))
        out = np.empty(Theta.shape[0])
        with np.errstate(all="ignore"):
            for s in range(0, Theta.shape[0], rows):
                w = which[s:s + rows]
                out[s:s + rows] = self._deviance_pass(Theta[s:s + rows], Zty[w], yty[w])
        return out

    def _deviance_pass(self, Theta, Zty, yty) -> np.ndarray:
        try:
            return self.pieces(Theta, Zty, yty)[0]
        except np.linalg.LinAlgError:  # one bad row: evaluate row by row
            out = np.full(Theta.shape[0], np.inf)
            for i in range(Theta.shape[0]):
                try:
                    out[i] = self.pieces(Theta[i:i + 1], Zty[i:i + 1], yty[i:i + 1])[0][0]
                except np.linalg.LinAlgError:
                    pass
            return np.where(np.isfinite(out), out, np.inf)

    def _project(self, Theta: np.ndarray) -> np.ndarray:
        out = Theta.copy()
        for i, (lo, hi) in enumerate(self.bounds):
            if lo is not None:
                out[:, i] = np.maximum(out[:, i], lo)
            if hi is not None:
                out[:, i] = np.minimum(out[:, i], hi)
        return out

    def _grad_hess(self, Theta, f0, Zty, yty, h):
        """Central-difference gradient and Hessian for every replicate at once."""
        B, k = Theta.shape
        pts, keys = [], []
        for i in range(k):
            for s in (1.0, -1.0):
                pts.append(Theta + s * h[:, i:i + 1] * np.eye(k)[i])
                keys.append((i, s))
        for i in range(k):
            for j in range(i + 1, k):
                for s in (1.0, -1.0):
                    pts.append(Theta + s * (h[:, i:i + 1] * np.eye(k)[i] + h[:, j:j + 1] * np.eye(k)[j]))
        n_pts = len(pts)
        vals = self.deviance(np.concatenate(pts), Zty, yty, np.tile(np.arange(B), n_pts)).reshape(n_pts, B)
        fp, fm = vals[0:2 * k:2].T, vals[1:2 * k:2].T  # (B, k)
        g = (fp - fm) / (2 * h)
        H = np.zeros((B, k, k))
        idx = np.arange(k)
        H[:, idx, idx] = (fp - 2 * f0[:, None] + fm) / h ** 2
        m = 2 * k
        for i in range(k):
            for j in range(i + 1, k):
                v = (vals[m] + vals[m + 1] - fp[:, i] - fm[:, i] - fp[:, j] - fm[:, j] + 2 * f0) / (2 * h[:, i] * h[:, j])
                H[:, i, j] = H[:, j, i] = v
                m += 2
        return g, H

    def newton(self, Theta: np.ndarray, Zty: np.ndarray, yty: np.ndarray, max_iter: int = 30,
               tol: float = 1e-8) -> tuple[np.ndarray, np.ndarray]:
        """Newton's method on every replicate's profiled deviance from ``Theta``;
        returns ``(Theta, converged)`` (converged: a negligible Newton decrement at a
        positive-definite Hessian in the interior)."""
        Theta = Theta.copy()
        B, k = Theta.shape
        f = self.deviance(Theta, Zty, yty)
        done = np.zeros(B, dtype=bool)
        ok = np.zeros(B, dtype=bool)
        shrink = np.array([1.0, 0.5, 0.25, 0.1, 0.01])
        for _ in range(max_iter):
            act = np.flatnonzero(~done)
            if not act.size:
                break
            T, Za, ya, fa = Theta[act], Zty[act], yty[act], f[act]
            h = 1e-4 * np.maximum(np.abs(T), 0.05)
            g, H = self._grad_hess(T, fa, Za, ya, h)
            w, V = np.linalg.eigh(H)
            pd_ = (w > 0).all(axis=1) & np.isfinite(w).all(axis=1)
            wabs = np.maximum(np.abs(w), 1e-8 * np.maximum(1.0, np.abs(w).max(axis=1, keepdims=True)))
            step = -np.einsum("bij,bj->bi", V, np.einsum("bji,bj->bi", V, g) / wabs)
            dec = -np.einsum("bi,bi->b", g, step)
            cands = self._project((T[None] + shrink[:, None, None] * step[None]).reshape(-1, k))
            fc = self.deviance(cands, Za, ya, np.tile(np.arange(act.size), shrink.size)).reshape(shrink.size, -1)
            fc = np.where(np.isfinite(fc), fc, np.inf)
            best = np.argmin(fc, axis=0)
            fbest = fc[best, np.arange(act.size)]
            better = fbest <= fa
            newT = np.where(better[:, None], cands.reshape(shrink.size, act.size, k)[best, np.arange(act.size)], T)
            Theta[act] = newT
            f[act] = np.where(better, fbest, fa)
            conv = pd_ & (dec < tol)  # negligible decrement: the step just taken ends it
            done[act] = conv | ~better
            ok[act] = conv
        interior = np.ones(B, dtype=bool)
        for i, (lo, hi) in enumerate(self.bounds):
            if lo is not None:
                interior &= Theta[:, i] - lo > 1e-3
            if hi is not None:
                interior &= hi - Theta[:, i] > 1e-3
        return Theta, ok & interior & np.isfinite(f)

    def finish(self, Theta: np.ndarray, Zty, yty, b_ols: np.ndarray) -> np.ndarray:
        """``(B, n_params)`` parameters at ``Theta``; ``b_ols`` ``(p, B)`` the responses' OLS fits."""
        G, Q, _ = self.ZtZ.shape
        rows = max(1, PASS_ELEMS // max(1, G * Q * (Q + self.p + 2)))
        parts = [self.pieces(Theta[s:s + rows], Zty[s:s + rows], yty[s:s + rows])[1:]
                 for s in range(0, Theta.shape[0], rows)]
        beta_w = np.concatenate([b for b, _ in parts])
        r2 = np.concatenate([r for _, r in parts])
        d = self.objective.design
        beta = beta_w @ d.Rx_inv.T + b_ols.T if self.p else beta_w
        sigma2 = r2 / self.n_eff
        return np.stack([params_at(self.objective, Theta[i], beta[i], sigma2[i]) for i in range(Theta.shape[0])])
