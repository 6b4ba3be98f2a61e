"""The nested block-elimination engine: penalised least squares, no loop over groups.

With the relative covariance factor ``Lambda`` (block diagonal over levels),
the profiled likelihood of a linear mixed model needs the Cholesky factor of
``Lambda' Z'Z Lambda + I`` and the Schur complements of ``[X y]`` (Bates et
al., lme4).  For nested groupings ``Z'Z`` is block structured by the
nesting: a lowest-level group touches only itself and one group at each
coarser level.  So the elimination runs level by level, finest first, on
stacks of small per-group matrices:

* per lowest-level group ``g`` the engine holds the cross-products of the
  random-effect columns of that group's own level and all its ancestors
  (``(G, Q, Q)``) and with ``[X y]`` (``(G, Q, p+1)``);
* eliminating a level factors its ``q x q`` diagonal blocks in one batched
  Cholesky, subtracts the Schur complement from the ancestor rows, from the
  ``[X y]`` rows of that group, and from the global ``[X y]'[X y]``; then the
  ancestor rows are summed into their parent group (``np.add.reduceat``).

One evaluation costs ``O(G * Q^3)``; the number of observations never
enters.  Crossed designs reach the engine as one ``_all`` level holding all
the indicator columns (dense; fine for small factors).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..core.linalg import (batched_cholesky, batched_lower_solve, batched_upper_solve_t, group_starts,
                           upper_solve_vec)


@dataclass
class LevelFactor:
    """What the elimination of one level leaves behind (for BLUPs)."""

    L: np.ndarray  # (G, q, q) Cholesky of the level's diagonal blocks
    T: np.ndarray  # (G, q, Qrest) L^{-1} * coupling with ancestors
    U: np.ndarray  # (G, q, p+1) L^{-1} * coupling with [X y]
    starts: Optional[np.ndarray]  # child-group run starts per parent


@dataclass
class Elimination:
    """Result of one elimination: everything the profiled likelihood needs."""

    logdet: float  # log |Lambda'Z'Z Lambda + I|
    B: np.ndarray  # (p+1, p+1) Schur complement of [X y]
    factors: Optional[list[LevelFactor]] = None  # nested engine with keep=True; finest level first


@dataclass
class ClusterElimination(Elimination):
    """An elimination that also kept every top-level cluster's share."""

    logdet_c: Optional[np.ndarray] = None  # (C,)
    B_c: Optional[np.ndarray] = None  # (C, p+1, p+1)


