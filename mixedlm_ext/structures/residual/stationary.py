"""Stationary residual kernels: correlation a function of the lag (AR, MA, Toeplitz)."""
from __future__ import annotations

import numpy as np

from ...core.errors import ResidualDataError
from .autocorrelation import ar_acf, ma_acf, pacf_to_phi, phi_to_pacf
from .kernel import INVALID, Kernel
from .whitening import ARBandWhitener, DenseWhitener, MarkovWhitener


class _StationaryKernel(Kernel):
    """Correlation a function of the lag ``|t_i - t_j|`` with unit variance.

    Subclasses have ``order`` parameters named ``<param><k>`` (``phi1``...)
    plus ``var(e)``, and the heading ``<label>(order)``.
    """

    label = ""
    param = ""

    @property
    def title(self):
        return "%s(%d)" % (self.label, self.order)

    @property
    def n_params(self):
        return self.order

    def names(self):
        return ["%s%d" % (self.param, i + 1) for i in range(self.order)] + ["var(e)"]

    def _acf(self, rho, max_lag: int) -> np.ndarray:
        raise NotImplementedError

    def bind_rows(self, rows):
        super().bind_rows(rows)
        self.max_lag = self._max_lag()

    def prepare(self, rho):
        return self._acf(rho, self.max_lag)

    def corr(self, acf, chunk):
        return acf[np.minimum(chunk.lag(integer=True), acf.size - 1)]


class ARKernel(_StationaryKernel):
    """AR(p): ``phi`` through partial autocorrelations ``tanh(rho)``."""

    kind = "ar"
    default_order = 1

    label = "AR"
    param = "phi"

    def kinds(self):
        # AR(1)'s phi is estimated as tanh and its CI is on the atanh scale; higher orders: normal CIs
        return (["corr"] if self.order == 1 else ["phi"] * self.order) + ["var"]

    def natural(self, rho, sigma2):
        return np.concatenate([pacf_to_phi(np.tanh(rho)), [sigma2]])

    def from_natural(self, nat):
        a = phi_to_pacf(nat[: self.order])
        if a is None:
            return np.zeros(self.order), INVALID
        return np.arctanh(a), float(nat[self.order])

    def _acf(self, rho, max_lag):
        return ar_acf(np.tanh(rho), max_lag)[0]

    def bind_rows(self, rows):
        super().bind_rows(rows)
        self._check_order("ar")
        p = self.order
        if p == 1:
            self._markov = MarkovWhitener(rows)
            return
        ok = rows.consecutive() & (rows.sizes > p)
        if not ARBandWhitener.fits(int(ok.sum()), p, rows.k):  # wide designs: dense per panel size
            ok[:] = False
        band = np.flatnonzero(ok)
        rest = np.flatnonzero(~ok)
        self._band = ARBandWhitener(rows, p, band) if band.size else None
        self._dense = DenseWhitener(rows, rest) if rest.size else None
        self._dense_lag = self._dense.max_lag() if self._dense is not None else 0

    def full(self, rho):
        r = self.rows
        if self.order == 1:
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

    def whiten(self, rho, M):
        if self.order == 1:
            phi = float(np.tanh(rho[0]))
            return self._markov.whiten(lambda d: phi ** d, M)
        return super().whiten(rho, M)


class MAKernel(_StationaryKernel):
    """MA(q): ``theta`` invertible, through ``tanh`` partial autocorrelations of ``-theta``."""

    kind = "ma"
    default_order = 1

    label = "MA"
    param = "theta"

    def kinds(self):
        return ["theta"] * self.order + ["var"]

    def _theta(self, rho):
        return -pacf_to_phi(np.tanh(rho))

    def natural(self, rho, sigma2):
        return np.concatenate([self._theta(rho), [sigma2]])

    def from_natural(self, nat):
        a = phi_to_pacf(-np.asarray(nat[: self.order], dtype=float))
        if a is None:
            return np.zeros(self.order), INVALID
        return np.arctanh(a), float(nat[self.order])

    def _acf(self, rho, max_lag):
        return ma_acf(self._theta(rho), max_lag)

    def bind_rows(self, rows):
        super().bind_rows(rows)
        self._check_order("ma")
        self._dense_all = DenseWhitener(rows)


class ToeplitzKernel(_StationaryKernel):
    """Toeplitz #: free correlations ``rho_1..rho_#`` by lag, zero beyond."""

    kind = "toeplitz"

    label = "Toeplitz"
    param = "rho"

    def kinds(self):
        return ["corr"] * self.order + ["var"]

    def natural(self, rho, sigma2):
        return np.concatenate([np.tanh(rho), [sigma2]])

    def from_natural(self, nat):
        r = np.asarray(nat[: self.order], dtype=float)
        if not np.all(np.abs(r) < 1.0):
            return np.zeros(self.order), INVALID
        return np.arctanh(r), float(nat[self.order])

    def _acf(self, rho, max_lag):
        acf = np.zeros(max(int(max_lag), self.order) + 1)
        acf[0] = 1.0
        acf[1:self.order + 1] = np.tanh(rho)
        return acf

    def bind_rows(self, rows):
        if self.order is None:
            mmax = int(rows.sizes.max())
            if mmax < 2:
                raise ResidualDataError("residuals(toeplitz): every panel has a single observation")
            self.order = mmax - 1
        super().bind_rows(rows)
        self._check_order("toeplitz")
        self._dense_all = DenseWhitener(rows)
