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

from ..core.linalg import LOG2PI, block_diag, cho_solve_small
from ..design.types import Design
from ..engines.nested import Elimination
from ..engines.select import make_engine
from ..structures.residual.structure import ResidualStructure


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
        elim, logdet_R = self.eliminate(Lam, rho, keep)
        B = elim.B
        d = self.design
        p = d.p
        if p:
            # B[:p, :p] = sigma2 X'V^-1 X in the working metric (near identity)
            RX = np.linalg.cholesky(B[:p, :p])
            beta_w = cho_solve_small(RX, B[:p, p])
            r2 = float(B[p, p] - B[:p, p] @ beta_w)
            # back from the working (orthonormalised, OLS-centred) fixed part
            beta = d.Rx_inv @ beta_w + d.b_ols
            logdet_X = 2.0 * float(np.log(np.diagonal(RX)).sum()) + d.logdet_Rx2
            xtvx = d.Rx.T @ B[:p, :p] @ d.Rx
        else:
            beta, r2, logdet_X, xtvx = np.zeros(0), float(B[0, 0]), 0.0, np.zeros((0, 0))
            beta_w = beta
        r2 = max(r2, 1e-300)
        sigma2 = r2 / self.n_eff
        dev = elim.logdet + logdet_R + self.weight_constant + self.n_eff * (1.0 + np.log(2.0 * np.pi * sigma2))
        if self.reml:
            dev += logdet_X
        return Profile(float(dev), beta, sigma2, r2, elim.logdet, logdet_X, float(logdet_R), xtvx, elim, beta_w)

    def profile(self, theta: np.ndarray, keep: bool = False) -> Profile:
        parts, rho = self.split_theta(theta)
        if self._crossed:  # the crossed engine takes per-block factors, never the dense Q x Q Lambda
            return self._profile([b.structure.relative_factor(t) for b, t in zip(self.blocks, parts)], rho, keep)
        return self._profile(self.lambda_from_theta(theta), rho, keep)

    def deviance(self, theta: np.ndarray) -> float:
        """Profiled -2 log-likelihood (REML: restricted); ``inf`` where undefined."""
        try:
            return self.profile(theta).deviance
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

    def _neg2ll(self, prof: Profile, sigma2: float, r2: Optional[float] = None) -> float:
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

    def neg2ll_estimation(self, psi: np.ndarray) -> float:
        """-2 log-likelihood (beta profiled) in the estimation metric
        ``psi = (theta, log sigma2)``: smooth and well conditioned even where the
        reported covariance matrices are nearly singular."""
        psi = np.asarray(psi, dtype=float)
        try:
            prof = self.profile(psi[:-1])
        except (np.linalg.LinAlgError, FloatingPointError, ValueError):
            return np.inf
        return self._neg2ll(prof, float(np.exp(psi[-1])))

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
