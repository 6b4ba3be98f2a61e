"""The cross-products of a design and its working fixed part, from one pass over the data.

The objective needs, per lowest-level panel, ``Z'Z`` and ``Z'[Xw yw]`` and the
global ``[Xw yw]'[Xw yw]``, where ``Xw = X Rx^-1`` is an orthonormal basis of
the fixed part and ``yw = y - X b_ols`` the OLS residual (so that the Schur
complements of the engines do not cancel).  They are computed here without
forming ``Xw`` or ``yw``:

1. the columns of the fixed part and the response are read once as
   contiguous vectors; when the model has a constant, the other columns
   (and ``y``) are centred first, an exact change of basis of the same
   column space that removes the cancellation of large means;
2. the Gram matrix ``G = A'A`` of ``A = [Xc yc]`` (dot products of the
   vectors) and, per panel, ``Z'Z`` and ``Z'A`` (sums over the runs of
   sorted rows, a column of ones costing nothing);
3. collinearity (Stata's rule: a column is omitted when it is in the span of
   the earlier ones, the constant first) and the orthonormalisation are
   decided on the ``p x p`` matrix: ``Xw = Xc Rc^-1`` with ``Rc'Rc = Xc'Xc``,
   so that ``[Xw yw] = A T`` with ``T = [[Rc^-1, -b_c], [0, 1]]`` and every
   cross-product of the working part is ``T`` applied to those of ``A``.

The Gram matrix squares the condition number of the centred fixed part; when
that is large (a relative residual norm below :data:`GRAM_MIN_RATIO`), a
collinearity is too close to call from it, or ``y`` is nearly in the span of
``X`` (the OLS residual would be cancellation noise: :data:`OLS_MIN_RSS`), the
caller falls back to the row-wise QR (:func:`row_working_part`) and row-wise
cross-products.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from scipy.linalg import lapack

from ..core.linalg import grouped_crossprod, orthonormalize

COLLINEAR_TOL = 1e-9  # |residual of a column on the earlier ones| / |column| below this: omitted
AMBIGUOUS_TOL = 1e-6  # ... below this (and above the former): decided by the row-wise QR
GRAM_MIN_RATIO = 1e-4  # relative residual norm of the centred columns below which the Gram is not used
OLS_MIN_RSS = 1e-8  # OLS residual sum of squares over that of (centred) y below which the Gram is not used
_PAIRWISE_MAX = 64  # columns of Z times columns of [Z A] up to which panel sums go pair by pair


@dataclass(frozen=True, eq=False)
class WorkingFixedPart:
    """The fixed part in a well-conditioned working form.

    ``X = Xw @ Rx`` with ``Xw`` orthonormal (rows scaled by the square roots
    of the weights, ``row_scale``, if any) and ``y = yw + X @ b_ols``.  The
    cross-products use ``(Xw, yw)`` so the Schur complements do not cancel;
    the GLS solution is equivariant under both.  ``Xw`` and ``yw`` are
    computed from ``X`` and ``y`` when asked for (the cross-products never
    need them).
    """

    X: np.ndarray
    y: np.ndarray
    row_scale: Optional[np.ndarray]
    Rx: np.ndarray
    Rx_inv: np.ndarray
    logdet_Rx2: float  # log|Rx|^2 = log|X'X| (weighted)
    b_ols: np.ndarray

    @property
    def Xw(self) -> np.ndarray:
        X = self.X if self.row_scale is None else self.X * self.row_scale[:, None]
        return np.einsum("ij,jk->ik", X, self.Rx_inv) if X.shape[1] else X

    @property
    def yw(self) -> np.ndarray:
        r = self.y - self.X @ self.b_ols if self.X.shape[1] else self.y.copy()
        return r if self.row_scale is None else r * self.row_scale


def row_working_part(X: np.ndarray, y: np.ndarray, row_scale: Optional[np.ndarray] = None) -> WorkingFixedPart:
    """The working part by a row-wise QR (CholeskyQR2, Householder when very ill-conditioned)."""
    Xs = X if row_scale is None else X * row_scale[:, None]
    ys = y if row_scale is None else y * row_scale
    p = X.shape[1]
    if not p:
        return WorkingFixedPart(X, y, row_scale, np.zeros((0, 0)), np.zeros((0, 0)), 0.0, np.zeros(0))
    try:
        Xw, Rx = orthonormalize(Xs)
    except np.linalg.LinAlgError:
        Xw, Rx = np.linalg.qr(Xs)
    b_ols = np.linalg.solve(Rx, Xw.T @ ys)
    logdet = 2.0 * float(np.log(np.abs(np.diag(Rx))).sum())
    return WorkingFixedPart(X, y, row_scale, Rx, np.linalg.inv(Rx), logdet, b_ols)


# ---------------------------------------------------------------------------
# columns and their products
# ---------------------------------------------------------------------------
def _dot(a: Optional[np.ndarray], b: Optional[np.ndarray], n: int) -> float:
    """``a'b`` for vectors, ``None`` standing for a column of ones."""
    if a is None and b is None:
        return float(n)
    if a is None or b is None:
        return float((b if a is None else a).sum())
    return float(np.dot(a, b))


