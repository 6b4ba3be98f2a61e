"""Small vectorised linear-algebra helpers shared by the design and engine."""
from __future__ import annotations

import numpy as np

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
    chunk = max(1, _CHUNK_ELEMS // max(1, a * c))
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        cod = codes[s:e]
        starts = group_starts(cod)
        prod = A[s:e, :, None] * C[s:e, None, :]
        sums = np.add.reduceat(prod, starts, axis=0)
        gid = cod[starts]
        # a chunk boundary may split one group: accumulate rather than assign
        np.add.at(out, gid, sums) if s > 0 else out.__setitem__(gid, sums)
    return out


def batched_cholesky(A: np.ndarray) -> np.ndarray:
    """Lower Cholesky factors of a stack of SPD matrices ``(g, q, q)``."""
    if A.shape[-1] == 1:
        return np.sqrt(A)
    return np.linalg.cholesky(A)


def batched_lower_solve(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Solve ``L X = B`` for stacks of lower-triangular ``L``."""
    if L.shape[-1] == 1:
        return B / L
    return np.linalg.solve(L, B)


def batched_upper_solve_t(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Solve ``L' X = B`` for stacks of lower-triangular ``L``."""
    if L.shape[-1] == 1:
        return B / L
    return np.linalg.solve(np.swapaxes(L, -1, -2), B)


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
