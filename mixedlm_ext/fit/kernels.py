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
with no loop over groups and no LAPACK call per group.  For
``f = logdet + <B_bar, B>`` the gradient is

``Psi_bar = sum_g [Z_g - Z_g H_g Z_g + N_g' H_bar_g N_g]``,
``H_bar_g = -C_g B_bar C_g'``, ``N_g = I - H_g Z_g``,

and ``lambda_bar = 2 Psi_bar lambda``.  The numbers are those of the general
engine (:mod:`mixedlm_ext.engines.nested`) to rounding; the objective uses
this kernel for the optimizer's evaluations and the engine for everything
else (conditional modes, EM, postestimation).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

MAX_Q = 2


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
        if self.q == 1:
            self.z = np.ascontiguousarray(ZtZ[:, 0, 0])
            self.c = np.ascontiguousarray(ZtXY[:, 0, :])
        else:
            self.z11, self.z12, self.z22 = (np.ascontiguousarray(ZtZ[:, i, j]) for i, j in ((0, 0), (0, 1), (1, 1)))
            self.c1 = np.ascontiguousarray(ZtXY[:, 0, :])
            self.c2 = np.ascontiguousarray(ZtXY[:, 1, :])

    # -- q = 1 -------------------------------------------------------------------------
    def _scalar(self, lam: np.ndarray):
        l2 = float(lam[0, 0]) ** 2
        m = l2 * self.z + 1.0
        h = l2 / m
        logdet = float(np.log(m).sum())
        B = self.B0 - (self.c * h[:, None]).T @ self.c
        if not np.isfinite(logdet):
            raise np.linalg.LinAlgError("relative covariance not positive definite")

        def backward(B_bar: np.ndarray) -> np.ndarray:
            h_bar = -np.einsum("gi,ij,gj->g", self.c, B_bar, self.c)
            psi_bar = float(np.sum(self.z / m + h_bar / (m * m)))
            return 2.0 * psi_bar * lam

        def em(w: np.ndarray):
            r = self.c @ w
            b = h * r
            u2 = l2 * (r / m) ** 2
            zn = self.z / m
            G = self.z.size
            return (float(u2.sum()), float(np.sum(zn * l2)), np.array([[float(b @ b) / G]]),
                    np.array([[l2 - l2 * l2 * float(zn.mean())]]))

        return logdet, B, backward, em

    # -- q = 2 -------------------------------------------------------------------------
    def _pair(self, lam: np.ndarray):
        a, b, d = float(lam[0, 0]), float(lam[1, 0]), float(lam[1, 1])
        c12 = float(lam[0, 1])
        p11, p12, p22 = a * a + c12 * c12, a * b + c12 * d, b * b + d * d  # Psi = lambda lambda'
        z11, z12, z22 = self.z11, self.z12, self.z22
        D11 = 1.0 + p11 * z11 + p12 * z12
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
        c1, c2 = self.c1, self.c2
        X1 = h11[:, None] * c1 + h12[:, None] * c2
        X2 = h12[:, None] * c1 + h22[:, None] * c2
        B = self.B0 - (c1.T @ X1 + c2.T @ X2)
        logdet = float(np.log(det).sum())

        def n_and_zn():
            """``N = I - H Z = (I + Psi Z)^-1`` and ``Z N = Z - Z H Z`` (symmetric)."""
            n11 = 1.0 - (h11 * z11 + h12 * z12)
            n12 = -(h11 * z12 + h12 * z22)
            n21 = -(h12 * z11 + h22 * z12)
            n22 = 1.0 - (h12 * z12 + h22 * z22)
            return (n11, n12, n21, n22), (z11 * n11 + z12 * n21, z11 * n12 + z12 * n22, z12 * n12 + z22 * n22)

        def backward(B_bar: np.ndarray) -> np.ndarray:
            Y1, Y2 = c1 @ B_bar, c2 @ B_bar
            e11 = -np.einsum("gi,gi->g", Y1, c1)  # H_bar = -C B_bar C'
            e12 = -np.einsum("gi,gi->g", Y1, c2)
            e22 = -np.einsum("gi,gi->g", Y2, c2)
            (n11, n12, n21, n22), (s11, s12, s22) = n_and_zn()
            t11 = e11 * n11 + e12 * n21  # (H_bar N)
            t12 = e11 * n12 + e12 * n22
            t21 = e12 * n11 + e22 * n21
            t22 = e12 * n12 + e22 * n22
            P11 = float(np.sum(s11 + n11 * t11 + n21 * t21))  # Z N + N' H_bar N
            P12 = float(np.sum(s12 + n11 * t12 + n21 * t22))
            P22 = float(np.sum(s22 + n12 * t12 + n22 * t22))
            return 2.0 * np.array([[P11, P12], [P12, P22]]) @ lam

        def em(w: np.ndarray):
            (n11, n12, n21, n22), (s11, s12, s22) = n_and_zn()
            r1, r2 = c1 @ w, c2 @ w  # C w
            b1, b2 = h11 * r1 + h12 * r2, h12 * r1 + h22 * r2  # b = lambda u = H C w
            v1, v2 = n11 * r1 + n21 * r2, n12 * r1 + n22 * r2  # u = lambda' N' C w
            ssu = float(np.sum(p11 * v1 * v1 + 2.0 * p12 * v1 * v2 + p22 * v2 * v2))
            tr = float(np.sum(s11 * p11 + 2.0 * s12 * p12 + s22 * p22))
            G = z11.size
            bb = np.array([[b1 @ b1, b1 @ b2], [b1 @ b2, b2 @ b2]]) / G
            P = np.array([[p11, p12], [p12, p22]])
            S = np.array([[s11.mean(), s12.mean()], [s12.mean(), s22.mean()]])
            return ssu, tr, bb, P - P @ S @ P

        return logdet, B, backward, em

    def evaluate(self, lam: np.ndarray):
        """``(logdet, B, backward, em)``: ``backward(B_bar)`` is the gradient of
        ``logdet + <B_bar, B>`` with respect to ``lambda``; ``em(w)`` (``w = [-beta, 1]``,
        working metric) the EM moments ``(sum |u|^2, sum tr(A M^-1), mean b b',
        Var(b) / sigma2)`` of :func:`~mixedlm_ext.fit.em.em_step`."""
        return self._scalar(lam) if self.q == 1 else self._pair(lam)


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