_PAIRWISE_GRAM_MAX = 16  # columns up to which A'A is taken pair by pair (no n x k copy of them)


def gram(cols: Sequence[Optional[np.ndarray]], n: int) -> np.ndarray:
    """``A'A`` of the columns (``None``: ones): pair by pair for a few columns, one matrix
    product for many (a factor interaction may have hundreds)."""
    k = len(cols)
    if k > _PAIRWISE_GRAM_MAX:
        A = np.column_stack([np.ones(n) if c is None else c for c in cols])
        return A.T @ A
    G = np.empty((k, k))
    for i in range(k):
        for j in range(i, k):
            G[i, j] = G[j, i] = _dot(cols[i], cols[j], n)
    return G


class PanelSums:
    """Per-panel sums of products of columns over sorted rows (runs ``starts``)."""

    def __init__(self, starts: np.ndarray, n: int):
        self.starts = starts
        self.counts = np.diff(np.append(starts, n)).astype(float)
        self._cache: dict = {}

    def product(self, a: Optional[np.ndarray], b: Optional[np.ndarray]) -> np.ndarray:
        key = (id(a), id(b)) if id(a) <= id(b) else (id(b), id(a))
        out = self._cache.get(key)
        if out is None:
            if a is None and b is None:
                out = self.counts
            elif a is None or b is None:
                out = np.add.reduceat(b if a is None else a, self.starts)
            else:
                out = np.add.reduceat(a * b, self.starts)
            self._cache[key] = out
        return out

    def crossprod(self, left: Sequence, right: Sequence, symmetric: bool = False) -> np.ndarray:
        out = np.empty((self.starts.size, len(left), len(right)))
        for i, a in enumerate(left):
            for j, b in enumerate(right):
                if symmetric and j < i:
                    out[:, i, j] = out[:, j, i]
                else:
                    out[:, i, j] = self.product(a, b)
        return out


