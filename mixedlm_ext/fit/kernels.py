"""Closed forms for the most common small case: one block of one or two columns per group.

A two-level model with a random intercept, or an intercept and a slope
(``|| id:``, ``|| id: x``, ``(x | id)``), has ``q = 1`` or ``2`` random
effects per group.  Its profiled deviance depends on the relative factor
``lambda`` only through ``Psi = lambda lambda'``:

* ``log|Lambda' Z'Z Lambda + I| = sum_g log|I + Z_g Psi|``,
* ``B = [X y]'[X y] - sum_g C_g' H_g C_g`` with ``H_g = (I + Psi Z_g)^-1 Psi``
  (``Z_g = Z_g'Z_g``, ``C_g = Z_g'[X y]``),

so one evaluation is a few elementwise operations on arrays of length
``G`` (the ``2 x 2`` inverses written out) and two small matrix products,
with no loop over groups and no LAPACK call per group.  With
``N_g = (I + Psi Z_g)^-1``, ``K_g = Z_g N_g`` (symmetric) and ``W_g = N_g' C_g``:

* ``dH = N dPsi N'``, ``d log|I + Z Psi| = tr(K dPsi)``, ``dB = -sum W' dPsi W``;
* for ``f = logdet + <B_bar, B>``: ``Psi_bar = sum_g [K_g - W_g B_bar W_g']`` and
  ``lambda_bar = 2 Psi_bar lambda``;
* second derivatives: ``d2 logdet = -sum tr(K dPsi1 K dPsi2)``,
  ``d2B = sum W'(dPsi1 K dPsi2 + dPsi2 K dPsi1) W``, and for the Schur
  complement ``r2`` of ``y`` (``v = [beta, -1]``, ``A = B_XX``):
  ``d2 r2 = v' d2B v - 2 (dB1 v)_X' A^-1 (dB2 v)_X`` -- the analytic Hessian of
  -2 log-likelihood in ``psi = (theta, log sigma2)``
  (:meth:`KernelEvaluation.second_order`), so that a small model is fitted by
  Newton-Raphson from the EM start.

The numbers are those of the general engine (:mod:`mixedlm_ext.engines.nested`)
to rounding; the objective uses this kernel for the optimizer's evaluations
and the engine for everything else (conditional modes, postestimation).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

MAX_Q = 2


def _product_index(q: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index arrays for products of ``q x q`` matrices stored flattened (row major) along
    an axis: ``(A B)[i q + j] = sum_k A[IA[i q + j, k]] B[IB[i q + j, k]]``; ``T`` transposes."""
    IA = np.array([[i * q + k for k in range(q)] for i in range(q) for j in range(q)])
    IB = np.array([[k * q + j for k in range(q)] for i in range(q) for j in range(q)])
    T = np.array([j * q + i for i in range(q) for j in range(q)])
    return IA, IB, T


def _mul(A: np.ndarray, B: np.ndarray, index) -> np.ndarray:
    """``A B`` for stacks of flattened ``q x q`` matrices ``(..., q*q, G)``."""
    IA, IB, _ = index
    return (A[..., IA, :] * B[..., IB, :]).sum(axis=-2)


