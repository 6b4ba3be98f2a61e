"""``Kmat``: the middle sum of the crossed engine's Schur complement as a sparse linear map.

With ``Z2tZ1 = Z2'Z1`` (the other terms against the first, sparse) and
``H_g = Lambda1 P11_g^{-1} Lambda1'`` (``q1 x q1`` per group of term 1), the
crossed engine needs ``sum_g Z2tZ1[:, g] H_g Z2tZ1[:, g]'`` at every evaluation.
The sum is linear in the ``H_g``: its lower triangle is ``Kmat @ vech(H)``
with a sparse matrix ``Kmat`` whose sparsity pattern (one row per position
of ``Q2 x Q2``, one column per entry of the upper triangle of each ``H_g``)
and values are built once per fit from ``Z2tZ1`` -- the symbolic and numeric
work that does not depend on the parameters.

When ``Lambda2`` is diagonal (the other terms have one column each) the map
is *folded*: its columns are repeated per pair of terms ``(t, t')`` and the
lower triangle of ``Z2tZ2 = Z2'Z2`` is appended as one column per pair, so that
``Kmat @ w`` is directly the lower triangle of ``Lambda2'(Z2tZ2 - mid)Lambda2``.
Each evaluation is then one sparse matrix-vector product.  When ``Kmat``
would be too large (a group of term 1 touching most levels of the others)
no map is built and the engine forms the middle sum by a sparse product.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import scipy.sparse as sp

# Kmat is used while it has at most this many stored entries (12 bytes each);
# otherwise the middle sum is a sparse product per evaluation.
_KMAT_MAX_NNZ = 25_000_000


@dataclass(frozen=True, eq=False)
class SchurMap:
    """``Kmat`` and how to build the vector it multiplies."""

    matrix: sp.csr_matrix  # (Q2 * Q2, columns); rows r * Q2 + s with r >= s filled
    sym: tuple[np.ndarray, np.ndarray]  # (j, k) of the upper-triangle entries of each H_g
    pairs: Optional[tuple[np.ndarray, np.ndarray]]  # folded: pair index -> (term, term) among the others

    @property
    def folded(self) -> bool:
        """Whether ``Lambda2`` and ``Z2tZ2`` are folded into the map."""
        return self.pairs is not None

    def middle(self, H: np.ndarray) -> np.ndarray:
        """Lower triangle (flat, C order) of ``sum_g (Z2tZ1)_g H_g (Z2tZ1)_g'`` (unfolded map)."""
        ju, ku = self.sym
        return self.matrix @ H[:, ju, ku].ravel()

    def scaled_schur(self, H: np.ndarray, lam: np.ndarray) -> np.ndarray:
        """Lower triangle (flat, C order) of ``Lambda2'(Z2tZ2 - mid)Lambda2`` (folded
        map; ``lam`` holds each other term's scalar relative factor)."""
        ju, ku = self.sym
        pa, pb = self.pairs
        dd = lam[pa] * lam[pb]
        w = np.concatenate([np.outer(-dd, H[:, ju, ku].ravel()).ravel(), dd])
        return self.matrix @ w


def _row_slots(Z1tZ2: sp.csr_matrix, q1: int, G1: int):
    """One slot per distinct (group ``g`` of term 1, row ``r`` of ``Z2tZ1``) with the
    ``q1`` values of row ``r`` in ``g``'s columns: ``(values, g, r, rows per group)``,
    sorted by group, then row."""
    C = Z1tZ2.tocoo()  # rows (g, j), cols r
    g, j = np.divmod(C.row.astype(np.int64), q1)
    r = C.col.astype(np.int64)
    o = np.lexsort((j, r, g))
    g, j, r, v = g[o], j[o], r[o], C.data[o]
    new_slot = np.ones(g.size, dtype=bool)
    new_slot[1:] = (g[1:] != g[:-1]) | (r[1:] != r[:-1])
    slot = np.cumsum(new_slot) - 1
    Vs = np.zeros((int(slot[-1]) + 1 if slot.size else 0, q1))
    Vs[slot, j] = v
    gs, rs = g[new_slot], r[new_slot]
    counts = np.bincount(gs, minlength=G1).astype(np.int64)
    return Vs, gs, rs, counts


