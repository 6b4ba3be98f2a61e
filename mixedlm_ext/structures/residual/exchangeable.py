"""Exchangeable residual kernel: one common correlation within a panel."""
from __future__ import annotations

import numpy as np
from scipy.special import expit, logit

from ...core.errors import ResidualDataError
from ...core.linalg import grouped_crossprod
from .kernel import INVALID, Kernel
from .whitening import Chunk, PanelRows


class ExchangeableKernel(Kernel):
    """Common correlation ``r`` within a panel; closed-form whitening."""

    kind = "exchangeable"
    needs_time = False
    integer_time = False

    def __init__(self, rows: PanelRows, order=None, time_name=None):
        super().__init__(rows, order, time_name)
        self._set_statistics(grouped_crossprod(rows.W, rows.W, rows.panel, rows.P),
                             np.add.reduceat(rows.W, rows.starts, axis=0), rows.sizes.astype(float))

    @classmethod
    def from_statistics(cls, F: np.ndarray, s: np.ndarray, sizes: np.ndarray) -> "ExchangeableKernel":
        """A kernel bound to per-panel statistics instead of rows: ``F = W'W``
        ``(P, k, k)``, ``s = W'1`` ``(P, k)`` and the panel sizes."""
        out = cls.__new__(cls)
        Kernel.__init__(out, None)
        out._set_statistics(F, s, np.asarray(sizes, dtype=float))
        return out

    def _set_statistics(self, F: np.ndarray, s: np.ndarray, m: np.ndarray) -> None:
        mmax = int(m.max()) if m.size else 0
        if mmax < 2:
            raise ResidualDataError("residuals(exchangeable): every panel has a single observation, "
                                    "so the residual covariance is not identified")
        self.lo = -1.0 / (mmax - 1)  # smallest correlation of a positive definite C in the largest panel
        self._F, self._s, self._m = F, s, m

    @property
    def title(self) -> str:
        return "Exchangeable"

    @property
    def absorbs(self) -> str:
        return "intercept"

    @property
    def n_params(self) -> int:
        return 1

    def bounds(self) -> list:
        return [(-30.0, 30.0)]

    def names(self) -> list[str]:
        return ["var(e)", "cov(e)"]

    def kinds(self) -> list[str]:
        return ["var", "cov"]

    def _r(self, rho: np.ndarray) -> float:
        return self.lo + (1.0 - self.lo) * float(expit(rho[0]))

    def start(self) -> np.ndarray:
        return np.array([logit(-self.lo / (1.0 - self.lo))])

    def natural(self, rho: np.ndarray, sigma2: float) -> np.ndarray:
        return np.array([sigma2, sigma2 * self._r(rho)])

    def from_natural(self, nat: np.ndarray) -> tuple[np.ndarray, float]:
        v, c = float(nat[0]), float(nat[1])
        if not v > 0:
            return np.zeros(1), INVALID
        r = c / v
        if not self.lo < r < 1.0:
            return np.zeros(1), INVALID
        return np.array([logit((r - self.lo) / (1.0 - self.lo))]), v

    def full(self, rho: np.ndarray) -> tuple[np.ndarray, float]:
        r = self._r(rho)
        if not self.lo < r < 1.0:
            raise np.linalg.LinAlgError("exchangeable correlation outside its range")
        m = self._m
        c = r / (1.0 - r)
        g = c / (1.0 + m * c)
        F = (self._F - g[:, None, None] * self._s[:, :, None] * self._s[:, None, :]) / (1.0 - r)
        one = 1.0 + (m - 1.0) * r
        if not np.all(one > 0):
            raise np.linalg.LinAlgError("exchangeable correlation outside its range")
        ld = float(((m - 1.0) * np.log1p(-r) + np.log(one)).sum())
        return F, ld

    def corr(self, prep: np.ndarray, chunk: Chunk) -> np.ndarray:
        r = self._r(prep)
        T = chunk.T
        C = np.full((chunk.idx.shape[0], T, T), r)
        C[:, np.arange(T), np.arange(T)] = 1.0
        return C

    def whiten(self, rho: np.ndarray, M: np.ndarray) -> np.ndarray:
        r = self._r(rho)
        rows = self.rows
        M = np.asarray(M, dtype=float)
        c = r / (1.0 - r)
        m = self._m
        a = 1.0 - 1.0 / np.sqrt(1.0 + m * c)
        mean = np.add.reduceat(M, rows.starts, axis=0) / m.reshape((-1,) + (1,) * (M.ndim - 1))
        shape = (-1,) + (1,) * (M.ndim - 1)
        return (M - a[rows.panel].reshape(shape) * mean[rows.panel]) / np.sqrt(1.0 - r)
