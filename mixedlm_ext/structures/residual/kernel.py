"""The residual correlation kernel: base class and shared helpers.

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

One kernel class per ``residuals()`` type, each in a module of its own kind
(:mod:`.independent`, :mod:`.exchangeable`, :mod:`.stationary`,
:mod:`.exponential`, :mod:`.indexed`), registered in
:data:`mixedlm_ext.structures.residual.registry.KERNELS`.  The by() wrapper
and the link to the design live in :mod:`mixedlm_ext.structures.residual.structure`.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ...core.errors import ResidualDataError
from .whitening import Chunk, DenseWhitener, PanelRows, dense_whiten


def format_time(v: float) -> str:
    """A time value as printed in parameter names and messages (``3``, ``2.5``)."""
    return str(int(v)) if float(v).is_integer() else "%g" % v


def time_lags(t: np.ndarray) -> np.ndarray:
    """``|t_i - t_j|`` per panel ``(c, T, T)`` of a chunk's times ``(c, T)``."""
    return np.abs(t[:, :, None] - t[:, None, :])


INVALID = float("nan")


class SingleVariance:
    """The reported metric of a residual with one variance and no correlation
    parameters (the plain residual, the independent kernel)."""

    def kinds(self) -> list[str]:
        return ["var"]

    def natural(self, rho: np.ndarray, sigma2: float) -> np.ndarray:
        return np.array([sigma2])

    def from_natural(self, nat: np.ndarray) -> tuple[np.ndarray, float]:
        return np.zeros(0), float(nat[0])


class Kernel:
    """One residual correlation structure bound to a set of panels.

    Parameters
    ----------
    rows : PanelRows
        The rows of the panels, sorted by ``t`` within panel; a kernel is
        bound to them when it is made and never changes afterwards.
    order : int, optional
        The ``#`` of ``ar #``, ``ma #``, ``toeplitz #``, ``banded #``.
    time_name : str, optional
        Name of the ``t()`` variable (messages, parameter names).
    """

    kind = ""
    needs_time = True  # t() required
    integer_time = True  # t() must hold integers
    nonneg_time = False  # t() must be >= 0
    by_may_vary = False  # by() may vary within panels
    has_order = False  # takes the ``#`` of ``residuals(kind #)``

    default_order: Optional[int] = None

    def __init__(self, rows: PanelRows, order: Optional[int] = None, time_name: Optional[str] = None):
        self.rows = rows
        self.order = self.default_order if order is None else int(order)
        self.time_name = time_name or "t"

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

    @property
    def absorbs(self) -> Optional[str]:
        """Which panel-level random effects ``C`` already contains (their covariance is
        then not identified): ``"intercept"`` -- a random intercept; ``"time"`` -- any
        random effects whose design depends on ``t`` only; ``None`` -- none."""
        return None

    def names(self) -> list[str]:
        raise NotImplementedError

    def kinds(self) -> list[str]:
        raise NotImplementedError

    def natural(self, rho: np.ndarray, sigma2: float) -> np.ndarray:
        raise NotImplementedError

    def from_natural(self, nat: np.ndarray) -> tuple[np.ndarray, float]:
        raise NotImplementedError

    # -- evaluation ----------------------------------------------------------
    def prepare(self, rho: np.ndarray):
        """What :meth:`corr` needs from ``rho`` (computed once per evaluation)."""
        return rho

    def corr_index(self, t: Optional[np.ndarray]) -> Optional[np.ndarray]:
        """What :meth:`corr` reads from a chunk's times (:attr:`Chunk.index`), or ``None``."""
        return None

    def corr(self, prep, chunk: Chunk) -> np.ndarray:
        """Relative covariance of the panels of ``chunk`` ``(c, T, T)``."""
        raise NotImplementedError

    def full(self, rho: np.ndarray) -> tuple[np.ndarray, float]:
        """Per-panel ``W' C^{-1} W`` ``(P, k, k)`` and ``sum log|C|``."""
        raise NotImplementedError

    def full_dense(self, rho: np.ndarray) -> tuple[np.ndarray, float]:
        """The same through a generic dense whitener of all panels (reference path)."""
        return DenseWhitener(self.rows, index=self.corr_index).crossproducts(self.corr, self.prepare(rho))

    def panel_corr(self, rho: np.ndarray, j: int) -> np.ndarray:
        """Dense ``C`` of local panel ``j`` (rows in ``t`` order)."""
        r = self.rows
        idx = r.panel_rows(j)[None, :]
        t = None if r.t is None else r.t[idx]
        ch = Chunk(np.array([j]), idx, r.W[idx], t, self.corr_index(t))
        return self.corr(self.prepare(rho), ch)[0]

    def whiten(self, rho: np.ndarray, M: np.ndarray) -> np.ndarray:
        """``L_i^{-1} M_i`` per panel, ``M`` in this kernel's row order."""
        return dense_whiten(self.rows, self.corr, self.prepare(rho), M, index=self.corr_index)

    # -- helpers for the subclasses ------------------------------------------
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
