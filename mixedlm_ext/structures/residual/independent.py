"""Independent homoskedastic residual kernel."""
from __future__ import annotations

import numpy as np

from ...core.linalg import grouped_crossprod
from .kernel import Kernel, SingleVariance
from .whitening import Chunk, PanelRows


class IndependentKernel(SingleVariance, Kernel):
    """Independent homoskedastic errors (the building block of ``by()``)."""

    kind = "independent"
    needs_time = False
    integer_time = False
    by_may_vary = True

    def __init__(self, rows: PanelRows, order=None, time_name=None):
        super().__init__(rows, order, time_name)
        self._F = grouped_crossprod(rows.W, rows.W, rows.panel, rows.P)

    @property
    def title(self) -> str:
        return "Independent"

    def names(self) -> list[str]:
        return ["var(e)"]

    def full(self, rho: np.ndarray) -> tuple[np.ndarray, float]:
        return self._F.copy(), 0.0

    def corr(self, prep, chunk: Chunk) -> np.ndarray:
        return np.broadcast_to(np.eye(chunk.T), (chunk.idx.shape[0], chunk.T, chunk.T)).copy()

    def whiten(self, rho: np.ndarray, M: np.ndarray) -> np.ndarray:
        return np.array(M, dtype=float, copy=True)
