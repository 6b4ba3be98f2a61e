"""Whiteners of the residual structures: panel rows, dense, Markov and AR-band.

A whitener applies ``C_i^{-1/2}`` panel by panel (not to be confused with
the random-effects elimination engines of :mod:`mixedlm_ext.engines`).
Every whitener computes, for a set of panels, the whitened cross-products
``F_i = W_i' C_i^{-1} W_i`` (``W = [Z Xw yw]``, one ``k x k`` matrix per
panel) and ``sum_i log|C_i|`` without forming an ``n x n`` matrix and
without a Python loop over panels:

* :class:`DenseWhitener` -- any correlation: panels are grouped by size, and
  each group is one batched Cholesky + batched solve of ``(c, T, T)`` stacks
  (only a loop over the distinct panel sizes);
* :class:`MarkovWhitener` -- AR(1) and exponential correlation (Markov in
  ``t``, gaps allowed): the precision matrix is tridiagonal with entries that
  depend only on the gap ``d = t_i - t_{i-1}``, so per-(panel, gap) sums of
  ``W_i W_i'``, ``W_i W_{i-1}'``, ``W_{i-1} W_{i-1}'`` are sufficient
  statistics computed once; an evaluation costs ``O(panels * k^2)``;
* :class:`ARBandWhitener` -- AR(p) on panels with consecutive ``t``: the first
  ``p`` rows are whitened by the stationary ``p x p`` correlation, the rest
  by the AR filter, so the per-panel products of the first ``p`` rows and the
  lag-``a``/lag-``b`` sums are sufficient statistics.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import scipy.sparse as sp

from ...core.errors import ResidualDataError
from ...core.linalg import group_starts, grouped_crossprod

_MAX_ELEMS = 2_000_000  # c * T * T per batched Cholesky
MAX_DENSE_PANEL = 2_000  # largest panel the dense whitener handles
_MAX_STATS = 30_000_000  # elements of precomputed sufficient statistics (else whiten per evaluation)


def panel_crossprod(A: np.ndarray, C: np.ndarray, code: np.ndarray, G: int) -> np.ndarray:
    """``out[g] = A[rows of g]' C[rows of g]`` (``code`` sorted); batched BLAS when
    every group has the same number of rows, :func:`grouped_crossprod` otherwise."""
    n = A.shape[0]
    if G and n and n % G == 0:
        T = n // G
        ar = np.arange(G)
        if np.array_equal(code[::T], ar) and np.array_equal(code[T - 1::T], ar):
            return np.matmul(np.swapaxes(A.reshape(G, T, -1), 1, 2), C.reshape(G, T, -1))
    return grouped_crossprod(A, C, code, G)


class PanelRows:
    """Rows of a set of panels, sorted by (panel, t).

    Parameters
    ----------
    rows : int array
        Positions of the rows in the design (sorted estimation rows).
    panel : int array
        Design panel (lowest-level group) of each row.
    t : float array or None
        Time variable of each row (``None``: keep the design order).
    W : (n, k) array
        ``[Z Xw yw]`` rows.
    """

    def __init__(self, rows: np.ndarray, panel: np.ndarray, t: Optional[np.ndarray], W: np.ndarray):
        panel = np.asarray(panel)
        n = panel.size
        if n and np.all(panel[1:] >= panel[:-1]):  # the usual case: design order
            st = group_starts(panel)
            uniq = panel[st]
            local = np.repeat(np.arange(st.size), np.diff(np.append(st, n)))
        else:
            uniq, local = np.unique(panel, return_inverse=True)
            local = local.reshape(-1)
        order = None
        if t is not None:
            t = np.asarray(t, dtype=float)
            same = local[1:] == local[:-1]
            if not (np.all(local[1:] >= local[:-1]) and np.all(t[1:][same] > t[:-1][same])):
                order = np.lexsort((t, local))
        elif not np.all(local[1:] >= local[:-1]):
            order = np.argsort(local, kind="stable")
        if order is None:
            self.rows, self.panel, self.t, self.W = np.asarray(rows), local, t, np.ascontiguousarray(W)
        else:
            self.rows = np.asarray(rows)[order]
            self.panel = local[order]
            self.t = None if t is None else t[order]
            self.W = np.ascontiguousarray(W[order])
        self.panel_ids = uniq  # local panel -> design panel
        self.n = self.rows.size
        self.k = W.shape[1]
        self.P = uniq.size
        self.starts = group_starts(self.panel)
        self.sizes = np.diff(np.append(self.starts, self.n))
        self.pos = np.arange(self.n) - np.repeat(self.starts, self.sizes)
        # a repeated t within a panel (position in this order), or None
        self.repeated = None
        if self.t is not None and order is not None and self.n > 1:
            dup = np.flatnonzero((self.t[1:] == self.t[:-1]) & (self.panel[1:] == self.panel[:-1]))
            if dup.size:
                self.repeated = int(dup[0])

    def panel_rows(self, j: int) -> np.ndarray:
        """Positions (in this object's order) of local panel ``j``."""
        s = self.starts[j]
        return np.arange(s, s + self.sizes[j])

    def consecutive(self) -> np.ndarray:
        """Per panel: whether ``t`` increases by exactly 1 from row to row."""
        ok = np.ones(self.P, dtype=bool)
        if self.t is None or self.n < 2:
            return ok
        gap = np.diff(self.t)
        bad = (gap != 1.0) & (self.panel[1:] == self.panel[:-1])
        ok[self.panel[1:][bad]] = False
        return ok


CorrIndexFn = Callable[[np.ndarray], np.ndarray]


class Chunk:
    """Panels of one size, whitened together by the dense whitener.

    Parameters
    ----------
    ids : int array
        Local panel ids ``(c,)``.
    idx : int array
        Row positions ``(c, T)``.
    W : array
        The rows ``(c, T, k)``.
    t : array or None
        Time of each row ``(c, T)``.
    index : array or None
        What the kernel's correlation is indexed by (lags, time levels),
        computed from ``t`` when the chunk is made.
    """

    def __init__(self, ids: np.ndarray, idx: np.ndarray, W: np.ndarray, t: Optional[np.ndarray],
                 index: Optional[np.ndarray] = None):
        self.ids = ids
        self.idx = idx
        self.W = W
        self.t = t
        self.index = index

    @property
    def T(self) -> int:
        return self.idx.shape[1]


def make_chunks(rows: PanelRows, panels: Optional[np.ndarray] = None, M: Optional[np.ndarray] = None,
                index: Optional[CorrIndexFn] = None) -> list[Chunk]:
    """Group ``panels`` (local ids) by size and cut each group to bounded stacks.

    ``M`` replaces ``rows.W`` as the rows carried; ``index(t)`` gives each
    chunk's :attr:`Chunk.index`.
    """
    panels = np.arange(rows.P) if panels is None else np.asarray(panels, dtype=np.intp)
    W = rows.W if M is None else M
    out = []
    if panels.size == 0:
        return out
    sizes = rows.sizes[panels]
    if sizes.max() > MAX_DENSE_PANEL:
        raise ResidualDataError(
            "a panel has %d observations; this structure whitens each panel as a dense T x T matrix, "
            "limited to %d observations per panel (AR(1), exponential, exchangeable and AR(p) with "
            "consecutive t have no such limit)" % (sizes.max(), MAX_DENSE_PANEL))
    for T in np.unique(sizes):
        ids = panels[sizes == T]
        step = max(1, _MAX_ELEMS // int(T * T))
        for s in range(0, ids.size, step):
            sub = ids[s:s + step]
            idx = rows.starts[sub][:, None] + np.arange(T)[None, :]
            t = None if rows.t is None else rows.t[idx]
            out.append(Chunk(sub, idx, W[idx], t, None if index is None else index(t)))
    return out


CorrFn = Callable[[object, Chunk], np.ndarray]


class DenseWhitener:
    """Batched Cholesky whitening of panels grouped by size.

    Parameters
    ----------
    rows : PanelRows
        The kernel's rows.
    panels : int array, optional
        Local panels to whiten (default: all).
    index : callable, optional
        ``index(t)`` -> the chunk's correlation index (see :class:`Chunk`).
    """

    def __init__(self, rows: PanelRows, panels: Optional[np.ndarray] = None,
                 index: Optional[CorrIndexFn] = None):
        self.rows = rows
        self.chunks = make_chunks(rows, panels, index=index)

    def max_lag(self) -> int:
        """Largest ``t_last - t_first`` of the whitened panels."""
        out = 0
        for c in self.chunks:
            if c.t is not None and c.T > 1:
                out = max(out, int(np.rint(np.max(c.t[:, -1] - c.t[:, 0]))))
        return out

    def compute(self, corr: CorrFn, prep, F: np.ndarray) -> float:
        """Add ``W_i' C_i^{-1} W_i`` into ``F[ids]``; return ``sum log|C_i|``."""
        logdet = 0.0
        for ch in self.chunks:
            C = corr(prep, ch)
            L = np.linalg.cholesky(C)
            X = np.linalg.solve(L, ch.W)
            F[ch.ids] += np.matmul(np.swapaxes(X, 1, 2), X)
            logdet += 2.0 * float(np.log(np.diagonal(L, axis1=1, axis2=2)).sum())
        return logdet

    def crossproducts(self, corr: CorrFn, prep) -> tuple[np.ndarray, float]:
        """Per-panel ``W_i' C_i^{-1} W_i`` ``(P, k, k)`` (zero for panels not whitened) and ``sum log|C_i|``."""
        F = np.zeros((self.rows.P, self.rows.k, self.rows.k))
        return F, self.compute(corr, prep, F)


def dense_whiten(rows: PanelRows, corr: CorrFn, prep, M: np.ndarray, panels: Optional[np.ndarray] = None,
                 index: Optional[CorrIndexFn] = None) -> np.ndarray:
    """``L_i^{-1} M_i`` per panel (``C_i = L_i L_i'``), rows in ``rows`` order."""
    out = np.array(M, dtype=float, copy=True)
    for ch in make_chunks(rows, panels, M=np.asarray(M, dtype=float), index=index):
        L = np.linalg.cholesky(corr(prep, ch))
        out[ch.idx] = np.linalg.solve(L, ch.W)
    return out


class MarkovWhitener:
    """AR(1)/exponential whitening: ``e~_i = (e_i - a_i e_{i-1}) / sqrt(1 - a_i^2)``.

    ``a_i = base ** (t_i - t_{i-1})``.  With few distinct gaps the per
    (panel, gap) sums are sufficient statistics; otherwise rows are whitened
    per evaluation (``O(n k^2)``).
    """

    def __init__(self, rows: PanelRows):
        self.rows = rows
        W = rows.W
        P, k = rows.P, rows.k
        first = rows.starts
        self.F0 = W[first, :, None] * W[first, None, :]
        cur = np.flatnonzero(rows.pos > 0)
        prev = cur - 1
        d = rows.t[cur] - rows.t[prev]
        self.cur, self.prev, self.d = cur, prev, d
        self.dvals, dcode = np.unique(d, return_inverse=True)
        dcode = dcode.reshape(-1)
        D = max(1, self.dvals.size)
        self.count_d = np.bincount(dcode, minlength=self.dvals.size).astype(float)
        key = rows.panel[cur].astype(np.int64) * D + dcode
        if key.size and np.all(key[1:] >= key[:-1]):
            order = None
            kst = group_starts(key)
            ukeys = key[kst]
        else:
            order = np.argsort(key, kind="stable")
            ukeys = np.unique(key)
        small = 3 * ukeys.size * rows.k * rows.k <= _MAX_STATS
        self.mode = "stats" if (cur.size and ukeys.size * 3 <= cur.size and small) else "rows"
        if cur.size == 0:
            self.mode = "none"
        if self.mode == "stats":
            if order is None:
                code = np.repeat(np.arange(ukeys.size), np.diff(np.append(kst, key.size)))
                A, B = W[cur], W[prev]
            else:
                code = np.searchsorted(ukeys, key[order])
                A, B = W[cur[order]], W[prev[order]]
            G = ukeys.size
            X = panel_crossprod(A, B, code, G)
            S = np.empty((3, G, k * k))
            S[0] = panel_crossprod(A, A, code, G).reshape(G, -1)
            S[1] = (X + np.swapaxes(X, 1, 2)).reshape(G, -1)
            S[2] = panel_crossprod(B, B, code, G).reshape(G, -1)
            self.S = S
            cpanel = ukeys // D
            self.cd = ukeys % D
            self.single_d = self.dvals.size == 1
            # combinations -> panels: identity when every panel has one gap class
            self.identity = G == P and np.array_equal(cpanel, np.arange(P))
            if not self.identity:
                self.to_panel = sp.csr_matrix((np.ones(G), (cpanel, np.arange(G))), shape=(P, G))

    def compute(self, a_of_d: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, float]:
        """Whitened cross-products ``(P, k, k)`` of the local panels and ``log|C|``."""
        if self.mode == "none":
            return self.F0.copy(), 0.0
        rows = self.rows
        if self.mode == "stats":
            a = np.asarray(a_of_d(self.dvals), dtype=float)
            one = 1.0 - a * a
            if not np.all(one > 0):
                raise np.linalg.LinAlgError("residual correlation is not positive definite")
            w = np.stack([1.0 / one, -a / one, a * a / one])  # (3, D)
            if self.single_d:
                G = (w[:, 0] @ self.S.reshape(3, -1)).reshape(self.S.shape[1:])
            else:
                G = np.einsum("jc,jcm->cm", w[:, self.cd], self.S)
            if not self.identity:
                G = self.to_panel @ G
            return self.F0 + G.reshape(self.F0.shape), float(self.count_d @ np.log(one))
        a = a_of_d(self.d)
        one = 1.0 - a * a
        if not np.all(one > 0):
            raise np.linalg.LinAlgError("residual correlation is not positive definite")
        W = rows.W
        Wt = np.zeros_like(W)
        Wt[self.cur] = (W[self.cur] - a[:, None] * W[self.prev]) / np.sqrt(one)[:, None]
        F = self.F0 + panel_crossprod(Wt, Wt, rows.panel, rows.P)  # first rows are zero in Wt
        return F, float(np.log(one).sum())

    def whiten(self, a_of_d, M: np.ndarray) -> np.ndarray:
        out = np.array(M, dtype=float, copy=True)
        if self.cur.size:
            a = a_of_d(self.d)
            s = np.sqrt(1.0 - a * a)
            shape = (-1,) + (1,) * (out.ndim - 1)
            out[self.cur] = (M[self.cur] - a.reshape(shape) * M[self.prev]) / s.reshape(shape)
        return out


class ARBandWhitener:
    """AR(p) on panels with consecutive ``t`` and more than ``p`` rows."""

    @staticmethod
    def fits(n_panels: int, p: int, k: int) -> bool:
        """Whether the statistics stay within the memory budget."""
        return n_panels * ((p + 1) ** 2 + p * p) * k * k <= _MAX_STATS

    def __init__(self, rows: PanelRows, p: int, panels: np.ndarray):
        self.rows, self.p = rows, p
        self.panels = np.asarray(panels, dtype=np.intp)
        W = rows.W
        Pe = self.panels.size
        st = rows.starts[self.panels]
        self.m = rows.sizes[self.panels].astype(float)
        Wf = W[st[:, None] + np.arange(p)[None, :]]  # (Pe, p, k)
        self.H = np.einsum("eik,ejl->eijkl", Wf, Wf)
        member = np.zeros(rows.P, dtype=bool)
        member[self.panels] = True
        r = np.flatnonzero(member[rows.panel] & (rows.pos >= p))
        code = np.searchsorted(self.panels, rows.panel[r])
        k = rows.k
        S = np.zeros((Pe, p + 1, p + 1, k, k))
        for a in range(p + 1):
            for b in range(a, p + 1):
                X = panel_crossprod(W[r - a], W[r - b], code, Pe)
                S[:, a, b] = X
                if b != a:
                    S[:, b, a] = np.swapaxes(X, 1, 2)
        self.S = S

    @classmethod
    def from_statistics(cls, p: int, H: np.ndarray, S: np.ndarray, sizes: np.ndarray,
                        panels: Optional[np.ndarray] = None) -> "ARBandWhitener":
        """The whitener of panels known by their statistics alone: the products of
        their first ``p`` rows ``H`` ``(Pe, p, p, k, k)``, the lag sums ``S``
        ``(Pe, p+1, p+1, k, k)`` and their sizes (``panels``: their positions
        among the panels, default ``0..Pe-1``)."""
        out = cls.__new__(cls)
        out.rows, out.p = None, int(p)
        out.panels = np.arange(H.shape[0]) if panels is None else np.asarray(panels, dtype=np.intp)
        out.m = np.asarray(sizes, dtype=float)
        out.H, out.S = H, S
        return out

    def compute(self, acf: np.ndarray, phi: np.ndarray, innov: float, F: np.ndarray) -> float:
        """``acf`` lags ``0..p-1`` at least; ``innov`` = innovation / marginal variance."""
        p = self.p
        idx = np.abs(np.arange(p)[:, None] - np.arange(p)[None, :])
        Cp = acf[idx]
        sign, ld = np.linalg.slogdet(Cp)
        if sign <= 0 or not innov > 0:
            raise np.linalg.LinAlgError("AR correlation is not positive definite")
        A = np.linalg.inv(Cp)
        c = np.concatenate([[1.0], -np.asarray(phi, dtype=float)])
        cc = np.outer(c, c) / innov
        G = np.tensordot(A, self.H, axes=([0, 1], [1, 2])) + np.tensordot(cc, self.S, axes=([0, 1], [1, 2]))
        F[self.panels] += G
        return float(self.panels.size * ld + (self.m - p).sum() * np.log(innov))
