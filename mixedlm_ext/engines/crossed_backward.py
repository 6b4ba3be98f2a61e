"""Reverse-mode derivative of the crossed engine's elimination.

The crossed engine (:mod:`.crossed`) computes, for relative factors
``lambda1`` (term 1) and ``Lambda2`` (the other terms),

* ``H_g = lambda1 M_g^-1 lambda1'`` with ``M_g = lambda1' Z1tZ1_g lambda1 + I`` and
  ``log|P11| = sum_g log|M_g|``; the ``[X y]`` rows of term 1 enter ``B`` as
  ``- sum_g c_g' H_g c_g`` (``c_g = Z1tXY_g``);
* ``P = Lambda2' X(H) Lambda2 + I`` with ``X = Z2tZ2 - sum_g Z2tZ1_g H_g Z1tZ2_g``,
  ``R2 = Lambda2' (Z2tXY - Z2tZ1 H c)`` and ``B -= R2' P^-1 R2``, ``log|P|``.

For ``f = log|P11| + log|P| + <B_bar, B>`` the adjoint is
``P_bar = P^-1 + W B_bar W'`` (``W = P^-1 R2``, one LAPACK ``dpotri`` for the
inverse), ``R2_bar = -2 W B_bar``; ``P_bar`` goes back to ``H`` through the
transpose of the same sparse map that built ``X`` (``Kmat'``, or the sparse
product when there is no map), and ``H_bar`` to ``lambda1`` group by group.
The cost is the forward cost plus one ``dpotri`` (about twice the dense
Cholesky of order ``Q2``) and one product with ``Kmat'``.
"""
from __future__ import annotations

import numpy as np
from scipy.linalg import lapack

from ..core.linalg import inv_lower
from ..core.threads import dense_blas

_CHUNK = 4_000_000  # elements of a dense (rows x Q2) temporary of the sparse-product path


def _symmetric_inverse(U: np.ndarray) -> np.ndarray:
    """``P^-1`` (full, symmetric) from the upper Cholesky factor ``U`` (``P = U'U``)."""
    with dense_blas(U.shape[0]):
        inv, info = lapack.dpotri(U, lower=0)
    if info != 0:
        raise np.linalg.LinAlgError("crossed Schur complement is singular")
    inv = np.triu(inv)
    return inv + np.triu(inv, 1).T


def _lower_weights(A: np.ndarray) -> np.ndarray:
    """``2 A`` with its diagonal kept: the weight of each lower-triangle entry of a
    symmetric matrix whose lower triangle alone is computed (C order, flat)."""
    out = 2.0 * A
    out.flat[:: A.shape[0] + 1] = np.diagonal(A)
    return out.ravel()


def _vech_to_full(hv: np.ndarray, q: int) -> np.ndarray:
    """Gradient with respect to the upper triangle of each symmetric ``H_g`` -> entrywise
    (symmetric) gradient ``(G, q, q)``."""
    ju, ku = np.triu_indices(q)
    G = hv.shape[0]
    out = np.zeros((G, q, q))
    off = ju != ku
    out[:, ju, ku] = np.where(off, 0.5, 1.0) * hv
    out[:, ku[off], ju[off]] = 0.5 * hv[:, off]
    return out


def _scale_rows(engine, lam2: list, M: np.ndarray, transpose: bool = False) -> np.ndarray:
    """``Lambda2 M`` (``Lambda2' M`` with ``transpose``) for a ``(Q2, c)`` array
    (block-diagonal ``Lambda2``)."""
    out = np.empty_like(M)
    for t, l, a, b in zip(engine.terms[1:], lam2, engine.offs2[:-1], engine.offs2[1:]):
        if t.q == 1:
            out[a:b] = float(l[0, 0]) * M[a:b]
        else:
            ll = l.T if transpose else l
            out[a:b] = np.einsum("ij,gjc->gic", ll, M[a:b].reshape(t.G, t.q, -1)).reshape(b - a, -1)
    return out


def _sandwich(engine, lam2: list, P_bar: np.ndarray) -> np.ndarray:
    """``Lambda2 P_bar Lambda2'``."""
    return _scale_rows(engine, lam2, _scale_rows(engine, lam2, P_bar).T).T


def _lambda2_from_P(engine, lam2: list, X: np.ndarray, P_bar: np.ndarray) -> list[np.ndarray]:
    """Each other term's ``d f / d lambda_t`` through ``P = Lambda2' X Lambda2 + I``
    (``2 X Lambda2 P_bar``, diagonal blocks only)."""
    XL = _scale_rows(engine, lam2, X, transpose=True).T  # X Lambda2 = (Lambda2' X)' (X symmetric)
    out = []
    for t, a, b in zip(engine.terms[1:], engine.offs2[:-1], engine.offs2[1:]):
        A = XL[a:b].reshape(t.G, t.q, -1)
        Pb = P_bar[:, a:b].reshape(-1, t.G, t.q)
        out.append(2.0 * np.einsum("gis,sgj->ij", A, Pb))
    return out


