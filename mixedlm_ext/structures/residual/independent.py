"""Independent homoskedastic residual kernel."""
from __future__ import annotations

import numpy as np

from .kernel import Kernel


class IndependentKernel(Kernel):
    """Independent homoskedastic errors (the building block of ``by()``)."""

    kind = "independent"
    needs_time = False
    integer_time = False
    by_may_vary = True
    markov_sorted = False

    @property
    def title(self) -> str:
        return "Independent"

    def names(self):
        return ["var(e)"]

    def kinds(self):
        return ["var"]

    def natural(self, rho, sigma2):
        return np.array([sigma2])

    def from_natural(self, nat):
        return np.zeros(0), float(nat[0])

    def bind_rows(self, rows):
        super().bind_rows(rows)
        from ...core.linalg import grouped_crossprod

        self._F = grouped_crossprod(rows.W, rows.W, rows.panel, rows.P)

    def full(self, rho):
        return self._F.copy(), 0.0

    def corr(self, prep, chunk):
        return np.broadcast_to(np.eye(chunk.T), (chunk.idx.shape[0], chunk.T, chunk.T)).copy()

    def whiten(self, rho, M):
        return np.array(M, dtype=float, copy=True)
