"""Residual kernels indexed by the distinct times: unstructured and banded."""
from __future__ import annotations

import numpy as np

from ...core.errors import ResidualDataError
from .kernel import INVALID, Kernel, format_time
from .whitening import DenseWhitener


class _IndexedKernel(Kernel):
    """Covariances indexed by the distinct values of ``t`` (unstructured, banded)."""

    nonneg_time = True

    def bind_rows(self, rows):
        super().bind_rows(rows)
        self.levels = np.unique(rows.t)
        self.K = self.levels.size
        self._lev = np.searchsorted(self.levels, rows.t)
        self._pairs = self._make_pairs()
        self._check_pairs()
        self._dense = DenseWhitener(rows)

    def _make_pairs(self) -> list[tuple[int, int]]:
        raise NotImplementedError

    def _check_pairs(self) -> None:
        """Every covariance parameter needs a panel holding both of its times."""
        rows = self.rows
        K = self.K
        if not self._pairs:
            return
        if rows.P * K > 50_000_000:
            return
        B = np.zeros((rows.P, K))
        B[rows.panel, self._lev] = 1.0
        N = B.T @ B
        for i, j in self._pairs:
            if N[i, j] == 0:
                raise ResidualDataError(
                    "residuals(%s): no panel has observations at both %s=%s and %s=%s, so "
                    "cov(e%s,e%s) is not identified"
                    % (self.kind, self.time_name, format_time(self.levels[i]), self.time_name,
                       format_time(self.levels[j]), format_time(self.levels[i]), format_time(self.levels[j])))

    def names(self):
        lab = [format_time(v) for v in self.levels]
        return (["var(e%s)" % s for s in lab]
                + ["cov(e%s,e%s)" % (lab[i], lab[j]) for i, j in self._pairs])

    def kinds(self):
        return ["var"] * self.K + ["cov"] * len(self._pairs)

    def _sigma_rel(self, rho) -> np.ndarray:
        raise NotImplementedError

    def natural(self, rho, sigma2):
        S = sigma2 * self._sigma_rel(rho)
        return np.concatenate([np.diag(S), [S[i, j] for i, j in self._pairs]])

    def _sigma_from_natural(self, nat) -> np.ndarray:
        K = self.K
        S = np.diag(np.asarray(nat[:K], dtype=float))
        for (i, j), v in zip(self._pairs, nat[K:]):
            S[i, j] = S[j, i] = v
        return S

    def prepare(self, rho):
        return self._sigma_rel(rho)

    def corr(self, C, chunk):
        lev = chunk.cache.get("lev")
        if lev is None:
            lev = chunk.cache["lev"] = np.searchsorted(self.levels, chunk.t)
        return C[lev[:, :, None], lev[:, None, :]]

    def full(self, rho):
        r = self.rows
        F = np.zeros((r.P, r.k, r.k))
        ld = self._dense.compute(self.corr, self.prepare(rho), F)
        return F, ld


class UnstructuredKernel(_IndexedKernel):
    """Free covariance matrix over the distinct ``t`` values (log-Cholesky metric)."""

    kind = "unstructured"

    @property
    def title(self):
        return "Unstructured"

    def _make_pairs(self):
        return [(i, j) for i in range(self.K) for j in range(i + 1, self.K)]

    @property
    def n_params(self):
        return self.K * (self.K + 1) // 2 - 1

    def bounds(self):
        K = self.K
        return [(-30.0, 30.0)] * (K - 1) + [(None, None)] * (K * (K - 1) // 2)

    def _sigma_rel(self, rho):
        K = self.K
        L = np.zeros((K, K))
        L[0, 0] = 1.0
        idx = np.arange(1, K)
        L[idx, idx] = np.exp(rho[: K - 1])
        il = np.tril_indices(K, -1)
        L[il] = rho[K - 1:]
        return L @ L.T

    def from_natural(self, nat):
        S = self._sigma_from_natural(nat)
        v = S[0, 0]
        if not v > 0:
            return np.zeros(self.n_params), INVALID
        try:
            L = np.linalg.cholesky(S / v)
        except np.linalg.LinAlgError:
            return np.zeros(self.n_params), INVALID
        K = self.K
        il = np.tril_indices(K, -1)
        return np.concatenate([np.log(np.diag(L)[1:]), L[il]]), float(v)


class BandedKernel(_IndexedKernel):
    """Unstructured with covariances zero when ``|t_i - t_j| > #``."""

    kind = "banded"

    @property
    def title(self):
        return "Banded(%d)" % self.order if self.order is not None else "Banded"

    def _make_pairs(self):
        lv = self.levels
        band = np.inf if self.order is None else self.order
        return [(i, j) for i in range(self.K) for j in range(i + 1, self.K) if lv[j] - lv[i] <= band]

    @property
    def n_params(self):
        return self.K - 1 + len(self._pairs)

    def bounds(self):
        return [(-30.0, 30.0)] * (self.K - 1) + [(-10.0, 10.0)] * len(self._pairs)

    def _sigma_rel(self, rho):
        K = self.K
        sd = np.exp(0.5 * np.concatenate([[0.0], rho[: K - 1]]))
        R = np.eye(K)
        for (i, j), x in zip(self._pairs, rho[K - 1:]):
            R[i, j] = R[j, i] = np.tanh(x)
        return R * sd[:, None] * sd[None, :]

    def from_natural(self, nat):
        S = self._sigma_from_natural(nat)
        v = np.diag(S)
        if not np.all(v > 0):
            return np.zeros(self.n_params), INVALID
        out = list(np.log(v[1:] / v[0]))
        for i, j in self._pairs:
            c = S[i, j] / np.sqrt(v[i] * v[j])
            if not abs(c) < 1.0:
                return np.zeros(self.n_params), INVALID
            out.append(np.arctanh(c))
        return np.array(out), float(v[0])