def _h_from_sparse_product(engine, X_bar: np.ndarray) -> np.ndarray:
    """``-[Z1tZ2 X_bar Z2tZ1]_gg`` per group of term 1 (no ``Kmat``), in row chunks."""
    G1, q1 = engine.G1, engine.q1
    C = engine.Z1tZ2.tocoo()
    g, j = np.divmod(C.row.astype(np.int64), q1)
    out = np.zeros((G1, q1, q1))
    rows = engine.Z1tZ2.shape[0]
    step = max(q1, (_CHUNK // max(1, engine.Q2)) // q1 * q1)
    for r0 in range(0, rows, step):
        Y = np.asarray(engine.Z1tZ2[r0:r0 + step] @ X_bar)  # (chunk, Q2)
        sel = (C.row >= r0) & (C.row < r0 + step)
        gs, js, ss, vs = g[sel], j[sel], C.col[sel], C.data[sel]
        for i in range(q1):
            vals = Y[gs * q1 + i - r0, ss] * vs
            out[:, i, :] -= np.bincount(gs * q1 + js, weights=vals, minlength=G1 * q1).reshape(G1, q1)
    return out


def _through_schur(engine, st: dict, P_bar: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """``(H_bar, lambda2 gradients)`` through ``P`` (the map ``Kmat`` or the sparse product)."""
    lam2, H = st["lam2"], st["H"]
    km = engine.kmat
    ju, ku = np.triu_indices(engine.q1)
    if km is not None and km.folded:
        lam = np.array([float(l[0, 0]) for l in lam2])
        pa, pb = km.pairs
        dd = lam[pa] * lam[pb]
        w_bar = km.matrix.T @ _lower_weights(P_bar)
        n_h = dd.size * engine.G1 * ju.size
        wH = w_bar[:n_h].reshape(dd.size, -1)
        vech = H[:, ju, ku].ravel()
        h_bar = -(dd[:, None] * wH).sum(axis=0)
        dd_bar = -(wH @ vech) + w_bar[n_h:]
        lam_bar = np.zeros(lam.size)
        np.add.at(lam_bar, pa, dd_bar * lam[pb])
        np.add.at(lam_bar, pb, dd_bar * lam[pa])
        return _vech_to_full(h_bar.reshape(engine.G1, -1), engine.q1), [np.array([[v]]) for v in lam_bar]
    X = engine.unscaled_schur(H)
    lam_bars = _lambda2_from_P(engine, lam2, X, P_bar)
    X_bar = _sandwich(engine, lam2, P_bar)
    if km is not None:
        h_bar = -(km.matrix.T @ _lower_weights(X_bar))
        return _vech_to_full(h_bar.reshape(engine.G1, -1), engine.q1), lam_bars
    return _h_from_sparse_product(engine, X_bar), lam_bars


def _first_term_gradient(engine, st: dict, H_bar: np.ndarray) -> np.ndarray:
    """``d f / d lambda1`` from ``H_bar`` (symmetric) and ``log|P11|``."""
    lam1 = st["lam1"]
    Z = engine.Z1tZ1
    if engine.q1 == 1:
        lam = float(lam1[0, 0])
        m = st["L1"][:, 0, 0] ** 2
        return np.array([[float(np.sum(2.0 * lam * H_bar[:, 0, 0] / m ** 2 + 2.0 * lam * Z[:, 0, 0] / m))]])
    Li = inv_lower(st["L1"])
    Minv = np.matmul(np.swapaxes(Li, 1, 2), Li)
    K = np.matmul(Minv, lam1.T)  # M^-1 lambda1'
    M_bar = Minv - np.matmul(np.matmul(K, H_bar), np.swapaxes(K, 1, 2))
    out = 2.0 * np.matmul(np.matmul(H_bar, lam1[None]), Minv).sum(axis=0)
    return out + 2.0 * np.matmul(np.matmul(Z, lam1[None]), M_bar).sum(axis=0)


def crossed_factor_gradient(engine, elim, B_bar: np.ndarray) -> list[np.ndarray]:
    """``d f / d lambda_b`` for every block (design order) of a crossed engine's
    elimination computed with ``keep=True``; ``f = logdet + <B_bar, B>``."""
    st = elim.state
    if st is None:
        raise ValueError("the gradient needs an elimination computed with keep=True")
    lams = st["lams"]
    if not engine.terms:
        return [np.zeros_like(l) for l in lams]
    c = engine.Z1tXY  # (G1, q1, k)
    H_bar = -np.einsum("gik,kl,gjl->gij", c, B_bar, c)
    term_bars = []
    if engine.Q2:
        lam2, U, U2 = st["lam2"], st["U"], st["U2"]
        W, info = lapack.dtrtrs(U, U2, lower=0, trans=0)  # P^-1 R2 = L22^-T U2
        P_bar = _symmetric_inverse(U)
        P_bar += W @ B_bar @ W.T
        R2_bar = -2.0 * W @ B_bar
        Y = st["Y"]
        for t, l, a, b in zip(engine.terms[1:], lam2, engine.offs2[:-1], engine.offs2[1:]):
            term_bars.append(np.einsum("gic,gjc->ij", Y[a:b].reshape(t.G, t.q, -1), R2_bar[a:b].reshape(t.G, t.q, -1)))
        HC_bar = -np.asarray(engine.Z1tZ2 @ _scale_rows(engine, lam2, R2_bar)).reshape(engine.G1, engine.q1, -1)
        H_bar += np.einsum("gik,gjk->gij", HC_bar, c)
        H_schur, lam_schur = _through_schur(engine, st, P_bar)
        H_bar += H_schur
        term_bars = [a + b for a, b in zip(term_bars, lam_schur)]
    H_bar = 0.5 * (H_bar + np.swapaxes(H_bar, 1, 2))
    term_bars = [_first_term_gradient(engine, st, H_bar)] + term_bars
    out = [None] * len(lams)
    for t, tb in zip(engine.terms, term_bars):
        for bi, off, qe in t.blocks:
            out[bi] = tb[off:off + qe, off:off + qe]
    return out
