"""Stationary residual kernels: correlation a function of the lag (AR, MA, Toeplitz)."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ...core.errors import ResidualDataError
from .autocorrelation import ar_acf, ma_acf, pacf_to_phi, phi_to_pacf
from .kernel import INVALID, Kernel, time_lags
from .whitening import ARBandWhitener, Chunk, DenseWhitener, MarkovWhitener, PanelRows


class _StationaryKernel(Kernel):
    """Correlation a function of the lag ``|t_i - t_j|`` with unit variance.

    Subclasses have ``order`` parameters named ``<param><k>`` (``phi1``...)
    plus ``var(e)``, and the heading ``<label>(order)``; ``max_lag`` is the
    longest lag within a panel.
    """

    has_order = True

    label = ""
    param = ""

    def __init__(self, rows: PanelRows, order: Optional[int] = None, time_name: Optional[str] = None):
        super().__init__(rows, order, time_name)
        self.max_lag = self._max_lag()

    @property
    def title(self) -> str:
        return "%s(%d)" % (self.label, self.order)

    @property
    def n_params(self) -> int:
        return self.order

    def names(self) -> list[str]:
        return ["%s%d" % (self.param, i + 1) for i in range(self.order)] + ["var(e)"]

    def _acf(self, rho: np.ndarray, max_lag: int) -> np.ndarray:
        raise NotImplementedError

    def prepare(self, rho: np.ndarray) -> np.ndarray:
        return self._acf(rho, self.max_lag)

    def corr_index(self, t: Optional[np.ndarray]) -> np.ndarray:
        """Integer lags ``(c, T, T)``."""
        return np.rint(time_lags(t)).astype(np.intp)

    def corr(self, acf: np.ndarray, chunk: Chunk) -> np.ndarray:
        return acf[np.minimum(chunk.index, acf.size - 1)]


class ARKernel(_StationaryKernel):
    """AR(p): ``phi`` through partial autocorrelations ``tanh(rho)``.

    AR(1) is whitened by a :class:`MarkovWhitener`; AR(p) by an
    :class:`ARBandWhitener` on panels with consecutive ``t`` (within its
    memory budget) and a :class:`DenseWhitener` on the rest.
    """

    kind = "ar"
    default_order = 1

    label = "AR"
    param = "phi"

    def __init__(self, rows: PanelRows, order: Optional[int] = None, time_name: Optional[str] = None):
        super().__init__(rows, order, time_name)
        self._check_order("ar")
        p = self.order
        self._markov = MarkovWhitener(rows) if p == 1 else None
        self._band = self._dense = None
        self._dense_lag = 0
        if p == 1:
            return
        ok = rows.consecutive() & (rows.sizes > p)
        if not ARBandWhitener.fits(int(ok.sum()), p, rows.k):  # wide designs: dense per panel size
            ok[:] = False
        band = np.flatnonzero(ok)
        rest = np.flatnonzero(~ok)
        if band.size:
            self._band = ARBandWhitener(rows, p, band)
        if rest.size:
            self._dense = DenseWhitener(rows, rest, index=self.corr_index)
            self._dense_lag = self._dense.max_lag()

    def kinds(self) -> list[str]:
        # AR(1)'s phi is estimated as tanh and its CI is on the atanh scale; higher orders: normal CIs
        return (["corr"] if self.order == 1 else ["phi"] * self.order) + ["var"]

    def natural(self, rho: np.ndarray, sigma2: float) -> np.ndarray:
        return np.concatenate([pacf_to_phi(np.tanh(rho)), [sigma2]])

    def from_natural(self, nat: np.ndarray) -> tuple[np.ndarray, float]:
        a = phi_to_pacf(nat[: self.order])
        if a is None:
            return np.zeros(self.order), INVALID
        return np.arctanh(a), float(nat[self.order])

    def _acf(self, rho: np.ndarray, max_lag: int) -> np.ndarray:
        return ar_acf(np.tanh(rho), max_lag)[0]

    def full(self, rho: np.ndarray) -> tuple[np.ndarray, float]:
        r = self.rows
        if self._markov is not None:
            phi = float(np.tanh(rho[0]))
            return self._markov.compute(lambda d: phi ** d)
        F = np.zeros((r.P, r.k, r.k))
        acf, phi, innov = ar_acf(np.tanh(rho), max(self._dense_lag, self.order))
        ld = 0.0
        if self._band is not None:
            ld += self._band.compute(acf, phi, innov, F)
        if self._dense is not None:
            ld += self._dense.compute(self.corr, acf, F)
        return F, ld

    def whiten(self, rho: np.ndarray, M: np.ndarray) -> np.ndarray:
        if self._markov is not None:
            phi = float(np.tanh(rho[0]))
            return self._markov.whiten(lambda d: phi ** d, M)
        return super().whiten(rho, M)


class MAKernel(_StationaryKernel):
    """MA(q): ``theta`` invertible, through ``tanh`` partial autocorrelations of ``-theta``."""

    kind = "ma"
    default_order = 1

    label = "MA"
    param = "theta"

    def __init__(self, rows: PanelRows, order: Optional[int] = None, time_name: Optional[str] = None):
        super().__init__(rows, order, time_name)
        self._check_order("ma")
        self._dense = DenseWhitener(rows, index=self.corr_index)

    def kinds(self) -> list[str]:
        return ["theta"] * self.order + ["var"]

    def _theta(self, rho: np.ndarray) -> np.ndarray:
        return -pacf_to_phi(np.tanh(rho))

    def natural(self, rho: np.ndarray, sigma2: float) -> np.ndarray:
        return np.concatenate([self._theta(rho), [sigma2]])

    def from_natural(self, nat: np.ndarray) -> tuple[np.ndarray, float]:
        a = phi_to_pacf(-np.asarray(nat[: self.order], dtype=float))
        if a is None:
            return np.zeros(self.order), INVALID
        return np.arctanh(a), float(nat[self.order])

    def _acf(self, rho: np.ndarray, max_lag: int) -> np.ndarray:
        return ma_acf(self._theta(rho), max_lag)

    def full(self, rho: np.ndarray) -> tuple[np.ndarray, float]:
        return self._dense.crossproducts(self.corr, self.prepare(rho))


def _toeplitz_order(rows: PanelRows, order: Optional[int]) -> int:
    """The ``#`` of ``toeplitz #``; without one, the largest panel size less one."""
    if order is not None:
        return int(order)
    mmax = int(rows.sizes.max())
    if mmax < 2:
        raise ResidualDataError("residuals(toeplitz): every panel has a single observation")
    return mmax - 1


