"""Random-effects covariance structures.

Each structure is a small object describing a ``q x q`` covariance matrix of
the random effects of one equation *relative to the residual variance*
(``G = sigma2 * Lambda Lambda'``, lme4's relative covariance factor).

Two parameterisations meet here:

* ``theta`` -- the optimisation metric: unconstrained except for simple
  bounds (non-negative scale factors), lme4 style, so a variance on the
  boundary (0) is reachable and converges honestly;
* ``natural`` -- the reported metric, as Stata prints it: variances and
  covariances of the random effects (absolute, not relative).

Adding a structure means writing one subclass.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np

_EPS_CORR = 1e-8


class CovStruct:
    """Base class: a covariance structure for ``q`` random effects."""

    name = "base"
    title = "Base"

    def __init__(self, q: int) -> None:
        if q < 1:
            raise ValueError("a covariance structure needs at least one random effect")
        self.q = int(q)

    # -- optimisation metric -------------------------------------------------
    @property
    def n_theta(self) -> int:
        raise NotImplementedError

    def theta_start(self) -> np.ndarray:
        raise NotImplementedError

    def theta_bounds(self) -> list[tuple[float | None, float | None]]:
        raise NotImplementedError

    def relative_factor(self, theta: np.ndarray) -> np.ndarray:
        """Lower-triangular ``Lambda`` with ``G / sigma2 = Lambda Lambda'``."""
        raise NotImplementedError

    #: ``Lambda`` is diagonal for every ``theta`` (the engines scale elementwise)
    diagonal_factor = False
    #: ``Lambda`` is linear in ``theta``: :meth:`factor_jacobian` does not depend on it
    linear_factor = False

    def factor_jacobian(self, theta: np.ndarray) -> np.ndarray:
        """``d Lambda / d theta_k`` for each parameter, ``(n_theta, q, q)``.

        The default differentiates :meth:`relative_factor` by central
        differences (it involves no likelihood); the structures below give
        it in closed form.
        """
        theta = np.asarray(theta, dtype=float)
        out = np.empty((theta.size, self.q, self.q))
        for k in range(theta.size):
            h = 1e-6 * max(abs(theta[k]), 1.0)
            tp, tm = theta.copy(), theta.copy()
            tp[k] += h
            tm[k] -= h
            out[k] = (self.relative_factor(tp) - self.relative_factor(tm)) / (2.0 * h)
        return out

    # -- reported metric -----------------------------------------------------
    def natural_names(self, effects: Sequence[str]) -> list[str]:
        raise NotImplementedError

    def natural_kinds(self) -> list[str]:
        """``"var"`` or ``"cov"`` for each natural parameter (CI scale)."""
        raise NotImplementedError

    def natural_from_cov(self, G: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def cov_from_natural(self, nat: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def theta_from_cov(self, G_rel: np.ndarray) -> np.ndarray:
        """Optimisation parameters closest to a relative covariance matrix."""
        raise NotImplementedError

    # -- derived helpers -----------------------------------------------------
    @property
    def n_natural(self) -> int:
        return len(self.natural_kinds())

    def cov_from_theta(self, theta: np.ndarray, sigma2: float = 1.0) -> np.ndarray:
        lam = self.relative_factor(theta)
        G = sigma2 * lam @ lam.T
        return 0.5 * (G + G.T)  # exactly symmetric

    def natural_from_theta(self, theta: np.ndarray, sigma2: float) -> np.ndarray:
        return self.natural_from_cov(self.cov_from_theta(theta, sigma2))

    def equivalent_thetas(self, theta: np.ndarray) -> list[np.ndarray]:
        """Other parameter vectors with the same covariance (at a degenerate
        boundary, where the parameterisation is not unique); none by default."""
        return []

    def factor_from_natural(self, nat: np.ndarray, sigma2: float) -> np.ndarray:
        """A (not necessarily triangular) ``Lambda`` for natural parameters."""
        G = self.cov_from_natural(nat) / sigma2
        try:
            return np.linalg.cholesky(G)
        except np.linalg.LinAlgError:
            w, v = np.linalg.eigh(G)
            return v * np.sqrt(np.clip(w, 0.0, None))

    def __repr__(self) -> str:
        return "%s(q=%d)" % (type(self).__name__, self.q)


class Identity(CovStruct):
    """``G = v I``: one variance shared by all effects."""

    name = "identity"
    title = "Identity"

    @property
    def n_theta(self) -> int:
        return 1

    def theta_start(self) -> np.ndarray:
        return np.ones(1)

    def theta_bounds(self):
        return [(0.0, None)]

    diagonal_factor = True
    linear_factor = True

    def relative_factor(self, theta):
        return float(theta[0]) * np.eye(self.q)

    def factor_jacobian(self, theta):
        return np.eye(self.q)[None, :, :]

    def natural_names(self, effects):
        if len(effects) == 1:
            return ["var(%s)" % effects[0]]
        return ["var(%s)" % " ".join(effects)]

    def natural_kinds(self):
        return ["var"]

    def natural_from_cov(self, G):
        return np.array([G[0, 0]])

    def cov_from_natural(self, nat):
        return float(nat[0]) * np.eye(self.q)

    def theta_from_cov(self, G_rel):
        return np.array([np.sqrt(max(np.mean(np.diag(G_rel)), 0.0))])


class Independent(CovStruct):
    """``G = diag(v_1, ..., v_q)``."""

    name = "independent"
    title = "Independent"

    @property
    def n_theta(self) -> int:
        return self.q

    def theta_start(self):
        return np.ones(self.q)

    def theta_bounds(self):
        return [(0.0, None)] * self.q

    diagonal_factor = True
    linear_factor = True

    def relative_factor(self, theta):
        return np.diag(np.asarray(theta, dtype=float))

    def factor_jacobian(self, theta):
        out = np.zeros((self.q, self.q, self.q))
        out[np.arange(self.q), np.arange(self.q), np.arange(self.q)] = 1.0
        return out

    def natural_names(self, effects):
        return ["var(%s)" % e for e in effects]

    def natural_kinds(self):
        return ["var"] * self.q

    def natural_from_cov(self, G):
        return np.diag(G).copy()

    def cov_from_natural(self, nat):
        return np.diag(np.asarray(nat, dtype=float))

    def theta_from_cov(self, G_rel):
        return np.sqrt(np.clip(np.diag(G_rel), 0.0, None))


class Exchangeable(CovStruct):
    """Common variance ``v`` and common covariance ``c`` for all effects."""

    name = "exchangeable"
    title = "Exchangeable"

    def __init__(self, q: int) -> None:
        super().__init__(q)
        if q < 2:
            raise ValueError("an exchangeable structure needs at least two random effects")

    @property
    def n_theta(self) -> int:
        return 2

    def theta_start(self):
        return np.array([1.0, 0.0])

    def theta_bounds(self):
        lo = -1.0 / (self.q - 1) + _EPS_CORR
        return [(0.0, None), (lo, 1.0 - _EPS_CORR)]

    def _corr(self, r: float) -> np.ndarray:
        return (1.0 - r) * np.eye(self.q) + r * np.ones((self.q, self.q))

    def relative_factor(self, theta):
        a, r = float(theta[0]), float(theta[1])
        return a * np.linalg.cholesky(self._corr(r))

    def factor_jacobian(self, theta):
        """``d(a chol(C))``: ``chol(C)`` and ``a L Phi(L^-1 dC L^-T)`` with
        ``dC = 11' - I`` (the derivative of a Cholesky factor)."""
        a, r = float(theta[0]), float(theta[1])
        L = np.linalg.cholesky(self._corr(r))
        Li = np.linalg.inv(L)
        S = Li @ (np.ones((self.q, self.q)) - np.eye(self.q)) @ Li.T
        phi = np.tril(S, -1) + 0.5 * np.diag(np.diagonal(S))
        return np.stack([L, a * (L @ phi)])

    def natural_names(self, effects):
        joined = " ".join(effects)
        return ["var(%s)" % joined, "cov(%s)" % joined]

    def natural_kinds(self):
        return ["var", "cov"]

    def natural_from_cov(self, G):
        return np.array([G[0, 0], G[0, 1]])

    def cov_from_natural(self, nat):
        v, c = float(nat[0]), float(nat[1])
        return (v - c) * np.eye(self.q) + c * np.ones((self.q, self.q))

    def equivalent_thetas(self, theta):
        """With a zero scale the correlation is not identified: every correlation gives
        the same (zero) covariance.  The alternatives put it near either end of its
        range and at zero, so that moving the scale off zero can reach an optimum with
        any correlation."""
        a = float(theta[0])
        if a > 1e-8:
            return []
        lo, hi = self.theta_bounds()[1]
        width = hi - lo
        return [np.array([a, r]) for r in (lo + 0.01 * width, 0.0, hi - 0.01 * width)
                if abs(r - float(theta[1])) > 1e-3 * width]

    def theta_from_cov(self, G_rel):
        v = max(np.mean(np.diag(G_rel)), 1e-12)
        off = G_rel[~np.eye(self.q, dtype=bool)]
        lo, hi = self.theta_bounds()[1]
        r = float(np.clip(np.mean(off) / v, lo, hi))
        return np.array([np.sqrt(v), r])


@lru_cache(maxsize=None)
def _triangle_indices(q: int) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Rows and columns of the lower triangle and the strict upper triangle of ``q x q``
    (computed once per ``q``: ``numpy.tril_indices`` costs more than a small fit's step)."""
    rows, cols = np.tril_indices(q)
    return rows, cols, np.triu_indices(q, 1)


class Unstructured(CovStruct):
    """A free positive semi-definite ``G``: lme4's Cholesky parameterisation."""

    name = "unstructured"
    title = "Unstructured"

    def __init__(self, q: int) -> None:
        super().__init__(q)
        self._rows, self._cols, self._iu = _triangle_indices(q)

    @property
    def n_theta(self) -> int:
        return self.q * (self.q + 1) // 2

    def theta_start(self):
        return (self._rows == self._cols).astype(float)

    def theta_bounds(self):
        return [(0.0, None) if r == c else (None, None) for r, c in zip(self._rows, self._cols)]

    linear_factor = True

    def relative_factor(self, theta):
        lam = np.zeros((self.q, self.q))
        lam[self._rows, self._cols] = theta
        return lam

    def factor_jacobian(self, theta):
        out = np.zeros((self._rows.size, self.q, self.q))
        out[np.arange(self._rows.size), self._rows, self._cols] = 1.0
        return out

    def natural_names(self, effects):
        names = ["var(%s)" % e for e in effects]
        for i in range(self.q):
            for j in range(i + 1, self.q):
                names.append("cov(%s,%s)" % (effects[i], effects[j]))
        return names

    def natural_kinds(self):
        return ["var"] * self.q + ["cov"] * (self.q * (self.q - 1) // 2)

    def natural_from_cov(self, G):
        return np.concatenate([np.diag(G), G[self._iu]])

    def cov_from_natural(self, nat):
        nat = np.asarray(nat, dtype=float)
        G = np.diag(nat[: self.q])
        iu = self._iu
        G[iu] = nat[self.q:]
        G[(iu[1], iu[0])] = nat[self.q:]
        return G

    def theta_from_cov(self, G_rel):
        try:
            lam = np.linalg.cholesky(G_rel + 1e-10 * np.eye(self.q))
        except np.linalg.LinAlgError:
            lam = np.diag(np.sqrt(np.clip(np.diag(G_rel), 1e-12, None)))
        return lam[self._rows, self._cols]

    def equivalent_thetas(self, theta):
        """With a zero Cholesky diagonal ``L_ii`` the column below it and the later
        columns are not unique: only their product matters.  The alternatives
        put the dominant direction of that trailing covariance into column
        ``i`` (either sign), so that moving ``L_ii`` off zero can tilt it, which
        the original factor cannot (a covariance of rank one with a small
        variance, a correlation of +-1, lies behind such a boundary)."""
        L = self.relative_factor(theta)
        out = []
        for i in range(self.q - 1):
            if L[i, i] > 1e-8 * max(1.0, np.abs(L).max()):
                continue
            T = L[i + 1:, i:]
            M = T @ T.T  # what columns i.. contribute below row i
            w, V = np.linalg.eigh(M)
            lam, v = max(w[-1], 0.0), V[:, -1]
            rest = M - lam * np.outer(v, v)
            try:
                R = np.linalg.cholesky(rest + 1e-14 * max(1.0, lam) * np.eye(rest.shape[0]))
            except np.linalg.LinAlgError:
                continue
            for sign in (1.0, -1.0):
                L2 = L.copy()
                L2[i + 1:, i] = sign * np.sqrt(lam) * v
                L2[i + 1:, i + 1:] = R
                out.append(L2[self._rows, self._cols])
        return out


STRUCTURES: dict[str, type[CovStruct]] = {
    cls.name: cls for cls in (Identity, Independent, Exchangeable, Unstructured)
}


def make_structure(name: str, q: int) -> CovStruct:
    """Build the structure ``name`` for ``q`` effects (one effect: identity)."""
    if q == 1:
        return Identity(1)
    try:
        return STRUCTURES[name](q)
    except KeyError:
        raise ValueError("unknown covariance structure %r" % name) from None
