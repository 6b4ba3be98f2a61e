"""Small vectorised linear-algebra helpers shared by the design and engine."""
from __future__ import annotations

import numpy as np

LOG2PI = float(np.log(2.0 * np.pi))
_CHUNK_ELEMS = 4_000_000  # rows * cols * cols per chunk: bounds temporary memory


def group_starts(codes_sorted: np.ndarray) -> np.ndarray:
    """Start offsets of the runs of equal values in a sorted code vector."""
    if codes_sorted.size == 0:
        return np.zeros(0, dtype=np.intp)
    change = np.flatnonzero(np.diff(codes_sorted)) + 1
    return np.concatenate(([0], change)).astype(np.intp)


def grouped_crossprod(A: np.ndarray, C: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """``out[g] = A[rows of g].T @ C[rows of g]`` for every group ``g``.

    ``codes`` must be sorted (rows of a group contiguous).  Work is done in
    row chunks so the temporary ``rows x a x c`` products stay small: one
    pass over the data, no Python loop over groups.
    """
    n, a = A.shape
    c = C.shape[1]
    out = np.zeros((n_groups, a, c))
    if n == 0 or a == 0 or c == 0:
        return out
    if a * c <= 64:  # few column pairs: 1-D reductions over contiguous vectors
        starts = group_starts(codes)
        gid = codes[starts]
        Ct = np.ascontiguousarray(C.T)
        At = Ct if A is C else np.ascontiguousarray(A.T)
        for i in range(a):
            for j in range(c):
                if A is C and j < i:
                    out[gid, i, j] = out[gid, j, i]
                    continue
                out[gid, i, j] = np.add.reduceat(At[i] * Ct[j], starts)
        return out
    chunk = max(1, _CHUNK_ELEMS // max(1, a * c))
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        cod = codes[s:e]
        starts = group_starts(cod)
        prod = (A[s:e, :, None] * C[s:e, None, :]).reshape(e - s, a * c)
        sums = np.add.reduceat(prod, starts, axis=0).reshape(-1, a, c)
        # groups are contiguous runs, unique within a chunk; only the first run of a
        # chunk can continue the previous chunk's last group, so += is safe
        out[cod[starts]] += sums
    return out


_SMALL_Q = 6  # below this, loops over q with vectorised group ops beat LAPACK's per-matrix overhead


def batched_cholesky(A: np.ndarray) -> np.ndarray:
    """Lower Cholesky factors of a stack of SPD matrices ``(g, q, q)``."""
    q = A.shape[-1]
    if q == 1:
        if np.any(A <= 0):
            raise np.linalg.LinAlgError("matrix not positive definite")
        return np.sqrt(A)
    if q > _SMALL_Q or A.shape[0] < 64:  # few groups: LAPACK's call beats the Python loop
        return np.linalg.cholesky(A)
    L = np.zeros_like(A)
    for j in range(q):
        d = A[:, j, j] - np.einsum("gk,gk->g", L[:, j, :j], L[:, j, :j])
        if np.any(d <= 0):
            raise np.linalg.LinAlgError("matrix not positive definite")
        L[:, j, j] = np.sqrt(d)
        if j + 1 < q:
            L[:, j + 1:, j] = (A[:, j + 1:, j] - np.einsum("gik,gk->gi", L[:, j + 1:, :j], L[:, j, :j])) / L[:, j, j][:, None]
    return L


def batched_lower_solve(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Solve ``L X = B`` for stacks of lower-triangular ``L`` (forward substitution)."""
    q = L.shape[-1]
    if q == 1:
        return B / L
    if q > _SMALL_Q or L.shape[0] < 64:
        return np.linalg.solve(L, B)
    X = np.empty(np.broadcast_shapes(B.shape, L.shape[:-1] + (B.shape[-1],)))
    for i in range(q):
        acc = B[:, i, :]
        if i:
            acc = acc - np.einsum("gk,gkc->gc", L[:, i, :i], X[:, :i, :])
        X[:, i, :] = acc / L[:, i, i][:, None]
    return X


def batched_upper_solve_t(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Solve ``L' X = B`` for stacks of lower-triangular ``L`` (back substitution)."""
    q = L.shape[-1]
    if q == 1:
        return B / L
    if q > _SMALL_Q:
        return np.linalg.solve(np.swapaxes(L, -1, -2), B)
    X = np.empty(B.shape)
    for i in range(q - 1, -1, -1):
        acc = B[:, i, :]
        if i + 1 < q:
            acc = acc - np.einsum("gk,gkc->gc", L[:, i + 1:, i], X[:, i + 1:, :])
        X[:, i, :] = acc / L[:, i, i][:, None]
    return X


def orthonormalize(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``X = Q R`` with ``Q`` orthonormal columns, by CholeskyQR2 (two BLAS passes,
    as accurate as Householder QR for the condition numbers of design matrices)."""
    R = np.eye(X.shape[1])
    Q = X
    for _ in range(2):
        Ri = np.linalg.cholesky(Q.T @ Q).T
        # einsum: OpenBLAS is pathologically slow for (tall x small) @ (small x small)
        Q = np.einsum("ij,jk->ik", Q, np.linalg.inv(Ri))
        R = Ri @ R
    return Q, R


def block_diag(*mats: np.ndarray) -> np.ndarray:
    """Dense block-diagonal matrix of square blocks."""
    n = sum(m.shape[0] for m in mats)
    out = np.zeros((n, n))
    i = 0
    for m in mats:
        k = m.shape[0]
        out[i:i + k, i:i + k] = m
        i += k
    return out


def inv_lower(L: np.ndarray) -> np.ndarray:
    """Inverses of a stack of lower-triangular matrices ``(G, q, q)``."""
    if L.shape[-1] == 1:
        return 1.0 / L
    eye = np.broadcast_to(np.eye(L.shape[-1]), L.shape)
    return batched_lower_solve(L, eye)


def upper_solve_vec(L: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve ``L' x = b`` for stacks: L (G, q, q) lower, b (G, q)."""
    return batched_upper_solve_t(L, b[:, :, None])[:, :, 0]


def lower_solve_vec(L: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve ``L x = b`` for stacks: L (G, q, q) lower, b (G, q)."""
    return batched_lower_solve(L, b[:, :, None])[:, :, 0]
