"""Analytic gradient of the profiled (restricted) deviance, by reverse mode through the engines.

Every evaluation is ``dev = logdet(Lambda) + logdet_R + n log r2 (+ log|X'V^-1 X|)`` where
``logdet`` and the Schur complement ``B`` of ``[X y]`` come from one elimination
of the scaled cross-products.  The dependence on ``B`` is closed form: with
``v = [beta, -1]`` (working metric) ``d r2 / dB = v v'`` and
``d log|B_XX| / dB = B_XX^-1``, so a gradient is one elimination kept in memory
and its adjoint (:meth:`~mixedlm_ext.engines.nested.NestedEngine.backward`,
:meth:`~mixedlm_ext.engines.crossed.CrossedEngine.factor_gradient`), carried
to each block's relative factor and through
:meth:`~mixedlm_ext.structures.covariance.CovStruct.factor_jacobian` to
``theta``.  A residual structure's parameters ``rho`` enter through the
whitened cross-products only: their derivative is the adjoint of those
cross-products contracted with fourth-order central differences of
``ResidualStructure.crossproducts`` in ``rho`` (differences of the residual's
few parameters, never of the likelihood: an analytic derivative of every
residual kernel is not written).
"""
from __future__ import annotations

import numpy as np

from ..design.types import BlockPosition

# relative step of the differences of the residual cross-products in rho
RESIDUAL_STEP = 1e-3


def b_adjoint(ev, coef_r2: float, reml: bool) -> np.ndarray:
    """``d f / d B`` for ``f = coef_r2 * r2 (+ log|B_XX|)`` (``r2`` the Schur
    complement of ``y``; ``ev.beta_w`` the GLS solution in the working metric,
    ``ev.RX`` the Cholesky factor of ``B_XX``)."""
    p = ev.beta_w.size
    v = np.empty(p + 1)
    v[:p] = ev.beta_w
    v[p] = -1.0
    out = (coef_r2 * v)[:, None] * v[None, :]
    if reml and p:
        out[:p, :p] += np.linalg.inv(ev.B[:p, :p])
    return out


def dense_lambda_gradient(M_bar: np.ndarray, C_bar: np.ndarray, ZtZ: np.ndarray, ZtXY: np.ndarray,
                          Lam: np.ndarray, diagonal: bool) -> np.ndarray:
    """``d f / d Lambda`` (``Q x Q``) from the adjoints of ``M = Lambda' Z'Z Lambda``
    and ``C = Lambda' Z'[X y]`` (per finest group); ``diagonal``: only the diagonal
    of ``Lambda`` is free (elementwise, no ``Q^3`` products)."""
    Ms = M_bar + np.swapaxes(M_bar, 1, 2)
    if diagonal:
        d = np.diagonal(Lam)
        dbar = np.einsum("gij,gij->ij", Ms, ZtZ) @ d + np.einsum("gic,gic->i", C_bar, ZtXY)
        return np.diag(dbar)
    G, Q, _ = ZtZ.shape
    ZL = np.matmul(ZtZ, Lam)
    out = np.swapaxes(ZL, 0, 1).reshape(Q, G * Q) @ Ms.reshape(G * Q, Q)
    c = ZtXY.shape[2]
    out += np.swapaxes(ZtXY, 0, 1).reshape(Q, G * c) @ np.swapaxes(C_bar, 0, 1).reshape(Q, G * c).T
    return out


def block_factor_gradients(Lam_bar: np.ndarray, positions: list[BlockPosition]) -> list[np.ndarray]:
    """Per-block ``qe x qe`` gradients from a dense ``d f / d Lambda`` (expanded blocks
    ``kron(I_k, lambda)`` sum their ``k`` diagonal copies)."""
    out = []
    for pos in positions:
        qe, k = pos.qe, pos.n_expand
        sub = Lam_bar[pos.offset:pos.offset + qe * k, pos.offset:pos.offset + qe * k]
        if k > 1:
            sub = sub.reshape(k, qe, k, qe)[np.arange(k), :, np.arange(k), :].sum(axis=0)
        out.append(sub)
    return out


class FactorJacobians:
    """Every block's :meth:`~mixedlm_ext.structures.covariance.CovStruct.factor_jacobian`,
    flattened, computed once for the structures whose factor is linear in ``theta``."""

    def __init__(self, blocks):
        self.blocks = list(blocks)
        self._fixed = [b.structure.factor_jacobian(b.structure.theta_start()).reshape(b.structure.n_theta, -1)
                       if b.structure.linear_factor else None for b in self.blocks]

    def second(self, i: int, theta: np.ndarray, h: float = 1e-5) -> np.ndarray:
        """``d2 lambda / d theta_j d theta_k`` of block ``i`` ``(m, m, q, q)``, by central
        differences of its Jacobian (no likelihood involved)."""
        struct = self.blocks[i].structure
        theta = np.asarray(theta, dtype=float)
        out = np.empty((theta.size,) + struct.factor_jacobian(theta).shape)
        for j in range(theta.size):
            step = h * max(abs(theta[j]), 1.0)
            up, dn = theta.copy(), theta.copy()
            up[j] += step
            dn[j] -= step
            out[j] = (struct.factor_jacobian(up) - struct.factor_jacobian(dn)) / (2.0 * step)
        return out

    def theta_gradient(self, parts: list[np.ndarray], lam_bars: list[np.ndarray]) -> np.ndarray:
        """Chain rule from the per-block ``d f / d lambda`` to ``theta``."""
        out = []
        for b, t, lb, J in zip(self.blocks, parts, lam_bars, self._fixed):
            if J is None:
                J = b.structure.factor_jacobian(t).reshape(b.structure.n_theta, -1)
            out.append(J @ np.ravel(lb))
        return np.concatenate(out) if out else np.zeros(0)


def residual_gradient(crossproducts, rho: np.ndarray, bars: tuple, bounds) -> np.ndarray:
    """``d f / d rho`` from the adjoints ``bars = (ZtZ_bar, ZtXY_bar, XYtXY_bar)`` of the
    whitened cross-products (``d f / d logdet_R = 1``) and fourth-order central
    differences of ``crossproducts(rho)`` (steps of :data:`RESIDUAL_STEP`; two-point
    and one-sided next to a bound): accurate to about 1e-12 relative, so that
    differences of this gradient (the Hessian) stay accurate too."""
    rho = np.asarray(rho, dtype=float)
    out = np.zeros(rho.size)

    def directional(x):
        a = crossproducts(x)
        return float(a[3]) + sum(float(np.vdot(bar, m)) for bar, m in zip(bars, a[:3]))

    for j in range(rho.size):
        h = RESIDUAL_STEP * max(abs(rho[j]), 1.0)
        lo, hi = bounds[j]
        room_lo = np.inf if lo is None else rho[j] - lo
        room_hi = np.inf if hi is None else hi - rho[j]

        def at(t):
            x = rho.copy()
            x[j] = rho[j] + t
            return directional(x)

        if min(room_lo, room_hi) >= 2 * h:
            out[j] = (8.0 * (at(h) - at(-h)) - (at(2 * h) - at(-2 * h))) / (12.0 * h)
        elif room_hi >= h and room_lo >= h:
            out[j] = (at(h) - at(-h)) / (2.0 * h)
        else:
            s = 1.0 if room_hi >= h else -1.0
            out[j] = s * (-3.0 * directional(rho) + 4.0 * at(s * h) - at(2 * s * h)) / (2.0 * h)
    return out
