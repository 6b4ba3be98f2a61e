"""Exponential residual kernel: ``rho^|t_i - t_j|`` with real-valued ``t``."""
from __future__ import annotations

from typing import Optional

import numpy as np
from scipy.special import expit, logit

from .kernel import INVALID, Kernel, time_lags
from .whitening import Chunk, MarkovWhitener, PanelRows


class ExponentialKernel(Kernel):
    """``corr = rho^|t_i - t_j|`` with real-valued ``t``, ``0 < rho < 1`` (Markov whitening)."""

    kind = "exponential"
    integer_time = False

    def __init__(self, rows: PanelRows, order: Optional[int] = None, time_name: Optional[str] = None):
        super().__init__(rows, order, time_name)
        self._markov = MarkovWhitener(rows)
        d = self._markov.d
        self._d_typ = float(np.median(d)) if d.size else 1.0  # typical gap between successive rows

    @property
    def title(self) -> str:
        return "Exponential"

    @property
    def n_params(self) -> int:
        return 1

    def bounds(self) -> list:
        return [(-30.0, 30.0)]

    def names(self) -> list[str]:
        return ["rho", "var(e)"]

    def kinds(self) -> list[str]:
        return ["rho", "var"]

    def natural(self, rho: np.ndarray, sigma2: float) -> np.ndarray:
        return np.array([float(expit(rho[0])), sigma2])

    def from_natural(self, nat: np.ndarray) -> tuple[np.ndarray, float]:
        r = float(nat[0])
        if not 0.0 < r < 1.0:
            return np.zeros(1), INVALID
        return np.array([logit(r)]), float(nat[1])

    def start(self) -> np.ndarray:
        # correlation 0.5 at the typical gap between successive observations
        return np.array([logit(0.5 ** (1.0 / max(self._d_typ, 1e-12)))])

    def _base(self, rho: np.ndarray) -> float:
        return float(expit(rho[0]))

    def full(self, rho: np.ndarray) -> tuple[np.ndarray, float]:
        base = self._base(rho)
        return self._markov.compute(lambda d: base ** d)

    def corr_index(self, t: Optional[np.ndarray]) -> np.ndarray:
        """Real-valued lags ``(c, T, T)``."""
        return time_lags(t)

    def corr(self, prep: np.ndarray, chunk: Chunk) -> np.ndarray:
        return self._base(prep) ** chunk.index

    def whiten(self, rho: np.ndarray, M: np.ndarray) -> np.ndarray:
        base = self._base(rho)
        return self._markov.whiten(lambda d: base ** d, M)
