"""The objective: profiled deviance as a pure function of the parameters.

``theta`` (optimisation metric) is the concatenation, coarsest level first,
of every block's covariance parameters, followed by the residual structure's
parameters.  ``phi`` (reported metric) is the concatenation of every block's
natural parameters (variances, covariances) followed by the residual's
(``var(Residual)`` or ``phi1 ... var(e)``), i.e. Stata's table order.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy.linalg import lapack

from ..core.linalg import LOG2PI, block_diag
from ..design.types import Design, block_positions
from ..engines.nested import Elimination
from ..engines.select import make_engine
from ..structures.residual.structure import ResidualStructure
from .kernels import single_block_kernel
from .gradient import (FactorJacobians, b_adjoint, block_factor_gradients, dense_lambda_gradient,
                       residual_gradient)


VALUE_HESSIAN_MIN_Q2 = 200  # dense crossed block from which second derivatives come from values


@dataclass
class Evaluation:
    """What the optimizer needs from one ``theta``: the deviance's pieces (no
    back-transformation of the fixed effects)."""

    deviance: float
    r2: float
    logdet_L: float
    logdet_R: float
    logdet_X: float
    beta_w: np.ndarray  # GLS fixed effects in the working metric
    B: np.ndarray  # (p+1, p+1) Schur complement of [X y]
    RX: np.ndarray = None  # lower Cholesky factor of B[:p, :p] (LAPACK layout: upper triangle not cleared)
    kernel: Optional[object] = None  # the single-block kernel's evaluation (fit.kernels), if used


@dataclass
class Profile:
    """Everything computed at one ``theta``."""

    deviance: float  # -2 log-likelihood, sigma2 and beta profiled
    beta: np.ndarray
    sigma2: float
    r2: float  # penalised residual sum of squares
    logdet_L: float
    logdet_X: float  # log|X' V^-1 X * sigma2|
    logdet_R: float
    xtvx: np.ndarray  # (p, p) = sigma2 * X'V^-1 X (GLS information in units of sigma2)
    elim: Elimination
    beta_w: np.ndarray = None  # beta in the working metric (for the engine's back-substitution)


class Objective:
    """Profiled (restricted) deviance of a bound design."""

    keeps_factors = True  # profile(keep=True) holds the per-group factors (EM, BLUPs from them)

    def __init__(self, design: Design, reml: bool = False, residual: Optional[ResidualStructure] = None):
        self.design = design
        self.reml = bool(reml)
        self.residual = (residual or design.residual_structure()).bind(design)
        self._crossed = design.sparse_re and self.residual.is_plain  # per-block factors, no dense Lambda
        self.engine, self._panel_starts = make_engine(design, self.residual.is_plain)
        self.blocks = design.blocks  # coarsest first
        self._theta_sizes = [b.structure.n_theta for b in self.blocks]
        self._nat_sizes = [b.structure.n_natural for b in self.blocks]
        self.n_theta_re = sum(self._theta_sizes)
        self.n_theta = self.n_theta_re + self.residual.n_params
        self.n_natural = sum(self._nat_sizes) + len(self.residual.names())
        n, p = design.n, design.p
        self.n_eff = n - p if self.reml else n
        self.weight_constant = 0.0  # -2 log-likelihood term of precision weights
        if design.weights is not None and design.weights.is_precision:
            self.weight_constant = design.weights.neg2_logdet
        elif design.weights is not None:  # ML only: sum of the total weights
            self.n_eff = design.weights.total
        self._positions = block_positions(design)
        self._diagonal = all(b.structure.diagonal_factor for b in self.blocks)
        self.kernel = single_block_kernel(self)  # closed forms for one small block, else None
        self._jacobians = FactorJacobians(self.blocks)

    # -- parameter layout ----------------------------------------------------
    def split_theta(self, theta: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        theta = np.asarray(theta, dtype=float)
        parts, i = [], 0
        for k in self._theta_sizes:
            parts.append(theta[i:i + k])
            i += k
        return parts, theta[i:]

    def theta_start(self) -> np.ndarray:
        return np.concatenate([b.structure.theta_start() for b in self.blocks] + [self.residual.start()])

    def initial_theta(self) -> np.ndarray:
        """Where the optimizer starts: :meth:`theta_start`, or for crossed scalar terms the
        engine's moment estimates (:meth:`~mixedlm_ext.engines.crossed.CrossedEngine.start_factors`)."""
        start = self.theta_start()
        if self._crossed and all(b.structure.n_theta == 1 for b in self.blocks):
            factors = self.engine.start_factors()
            if factors is not None:
                start = np.concatenate([np.array(factors, dtype=float), start[len(factors):]])
        return start

    def equivalent_thetas(self, theta: np.ndarray) -> list[np.ndarray]:
        """Other ``theta`` with the same likelihood, one block changed at a time
        (see :meth:`CovStruct.equivalent_thetas`); used to check boundary stops."""
        parts, rho = self.split_theta(theta)
        out = []
        for k, (blk, part) in enumerate(zip(self.blocks, parts)):
            for alt in blk.structure.equivalent_thetas(part):
                new = list(parts)
                new[k] = alt
                out.append(np.concatenate(new + [rho]))
        return out

    def theta_names(self) -> list[str]:
        """Labels of ``theta``: ``level:theta1``, ... per block, then the residual's."""
        out = ["%s:theta%d" % (b.label, k + 1) for b, n in zip(self.blocks, self._theta_sizes) for k in range(n)]
        return out + ["Residual:rho%d" % (k + 1) for k in range(self.residual.n_params)]

    def theta_bounds(self) -> list:
        out = []
        for b in self.blocks:
            out += b.structure.theta_bounds()
        return out + list(self.residual.bounds())

    def natural_names(self) -> list[tuple[str, str]]:
        """``(level, parameter)`` labels of ``phi`` in Stata's table order."""
        out = []
        for b in self.blocks:
            out += [(b.label, nm) for nm in b.structure.natural_names(b.effects)]
        return out + [("Residual", nm) for nm in self.residual.names()]

    def natural_kinds(self) -> list[str]:
        out = []
        for b in self.blocks:
            out += b.structure.natural_kinds()
        return out + list(self.residual.kinds())

    # -- Lambda --------------------------------------------------------------
    def lambda_from_factors(self, block_factors: list[np.ndarray]) -> np.ndarray:
        """Full ``Q x Q`` relative factor from the per-block factors (``blocks`` order),
        finest level first (matches ``Z``)."""
        per_level, i = [], 0
        for lvl in self.design.levels:
            k = len(lvl.blocks)
            per_level.append(block_diag(*block_factors[i:i + k]) if k else np.zeros((0, 0)))
            i += k
        return block_diag(*per_level[::-1]) if per_level else np.zeros((0, 0))

    def lambda_from_theta(self, theta: np.ndarray) -> np.ndarray:
        parts, _ = self.split_theta(theta)
        return self.lambda_from_factors([b.relative_factor(t) for b, t in zip(self.blocks, parts)])

    # -- evaluation ----------------------------------------------------------
    def crossproducts(self, rho: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """``(ZtZ, ZtXY, XYtXY, logdet_R)``: the whitened per-group ``Z'Z`` and
        ``Z'[X y]`` of the finest level with random effects, the global
        ``[X y]'[X y]`` and the residual structure's log-determinant."""
        ZtZ, ZtXY, XYtXY, logdet_R = self.residual.crossproducts(rho)
        if self._panel_starts is not None:  # panels finer than the finest random effects
            ZtZ = np.add.reduceat(ZtZ, self._panel_starts, axis=0)
            ZtXY = np.add.reduceat(ZtXY, self._panel_starts, axis=0)
        return ZtZ, ZtXY, XYtXY, logdet_R

    def eliminate(self, Lam, rho: np.ndarray, keep: bool = False) -> tuple[Elimination, float]:
        """The engine's elimination at ``Lambda`` and residual parameters ``rho``
        (``keep``: with the per-group factors), and ``log|C|`` of the residual structure."""
        ZtZ, ZtXY, XYtXY, logdet_R = self.crossproducts(rho)
        return self.engine.eliminate(ZtZ, ZtXY, XYtXY, Lam, keep=keep), logdet_R

    def _profile(self, Lam: np.ndarray, rho: np.ndarray, keep: bool = False) -> Profile:
        return self._finish(*self.eliminate(Lam, rho, keep))

    def _evaluation(self, B: np.ndarray, logdet: float, logdet_R: float) -> Evaluation:
        """GLS fixed effects (working metric), ``r2`` and the deviance from ``B``."""
        p = self.design.p
        RX = None
        if p:
            # B[:p, :p] = sigma2 X'V^-1 X in the working metric (near identity); LAPACK directly:
            # the numpy/scipy wrappers cost more than the factorisation of a p x p matrix
            RX, info = lapack.dpotrf(B[:p, :p], lower=1, clean=0)
            if info != 0:
                raise np.linalg.LinAlgError("X'V^-1X is not positive definite")
            beta_w, _ = lapack.dpotrs(RX, B[:p, p], lower=1)
            r2 = float(B[p, p] - B[:p, p] @ beta_w)
            logdet_X = 2.0 * float(np.log(np.diagonal(RX)).sum()) + self.design.logdet_Rx2
        else:
            beta_w, r2, logdet_X = np.zeros(0), float(B[0, 0]), 0.0
        r2 = max(r2, 1e-300)
        dev = logdet + logdet_R + self.weight_constant + self.n_eff * (1.0 + np.log(2.0 * np.pi * r2 / self.n_eff))
        if self.reml:
            dev += logdet_X
        return Evaluation(float(dev), r2, float(logdet), float(logdet_R), logdet_X, beta_w, B, RX)

    def _finish(self, elim: Elimination, logdet_R: float) -> Profile:
        """The profile from one elimination: GLS fixed effects, sigma2, deviance."""
        return self.profile_from(self._evaluation(elim.B, elim.logdet, logdet_R), elim)

    def profile_from(self, ev: Evaluation, elim: Optional[Elimination] = None) -> Profile:
        """The :class:`Profile` of an evaluation (fixed effects back in the user's metric);
        ``elim`` is None unless the elimination was kept."""
        d = self.design
        B, p = ev.B, d.p
        if p:  # back from the working (orthonormalised, OLS-centred) fixed part
            beta = d.Rx_inv @ ev.beta_w + d.b_ols
            xtvx = d.Rx.T @ B[:p, :p] @ d.Rx
        else:
            beta, xtvx = np.zeros(0), np.zeros((0, 0))
        return Profile(ev.deviance, beta, ev.r2 / self.n_eff, ev.r2, ev.logdet_L, ev.logdet_X, ev.logdet_R, xtvx,
                       elim, ev.beta_w)

    def profile(self, theta: np.ndarray, keep: bool = False) -> Profile:
        parts, rho = self.split_theta(theta)
        if self._crossed:  # the crossed engine takes per-block factors, never the dense Q x Q Lambda
            return self._profile([b.structure.relative_factor(t) for b, t in zip(self.blocks, parts)], rho, keep)
        return self._profile(self.lambda_from_theta(theta), rho, keep)

    def _factor_args(self, parts: list[np.ndarray]):
        """The engine's ``Lambda``: per-block factors (crossed engine) or the dense matrix."""
        factors = [b.structure.relative_factor(t) for b, t in zip(self.blocks, parts)]
        return factors if self._crossed else self.lambda_from_factors([b.expand(f) for b, f in zip(self.blocks,
                                                                                                  factors)])

    def evaluate(self, theta: np.ndarray) -> Evaluation:
        """The deviance's pieces at ``theta`` (raises where undefined)."""
        parts, rho = self.split_theta(theta)
        if self.kernel is not None:
            ke = self.kernel.evaluate(self.blocks[0].structure.relative_factor(parts[0]))
            ev = self._evaluation(ke.B, ke.logdet, 0.0)
            ev.kernel = ke
            return ev
        elim, logdet_R = self.eliminate(self._factor_args(parts), rho)
        return self._evaluation(elim.B, elim.logdet, logdet_R)

    def lambda_adjoint(self, Lam: np.ndarray, rho: np.ndarray, B_bar: np.ndarray,
                       elim: Optional[Elimination] = None) -> np.ndarray:
        """``d (logdet_L + <B_bar, B>) / d Lambda`` of the nested elimination at ``(Lam, rho)``
        (a sum over the groups: the parts of a split design add up); ``elim``: that
        elimination, computed with ``keep=True`` (default: computed here)."""
        ZtZ, ZtXY, XYtXY, _ = self.crossproducts(rho)
        if elim is None:
            elim = self.engine.eliminate(ZtZ, ZtXY, XYtXY, Lam, keep=True)
        return self._nested_adjoint(elim, B_bar, ZtZ, ZtXY, Lam)[0]

    def _nested_adjoint(self, elim: Elimination, B_bar: np.ndarray, ZtZ, ZtXY, Lam):
        """``(d f / d Lambda, M_bar, C_bar)`` through the nested engine's elimination."""
        M_bar, C_bar = self.engine.backward(elim, B_bar)
        return dense_lambda_gradient(M_bar, C_bar, ZtZ, ZtXY, Lam, self._diagonal), M_bar, C_bar

    def gradient_pieces(self, theta: np.ndarray, coef_r2=None) -> tuple[Evaluation, np.ndarray]:
        """``(evaluation, gradient)`` of ``f = logdet_L + logdet_R (+ log|X'V^-1X|) + c * r2``
        with respect to ``theta``, ``c = coef_r2`` (a function of the evaluation;
        default ``n_eff / r2``: the gradient of the profiled deviance)."""
        parts, rho = self.split_theta(theta)
        if self.kernel is not None:
            lam = self.blocks[0].structure.relative_factor(parts[0])
            ke = self.kernel.evaluate(lam)
            ev = self._evaluation(ke.B, ke.logdet, 0.0)
            c = self.n_eff / ev.r2 if coef_r2 is None else coef_r2(ev)
            lam_bar = ke.backward(b_adjoint(ev, c, self.reml))
            return ev, self._jacobians.theta_gradient(parts, [lam_bar])
        inputs = self.crossproducts(rho)
        lam = self._factor_args(parts)
        elim = self.engine.eliminate(*inputs[:3], lam, keep=True)
        ev = self._evaluation(elim.B, elim.logdet, inputs[3])
        c = self.n_eff / ev.r2 if coef_r2 is None else coef_r2(ev)
        B_bar = b_adjoint(ev, c, self.reml)
        if self._crossed:
            return ev, self._jacobians.theta_gradient(parts, self.engine.factor_gradient(elim, B_bar))
        if not self.n_theta_re:
            M_bar = C_bar = None
            grad_re = np.zeros(0)
        else:
            Lam_bar, M_bar, C_bar = self._nested_adjoint(elim, B_bar, inputs[0], inputs[1], lam)
            grad_re = self._jacobians.theta_gradient(parts, block_factor_gradients(Lam_bar, self._positions))
        if not rho.size:
            return ev, grad_re
        if M_bar is None:
            bars = (np.zeros_like(inputs[0]), np.zeros_like(inputs[1]), B_bar)
        else:
            bars = (np.matmul(np.matmul(lam, M_bar), lam.T), np.matmul(lam, C_bar), B_bar)
        grad_rho = residual_gradient(self.crossproducts, rho, bars, self.residual.bounds())
        return ev, np.concatenate([grad_re, grad_rho])

    def value_and_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Profiled deviance and its analytic gradient (``(inf, nan)`` where undefined)."""
        try:
            prof, g = self.gradient_pieces(theta)
        except (np.linalg.LinAlgError, FloatingPointError, ValueError):
            return np.inf, np.full(self.n_theta, np.nan)
        return prof.deviance, g

    def estimation_value_and_gradient(self, psi: np.ndarray) -> tuple[float, np.ndarray]:
        """:meth:`neg2ll_estimation` and its gradient in ``psi = (theta, log sigma2)``."""
        psi = np.asarray(psi, dtype=float)
        s2 = float(np.exp(psi[-1]))
        try:
            prof, g = self.gradient_pieces(psi[:-1], lambda _: 1.0 / s2)
        except (np.linalg.LinAlgError, FloatingPointError, ValueError):
            return np.inf, np.full(psi.size, np.nan)
        return self._neg2ll(prof, s2), np.append(g, self.n_eff - prof.r2 / s2)

    def estimation_hessian(self, psi: np.ndarray, evaluate=None) -> Optional[tuple[float, np.ndarray, np.ndarray]]:
        """``(f, gradient, Hessian)`` of :meth:`neg2ll_estimation` in ``psi`` in closed
        form (the single-block kernel, :mod:`.kernels`); None when no closed form
        applies (the optimizer then differentiates the gradient).  ``evaluate``
        (default :meth:`evaluate`) gives the evaluation at ``theta``."""
        if self.kernel is None:
            return None
        psi = np.asarray(psi, dtype=float)
        theta, s2 = psi[:-1], float(np.exp(psi[-1]))
        struct = self.blocks[0].structure
        ev = (evaluate or self.evaluate)(theta)
        ke = ev.kernel
        p = self.design.p
        A_inv = np.linalg.inv(ke.B[:p, :p]) if p else np.zeros((0, 0))
        dirs = struct.factor_jacobian(theta)
        second = None if struct.linear_factor else self._jacobians.second(0, theta)
        v = np.append(ev.beta_w, -1.0)
        g, H, dr = ke.second_order(dirs, second, v, A_inv, 1.0 / s2, self.reml)
        k = theta.size
        Hf = np.empty((k + 1, k + 1))
        Hf[:k, :k] = H
        Hf[:k, k] = Hf[k, :k] = -dr / s2
        Hf[k, k] = ev.r2 / s2
        return self._neg2ll(ev, s2), np.append(g, self.n_eff - ev.r2 / s2), Hf

    @property
    def value_hessian(self) -> bool:
        """Whether second derivatives are cheaper from values than from gradients:
        the crossed engine with a large dense block, where a gradient needs the
        block's inverse (about 2.6 factorisations) and a value one factorisation."""
        return bool(self._crossed and getattr(self.engine, "Q2", 0) >= VALUE_HESSIAN_MIN_Q2)

    def estimation_hessian_values(self, psi: np.ndarray, free: np.ndarray, rel: float = 1e-3,
                                  evaluate=None, central: bool = True) -> tuple[float, np.ndarray, np.ndarray]:
        """``(f, gradient, Hessian)`` of :meth:`neg2ll_estimation` in ``psi`` over the free
        ``theta`` (``free``, a mask over ``theta``) and ``log sigma2``, from values: every
        evaluation gives ``logdet`` and ``r2`` separately, so central differences of these
        two functions of ``theta`` (``1 + 2k + k(k-1)`` evaluations, through ``evaluate``,
        default :meth:`evaluate`) give the whole Hessian, the ``log sigma2`` row in closed
        form.  ``central=False``: the cross derivatives one-sided (``1 + 2k + k(k-1)/2``
        evaluations; the gradient and the diagonal stay central, the cross terms have an
        ``O(h)`` error), for Newton steps far from the optimum."""
        evaluate = self.evaluate if evaluate is None else evaluate
        psi = np.asarray(psi, dtype=float)
        theta, s2 = psi[:-1], float(np.exp(psi[-1]))
        idx = np.flatnonzero(free)
        k = idx.size

        def pieces(d: dict) -> np.ndarray:
            th = theta.copy()
            for i, v in d.items():
                th[idx[i]] += v
            ev = evaluate(th)
            return np.array([ev.logdet_L + ev.logdet_R + (ev.logdet_X if self.reml else 0.0), ev.r2]), ev

        F0, ev0 = pieces({})
        h = rel * np.maximum(np.abs(theta[idx]), 0.05)
        Fp = [pieces({i: h[i]})[0] for i in range(k)]
        Fm = [pieces({i: -h[i]})[0] for i in range(k)]
        D1 = np.array([(Fp[i] - Fm[i]) / (2.0 * h[i]) for i in range(k)]).reshape(k, 2)  # d(g, r2)/dtheta
        D2 = np.zeros((k, k, 2))
        for i in range(k):
            D2[i, i] = (Fp[i] - 2.0 * F0 + Fm[i]) / h[i] ** 2
            for j in range(i + 1, k):
                pp = pieces({i: h[i], j: h[j]})[0]
                if central:
                    mm = pieces({i: -h[i], j: -h[j]})[0]
                    D2[i, j] = (pp + mm - Fp[i] - Fm[i] - Fp[j] - Fm[j] + 2.0 * F0) / (2.0 * h[i] * h[j])
                else:
                    D2[i, j] = (pp - Fp[i] - Fp[j] + F0) / (h[i] * h[j])
                D2[j, i] = D2[i, j]
        c = np.array([1.0, 1.0 / s2])
        H = np.empty((k + 1, k + 1))
        H[:k, :k] = D2 @ c
        H[:k, k] = H[k, :k] = -D1[:, 1] / s2
        H[k, k] = ev0.r2 / s2
        g = np.append(D1 @ c, self.n_eff - ev0.r2 / s2)
        return self._neg2ll(ev0, s2), g, H

    def deviance(self, theta: np.ndarray) -> float:
        """Profiled -2 log-likelihood (REML: restricted); ``inf`` where undefined."""
        try:
            return self.evaluate(theta).deviance
        except (np.linalg.LinAlgError, FloatingPointError, ValueError):
            return np.inf

    # -- reported metric -----------------------------------------------------
    def natural_from_theta(self, theta: np.ndarray, sigma2: float) -> np.ndarray:
        parts, rho = self.split_theta(theta)
        out = [b.structure.natural_from_theta(t, sigma2) for b, t in zip(self.blocks, parts)]
        out.append(self.residual.natural(rho, sigma2))
        return np.concatenate(out)

    def split_natural(self, phi: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        parts, i = [], 0
        for k in self._nat_sizes:
            parts.append(phi[i:i + k])
            i += k
        return parts, phi[i:]

    def _neg2ll(self, prof, sigma2: float, r2: Optional[float] = None) -> float:
        """-2 log-likelihood from a profile at a given sigma2 (not profiled)."""
        r2 = prof.r2 if r2 is None else r2
        out = prof.logdet_L + prof.logdet_R + self.weight_constant + self.n_eff * (LOG2PI + np.log(sigma2)) \
            + r2 / sigma2
        if self.reml:
            out += prof.logdet_X
        return float(out)

    def _profile_natural(self, phi: np.ndarray) -> tuple[Profile, float]:
        """Profile at reported parameters ``phi``; returns it with their sigma2."""
        parts, res_nat = self.split_natural(np.asarray(phi, dtype=float))
        rho, sigma2 = self.residual.from_natural(res_nat)
        if not sigma2 > 0:
            raise ValueError("residual variance must be positive")
        if self._crossed:  # per-block factors for the crossed engine
            lam_arg = [b.structure.factor_from_natural(t, sigma2) for b, t in zip(self.blocks, parts)]
        else:
            lam_arg = self.lambda_from_factors([b.factor_from_natural(t, sigma2)
                                                for b, t in zip(self.blocks, parts)])
        return self._profile(lam_arg, rho), sigma2

    def neg2ll_estimation(self, psi: np.ndarray, evaluate=None) -> float:
        """-2 log-likelihood (beta profiled) in the estimation metric
        ``psi = (theta, log sigma2)``: smooth and well conditioned even where the
        reported covariance matrices are nearly singular (``evaluate``: default
        :meth:`evaluate`)."""
        psi = np.asarray(psi, dtype=float)
        try:
            ev = (evaluate or self.evaluate)(psi[:-1])
        except (np.linalg.LinAlgError, FloatingPointError, ValueError):
            return np.inf
        return self._neg2ll(ev, float(np.exp(psi[-1])))

    def natural_from_estimation(self, psi: np.ndarray) -> np.ndarray:
        """Reported parameters ``phi`` from ``psi = (theta, log sigma2)``."""
        psi = np.asarray(psi, dtype=float)
        return self.natural_from_theta(psi[:-1], float(np.exp(psi[-1])))

    def neg2ll_natural(self, phi: np.ndarray, beta: Optional[np.ndarray] = None) -> float:
        """-2 log-likelihood at reported parameters ``phi`` (sigma2 not profiled).

        ``beta=None`` profiles the fixed effects out (their GLS estimate);
        otherwise the likelihood is evaluated at ``beta`` (ML only: the REML
        criterion does not depend on ``beta``).
        """
        try:
            prof, sigma2 = self._profile_natural(phi)
        except (np.linalg.LinAlgError, ValueError):
            return np.inf
        r2 = prof.r2
        if beta is not None and not self.reml and self.design.p:
            d = np.asarray(beta, dtype=float) - prof.beta
            r2 = r2 + float(d @ prof.xtvx @ d)
        return self._neg2ll(prof, sigma2, r2)

    def vcov_beta_natural(self, phi: np.ndarray) -> np.ndarray:
        """``Var(beta_hat) = (X' V(phi)^-1 X)^-1`` at reported parameters ``phi``
        (Satterthwaite's degrees of freedom differentiate it; :mod:`mixedlm_ext.inference.smallsample`)."""
        prof, sigma2 = self._profile_natural(phi)
        return sigma2 * np.linalg.inv(prof.xtvx)