def _fill_middle(out: tuple[np.ndarray, np.ndarray, np.ndarray], slots, sym, Q2: int,
                 term_of: Optional[np.ndarray]) -> int:
    """Write the middle sum's entries into ``out = (rows, cols, vals)``; returns their number.

    ``H_g`` is symmetric: one column per entry of its upper triangle; for a pair
    of rows (``ra >= rb``) the ``(j, k)`` coefficient is
    ``S[ra,j] S[rb,k] + S[ra,k] S[rb,j]`` (``j < k``).  With ``term_of`` (the
    other term of each row of ``Z2tZ1``; folded map) the columns are those of the
    pair of terms of ``(ra, rb)``.
    """
    rows, cols, vals = out
    Vs, gs, rs, counts = slots
    ju, ku = sym
    nsym = ju.size
    ncol = counts.size * nsym  # columns per pair of terms (folded map)
    off = ju != ku
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = 0
    for m in np.unique(counts):
        if m == 0:
            continue
        a, b = np.tril_indices(m)  # rows are sorted within a group: ra >= rb
        gsel = np.flatnonzero(counts == m)
        step = max(1, 500_000 // (a.size * nsym))  # bound the temporaries
        for c0 in range(0, gsel.size, step):
            st = starts[gsel[c0:c0 + step]][:, None]
            A = (st + a[None, :]).ravel()
            B = (st + b[None, :]).ravel()
            ra, rb = rs[A], rs[B]
            pv = Vs[A][:, ju] * Vs[B][:, ku]
            if off.any():
                pv[:, off] += Vs[A][:, ku[off]] * Vs[B][:, ju[off]]
            col = gs[A][:, None] * nsym + np.arange(nsym)[None, :]
            if term_of is not None:
                col = col + (_pair_index(term_of, ra, rb) * ncol)[:, None]
            k = A.size * nsym
            rows[pos:pos + k] = np.repeat(ra * Q2 + rb, nsym)
            cols[pos:pos + k] = col.ravel()
            vals[pos:pos + k] = pv.ravel()
            pos += k
    return pos


def _pair_index(term_of: np.ndarray, rr: np.ndarray, ss: np.ndarray) -> np.ndarray:
    """Index of the pair of terms of rows ``rr >= ss`` (so ``term_of[rr] >= term_of[ss]``)."""
    ta, tb = term_of[rr], term_of[ss]
    return ta * (ta + 1) // 2 + tb


def build_schur_map(Z1tZ2: sp.csr_matrix, Z2tZ2: sp.coo_matrix, q1: int, rest_G: Sequence[int],
                    fold: bool) -> Optional[SchurMap]:
    """The map for ``Z1tZ2 = Z2tZ1'`` (``(G1 q1, Q2)``), or None when it would be too large.

    ``Z2tZ2`` is ``Z2'Z2`` (COO), ``rest_G`` the number of groups of each other
    term; ``fold`` (every other term has ``q = 1``) folds ``Lambda2`` and ``Z2tZ2``
    into the map.
    """
    G1, Q2 = Z1tZ2.shape[0] // q1, Z1tZ2.shape[1]
    slots = _row_slots(Z1tZ2, q1, G1)
    counts = slots[3]
    ju, ku = np.triu_indices(q1)
    nsym = ju.size
    nnz_mid = int((counts * (counts + 1) // 2).sum()) * nsym
    if nnz_mid > _KMAT_MAX_NNZ:
        return None
    ncol = G1 * nsym
    n_a22, term_of = 0, None
    if fold:
        m_terms = len(rest_G)
        term_of = np.repeat(np.arange(m_terms), rest_G)
        n_pairs = m_terms * (m_terms + 1) // 2
        shape = (Q2 * Q2, n_pairs * (ncol + 1))
        low = Z2tZ2.row >= Z2tZ2.col
        ar, ac = Z2tZ2.row[low].astype(np.int64), Z2tZ2.col[low].astype(np.int64)
        n_a22 = ar.size
    else:
        shape = (Q2 * Q2, ncol)
    idx = np.int32 if max(shape) < 2 ** 31 - 1 else np.int64
    rows = np.empty(nnz_mid + n_a22, dtype=idx)
    cols = np.empty(nnz_mid + n_a22, dtype=idx)
    vals = np.empty(nnz_mid + n_a22)
    pos = _fill_middle((rows, cols, vals), slots, (ju, ku), Q2, term_of)
    pairs = None
    if fold:
        rows[pos:] = ar * Q2 + ac
        cols[pos:] = n_pairs * ncol + _pair_index(term_of, ar, ac)
        vals[pos:] = Z2tZ2.data[low]
        pairs = np.tril_indices(m_terms)
    K = sp.coo_matrix((vals, (rows, cols)), shape=shape)
    del rows, cols, vals
    return SchurMap(K.tocsr(), (ju, ku), pairs)