def panel_crossproducts(z_cols: Sequence, a_cols: Sequence, codes: np.ndarray, n_panels: int,
                        n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-panel ``Z'Z`` and ``Z'A`` (rows sorted by panel; ``None``: a column of ones)."""
    q, k = len(z_cols), len(a_cols)
    if not q:
        return np.zeros((n_panels, 0, 0)), np.zeros((n_panels, 0, k))
    if q * (q + k) <= _PAIRWISE_MAX:
        starts = np.searchsorted(codes, np.arange(n_panels))
        sums = PanelSums(starts, n)
        return sums.crossprod(z_cols, z_cols, symmetric=True), sums.crossprod(z_cols, a_cols)
    Z = np.column_stack([np.ones(n) if c is None else c for c in z_cols])
    A = np.column_stack([np.ones(n) if c is None else c for c in a_cols])
    return grouped_crossprod(Z, Z, codes, n_panels), grouped_crossprod(Z, A, codes, n_panels)


# ---------------------------------------------------------------------------
# the working part from the Gram matrix
# ---------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class CenteredColumns:
    """``A = [Xc yc]``: the columns the cross-products read (``None``: the constant)."""

    cols: list  # p fixed-effect columns then y
    means: np.ndarray  # (p + 1,) subtracted from each column (0 for the constant)
    const: Optional[int]  # index of the constant among the fixed-effect columns


def centered_columns(x_cols: Sequence[Optional[np.ndarray]], y: np.ndarray,
                     row_scale: Optional[np.ndarray] = None) -> CenteredColumns:
    """Centre every column but the constant (weighted means with ``row_scale**2``)
    when the model has a constant; scale the rows by ``row_scale``."""
    const = next((i for i, c in enumerate(x_cols) if c is None), None)
    cols = list(x_cols) + [y]
    means = np.zeros(len(cols))
    w = None if row_scale is None else row_scale * row_scale
    out = []
    for i, c in enumerate(cols):
        if c is None:
            out.append(None if row_scale is None else row_scale)
            continue
        if const is not None:
            means[i] = float(c.mean()) if w is None else float(np.dot(w, c) / w.sum())
            c = c - means[i]
        out.append(c if row_scale is None else c * row_scale)
    return CenteredColumns(out, means, const)


def constant_first(p: int, const: Optional[int]) -> list[int]:
    """Stata's order of deciding collinearity among ``p`` columns: the constant
    (index ``const``, None without one), then the others in order."""
    return list(range(p)) if const is None else [const] + [i for i in range(p) if i != const]


def schur_ratios(G: np.ndarray, order: list[int], norms: np.ndarray) -> np.ndarray:
    """For each column in ``order``: the norm of its residual on the earlier kept
    columns over ``norms`` (a column with a ratio at or below :data:`COLLINEAR_TOL`
    is not kept, so later ones are projected on the kept ones only).  Without a
    collinearity these are the diagonal of one Cholesky factor."""
    order_a = np.asarray(order, dtype=np.intp)
    L, info = lapack.dpotrf(G[np.ix_(order_a, order_a)], lower=1)
    if info == 0:
        ratios = np.diagonal(L) / np.maximum(norms[order_a], 1e-300)
        if ratios.min() > AMBIGUOUS_TOL:
            return ratios
    ratios = np.zeros(len(order))
    kept: list[int] = []
    for pos, j in enumerate(order):
        s = G[j, j]
        if kept:
            g = G[kept, j]
            s = s - g @ np.linalg.solve(G[np.ix_(kept, kept)], g)
        ratios[pos] = np.sqrt(max(s, 0.0)) / max(norms[j], 1e-300)
        if ratios[pos] > COLLINEAR_TOL:
            kept.append(j)
    return ratios


@dataclass(frozen=True, eq=False)
class GramWorking:
    """What the Gram path decided: the kept columns and the working part of their span."""

    keep: np.ndarray  # (p,) bool over the candidate columns
    Rx: np.ndarray
    Rx_inv: np.ndarray
    logdet_Rx2: float
    b_ols: np.ndarray
    T: np.ndarray  # (k+1, k+1) over the kept columns and y: [Xw yw] = A T
    G: np.ndarray  # (k+1, k+1) Gram of the kept columns of A and y

    def part(self, X: np.ndarray, y: np.ndarray, row_scale: Optional[np.ndarray] = None) -> WorkingFixedPart:
        """The working part for the kept columns ``X`` of the raw fixed part."""
        return WorkingFixedPart(X, y, row_scale, self.Rx, self.Rx_inv, self.logdet_Rx2, self.b_ols)


def gram_working(cc: CenteredColumns, n: int, raw_norms: Optional[np.ndarray] = None) -> Optional[GramWorking]:
    """Collinearity and the working part from ``A'A``; None when the Gram matrix
    cannot decide (a collinearity too close to call, or ill-conditioned columns).

    ``raw_norms`` (the norms of the uncentred columns) decide collinearity as
    Stata does, the constant first; without them every column is kept."""
    p = len(cc.cols) - 1
    G_all = gram(cc.cols, n)
    if not p:
        e = np.zeros((0, 0))
        return GramWorking(np.zeros(0, dtype=bool), e, e, 0.0, np.zeros(0), np.ones((1, 1)), G_all)
    Gx = G_all[:p, :p]
    keep = np.ones(p, dtype=bool)
    if raw_norms is not None:
        order = constant_first(p, cc.const)
        ratios = schur_ratios(Gx, order, raw_norms)
        if np.any((ratios > COLLINEAR_TOL) & (ratios <= AMBIGUOUS_TOL)):
            return None
        keep[:] = False
        keep[np.asarray(order)[ratios > AMBIGUOUS_TOL]] = True
    idx = np.flatnonzero(keep)
    k = idx.size
    Gk = Gx[np.ix_(idx, idx)]
    centred_norms = np.sqrt(np.maximum(np.diagonal(Gk), 0.0))
    if k and schur_ratios(Gk, list(range(k)), centred_norms).min() < GRAM_MIN_RATIO:
        return None  # ill-conditioned among themselves: the Gram matrix would lose too much
    try:
        Rc = np.linalg.cholesky(Gk).T
    except np.linalg.LinAlgError:
        return None
    sel = np.append(idx, p)
    G = G_all[np.ix_(sel, sel)]
    Rc_inv = np.linalg.inv(Rc)
    b_c = Rc_inv @ (Rc_inv.T @ G[:-1, -1])
    T = np.zeros((k + 1, k + 1))
    T[:k, :k] = Rc_inv
    T[:k, k] = -b_c
    T[k, k] = 1.0
    if (T[:, k] @ G @ T[:, k]) < OLS_MIN_RSS * G[k, k]:
        return None  # y (nearly) in the span of X: its residual would be cancellation noise

    # back to the raw columns: x_j = xc_j + mean_j * 1, so X = Xc S with S = I + e_const mean'
    S_inv = np.eye(k)
    b_ols = b_c.copy()
    if cc.const is not None and keep[cc.const]:
        c = int(np.flatnonzero(idx == cc.const)[0])
        S_inv[c, :] -= cc.means[idx]
        S_inv[c, c] = 1.0
        b_ols[c] += cc.means[-1]
        b_ols = S_inv @ b_ols
    return GramWorking(keep, Rc @ np.linalg.inv(S_inv), S_inv @ Rc_inv,
                       2.0 * float(np.log(np.abs(np.diagonal(Rc))).sum()), b_ols, T, G)
