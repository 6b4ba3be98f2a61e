"""Correlation kernels of the residual structures (one per ``residuals()`` type).

A kernel describes the *relative* residual covariance ``C`` of the panels it
is bound to (``R = sigma2 * C``) and knows its own parameters:

* optimisation metric ``rho`` (unbounded or generously bounded transforms:
  partial autocorrelations through ``tanh`` for AR/MA, ``tanh`` for Toeplitz
  correlations, a logistic map onto ``(-1/(m-1), 1)`` for the exchangeable
  correlation, log-Cholesky for unstructured, ...);
* reported metric (Stata's ``phi1 .. var(e)``): :meth:`Kernel.natural`
  and its exact inverse :meth:`Kernel.from_natural` (``sigma2`` is the
  kernel's ``var(e)``/``var(e1)``; an invalid point returns ``sigma2=nan``);
* :meth:`Kernel.full` -- the whitened per-panel cross-products and
  ``log|C|`` through one of the whiteners of
  :mod:`mixedlm_ext.structures.residual.whitening`.

The by() wrapper and the link to the design live in :mod:`._residual`.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from scipy.signal import lfilter, lfiltic
from scipy.special import expit, logit

from ...core.errors import ResidualDataError
from .whitening import ARBandWhitener, Chunk, DenseWhitener, MarkovWhitener, PanelRows, dense_whiten


# ---------------------------------------------------------------------------
# AR / MA helpers
# ---------------------------------------------------------------------------
def pacf_to_phi(a: np.ndarray) -> np.ndarray:
    """Durbin-Levinson: partial autocorrelations -> AR coefficients."""
    phi = np.zeros(0)
    for ak in np.asarray(a, dtype=float):
        phi = np.concatenate([phi - ak * phi[::-1], [ak]])
    return phi


def phi_to_pacf(phi: np.ndarray) -> Optional[np.ndarray]:
    """Step-down recursion: AR coefficients -> partial autocorrelations (None if not stationary)."""
    phi = np.asarray(phi, dtype=float).copy()
    p = phi.size
    a = np.zeros(p)
    for k in range(p, 0, -1):
        ak = phi[k - 1]
        if not np.isfinite(ak) or abs(ak) >= 1.0:
            return None
        a[k - 1] = ak
        prev = phi[: k - 1]
        phi = (prev + ak * prev[::-1]) / (1.0 - ak * ak)
    return a


def ar_acf(a: np.ndarray, max_lag: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Autocorrelations (lags ``0..max(max_lag, p)``), AR coefficients and the
    innovation-to-marginal variance ratio of the AR process with pacf ``a``."""
    a = np.asarray(a, dtype=float)
    p = a.size
    L = max(int(max_lag), p)
    rho = np.zeros(L + 1)
    rho[0] = 1.0
    phi = np.zeros(0)
    v = 1.0
    for k in range(1, p + 1):
        ak = a[k - 1]
        rho[k] = ak * v + (phi @ rho[k - 1:0:-1] if k > 1 else 0.0)
        phi = np.concatenate([phi - ak * phi[::-1], [ak]])
        v *= 1.0 - ak * ak
    if L > p:
        den = np.concatenate([[1.0], -phi])
        zi = lfiltic([1.0], den, rho[p:0:-1])
        rho[p + 1:] = lfilter([1.0], den, np.zeros(L - p), zi=zi)[0]
    return rho, phi, v


def ma_acf(theta: np.ndarray, max_lag: int) -> np.ndarray:
    """Autocorrelations (lags ``0..max_lag``) of the MA process ``e_t = u_t + sum theta_j u_{t-j}``."""
    full = np.concatenate([[1.0], np.asarray(theta, dtype=float)])
    q = full.size - 1
    L = max(int(max_lag), q)
    g = np.zeros(L + 1)
    for lag in range(q + 1):
        g[lag] = full[: q + 1 - lag] @ full[lag:]
    return g / g[0]


