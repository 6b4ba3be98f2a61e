"""Crossed random effects at scale: a blocked sparse Cholesky engine.

Crossed designs (Stata's ``|| _all: R.a || _all: R.b`` and ``|| _all: R.a ||
b:``, lme4's ``(1|a) + (1|b)``, random slopes on either factor) reach the
objective as one ``_all`` level whose blocks are expanded by a factor, plus
possibly grouped levels below it.  The nested engine would need the dense
``n x Q`` design and a dense ``Q x Q`` factorisation; this engine never forms
either.  The random effects are regrouped into terms
(:mod:`.crossed_terms`).

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

With ``Z2tZ1 = Z2'Z1`` (sparse, computed once) and
``H_g = Lambda1 P11_g^{-1} Lambda1'`` (``q1 x q1`` per group of term 1),
``P21 P11^{-1} P21' = Lambda2' (sum_g Z2tZ1[:, g] H_g Z2tZ1[:, g]') Lambda2``; the
middle sum is one sparse matrix-vector product with the map ``Kmat`` built
once per fit (:mod:`.crossed_kmat`), or a sparse product when that map would
be too large.  Each evaluation is then one dense Cholesky of order ``Q2``;
the number of observations never enters.

The ``[X y]`` columns follow the same blocks: ``U1 = L1^{-1} Lambda1'
Z1'[X y]``, ``U2 = L22^{-1} Lambda2' (Z2'[X y] - Z2tZ1 H Z1'[X y])`` and the
Schur complement of ``[X y]`` is ``[X y]'[X y] - U1'U1 - U2'U2``.

Conditional modes (BLUPs) ``u = P^{-1} Lambda' Z'(y - X beta)`` come from
the same factor by back substitution (:meth:`CrossedEngine.solve_u`), in the
layout of the nested engine (one ``(G, q)`` array per level, finest first),
so postestimation code does not need to know which engine ran.
:meth:`CrossedEngine.conditional_variances` gives the diagonal blocks of
``P^{-1}`` per term; :meth:`CrossedEngine.level_factors` the nested engine's
dense per-level factors of the same design (small designs only).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from ..core.linalg import (batched_cholesky, batched_lower_solve, block_diag, grouped_crossprod, inv_lower,
                           lower_solve_vec, upper_solve_vec)
from ..core.threads import dense_blas
from ..design.types import Design
from .crossed_backward import crossed_factor_gradient
from .crossed_kmat import build_schur_map
from .crossed_start import moment_start
from .crossed_terms import CrossedTerm, block_factors_from_dense, build_terms, level_layout, term_matrix
from .nested import Elimination, LevelFactor, NestedEngine

__all__ = ["CrossedEngine", "CrossedElimination"]

# dense fall-back for the nested-layout factors (conditional covariances)
_NESTED_LAYOUT_MAX_ELEMS = 20_000_000


@dataclass
class CrossedElimination(Elimination):
    """:class:`Elimination` plus what the back substitution needs (``keep=True``)."""

    state: Optional[dict] = None


def _first_term_crossproducts(t1: CrossedTerm, Z1: sp.csr_matrix,
                              XY: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Diagonal blocks of ``Z1'Z1`` (``(G1, q1, q1)``) and ``Z1'[X y]`` (``(G1, q1, k)``)."""
    q1 = t1.q
    Z1tZ1 = np.zeros((t1.G, q1, q1))
    for i in range(q1):
        for j in range(i, q1):
            s = np.bincount(t1.codes, weights=t1.base[:, i] * t1.base[:, j], minlength=t1.G)
            Z1tZ1[:, i, j] = s
            Z1tZ1[:, j, i] = s
    Z1tXY = np.asarray(Z1.T.tocsr() @ XY).reshape(t1.G, q1, XY.shape[1])
    return Z1tZ1, Z1tXY


