"""Residual kernels indexed by the distinct times: unstructured and banded."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ...core.errors import ResidualDataError
from .kernel import INVALID, Kernel, format_time
from .whitening import Chunk, DenseWhitener, PanelRows


class _IndexedKernel(Kernel):
    """Covariances indexed by the distinct values of ``t`` (unstructured, banded).

    ``levels`` are the ``K`` distinct times; the covariance parameters are
    the variances at each time and the covariances of the time pairs in
    ``_pairs`` (all pairs for unstructured, those within the band for banded).
    """

    nonneg_time = True

    def __init__(self, rows: PanelRows, order: Optional[int] = None, time_name: Optional[str] = None):
        super().__init__(rows, order, time_name)
        self.levels = np.unique(rows.t)
        self.K = self.levels.size
        self._pairs = self._make_pairs()
        self._check_pairs()
        self._dense = DenseWhitener(rows, index=self.corr_index)

    def _make_pairs(self) -> list[tuple[int, int]]:
        raise NotImplementedError

    @property
    def absorbs(self) -> Optional[str]:
        """Random effects depending on ``t`` only when every pair of times has its own covariance."""
        return "time" if len(self._pairs) == self.K * (self.K - 1) // 2 else None

    def _check_pairs(self) -> None:
        """Every covariance parameter needs a panel holding both of its times."""
        rows = self.rows
        K = self.K
        if not self._pairs:
            return
        if rows.P * K > 50_000_000:
            return
        B = np.zeros((rows.P, K))
        B[rows.panel, np.searchsorted(self.levels, rows.t)] = 1.0
        N = B.T @ B
        for i, j in self._pairs:
            if N[i, j] == 0:
                raise ResidualDataError(
                    "residuals(%s): no panel has observations at both %s=%s and %s=%s, so "
                    "cov(e%s,e%s) is not identified"
                    % (self.kind, self.time_name, format_time(self.levels[i]), self.time_name,
                       format_time(self.levels[j]), format_time(self.levels[i]), format_time(self.levels[j])))

    def names(self) -> list[str]:
        lab = [format_time(v) for v in self.levels]
        return (["var(e%s)" % s for s in lab]
                + ["cov(e%s,e%s)" % (lab[i], lab[j]) for i, j in self._pairs])

    def kinds(self) -> list[str]:
        return ["var"] * self.K + ["cov"] * len(self._pairs)

    def _sigma_rel(self, rho: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def natural(self, rho: np.ndarray, sigma2: float) -> np.ndarray:
        S = sigma2 * self._sigma_rel(rho)
        return np.concatenate([np.diag(S), [S[i, j] for i, j in self._pairs]])

    def _sigma_from_natural(self, nat: np.ndarray) -> np.ndarray:
        K = self.K
        S = np.diag(np.asarray(nat[:K], dtype=float))
        for (i, j), v in zip(self._pairs, nat[K:]):
            S[i, j] = S[j, i] = v
        return S

    def prepare(self, rho: np.ndarray) -> np.ndarray:
        return self._sigma_rel(rho)

    def corr_index(self, t: Optional[np.ndarray]) -> np.ndarray:
        """Position of each row's time among ``levels`` ``(c, T)``."""
        return np.searchsorted(self.levels, t)

    def corr(self, C: np.ndarray, chunk: Chunk) -> np.ndarray:
        lev = chunk.index
        return C[lev[:, :, None], lev[:, None, :]]

    def full(self, rho: np.ndarray) -> tuple[np.ndarray, float]:
        return self._dense.crossproducts(self.corr, self.prepare(rho))


class UnstructuredKernel(_IndexedKernel):
    """Free covariance matrix over the distinct ``t`` values (log-Cholesky metric)."""

    kind = "unstructured"

    @property
    def title(self) -> str:
        return "Unstructured"

    def _make_pairs(self) -> list[tuple[int, int]]:
        return [(i, j) for i in range(self.K) for j in range(i + 1, self.K)]

    @property
    def n_params(self) -> int:
        return self.K * (self.K + 1) // 2 - 1

    def bounds(self) -> list:
        K = self.K
        return [(-30.0, 30.0)] * (K - 1) + [(None, None)] * (K * (K - 1) // 2)

    def _sigma_rel(self, rho: np.ndarray) -> np.ndarray:
        K = self.K
        L = np.zeros((K, K))
        L[0, 0] = 1.0
        idx = np.arange(1, K)
        L[idx, idx] = np.exp(rho[: K - 1])
        il = np.tril_indices(K, -1)
        L[il] = rho[K - 1:]
        return L @ L.T

    def from_natural(self, nat: np.ndarray) -> tuple[np.ndarray, float]:
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
    has_order = True

    @property
    def title(self) -> str:
        return "Banded(%d)" % self.order if self.order is not None else "Banded"

    def _make_pairs(self) -> list[tuple[int, int]]:
        lv = self.levels
        band = np.inf if self.order is None else self.order
        return [(i, j) for i in range(self.K) for j in range(i + 1, self.K) if lv[j] - lv[i] <= band]

    @property
    def n_params(self) -> int:
        return self.K - 1 + len(self._pairs)

    def bounds(self) -> list:
        return [(-30.0, 30.0)] * (self.K - 1) + [(-10.0, 10.0)] * len(self._pairs)

    def _sigma_rel(self, rho: np.ndarray) -> np.ndarray:
        K = self.K
        sd = np.exp(0.5 * np.concatenate([[0.0], rho[: K - 1]]))
        R = np.eye(K)
        for (i, j), x in zip(self._pairs, rho[K - 1:]):
            R[i, j] = R[j, i] = np.tanh(x)
        return R * sd[:, None] * sd[None, :]

    def from_natural(self, nat: np.ndarray) -> tuple[np.ndarray, float]:
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