class NestedEngine:
    """Block elimination for a chain of nested levels.

    Parameters
    ----------
    q_fine_first : list of int
        Random-effect columns per level, finest level first.
    parents_fine_first : list of array or None
        For each level except the coarsest, the parent group of each group.
    group_weights : list of (G_l,) arrays, optional
        Total weight of each group per level (finest first); None means all ones.
    clusters : list of (G_l,) int arrays, optional
        Top-level cluster of each group per level; needed for ``cluster_B``.
    """

    def __init__(self, q_fine_first: list[int], parents_fine_first: list[Optional[np.ndarray]],
                 group_weights: Optional[list[np.ndarray]] = None, clusters: Optional[list[np.ndarray]] = None):
        self.q = list(q_fine_first)
        self.parents = list(parents_fine_first)
        self.starts = [None if p is None else group_starts(p) for p in parents_fine_first]
        # frequency/sampling weights: group g of a level counts a_g times (its
        # log-determinant and Schur complement are multiplied by a_g)
        self.a = None if group_weights is None else [np.asarray(w, dtype=float) for w in group_weights]
        self.log_a = None if self.a is None else [np.log(w) for w in self.a]
        self.clusters = clusters  # top-level cluster of each group, per level (robust SEs)

    def eliminate(self, ZtZ: np.ndarray, ZtXY: np.ndarray, XYtXY: np.ndarray,
                  Lambda: np.ndarray, keep: bool = False, cluster_B: Optional[np.ndarray] = None) -> Elimination:
        """Profiled-likelihood pieces for one ``Lambda`` (``Q x Q``, finest first).

        ``ZtZ`` (``(G, Q, Q)``) and ``ZtXY`` (``(G, Q, p+1)``) are the per-group
        ``Z'Z`` and ``Z'[X y]`` of the finest level, ``XYtXY`` the global
        ``[X y]'[X y]`` (all whitened by the residual structure).

        With ``cluster_B`` (per-cluster ``[X y]'A[X y]``, ``(C, p+1, p+1)``) also
        returns each top-level cluster's log-determinant and Schur complement
        (a :class:`ClusterElimination`, for sandwich standard errors).
        """
        B = XYtXY.copy()
        per = cluster_B is not None
        if per:
            Bc = cluster_B.copy()
            ldc = np.zeros(Bc.shape[0])
        factors = [] if keep else None
        logdet = 0.0
        if not self.q:
            return ClusterElimination(0.0, B, factors, ldc, Bc) if per else Elimination(0.0, B, factors)
        off = Lambda - np.diag(np.diagonal(Lambda))
        if not off.any():  # diagonal Lambda (identity/independent): elementwise scaling
            d = np.diagonal(Lambda)
            M = ZtZ * (d[:, None] * d[None, :])
            C = ZtXY * d[:, None]
        else:
            M = np.matmul(np.matmul(Lambda.T, ZtZ), Lambda)
            C = np.matmul(Lambda.T, ZtXY)
        for k, (q, starts) in enumerate(zip(self.q, self.starts)):
            G = M.shape[0]
            rest = M.shape[1] - q
            a = 1.0 if self.a is None else self.a[k]
            if q == 1:  # scalar blocks: everything elementwise
                l = np.sqrt(M[:, 0, 0] + a)
                ld = 2.0 * np.log(l)
                U = C[:, :1, :] / l[:, None, None]
                T = M[:, :1, 1:] / l[:, None, None]
                L = l[:, None, None]
            else:
                A = M[:, :q, :q].copy()
                A[:, np.arange(q), np.arange(q)] += np.broadcast_to(np.asarray(a, dtype=float), (G,))[:, None]
                L = batched_cholesky(A)
                ld = 2.0 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum(axis=1)
                U = batched_lower_solve(L, C[:, :q, :])
                T = batched_lower_solve(L, M[:, :q, q:]) if rest else np.zeros((G, q, 0))
            if self.a is not None:
                ld = a * (ld - q * self.log_a[k])
            logdet += float(ld.sum())
            U2 = U.reshape(G * q, -1)
            B -= U2.T @ U2
            if per:
                cl = self.clusters[k]
                ldc += np.bincount(cl, weights=ld, minlength=ldc.size)
                np.subtract.at(Bc, cl, np.einsum("gqi,gqj->gij", U, U))
            if keep:
                factors.append(LevelFactor(L, T, U, starts))
            if rest:
                if q == 1:
                    t, u = T[:, 0, :], U[:, 0, :]
                    Mr = M[:, 1:, 1:] - t[:, :, None] * t[:, None, :]
                    Cr = C[:, 1:, :] - t[:, :, None] * u[:, None, :]
                else:
                    Tt = np.swapaxes(T, 1, 2)
                    Mr = M[:, q:, q:] - np.matmul(Tt, T)
                    Cr = C[:, q:, :] - np.matmul(Tt, U)
                M = np.add.reduceat(Mr, starts, axis=0)
                C = np.add.reduceat(Cr, starts, axis=0)
        if per:
            return ClusterElimination(float(logdet), B, factors, ldc, Bc)
        return Elimination(float(logdet), B, factors)

    def backward(self, elim: Elimination, B_bar: np.ndarray, logdet_weight: float = 1.0
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Reverse-mode derivative of :meth:`eliminate` (computed with ``keep=True``).

        For ``f = logdet_weight * logdet + <B_bar, B>`` (``B_bar`` symmetric),
        returns ``(M_bar, C_bar)``: the gradient of ``f`` with respect to the
        scaled cross-products of the finest level, ``M = Lambda' Z'Z Lambda``
        (``(G, Q, Q)``, entrywise: only the entries the elimination reads are
        non-zero) and ``C = Lambda' Z'[X y]`` (``(G, Q, p+1)``).  The levels are
        revisited coarsest first; each step is the adjoint of one batched
        Cholesky, two triangular solves and the Schur update (Murray 2016,
        "Differentiation of the Cholesky decomposition").  Cost: about twice
        :meth:`eliminate`.
        """
        factors = self.level_factors(elim)
        B2 = B_bar + B_bar.T
        M_next = C_next = None
        for k in range(len(factors) - 1, -1, -1):
            f = factors[k]
            w = logdet_weight if self.a is None else logdet_weight * self.a[k]
            M_next, C_next = self._level_backward(f, B2, w, M_next, C_next, self.parents[k])
        return M_next, C_next

    @staticmethod
    def _level_backward(f: LevelFactor, B2: np.ndarray, w, M_up: Optional[np.ndarray],
                        C_up: Optional[np.ndarray], parent: Optional[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Adjoint of one level's elimination: from the adjoints of the coarser level's
        inputs (``M_up``, ``C_up``; None at the coarsest) to this level's."""
        L, T, U = f.L, f.T, f.U
        G, q, c = U.shape
        rest = T.shape[2]
        M_bar = np.zeros((G, q + rest, q + rest))
        C_bar = np.zeros((G, q + rest, c))
        U_bar = -np.matmul(U, B2)  # B -= U'U
        if rest:
            Mr, Cr = M_up[parent], C_up[parent]  # reduceat's adjoint: every child gets its parent's
            M_bar[:, q:, q:] = Mr
            C_bar[:, q:, :] = Cr
            T_bar = -np.matmul(T, Mr + np.swapaxes(Mr, 1, 2)) - np.matmul(U, np.swapaxes(Cr, 1, 2))
            U_bar -= np.matmul(T, Cr)
        if q == 1:  # scalar blocks: l = sqrt(m + a)
            l = L[:, 0, 0]
            C_bar[:, :1, :] = U_bar / l[:, None, None]
            l_bar = -(C_bar[:, 0, :] * U[:, 0, :]).sum(axis=1)
            if rest:
                M_bar[:, :1, 1:] = T_bar / l[:, None, None]
                l_bar -= (M_bar[:, 0, 1:] * T[:, 0, :]).sum(axis=1)
            l_bar += 2.0 * w / l
            M_bar[:, 0, 0] = l_bar / (2.0 * l)
            return M_bar, C_bar
        Cq = batched_upper_solve_t(L, U_bar)  # U = L^-1 C_q
        C_bar[:, :q, :] = Cq
        L_bar = -np.matmul(Cq, np.swapaxes(U, 1, 2))
        if rest:
            Mq = batched_upper_solve_t(L, T_bar)  # T = L^-1 M_q,rest
            M_bar[:, :q, q:] = Mq
            L_bar -= np.matmul(Mq, np.swapaxes(T, 1, 2))
        L_bar = np.tril(L_bar)
        idx = np.arange(q)
        L_bar[:, idx, idx] += np.broadcast_to(np.asarray(w, dtype=float), (G,))[:, None] * 2.0 / L[:, idx, idx]
        # L = chol(A): A_bar = L^-T Phi(L' L_bar) L^-1 (Phi: lower triangle, diagonal halved)
        Y = np.tril(np.matmul(np.swapaxes(L, 1, 2), L_bar))
        Y[:, idx, idx] *= 0.5
        S = batched_upper_solve_t(L, Y)
        M_bar[:, :q, :q] = np.swapaxes(batched_upper_solve_t(L, np.swapaxes(S, 1, 2)), 1, 2)
        return M_bar, C_bar

    def level_factors(self, elim: Elimination) -> list[LevelFactor]:
        """The per-level factors of ``elim`` (finest first; computed with ``keep=True``)."""
        if elim.factors is None:
            raise ValueError("level_factors needs an elimination computed with keep=True")
        return elim.factors

    def solve_u(self, elim: Elimination, beta: np.ndarray) -> list[np.ndarray]:
        """Spherical random effects ``u`` per level (finest first), given ``beta``.

        Back-substitution from the coarsest level down: for a level,
        ``u = L^{-T} (U_y - U_X beta - T u_ancestors)``.
        """
        factors = elim.factors
        xb = np.append(-beta, 1.0)
        out: list[Optional[np.ndarray]] = [None] * len(factors)
        anc: Optional[np.ndarray] = None  # ancestors' u stacked, per group of level i
        for i in range(len(factors) - 1, -1, -1):
            f = factors[i]
            rhs = f.U @ xb  # (G, q)
            if anc is not None and f.T.shape[2]:
                rhs = rhs - np.einsum("gij,gj->gi", f.T, anc)
            u = upper_solve_vec(f.L, rhs)
            out[i] = u
            if i > 0:
                parent = self.parents[i - 1]  # groups of level i-1 -> groups of level i
                own = u[parent]
                anc = own if anc is None else np.concatenate([own, anc[parent]], axis=1)
        return out
