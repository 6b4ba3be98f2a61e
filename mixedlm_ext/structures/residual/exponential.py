"""Exponential residual kernel: ``rho^|t_i - t_j|`` with real-valued ``t``."""
from __future__ import annotations

import numpy as np
from scipy.special import expit, logit

from .kernel import INVALID, Kernel
from .whitening import MarkovWhitener


class ExponentialKernel(Kernel):
    """``corr = rho^|t_i - t_j|`` with real-valued ``t``, ``0 < rho < 1``."""

    kind = "exponential"
    integer_time = False

    @property
    def title(self):
        return "Exponential"

    @property
    def n_params(self):
        return 1

    def bounds(self):
        return [(-30.0, 30.0)]

    def names(self):
        return ["rho", "var(e)"]

    def kinds(self):
        return ["rho", "var"]

    def natural(self, rho, sigma2):
        return np.array([float(expit(rho[0])), sigma2])

    def from_natural(self, nat):
        r = float(nat[0])
        if not 0.0 < r < 1.0:
            return np.zeros(1), INVALID
        return np.array([logit(r)]), float(nat[1])

    def bind_rows(self, rows):
        super().bind_rows(rows)
        self._markov = MarkovWhitener(rows)
        d = self._markov.d
        self._d_typ = float(np.median(d)) if d.size else 1.0

    def start(self):
        # correlation 0.5 at the typical gap between successive observations
        return np.array([logit(0.5 ** (1.0 / max(self._d_typ, 1e-12)))])

    def _base(self, rho):
        return float(expit(rho[0]))

    def full(self, rho):
        base = self._base(rho)
        return self._markov.compute(lambda d: base ** d)

    def corr(self, prep, chunk):
        return self._base(prep) ** chunk.lag(integer=False)

    def whiten(self, rho, M):
        base = self._base(rho)
        return self._markov.whiten(lambda d: base ** d, M)