def format_time(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else "%g" % v


INVALID = float("nan")


# ---------------------------------------------------------------------------
class Kernel:
    """One residual correlation structure bound to a set of panels."""

    kind = ""
    needs_time = True  # t() required
    integer_time = True  # t() must hold integers
    nonneg_time = False  # t() must be >= 0
    by_may_vary = False  # by() may vary within panels
    markov_sorted = True  # rows sorted by t within panels

    default_order: Optional[int] = None

    def __init__(self, order: Optional[int] = None, time_name: Optional[str] = None):
        self.order = self.default_order if order is None else int(order)
        self.time_name = time_name or "t"
        self.rows: Optional[PanelRows] = None

    # -- parameters ----------------------------------------------------------
    @property
    def n_params(self) -> int:
        return 0

    def start(self) -> np.ndarray:
        return np.zeros(self.n_params)

    def bounds(self) -> list:
        return [(-10.0, 10.0)] * self.n_params

    @property
    def title(self) -> str:
        return self.kind

    def names(self) -> list[str]:
        raise NotImplementedError

    def kinds(self) -> list[str]:
        raise NotImplementedError

    def natural(self, rho: np.ndarray, sigma2: float) -> np.ndarray:
        raise NotImplementedError

    def from_natural(self, nat: np.ndarray) -> tuple[np.ndarray, float]:
        raise NotImplementedError

    # -- data ----------------------------------------------------------------
    def bind_rows(self, rows: PanelRows) -> None:
        self.rows = rows

    def prepare(self, rho: np.ndarray):
        return rho

    def corr(self, prep, chunk: Chunk) -> np.ndarray:
        """Relative covariance of the panels of ``chunk`` ``(c, T, T)``."""
        raise NotImplementedError

    def full(self, rho: np.ndarray) -> tuple[np.ndarray, float]:
        """Per-panel ``W' C^{-1} W`` ``(P, k, k)`` and ``sum log|C|``."""
        return self.full_dense(rho)

    def full_dense(self, rho: np.ndarray) -> tuple[np.ndarray, float]:
        """The same through the generic dense whitener (reference path)."""
        if not hasattr(self, "_dense_all"):
            self._dense_all = DenseWhitener(self.rows)
        F = np.zeros((self.rows.P, self.rows.k, self.rows.k))
        ld = self._dense_all.compute(self.corr, self.prepare(rho), F)
        return F, ld

    def panel_corr(self, rho: np.ndarray, j: int) -> np.ndarray:
        """Dense ``C`` of local panel ``j`` (rows in ``t`` order)."""
        r = self.rows
        idx = r.panel_rows(j)[None, :]
        ch = Chunk(np.array([j]), idx, r.W[idx], None if r.t is None else r.t[idx])
        return self.corr(self.prepare(rho), ch)[0]

    def whiten(self, rho: np.ndarray, M: np.ndarray) -> np.ndarray:
        """``L_i^{-1} M_i`` per panel, ``M`` in this kernel's row order."""
        return dense_whiten(self.rows, self.corr, self.prepare(rho), M)

    # -- helpers -------------------------------------------------------------
    def _max_lag(self) -> int:
        r = self.rows
        if r.t is None or r.n == 0:
            return 0
        last = r.starts + r.sizes - 1
        return int(np.rint(np.max(r.t[last] - r.t[r.starts])))

    def _check_order(self, what: str) -> None:
        mmax = int(self.rows.sizes.max())
        if self.order >= mmax:
            raise ResidualDataError(
                "residuals(%s %d): the order must be smaller than the largest panel (%d observations)"
                % (what, self.order, mmax))


# ---------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------
class ExchangeableKernel(Kernel):
    """Common correlation ``r`` within a panel; closed-form whitening."""

    kind = "exchangeable"
    needs_time = False
    integer_time = False
    markov_sorted = False

    @property
    def title(self):
        return "Exchangeable"

    @property
    def n_params(self):
        return 1

    def bounds(self):
        return [(-30.0, 30.0)]

    def names(self):
        return ["var(e)", "cov(e)"]

    def kinds(self):
        return ["var", "cov"]

    def bind_rows(self, rows):
        super().bind_rows(rows)
        mmax = int(rows.sizes.max())
        if mmax < 2:
            raise ResidualDataError("residuals(exchangeable): every panel has a single observation, "
                                    "so the residual covariance is not identified")
        self.lo = -1.0 / (mmax - 1)
        from ...core.linalg import grouped_crossprod

        self._F = grouped_crossprod(rows.W, rows.W, rows.panel, rows.P)
        self._s = np.add.reduceat(rows.W, rows.starts, axis=0)
        self._m = rows.sizes.astype(float)

    def _r(self, rho):
        return self.lo + (1.0 - self.lo) * float(expit(rho[0]))

    def start(self):
        return np.array([logit(-self.lo / (1.0 - self.lo))])

    def natural(self, rho, sigma2):
        return np.array([sigma2, sigma2 * self._r(rho)])

    def from_natural(self, nat):
        v, c = float(nat[0]), float(nat[1])
        if not v > 0:
            return np.zeros(1), INVALID
        r = c / v
        if not self.lo < r < 1.0:
            return np.zeros(1), INVALID
        return np.array([logit((r - self.lo) / (1.0 - self.lo))]), v

    def full(self, rho):
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

    def corr(self, prep, chunk):
        r = self._r(prep)
        T = chunk.T
        C = np.full((chunk.idx.shape[0], T, T), r)
        C[:, np.arange(T), np.arange(T)] = 1.0
        return C

    def whiten(self, rho, M):
        r = self._r(rho)
        rows = self.rows
        M = np.asarray(M, dtype=float)
        c = r / (1.0 - r)
        m = self._m
        a = 1.0 - 1.0 / np.sqrt(1.0 + m * c)
        mean = np.add.reduceat(M, rows.starts, axis=0) / m.reshape((-1,) + (1,) * (M.ndim - 1))
        shape = (-1,) + (1,) * (M.ndim - 1)
        return (M - a[rows.panel].reshape(shape) * mean[rows.panel]) / np.sqrt(1.0 - r)


# ---------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------
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


KERNELS: dict[str, type[Kernel]] = {
    "independent": IndependentKernel,
    "exchangeable": ExchangeableKernel,
    "ar": ARKernel,
    "ma": MAKernel,
    "toeplitz": ToeplitzKernel,
    "exponential": ExponentialKernel,
    "unstructured": UnstructuredKernel,
    "banded": BandedKernel,
}