class ToeplitzKernel(_StationaryKernel):
    """Toeplitz #: free correlations ``rho_1..rho_#`` by lag, zero beyond."""

    kind = "toeplitz"

    label = "Toeplitz"
    param = "rho"

    def __init__(self, rows: PanelRows, order: Optional[int] = None, time_name: Optional[str] = None):
        super().__init__(rows, _toeplitz_order(rows, order), time_name)
        self._check_order("toeplitz")
        self._dense = DenseWhitener(rows, index=self.corr_index)

    @property
    def absorbs(self) -> Optional[str]:
        """A random intercept when every lag within a panel has its own correlation."""
        return "intercept" if self.order >= self.max_lag else None

    def kinds(self) -> list[str]:
        return ["corr"] * self.order + ["var"]

    def natural(self, rho: np.ndarray, sigma2: float) -> np.ndarray:
        return np.concatenate([np.tanh(rho), [sigma2]])

    def from_natural(self, nat: np.ndarray) -> tuple[np.ndarray, float]:
        r = np.asarray(nat[: self.order], dtype=float)
        if not np.all(np.abs(r) < 1.0):
            return np.zeros(self.order), INVALID
        return np.arctanh(r), float(nat[self.order])

    def _acf(self, rho: np.ndarray, max_lag: int) -> np.ndarray:
        acf = np.zeros(max(int(max_lag), self.order) + 1)
        acf[0] = 1.0
        acf[1:self.order + 1] = np.tanh(rho)
        return acf

    def full(self, rho: np.ndarray) -> tuple[np.ndarray, float]:
        return self._dense.crossproducts(self.corr, self.prepare(rho))