def _term_crossproducts(design: Design, first: Optional[CrossedTerm], rest: list):
    """``(Z1'Z1 blocks, Z1'[X y], Z2'[X y], Z2'Z2, Z2'Z1)`` from the design's rows."""
    XY = design.XY
    Z1, _ = term_matrix([first] if first else [], design.n)
    Z1tZ1, Z1tXY = _first_term_crossproducts(first, Z1, XY) if first else (None, None)
    Z2, offs2 = term_matrix(rest, design.n)
    if not int(offs2[-1]):
        return Z1tZ1, Z1tXY, None, None, None
    Z2t = Z2.T.tocsr()
    return Z1tZ1, Z1tXY, np.asarray(Z2t @ XY), (Z2t @ Z2).tocoo(), (Z2t @ Z1).tocsr()


def _layout_term_crossproducts(ZtZ: sp.spmatrix, ZtXY: np.ndarray, terms: list):
    """The same from ``Z'Z`` (sparse) and ``Z'[X y]`` in the nested engine's level
    layout (each term's entries at its ``pos``), terms in engine order."""
    if not terms:
        return None, None, None, None, None
    perm = np.concatenate([t.pos.ravel() for t in terms])
    A = sp.csr_matrix(ZtZ)[perm][:, perm]
    C = np.asarray(ZtXY)[perm]
    t1 = terms[0]
    n1, q1 = t1.G * t1.q, t1.q
    D = A[:n1, :n1].tocoo()
    Z1tZ1 = np.zeros((t1.G, q1, q1))
    same = D.row // q1 == D.col // q1
    np.add.at(Z1tZ1, (D.row[same] // q1, D.row[same] % q1, D.col[same] % q1), D.data[same])
    Z1tXY = C[:n1].reshape(t1.G, q1, -1)
    if len(terms) == 1:
        return Z1tZ1, Z1tXY, None, None, None
    return Z1tZ1, Z1tXY, C[n1:], A[n1:, n1:].tocoo(), A[n1:, :n1].tocsr()


def _block_diag_structure(G: int, q: int) -> tuple[np.ndarray, np.ndarray]:
    """``(indptr, indices)`` of a block-diagonal CSR matrix of ``G`` blocks ``q x q``."""
    rows = np.arange(G * q)
    return np.arange(0, G * q * q + 1, q), (((rows // q) * q)[:, None] + np.arange(q)).ravel()


class CrossedEngine:
    """Blocked sparse Cholesky for crossed random effects.

    Parameters
    ----------
    design : Design
        A design whose random effects include an ``_all`` level with factor
        blocks (``design.sparse_re``).

    Same contract as :class:`~.nested.NestedEngine`:
    ``eliminate(ZtZ, ZtXY, XYtXY, Lambda, keep)`` returns an
    :class:`~.nested.Elimination` (``ZtZ`` and ``ZtXY`` are ignored: the
    engine holds its own sparse cross-products) and ``solve_u(elim, beta)``
    the spherical conditional modes per level.  ``Lambda`` is the list of
    per-block base factors (``q_e x q_e``, one per block, in design block
    order); a dense design-order ``Lambda`` is accepted too.
    """

    def __init__(self, design: Design):
        self.design = design
        self.q, self.parents, _ = design.engine_layout()
        terms, self.n_u = build_terms(design)
        self.terms = sorted(terms, key=lambda t: -t.G * t.q)  # largest first (stable)
        self.k = design.XYtXY.shape[1]
        first, rest = (self.terms[0], self.terms[1:]) if self.terms else (None, [])
        self.G1, self.q1 = (first.G, first.q) if first else (0, 0)
        self.offs2 = np.concatenate([[0], np.cumsum([t.G * t.q for t in rest])]).astype(np.int64)
        self.Q2 = int(self.offs2[-1])
        given = design.layout_crossproducts()
        if given is None:  # from the rows
            Z1tZ1, Z1tXY, Z2tXY, Z2tZ2, Z2tZ1 = _term_crossproducts(design, first, rest)
        else:  # from the design's cross-products in the nested engine's level layout
            Z1tZ1, Z1tXY, Z2tXY, Z2tZ2, Z2tZ1 = _layout_term_crossproducts(*given, self.terms)
        # per group of term 1: the diagonal blocks of Z1'Z1 (G1, q1, q1) and Z1'[X y] (G1, q1, k)
        self.Z1tZ1, self.Z1tXY = Z1tZ1, Z1tXY
        self._bd_struct = _block_diag_structure(self.G1, self.q1)
        self.rest_q1 = all(t.q == 1 for t in rest)
        if not self.Q2:
            self.Z2tXY = self.Z2tZ2 = self.Z2tZ1 = self.Z1tZ2 = self.kmat = None
            return
        self.Z2tXY = Z2tXY  # (Q2, k)
        Z2tZ1.sum_duplicates()
        Z2tZ1.sort_indices()
        self.Z2tZ1 = Z2tZ1  # (Q2, G1 q1)
        self.Z1tZ2 = Z2tZ1.T.tocsr()  # (G1 q1, Q2)
        self.kmat = build_schur_map(self.Z1tZ2, Z2tZ2, self.q1, [t.G for t in rest], fold=self.rest_q1)
        folded = self.kmat is not None and self.kmat.folded
        # dense (the Schur complement fills it), unless folded into Kmat
        self.Z2tZ2 = None if folded else np.ascontiguousarray(Z2tZ2.toarray())

    # -- parameters ------------------------------------------------------------------
    def _block_factors(self, Lambda) -> list[np.ndarray]:
        if isinstance(Lambda, np.ndarray) and Lambda.ndim == 2:
            return block_factors_from_dense(self.design, Lambda)
        return [np.atleast_2d(np.asarray(l, dtype=float)) for l in Lambda]

    # -- one evaluation -----------------------------------------------------------------
    def _first_term(self, lam1: np.ndarray):
        """``(log|P11|, H, L1, U1)`` for term 1's relative factor ``lam1``."""
        q1, G1 = self.q1, self.G1
        if q1 == 1:
            l2 = float(lam1[0, 0]) ** 2
            m = l2 * self.Z1tZ1[:, 0, 0] + 1.0
            logdet = float(np.log(m).sum())
            H = (l2 / m)[:, None, None]  # Lambda1 P11^-1 Lambda1'
            L1 = np.sqrt(m)[:, None, None]
            U1 = (float(lam1[0, 0]) / L1) * self.Z1tXY  # (G1, 1, k)
            return logdet, H, L1, U1
        M = np.matmul(np.matmul(lam1.T, self.Z1tZ1), lam1)
        M[:, np.arange(q1), np.arange(q1)] += 1.0
        L1 = batched_cholesky(M)
        logdet = 2.0 * float(np.log(np.diagonal(L1, axis1=1, axis2=2)).sum())
        K1 = batched_lower_solve(L1, np.broadcast_to(lam1.T, (G1, q1, q1)))  # L1^-1 Lambda1'
        H = np.matmul(np.swapaxes(K1, 1, 2), K1)
        U1 = batched_lower_solve(L1, np.matmul(lam1.T, self.Z1tXY))
        return logdet, H, L1, U1

    def eliminate(self, ZtZ, ZtXY, XYtXY: np.ndarray, Lambda, keep: bool = False) -> CrossedElimination:
        """Profiled-likelihood pieces: ``log|P|`` and the Schur complement of ``[X y]``."""
        lams = self._block_factors(Lambda)
        B = np.array(XYtXY, dtype=float, copy=True)
        if not self.terms:
            return CrossedElimination(0.0, B, None, {} if keep else None)
        lam1 = self.terms[0].factor(lams)
        logdet, H, L1, U1 = self._first_term(lam1)
        U1f = U1.reshape(self.G1 * self.q1, self.k)
        B -= U1f.T @ U1f
        lam2, U, U2 = [], None, None
        if self.Q2:
            lam2 = [t.factor(lams) for t in self.terms[1:]]
            P = self._schur(H, lam2)
            # dense Cholesky of the C-ordered lower triangle = Fortran-ordered upper triangle
            with dense_blas(self.Q2):
                U, info = lapack.dpotrf(P.T, lower=0, clean=0, overwrite_a=1)
            if info != 0:
                raise np.linalg.LinAlgError("crossed Schur complement not positive definite")
            L22 = U.T  # lower triangle (upper part is garbage)
            logdet += 2.0 * float(np.log(np.diagonal(L22)).sum())
            HC = np.matmul(H, self.Z1tXY).reshape(self.G1 * self.q1, self.k)
            Y = self.Z2tXY - self.Z2tZ1 @ HC
            R2 = self._lam2t(lam2, Y)
            with dense_blas(self.Q2):
                U2, info = lapack.dtrtrs(U, R2, lower=0, trans=1)
            if info != 0:
                raise np.linalg.LinAlgError("singular crossed factor")
            B -= U2.T @ U2
        if not (np.isfinite(logdet) and np.isfinite(B).all()):
            raise np.linalg.LinAlgError("crossed elimination overflowed")
        state = None
        if keep:
            state = dict(lam1=lam1, lam2=lam2, L1=L1, U1=U1, U=U, U2=U2, lams=lams, H=H,
                         Y=Y if self.Q2 else None)
        return CrossedElimination(float(logdet), B, None, state)

    def factor_gradient(self, elim: Elimination, B_bar: np.ndarray) -> list[np.ndarray]:
        """Gradient of ``logdet + <B_bar, B>`` with respect to every block's relative
        factor (design block order; :mod:`.crossed_backward`)."""
        return crossed_factor_gradient(self, elim, B_bar)

    def start_factors(self) -> Optional[list[float]]:
        """Moment-based relative standard deviations per block (design order) for
        designs whose terms are all scalar and whose rows are at hand (:mod:`.crossed_start`),
        else None."""
        if not self.design.holds_rows:
            return None
        theta = moment_start(self.terms, self.design.yw)
        if theta is None:
            return None
        out = [None] * len(self.design.blocks)
        for t, v in zip(self.terms, theta):
            out[t.blocks[0][0]] = float(v)
        return out

    def unscaled_schur(self, H: np.ndarray) -> np.ndarray:
        """``Z2tZ2 - sum_g (Z2tZ1)_g H_g (Z2tZ1)_g'`` (full, symmetric) when the map is not folded."""
        Q2 = self.Q2
        if self.kmat is not None:
            X = self.Z2tZ2 - self.kmat.middle(H).reshape(Q2, Q2)
            return np.tril(X) + np.tril(X, -1).T
        return self.Z2tZ2 - self._sparse_middle(H)

    def _sparse_middle(self, H: np.ndarray) -> np.ndarray:
        """``sum_g (Z2tZ1)_g H_g (Z2tZ1)_g'`` by a sparse product (dense ``Q2 x Q2``; no ``Kmat``)."""
        if self.q1 == 1:
            W = self.Z1tZ2.multiply(H[:, 0, 0][:, None]).tocsr()
        else:
            W = (self._block_diag_csr(H) @ self.Z1tZ2).tocsr()
        return (self.Z2tZ1 @ W).toarray()

    def _schur(self, H: np.ndarray, lam2: list) -> np.ndarray:
        """``Lambda2' (Z2tZ2 - sum_g (Z2tZ1)_g H_g (Z2tZ1)_g') Lambda2 + I``; C-ordered, lower
        triangle exact (the upper one too when some other term has q > 1)."""
        Q2 = self.Q2
        if self.kmat is not None and self.kmat.folded:
            lam = np.array([float(l[0, 0]) for l in lam2])
            P = self.kmat.scaled_schur(H, lam).reshape(Q2, Q2)
            P.flat[:: Q2 + 1] += 1.0
            return P
        if self.kmat is not None:
            P = self.Z2tZ2 - self.kmat.middle(H).reshape(Q2, Q2)
            if not self.rest_q1:  # the block scaling below needs the full symmetric matrix
                P = np.tril(P) + np.tril(P, -1).T
        else:
            P = self.Z2tZ2 - self._sparse_middle(H)
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
            t = (self.Z1tZ2 @ self._lam2(st["lam2"], u2)).reshape(self.G1, self.q1)
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
        offs, _ = level_layout(self.design)
        out = []
        for li, off in offs.items():  # finest first
            G, q = self.design.levels[li].n_groups, self.design.levels[li].q
            out.append(flat[off:off + G * q].reshape(G, q))
        return out

    def conditional_variances(self, elim: Elimination) -> list[np.ndarray]:
        """Diagonal blocks of ``P^{-1}`` per term (``(G, q, q)`` each, engine order):
        the conditional covariances of the spherical random effects in units of
        ``sigma2`` (lme4's ``condVar`` before scaling by ``Lambda``).

        Uses ``P^{-1} = L^{-T} L^{-1}``: for term 1 the ``q1 x q1`` blocks of
        ``P11^{-1} + (L22^{-1} W L1^{-1})'(L22^{-1} W L1^{-1})`` with
        ``W = Lambda2' Z2tZ1 Lambda1 L1^{-T}``, for the others the diagonal blocks
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
        # W L1^-1 = Lambda2' Z2tZ1 Lambda1 L1^-T L1^-1 = Lambda2' Z2tZ1 (Lambda1 P11^-1)
        K = np.matmul(lam1[None, :, :], np.matmul(np.swapaxes(Li, 1, 2), Li))  # Lambda1 P11_g^-1
        Kb = self._block_diag_csr(K)
        WLi = self._lam2t(st["lam2"], (self.Z2tZ1 @ Kb).toarray())  # (Q2, G1 q1)
        V = L22i @ WLi
        V = V.reshape(self.Q2, G1, q1)
        extra = np.einsum("rgi,rgj->gij", V, V)
        return [own + extra] + rest_cov

    # -- nested-layout factors (small designs) ----------------------------------------------
    def level_factors(self, elim: Elimination) -> list[LevelFactor]:
        """The nested engine's per-level factors (finest first) of this design at the
        relative factors of ``elim`` (computed with ``keep=True``).

        They serve code written for the nested layout (conditional covariances in
        :func:`~mixedlm_ext.fit.em.conditional_moments`); computed from dense
        per-panel cross-products, so feasible for small and medium crossed designs
        only (the top ``_all`` level is one dense block).
        """
        if elim.state is None:
            raise ValueError("level_factors needs an elimination computed with keep=True")
        d = self.design
        if not d.holds_rows:
            raise NotImplementedError("the nested-layout factors of a crossed design need its rows; this design "
                                      "was made from sufficient statistics")
        fine = d.re_levels()
        codes, G = fine[0].codes, fine[0].n_groups
        Q = d.Z.shape[1]
        if G * Q * Q > _NESTED_LAYOUT_MAX_ELEMS:
            raise MemoryError(
                "the nested-layout factors of this crossed design need a dense %d x %d x %d array "
                "(conditional covariances of all random effects at once); the conditional modes are "
                "available from CrossedEngine.solve_u and the conditional variances from "
                "CrossedEngine.conditional_variances" % (G, Q, Q))
        lams = elim.state["lams"]
        per_level, i = [], 0
        for lvl in d.levels:
            mats = []
            for blk in lvl.blocks:
                mats.append(blk.expand(lams[i]))
                i += 1
            per_level.append(block_diag(*mats) if mats else np.zeros((0, 0)))
        Lam = block_diag(*per_level[::-1])
        ZtZ, ZtXY = _panel_crossproducts(d, codes, G)
        return NestedEngine(self.q, self.parents).eliminate(ZtZ, ZtXY, d.XYtXY, Lam, keep=True).factors


def _panel_crossproducts(d: Design, codes: np.ndarray, G: int) -> tuple[np.ndarray, np.ndarray]:
    """Dense per-group ``Z'Z`` and ``Z'[X y]`` of the finest level (sorted rows)."""
    XY = d.XY
    Q = d.Z.shape[1]
    if not sp.issparse(d.Z):
        Z = np.asarray(d.Z)
        return grouped_crossprod(Z, Z, codes, G), grouped_crossprod(Z, XY, codes, G)
    Zr = d.Z.tocsr()  # rows are sorted by the finest level: one sparse product per group
    bounds = np.searchsorted(codes, np.arange(G + 1))
    ZtZ, ZtXY = np.zeros((G, Q, Q)), np.zeros((G, Q, XY.shape[1]))
    for g in range(G):
        Zg = Zr[bounds[g]:bounds[g + 1]]
        ZtZ[g] = (Zg.T @ Zg).toarray()
        ZtXY[g] = Zg.T @ XY[bounds[g]:bounds[g + 1]]
    return ZtZ, ZtXY
