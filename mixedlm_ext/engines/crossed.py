"""Crossed random effects at scale: a blocked sparse Cholesky engine.

Crossed designs (Stata's ``|| _all: R.a || _all: R.b`` and ``|| _all: R.a ||
b:``, lme4's ``(1|a) + (1|b)``, random slopes on either factor) reach the
objective as one ``_all`` level whose blocks are expanded by a factor, plus
possibly grouped levels below it.  The nested engine would need the dense
``n x Q`` design and a dense ``Q x Q`` factorisation; this module never forms
either.

Terms
-----
The random effects are regrouped into *terms* (MixedModels.jl's
``ReMat``): a grouping (one code per row, ``G`` groups), ``q`` base columns
per row and a ``q x q`` relative factor shared by all groups, so the term's
part of ``Z`` is the row-wise Kronecker product of the group indicators and
the base columns, and its part of ``Lambda`` is ``kron(I_G, Lambda_t)``.
Blocks of one level with the same grouping (``(1|a) + (0+x|a)``) share a
term (block-diagonal ``Lambda_t``).

Blocked Cholesky (MixedModels.jl's scheme)
------------------------------------------
Terms are ordered by size ``G * q``, largest first.  With ``1`` the first
term and ``2`` all the others,

``P = Lambda' Z'Z Lambda + I = [[P11, P21'], [P21, P22]]``

* ``P11`` is block diagonal (``G1`` blocks ``q1 x q1``): batched Cholesky
  ``L1``;
* the Schur complement ``P22 - P21 P11^{-1} P21'`` is dense
  (``Q2 = sum of the other terms' G * q``; 1,142 for InstEval):
  ``scipy.linalg.lapack.dpotrf``.

With ``S21 = Z2'Z1`` (sparse, computed once) and
``H_g = Lambda1 P11_g^{-1} Lambda1'`` (``q1 x q1`` per group of term 1),
``P21 P11^{-1} P21' = Lambda2' (sum_g S21[:, g] H_g S21[:, g]') Lambda2``.
The middle sum is linear in the ``H_g``: its lower triangle is
``Kmat @ vech(H)`` with a sparse matrix ``Kmat`` whose sparsity pattern (one
row per position of ``Q2 x Q2``, one column per entry of the triangle of each
``H_g``) and values are built once per fit from ``S21`` -- the symbolic and
numeric work that does not depend on the parameters.  When ``Lambda2`` is
diagonal (the other terms have one column each) the scaling by ``Lambda2``
and ``Z2'Z2`` are folded into the same map.  Each evaluation is then one
sparse matrix-vector product and one dense Cholesky of order ``Q2``; the
number of observations never enters.  When ``Kmat`` would be too large (a
group of term 1 touching most levels of the others) the middle sum is
formed per evaluation by a sparse product instead.

The ``[X y]`` columns follow the same blocks: ``U1 = L1^{-1} Lambda1'
Z1'[X y]``, ``U2 = L22^{-1} Lambda2' (Z2'[X y] - S21 H Z1'[X y])`` and the
Schur complement of ``[X y]`` is ``[X y]'[X y] - U1'U1 - U2'U2``.

Conditional modes (BLUPs) ``u = P^{-1} Lambda' Z'(y - X beta)`` come from
the same factor by back substitution (:meth:`CrossedEngine.solve_u`), in the
layout of the nested engine (one ``(G, q)`` array per level, finest first),
so postestimation code does not need to know which engine ran.
:meth:`CrossedEngine.conditional_variances` gives the diagonal blocks of
``P^{-1}`` per term and :func:`level_blups` the BLUPs with their conditional
and comparative covariances in postestimation's per-level layout, without the
dense nested-layout factor (:class:`_NestedView`, small designs only).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from ..core.linalg import (batched_cholesky, batched_lower_solve, block_diag, grouped_crossprod, inv_lower,
                           lower_solve_vec, upper_solve_vec)
from ..design.groups import group_codes
from ..design.random import base_matrix
from .nested import Elimination, NestedEngine

# Kmat is used while it has at most this many stored entries (12 bytes each);
# otherwise the middle sum is a sparse product per evaluation.
_KMAT_MAX_NNZ = 25_000_000
# design.Z stays a dense array while it has at most this many entries (other
# modules index it); larger crossed designs keep it as a scipy CSC matrix.
# dense fall-back for the nested-layout factors (conditional covariances)
_NESTED_VIEW_MAX_ELEMS = 20_000_000


# ---------------------------------------------------------------------------
# terms
# ---------------------------------------------------------------------------
@dataclass
class CrossedTerm:
    """One grouping factor with its base columns and relative factor."""

    label: str
    codes: np.ndarray  # (n,) row -> group
    G: int
    base: np.ndarray  # (n, q)
    blocks: list = field(default_factory=list)  # (global block index, column offset in term, qe)
    pos: np.ndarray = None  # (G, q) flat position in the level-layout u vector

    @property
    def q(self) -> int:
        return self.base.shape[1]

    def factor(self, lams: Sequence[np.ndarray]) -> np.ndarray:
        """``Lambda_t`` from the per-block base factors (global block order)."""
        if len(self.blocks) == 1:
            return np.asarray(lams[self.blocks[0][0]], dtype=float)
        out = np.zeros((self.q, self.q))
        for bi, off, qe in self.blocks:
            out[off:off + qe, off:off + qe] = lams[bi]
        return out


def level_layout(design):
    """Levels with random effects, finest first, and each one's offset in the
    flattened level-layout ``u`` vector (``(G, q)`` per level, row major)."""
    offs, total = {}, 0
    for li in range(len(design.levels) - 1, -1, -1):
        lvl = design.levels[li]
        if lvl.q == 0:
            continue
        offs[li] = total
        total += lvl.n_groups * lvl.q
    return offs, total


def build_terms(design) -> tuple[list[CrossedTerm], int]:
    """The design's random effects as crossed terms (in design order) and the
    length of the level-layout ``u`` vector."""
    df = design.data
    offs, total = level_layout(design)
    terms: dict = {}
    bi = 0
    for li, lvl in enumerate(design.levels):
        boff = 0
        for blk in lvl.blocks:
            base = base_matrix(blk.equation, df)
            qe = base.shape[1]
            G_l, q_l = lvl.n_groups, lvl.q
            if blk.expand_by is not None:
                ecodes, _ = group_codes(df, tuple(blk.expand_by))
                k = blk.n_expand
                codes = lvl.codes * k + ecodes if lvl.path else ecodes
                G = G_l * k if lvl.path else k
                g = np.arange(G)
                grp, e = (g // k, g % k) if lvl.path else (np.zeros(G, dtype=np.intp), g)
                pos = offs[li] + grp[:, None] * q_l + boff + e[:, None] * qe + np.arange(qe)[None, :]
                key = (li, tuple(blk.expand_by))
                label = "%s" % ",".join(blk.expand_by)
            else:
                codes, G = lvl.codes, G_l
                pos = offs[li] + np.arange(G)[:, None] * q_l + boff + np.arange(qe)[None, :]
                key = (li, None)
                label = lvl.label
            if key in terms:
                t = terms[key]
                t.blocks.append((bi, t.q, qe))
                t.base = np.column_stack([t.base, base])
                t.pos = np.column_stack([t.pos, pos])
            else:
                terms[key] = CrossedTerm(label, np.asarray(codes, dtype=np.intp), int(G), base,
                                         [(bi, 0, qe)], pos)
            boff += blk.q
            bi += 1
    return list(terms.values()), total


def _term_matrix(terms: Sequence[CrossedTerm], n: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """Sparse ``[Z_t1 Z_t2 ...]`` (n x sum G q) and the column offset of each term."""
    offs = np.concatenate([[0], np.cumsum([t.G * t.q for t in terms])]).astype(np.int64)
    if not terms:
        return sp.csr_matrix((n, 0)), offs
    idx = np.column_stack([offs[i] + t.codes.astype(np.int64)[:, None] * t.q + np.arange(t.q)[None, :]
                           for i, t in enumerate(terms)])
    val = np.column_stack([t.base for t in terms])
    w = idx.shape[1]
    Z = sp.csr_matrix((val.ravel(), idx.ravel(), np.arange(0, n * w + 1, w, dtype=np.int64)),
                      shape=(n, int(offs[-1])))
    Z.sum_duplicates()
    return Z, offs


# ---------------------------------------------------------------------------
# elimination result
# ---------------------------------------------------------------------------
@dataclass
class CrossedElimination(Elimination):
    """:class:`Elimination` plus what the back substitution needs."""

    state: Optional[dict] = None


class _NestedView(Sequence):
    """The nested engine's per-level factors (``L``, ``T``, ``U``) of the same
    design, computed on first access from dense per-panel cross-products.

    They serve code written for the nested layout (conditional covariances in
    :func:`mixedlm_ext._em.conditional_moments`); feasible for small and
    medium crossed designs only (the top ``_all`` level is one dense block).
    """

    def __init__(self, engine: "CrossedEngine", lams, XYtXY):
        self._engine, self._lams, self._XYtXY = engine, lams, XYtXY
        self._factors = None

    def _get(self):
        if self._factors is None:
            self._factors = self._engine.nested_factors(self._lams, self._XYtXY)
        return self._factors

    def __len__(self):
        return len(self._engine.parents)

    def __getitem__(self, i):
        return self._get()[i]


# ---------------------------------------------------------------------------
# the engine
# ---------------------------------------------------------------------------
class CrossedEngine:
    """Blocked sparse Cholesky for crossed random effects.

    Parameters
    ----------
    design : Design
        A design whose random effects include an ``_all`` level with factor
        blocks (``design.sparse_re``).
    blocks : list of Block
        The objective's blocks (coarsest level first): the order of the
        per-block relative factors given to :meth:`eliminate`.

    Same contract as :class:`~mixedlm_ext._engine.NestedEngine`:
    ``eliminate(ZtZ, ZtXY, XYtXY, Lambda, keep)`` returns an
    :class:`~mixedlm_ext._engine.Elimination` (``ZtZ`` and ``ZtXY`` are
    ignored: the engine holds its own sparse cross-products) and
    ``solve_u(elim, beta)`` the spherical conditional modes per level.
    ``Lambda`` is the list of per-block base factors (``q_e x q_e``, one per
    block, in ``blocks`` order); a dense design-order ``Lambda`` is accepted
    too.
    """

    def __init__(self, design, blocks=None):
        self.design = design
        self.blocks = list(blocks) if blocks is not None else [b for l in design.levels for b in l.blocks]
        qs, parents, _ = design.engine_layout()
        self.q, self.parents = qs, parents
        terms, self.n_u = build_terms(design)
        order = sorted(range(len(terms)), key=lambda i: -terms[i].G * terms[i].q)
        self.terms = [terms[i] for i in order]
        self._setup()

    # -- symbolic and numeric set-up, once per fit -------------------------------
    def _setup(self) -> None:
        d = self.design
        n = d.n
        XY = d.XY
        self.k = XY.shape[1]
        self.kmat = self.S21 = self.S12 = self.A22 = self.C2 = None
        self.kmat_folded = False
        self.offs2 = np.zeros(1, dtype=np.int64)
        self.rest_q1 = True
        if not self.terms:
            self.G1 = self.q1 = self.Q2 = 0
            return
        t1, rest = self.terms[0], self.terms[1:]
        self.G1, self.q1 = t1.G, t1.q
        q1 = self.q1
        Z1, _ = _term_matrix([t1], n)
        Z1t = Z1.T.tocsr()
        # diagonal blocks of Z1'Z1 and Z1'[X y], per group of term 1
        D1 = np.zeros((t1.G, q1, q1))
        for i in range(q1):
            for j in range(i, q1):
                s = np.bincount(t1.codes, weights=t1.base[:, i] * t1.base[:, j], minlength=t1.G)
                D1[:, i, j] = s
                D1[:, j, i] = s
        self.D1 = D1
        self.C1 = np.asarray(Z1t @ XY).reshape(t1.G, q1, self.k)
        rows = np.arange(t1.G * q1)
        self._bd_struct = (np.arange(0, t1.G * q1 * q1 + 1, q1), (((rows // q1) * q1)[:, None] + np.arange(q1)).ravel())
        # other terms
        Z2, self.offs2 = _term_matrix(rest, n)
        self.Q2 = Q2 = int(self.offs2[-1])
        self.rest_q1 = all(t.q == 1 for t in rest)
        if not Q2:
            return
        Z2t = Z2.T.tocsr()
        self.C2 = np.asarray(Z2t @ XY)  # (Q2, k)
        A22s = (Z2t @ Z2).tocoo()
        self.A22 = np.ascontiguousarray(A22s.toarray())  # dense: the Schur complement fills it
        S21 = (Z2t @ Z1).tocsr()
        S21.sum_duplicates()
        S21.sort_indices()
        self.S21 = S21  # (Q2, G1 q1)
        self.S12 = S21.T.tocsr()  # (G1 q1, Q2)
        self._build_kmat(A22s)

    def _build_kmat(self, A22s) -> None:
        """``Kmat``: lower triangle of ``sum_g S21[:, g] H_g S21[:, g]'`` as a
        linear map of ``vec(H)``; rows are positions ``r * Q2 + s`` (``r >= s``).

        When every other term has ``q = 1`` (``Lambda2`` diagonal) the map is
        *folded*: its columns are repeated per pair of terms ``(t, t')`` and
        ``A22``'s lower triangle is appended as one column per pair, so that
        ``Kmat @ w`` with ``w = [-lam_t lam_t' vec(H) per pair, lam_t lam_t' per
        pair]`` is directly the lower triangle of ``Lambda2'(A22 - mid)Lambda2``.
        """
        Q2, q1, G1 = self.Q2, self.q1, self.G1
        C = self.S12.tocoo()  # rows (g, j), cols r
        g, j = np.divmod(C.row.astype(np.int64), q1)
        r = C.col.astype(np.int64)
        o = np.lexsort((j, r, g))
        g, j, r, v = g[o], j[o], r[o], C.data[o]
        del C, o
        # one slot per distinct (g, r): the q1 values of row r of S21's columns (g, 0..q1-1)
        new_slot = np.ones(g.size, dtype=bool)
        new_slot[1:] = (g[1:] != g[:-1]) | (r[1:] != r[:-1])
        slot = np.cumsum(new_slot) - 1
        Vs = np.zeros((int(slot[-1]) + 1 if slot.size else 0, q1))
        Vs[slot, j] = v
        gs_, rs_ = g[new_slot], r[new_slot]
        del g, j, r, v, slot, new_slot
        counts = np.bincount(gs_, minlength=G1).astype(np.int64)  # distinct rows per group
        # H_g is symmetric: one column per entry of its upper triangle; for a pair of rows
        # (ra >= rb) the (j, k) coefficient is S[ra,j] S[rb,k] + S[ra,k] S[rb,j] (j < k)
        nsym = q1 * (q1 + 1) // 2
        ju, ku = np.triu_indices(q1)
        self._sym = (ju, ku)
        n_rowpairs = int((counts * (counts + 1) // 2).sum())
        nnz_mid = n_rowpairs * nsym
        self.kmat = None
        if nnz_mid > _KMAT_MAX_NNZ:
            return  # per-evaluation sparse products instead
        ncol = G1 * nsym
        folded = self.rest_q1
        n_a22 = 0
        if folded:
            m_terms = len(self.terms) - 1
            term_of = np.repeat(np.arange(m_terms), [t.G for t in self.terms[1:]])
            n_pairs = m_terms * (m_terms + 1) // 2
            shape = (Q2 * Q2, n_pairs * (ncol + 1))
            low = A22s.row >= A22s.col
            ar, ac = A22s.row[low].astype(np.int64), A22s.col[low].astype(np.int64)
            n_a22 = ar.size
        else:
            shape = (Q2 * Q2, ncol)
        idx = np.int32 if max(shape) < 2 ** 31 - 1 else np.int64
        rows = np.empty(nnz_mid + n_a22, dtype=idx)
        cols = np.empty(nnz_mid + n_a22, dtype=idx)
        vals = np.empty(nnz_mid + n_a22)

        def pair(rr, ss):  # rr >= ss, so term_of[rr] >= term_of[ss]
            ta, tb = term_of[rr], term_of[ss]
            return ta * (ta + 1) // 2 + tb

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
                ra, rb = rs_[A], rs_[B]
                pv = Vs[A][:, ju] * Vs[B][:, ku]
                off = ju != ku
                if off.any():
                    pv[:, off] += Vs[A][:, ku[off]] * Vs[B][:, ju[off]]
                col = gs_[A][:, None] * nsym + np.arange(nsym)[None, :]
                if folded:
                    col = col + (pair(ra, rb) * ncol)[:, None]
                k = A.size * nsym
                rows[pos:pos + k] = np.repeat(ra * Q2 + rb, nsym)
                cols[pos:pos + k] = col.ravel()
                vals[pos:pos + k] = pv.ravel()
                pos += k
        if folded:
            rows[pos:] = ar * Q2 + ac
            cols[pos:] = n_pairs * ncol + pair(ar, ac)
            vals[pos:] = A22s.data[low]
            pa, pb = np.tril_indices(m_terms)
            self._pairs = (pa, pb)  # pair index -> (term, term) among the other terms
            self.A22 = None  # folded into Kmat
        K = sp.coo_matrix((vals, (rows, cols)), shape=shape)
        del rows, cols, vals
        self.kmat = K.tocsr()
        self.kmat_folded = bool(folded)

    # -- parameters ------------------------------------------------------------------
    def _block_factors(self, Lambda) -> list:
        if isinstance(Lambda, np.ndarray) and Lambda.ndim == 2:
            return self._factors_from_dense(Lambda)
        return [np.atleast_2d(np.asarray(l, dtype=float)) for l in Lambda]

    def _factors_from_dense(self, Lam: np.ndarray) -> list:
        """Per-block base factors read off a dense design-order ``Lambda``."""
        out = []
        off_level, off = {}, 0
        for li in range(len(self.design.levels) - 1, -1, -1):
            off_level[li] = off
            off += self.design.levels[li].q
        for li, lvl in enumerate(self.design.levels):
            o = off_level[li]
            for blk in lvl.blocks:
                qe = blk.structure.q
                out.append(Lam[o:o + qe, o:o + qe])
                o += blk.q
        return out

    # -- one evaluation -----------------------------------------------------------------
    def eliminate(self, ZtZ, ZtXY, XYtXY: np.ndarray, Lambda, keep: bool = False) -> Elimination:
        """Profiled-likelihood pieces: ``log|P|`` and the Schur complement of ``[X y]``."""
        lams = self._block_factors(Lambda)
        B = np.array(XYtXY, dtype=float, copy=True)
        if not self.terms:
            return CrossedElimination(0.0, B, [] if keep else None, {} if keep else None)
        t1 = self.terms[0]
        q1, G1 = self.q1, self.G1
        lam1 = t1.factor(lams)
        # -- term 1: block diagonal
        if q1 == 1:
            l2 = float(lam1[0, 0]) ** 2
            m = l2 * self.D1[:, 0, 0] + 1.0
            logdet = float(np.log(m).sum())
            H = (l2 / m)[:, None, None]  # Lambda1 P11^-1 Lambda1'
            L1 = np.sqrt(m)[:, None, None]
            U1 = (float(lam1[0, 0]) / L1) * self.C1  # (G1, 1, k)
        else:
            M = np.matmul(np.matmul(lam1.T, self.D1), lam1)
            M[:, np.arange(q1), np.arange(q1)] += 1.0
            L1 = batched_cholesky(M)
            logdet = 2.0 * float(np.log(np.diagonal(L1, axis1=1, axis2=2)).sum())
            K1 = batched_lower_solve(L1, np.broadcast_to(lam1.T, (G1, q1, q1)))  # L1^-1 Lambda1'
            H = np.matmul(np.swapaxes(K1, 1, 2), K1)
            U1 = batched_lower_solve(L1, np.matmul(lam1.T, self.C1))
        U1f = U1.reshape(G1 * q1, self.k)
        B -= U1f.T @ U1f
        state = None
        if self.Q2:
            lam2 = [t.factor(lams) for t in self.terms[1:]]
            P = self._schur(H, lam2)
            # dense Cholesky of the C-ordered lower triangle = Fortran-ordered upper triangle
            U, info = lapack.dpotrf(P.T, lower=0, clean=0, overwrite_a=1)
            if info != 0:
                raise np.linalg.LinAlgError("crossed Schur complement not positive definite")
            L22 = U.T  # lower triangle (upper part is garbage)
            logdet += 2.0 * float(np.log(np.diagonal(L22)).sum())
            HC = np.matmul(H, self.C1).reshape(G1 * q1, self.k)
            R2 = self._lam2t(lam2, self.C2 - self.S21 @ HC)
            U2, info = lapack.dtrtrs(U, R2, lower=0, trans=1)
            if info != 0:
                raise np.linalg.LinAlgError("singular crossed factor")
            B -= U2.T @ U2
            if keep:
                state = dict(lam1=lam1, lam2=lam2, L1=L1, U1=U1, U=U, U2=U2, lams=lams)
        elif keep:
            state = dict(lam1=lam1, lam2=[], L1=L1, U1=U1, U=None, U2=None, lams=lams)
        if not (np.isfinite(logdet) and np.isfinite(B).all()):
            raise np.linalg.LinAlgError("crossed elimination overflowed")
        factors = _NestedView(self, lams, XYtXY) if keep else None
        return CrossedElimination(float(logdet), B, factors, state)

    def _schur(self, H: np.ndarray, lam2: list) -> np.ndarray:
        """``Lambda2' (A22 - sum_g S21_g H_g S21_g') Lambda2 + I``; C-ordered, lower
        triangle exact (the upper one too when some other term has q > 1)."""
        Q2 = self.Q2
        if self.kmat is not None:
            ju, ku = self._sym
        if self.kmat is not None and self.kmat_folded:
            lam = np.array([float(l[0, 0]) for l in lam2])
            pa, pb = self._pairs
            dd = lam[pa] * lam[pb]
            w = np.concatenate([np.outer(-dd, H[:, ju, ku].ravel()).ravel(), dd])
            P = (self.kmat @ w).reshape(Q2, Q2)
            P.flat[:: Q2 + 1] += 1.0
            return P
        if self.kmat is not None:
            mid = self.kmat @ H[:, ju, ku].ravel()
            P = self.A22 - mid.reshape(Q2, Q2)
            if not self.rest_q1:  # the block scaling below needs the full symmetric matrix
                P = np.tril(P) + np.tril(P, -1).T
        else:
            if self.q1 == 1:
                W = self.S12.multiply(H[:, 0, 0][:, None]).tocsr()
            else:
                Hb = self._block_diag_csr(H)
                W = (Hb @ self.S12).tocsr()
            P = self.A22 - (self.S21 @ W).toarray()
        if self.rest_q1:
            d = np.concatenate([np.full(t.G, float(l[0, 0])) for t, l in zip(self.terms[1:], lam2)])
            if np.all(d == d[0]):
                P *= d[0] * d[0]
            else:
                P *= d[:, None]
                P *= d[None, :]
        else:
            P = self._lam2t(lam2, P)
            P = np.ascontiguousarray(self._lam2t(lam2, P.T).T)
        P.flat[:: Q2 + 1] += 1.0
        return P

    def _block_diag_csr(self, H: np.ndarray) -> "sp.csr_matrix":
        """Block-diagonal CSR of term 1's ``(G1, q1, q1)`` stack (structure from set-up)."""
        indptr, indices = self._bd_struct
        return sp.csr_matrix((H.reshape(-1), indices, indptr), shape=(self.G1 * self.q1, self.G1 * self.q1))

    def _lam2t(self, lam2: list, M: np.ndarray) -> np.ndarray:
        """``Lambda2' M`` for a ``(Q2, c)`` array (block diagonal ``Lambda2``)."""
        out = np.empty_like(M)
        for t, l, a, b in zip(self.terms[1:], lam2, self.offs2[:-1], self.offs2[1:]):
            blk = M[a:b].reshape(t.G, t.q, -1)
            if t.q == 1:
                out[a:b] = float(l[0, 0]) * M[a:b]
            else:
                out[a:b] = np.einsum("ji,gjc->gic", l, blk).reshape(b - a, -1)
        return out

    def _lam2(self, lam2: list, v: np.ndarray) -> np.ndarray:
        """``Lambda2 v`` for a ``(Q2,)`` vector."""
        out = np.empty_like(v)
        for t, l, a, b in zip(self.terms[1:], lam2, self.offs2[:-1], self.offs2[1:]):
            out[a:b] = (v[a:b].reshape(t.G, t.q) @ l.T).ravel()
        return out

    # -- conditional modes --------------------------------------------------------------
    def solve_u_terms(self, elim: Elimination, beta: np.ndarray) -> list[np.ndarray]:
        """Spherical conditional modes per term (``(G, q)`` each, engine order)."""
        st = elim.state
        if st is None:
            raise ValueError("solve_u needs an elimination computed with keep=True")
        if not self.terms:
            return []
        xb = np.append(-np.asarray(beta, dtype=float), 1.0)
        L1, U1, lam1 = st["L1"], st["U1"], st["lam1"]
        r1 = U1 @ xb  # (G1, q1)
        if self.Q2:
            r2 = st["U2"] @ xb
            u2, info = lapack.dtrtrs(st["U"], r2, lower=0, trans=0)  # L22' u2 = r2
            t = (self.S12 @ self._lam2(st["lam2"], u2)).reshape(self.G1, self.q1)
            r1 = r1 - lower_solve_vec(L1, t @ lam1)  # L1^-1 Lambda1' t
            rest = [u2[a:b].reshape(tt.G, tt.q)
                    for tt, a, b in zip(self.terms[1:], self.offs2[:-1], self.offs2[1:])]
        else:
            rest = []
        u1 = upper_solve_vec(L1, r1)
        return [u1] + rest

    def solve_u(self, elim: Elimination, beta: np.ndarray) -> list[np.ndarray]:
        """Spherical conditional modes per level (finest first), the nested engine's layout."""
        flat = np.zeros(self.n_u)
        for t, u in zip(self.terms, self.solve_u_terms(elim, beta)):
            flat[t.pos.ravel()] = u.ravel()
        out, off = [], 0
        for li in range(len(self.design.levels) - 1, -1, -1):
            lvl = self.design.levels[li]
            if lvl.q == 0:
                continue
            size = lvl.n_groups * lvl.q
            out.append(flat[off:off + size].reshape(lvl.n_groups, lvl.q))
            off += size
        return out

    def conditional_variances(self, elim: Elimination) -> list[np.ndarray]:
        """Diagonal blocks of ``P^{-1}`` per term (``(G, q, q)`` each, engine order):
        the conditional covariances of the spherical random effects in units of
        ``sigma2`` (lme4's ``condVar`` before scaling by ``Lambda``).

        Uses ``P^{-1} = L^{-T} L^{-1}``: for term 1 the ``q1 x q1`` blocks of
        ``P11^{-1} + (L22^{-1} W L1^{-1})'(L22^{-1} W L1^{-1})`` with
        ``W = Lambda2' S21 Lambda1 L1^{-T}``, for the others the diagonal blocks
        of ``L22^{-T} L22^{-1}``.  Cost ``O(Q2^2 (Q2 + G1 q1))``, memory
        ``Q2 x G1 q1``.
        """
        st = elim.state
        if st is None:
            raise ValueError("conditional_variances needs an elimination computed with keep=True")
        if not self.terms:
            return []
        L1, lam1 = st["L1"], st["lam1"]
        G1, q1 = self.G1, self.q1
        Li = inv_lower(L1)  # (G1, q1, q1)
        own = np.matmul(np.swapaxes(Li, 1, 2), Li)
        if not self.Q2:
            return [own]
        U = st["U"]
        L22i = lapack.dtrtri(U, lower=0)[0].T  # inverse of L22 (lower)
        L22i = np.tril(L22i)
        rest_cov = []
        Pinv22 = L22i.T @ L22i
        for t, a, b in zip(self.terms[1:], self.offs2[:-1], self.offs2[1:]):
            blk = Pinv22[a:b, a:b].reshape(t.G, t.q, t.G, t.q)
            rest_cov.append(np.ascontiguousarray(blk[np.arange(t.G), :, np.arange(t.G), :]))
        # W L1^-1 = Lambda2' S21 Lambda1 L1^-T L1^-1 = Lambda2' S21 (Lambda1 P11^-1)
        K = np.matmul(lam1[None, :, :], np.matmul(np.swapaxes(Li, 1, 2), Li))  # Lambda1 P11_g^-1
        Kb = self._block_diag_csr(K)
        WLi = self._lam2t(st["lam2"], (self.S21 @ Kb).toarray())  # (Q2, G1 q1)
        V = L22i @ WLi
        V = V.reshape(self.Q2, G1, q1)
        extra = np.einsum("rgi,rgj->gij", V, V)
        return [own + extra] + rest_cov

    # -- nested-layout factors (small designs) ----------------------------------------------
    def nested_factors(self, lams, XYtXY) -> list:
        """The nested engine's factors of this design at ``lams`` (dense; small designs)."""
        d = self.design
        fine = d.re_levels()
        codes, G = fine[0].codes, fine[0].n_groups
        Q = d.Z.shape[1]
        if G * Q * Q > _NESTED_VIEW_MAX_ELEMS:
            raise MemoryError(
                "the nested-layout factors of this crossed design need a dense %d x %d x %d array "
                "(conditional covariances of all random effects at once); the conditional modes are "
                "available from CrossedEngine.solve_u and the conditional variances from "
                "CrossedEngine.conditional_variances" % (G, Q, Q))
        per_level, i = [], 0
        for lvl in d.levels:
            mats = []
            for blk in lvl.blocks:
                mats.append(blk.expand(lams[i]))
                i += 1
            per_level.append(block_diag(*mats) if mats else np.zeros((0, 0)))
        Lam = block_diag(*per_level[::-1])
        XY = d.XY
        if sp.issparse(d.Z):  # rows are sorted by the finest level: one sparse product per group
            Zr = d.Z.tocsr()
            bounds = np.searchsorted(codes, np.arange(G + 1))
            ZtZ, ZtXY = np.zeros((G, Q, Q)), np.zeros((G, Q, XY.shape[1]))
            for g in range(G):
                Zg = Zr[bounds[g]:bounds[g + 1]]
                ZtZ[g] = (Zg.T @ Zg).toarray()
                ZtXY[g] = Zg.T @ XY[bounds[g]:bounds[g + 1]]
        else:
            Z = np.asarray(d.Z)
            ZtZ = grouped_crossprod(Z, Z, codes, G)
            ZtXY = grouped_crossprod(Z, XY, codes, G)
        eng = NestedEngine(self.q, self.parents)
        return eng.eliminate(ZtZ, ZtXY, XYtXY, Lam, keep=True).factors


# ---------------------------------------------------------------------------
# BLUPs and their variances at scale (for postestimation)
# ---------------------------------------------------------------------------