class KernelEvaluation:
    """The kernel at one ``lambda``: ``logdet`` and ``B``, and what their derivatives need.

    Per-group ``q x q`` matrices are stored flattened, ``(q*q, G)``, so that every
    operation is elementwise over the groups or an ``einsum`` whose inner loop
    runs over them (a batched ``2 x 2`` matrix product costs more per group than
    the arithmetic it does)."""

    def __init__(self, kernel: "SingleBlockKernel", lam: np.ndarray):
        self.lam = lam
        self.kernel = kernel
        if kernel.q == 1:
            self._scalar(kernel, lam)
        else:
            self._pair(kernel, lam)
        if not np.isfinite(self.logdet):
            raise np.linalg.LinAlgError("relative covariance not positive definite")

    def _scalar(self, kernel, lam):
        l2 = float(lam[0, 0]) ** 2
        z, c = kernel.z, kernel.c
        m = l2 * z + 1.0
        h = l2 / m
        self.logdet = float(np.log(m).sum())
        self.B = kernel.B0 - (c * h[:, None]).T @ c
        self._psi = np.array([[l2]])
        self._nk_cache = ((1.0 / m)[None, :], (z / m)[None, :])

    def _pair(self, kernel, lam):
        a, c12, b, d = float(lam[0, 0]), float(lam[0, 1]), float(lam[1, 0]), float(lam[1, 1])
        p11, p12, p22 = a * a + c12 * c12, a * b + c12 * d, b * b + d * d  # Psi = lambda lambda'
        z11, z12, z22 = kernel.z11, kernel.z12, kernel.z22
        D11 = 1.0 + p11 * z11 + p12 * z12  # I + Psi Z
        D12 = p11 * z12 + p12 * z22
        D21 = p12 * z11 + p22 * z12
        D22 = 1.0 + p12 * z12 + p22 * z22
        det = D11 * D22 - D12 * D21  # |I + Psi Z_g| > 0
        if not det.min() > 0:
            raise np.linalg.LinAlgError("relative covariance not positive definite")
        inv = 1.0 / det
        h11 = (D22 * p11 - D12 * p12) * inv
        h12 = (D22 * p12 - D12 * p22) * inv
        h22 = (D11 * p22 - D21 * p12) * inv
        c1, c2 = kernel.c1, kernel.c2
        X1 = h11[:, None] * c1 + h12[:, None] * c2
        X2 = h12[:, None] * c1 + h22[:, None] * c2
        self.B = kernel.B0 - (c1.T @ X1 + c2.T @ X2)
        self.logdet = float(np.log(det).sum())
        self._psi = np.array([[p11, p12], [p12, p22]])
        self._hz = (h11, h12, h22), (z11, z12, z22)
        self._nk_cache = None

    def _nk(self) -> tuple[np.ndarray, np.ndarray]:
        """``N = I - H Z`` and ``K = Z N`` (symmetric) per group, flattened ``(q*q, G)``."""
        if self._nk_cache is None:
            (h11, h12, h22), (z11, z12, z22) = self._hz
            n11 = 1.0 - (h11 * z11 + h12 * z12)
            n12 = -(h11 * z12 + h12 * z22)
            n21 = -(h12 * z11 + h22 * z12)
            n22 = 1.0 - (h12 * z12 + h22 * z22)
            k11, k12, k22 = z11 * n11 + z12 * n21, z11 * n12 + z12 * n22, z12 * n12 + z22 * n22
            self._nk_cache = (np.stack([n11, n12, n21, n22]), np.stack([k11, k12, k12, k22]))
        return self._nk_cache

    def _w(self) -> np.ndarray:
        """``W = N' C``, ``(q, G, k)`` (row ``i`` of every ``W_g``)."""
        N, _ = self._nk()
        q = self.kernel.q
        return np.einsum("aig,agk->igk", N.reshape(q, q, -1), self.kernel.C)

    def _psi_bar(self, B_bar: np.ndarray, W: Optional[np.ndarray] = None) -> np.ndarray:
        """``sum_g [K_g - W_g B_bar W_g']``: the gradient of ``logdet + <B_bar, B>`` in ``Psi``."""
        _, K = self._nk()
        W = self._w() if W is None else W
        q = self.kernel.q
        return K.sum(axis=1).reshape(q, q) - np.einsum("igl,jgl->ij", np.einsum("igk,kl->igl", W, B_bar), W)

    def backward(self, B_bar: np.ndarray) -> np.ndarray:
        """Gradient of ``logdet + <B_bar, B>`` with respect to ``lambda``."""
        return 2.0 * self._psi_bar(B_bar) @ self.lam

    def em(self, w: np.ndarray):
        """The EM moments of :func:`~mixedlm_ext.fit.em.em_step` at ``w = [-beta, 1]``
        (working metric): ``(sum |u|^2, sum tr(A M^-1), mean b b', Var(b) / sigma2)``
        with ``b = lambda u = Psi N' C w`` and ``u = lambda' N' C w``."""
        N, K = self._nk()
        P = self._psi
        q = self.kernel.q
        r = np.einsum("agk,k->ag", self.kernel.C, w)
        v = np.einsum("aig,ag->ig", N.reshape(q, q, -1), r)  # N' r
        b = P @ v
        G = r.shape[1]
        ssu = float(np.einsum("ig,ig->", v, b))
        tr = float(K.sum(axis=1).reshape(q, q).ravel() @ P.ravel())
        return ssu, tr, b @ b.T / G, P - P @ K.mean(axis=1).reshape(q, q) @ P

    def second_order(self, dirs: np.ndarray, second: Optional[np.ndarray], v: np.ndarray, A_inv: np.ndarray,
                     coef: float, reml: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Gradient, Hessian and ``d r2`` in ``theta`` of ``f = logdet + coef * r2 (+ log|B_XX|)``.

        ``dirs`` ``(m, q, q)``: ``d lambda / d theta_i``; ``second`` ``(m, m, q, q)`` its
        derivatives (None: ``lambda`` linear in ``theta``); ``v = [beta, -1]``, ``A_inv``
        the inverse of ``B_XX`` (working metric)."""
        lam, q = self.lam, self.kernel.q
        index = self.kernel.index
        T = index[2]
        _, K = self._nk()
        W = self._w()
        p, m = v.size - 1, dirs.shape[0]
        Pd = np.einsum("iab,cb->iac", dirs, lam)
        Pd = Pd + np.swapaxes(Pd, 1, 2)  # dPsi_i = dl_i lam' + lam dl_i'
        Pf = Pd.reshape(m, q * q, 1)
        B_bar = coef * (v[:, None] * v[None, :])
        if reml and p:
            B_bar[:p, :p] += A_inv
        psi_bar = self._psi_bar(B_bar, W)
        grad = np.einsum("ab,iab->i", psi_bar, Pd)
        KP = _mul(K[None], Pf, index)  # K dPsi_i, (m, q*q, G)
        H = -np.einsum("ikg,jkg->ij", KP, KP[:, T, :])  # d2 logdet
        w = np.einsum("igk,k->ig", W, v)  # W v
        Pw = np.einsum("iab,bg->iag", Pd, w)  # dPsi_i w
        KPw = np.einsum("abg,ibg->iag", K.reshape(q, q, -1), Pw)
        dr = -np.einsum("iag,ag->i", Pw, w)  # v' dB_i v
        H += coef * 2.0 * np.einsum("iag,jag->ij", Pw, KPw)
        if p:
            WX = W[:, :, :p]
            u = -np.einsum("iag,agx->ix", Pw, WX)  # (dB_i v)_X
            H -= coef * 2.0 * u @ A_inv @ u.T
        if reml and p:
            Q = np.einsum("agy,bgy->abg", np.einsum("agx,xy->agy", WX, A_inv), WX).reshape(q * q, -1)
            WAW = np.einsum("agx,bgy->abxy", WX, WX)
            AdA = np.einsum("xz,izy->ixy", A_inv, -np.einsum("iab,abxy->ixy", Pd, WAW))
            QP = _mul(Q[None], Pf, index)
            H += 2.0 * np.einsum("jkg,ikg->ij", QP, KP[:, T, :]) - np.einsum("ixy,jyx->ij", AdA, AdA)
        # the second derivative of Psi: dl_i dl_j' + dl_j dl_i' (+ d2l_ij lam' + lam d2l_ij')
        S = np.einsum("iab,jcb->ijac", dirs, dirs)
        if second is not None:
            S = S + np.einsum("ijab,cb->ijac", second, lam)
        S = S + np.swapaxes(S, 2, 3)
        H += np.einsum("ab,ijab->ij", psi_bar, S)
        return grad, 0.5 * (H + H.T), dr


class SingleBlockKernel:
    """The profiled deviance of a design with one random-effects block of ``q <= 2``
    columns per group of its only level (see the module docstring).

    Parameters
    ----------
    ZtZ, ZtXY, XYtXY : arrays
        The design's per-group cross-products ``(G, q, q)``, ``(G, q, p+1)`` and
        the global ``(p+1, p+1)`` one (working fixed part).
    """

    def __init__(self, ZtZ: np.ndarray, ZtXY: np.ndarray, XYtXY: np.ndarray):
        self.q = ZtZ.shape[1]
        self.B0 = XYtXY
        self.k = XYtXY.shape[0]
        self.rows = [np.ascontiguousarray(ZtXY[:, i, :]) for i in range(self.q)]
        self.C = np.stack(self.rows)  # (q, G, k)
        self.index = _product_index(self.q)
        if self.q == 1:
            self.z = np.ascontiguousarray(ZtZ[:, 0, 0])
            self.c = self.rows[0]
        else:
            self.z11, self.z12, self.z22 = (np.ascontiguousarray(ZtZ[:, i, j]) for i, j in ((0, 0), (0, 1), (1, 1)))
            self.c1, self.c2 = self.rows

    def evaluate(self, lam: np.ndarray) -> KernelEvaluation:
        """``logdet`` and ``B`` at ``lambda`` (raises ``LinAlgError`` where undefined)."""
        return KernelEvaluation(self, np.asarray(lam, dtype=float))


def single_block_kernel(objective) -> Optional[SingleBlockKernel]:
    """The kernel for ``objective`` when it applies: one level with random effects,
    whose groups are the panels, one block of at most :data:`MAX_Q` columns (not
    expanded by a factor), the plain residual, no frequency or sampling weights."""
    d = objective.design
    if d.sparse_re or not objective.residual.is_plain or objective._panel_starts is not None:
        return None
    if d.weights is not None and not d.weights.is_precision:
        return None
    blocks = objective.blocks
    if len(blocks) != 1 or blocks[0].n_expand != 1 or blocks[0].structure.q > MAX_Q:
        return None
    if sum(1 for lvl in d.levels if lvl.q) != 1 or d.levels[-1].q == 0 or d.ZtZ is None:
        return None
    return SingleBlockKernel(d.ZtZ, d.ZtXY, d.XYtXY)
