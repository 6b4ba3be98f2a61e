"""A brute-force reference optimum, independent of the package's engines.

For a model given as a list of random-effects terms (grouping codes, per-row
columns, covariance structure), the likelihood is evaluated from the dense
``V = sigma2 (I + Z G_rel Z')`` with ``beta`` and ``sigma2`` profiled out,
and maximised from several starting points.  Used by ``test_optimum.py``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.optimize as so


@dataclass
class DenseTerm:
    """``codes`` (n,) group of each row; ``B`` (n, q) its random-effect columns."""

    codes: np.ndarray
    B: np.ndarray
    structure: str  # identity, independent, exchangeable, unstructured

    @property
    def q(self) -> int:
        return self.B.shape[1]

    @property
    def n_params(self) -> int:
        q = self.q
        return {"identity": 1, "independent": q, "exchangeable": 2, "unstructured": q * (q + 1) // 2}[
            self.structure if q > 1 else "identity"]

    def relative_cov(self, t: np.ndarray) -> np.ndarray:
        """``G / sigma2`` from unconstrained parameters ``t``."""
        q = self.q
        kind = self.structure if q > 1 else "identity"
        if kind == "identity":
            return t[0] ** 2 * np.eye(q)
        if kind == "independent":
            return np.diag(t ** 2)
        if kind == "exchangeable":
            lo = -1.0 / (q - 1)
            r = lo + (1 - lo) / (1 + np.exp(-t[1]))
            return t[0] ** 2 * ((1 - r) * np.eye(q) + r * np.ones((q, q)))
        L = np.zeros((q, q))
        L[np.tril_indices(q)] = t
        return L @ L.T

    def indicator_design(self) -> np.ndarray:
        """``Z`` of the term: row-wise Kronecker of group indicators and ``B``."""
        n, q = self.B.shape
        G = int(self.codes.max()) + 1
        Z = np.zeros((n, G * q))
        for j in range(q):
            Z[np.arange(n), self.codes * q + j] = self.B[:, j]
        return Z


class DenseModel:
    """Profiled (restricted) deviance of a linear mixed model, densely."""

    def __init__(self, y: np.ndarray, X: np.ndarray, terms: list[DenseTerm], reml: bool):
        self.y, self.X, self.terms, self.reml = y, X, terms, reml
        self.Zs = [t.indicator_design() for t in terms]
        self.sizes = [t.n_params for t in terms]

    def split(self, t: np.ndarray) -> list[np.ndarray]:
        out, i = [], 0
        for k in self.sizes:
            out.append(t[i:i + k])
            i += k
        return out

    def deviance(self, t: np.ndarray) -> float:
        n, p = self.X.shape
        V = np.eye(n)
        for term, Z, tt in zip(self.terms, self.Zs, self.split(np.asarray(t, dtype=float))):
            G = int(term.codes.max()) + 1
            V += Z @ np.kron(np.eye(G), term.relative_cov(tt)) @ Z.T
        try:
            L = np.linalg.cholesky(V)
        except np.linalg.LinAlgError:
            return np.inf
        Xs = np.linalg.solve(L, self.X)
        ys = np.linalg.solve(L, self.y)
        beta, *_ = np.linalg.lstsq(Xs, ys, rcond=None)
        r = ys - Xs @ beta
        logdet = 2.0 * np.log(np.diag(L)).sum()
        m = n - p if self.reml else n
        s2 = float(r @ r) / m
        dev = logdet + m * (1.0 + np.log(2.0 * np.pi * s2))
        if self.reml:
            dev += np.linalg.slogdet(Xs.T @ Xs)[1]
        return float(dev)

    def maximise(self, starts: list[np.ndarray]) -> tuple[float, np.ndarray]:
        """Best ``(loglik, t)``: quasi-Newton from every start, then a Nelder-Mead
        polish of the best."""
        best = None
        for t0 in starts:
            res = so.minimize(self.deviance, np.asarray(t0, dtype=float), method="L-BFGS-B",
                              options=dict(maxiter=2000, ftol=1e-15, gtol=1e-10))
            if best is None or res.fun < best.fun:
                best = res
        res = so.minimize(self.deviance, best.x, method="Nelder-Mead",
                          options=dict(maxiter=4000, xatol=1e-10, fatol=1e-12))
        if res.fun < best.fun:
            best = res
        return -0.5 * float(best.fun), best.x
