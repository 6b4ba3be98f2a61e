"""Starting values for crossed random effects by the method of moments on pairs of rows.

EM is not run for crossed designs (its conditional variances need the
diagonal of a dense inverse at every step), and lme4's start (every relative
factor 1) can be far off: InstEval-like data put the departments' variance at
a few percent of the lecturers'.  For scalar terms (one random coefficient
``b_t`` per row and group) the OLS residuals ``r`` have, for two rows
``i != j``,

``E[r_i r_j] ~ sum_t b_ti b_tj sigma2_t [i and j share the group of t]``,

so the statistics ``S_t = sum_g [(sum_{i in g} b_ti r_i)^2 - sum_{i in g} b_ti^2 r_i^2]``
satisfy ``E[S] = M sigma2_t`` with ``M_tt' = sum over the cells of (t, t') of
[(sum b_ti b_t'i)^2 - sum b_ti^2 b_t'i^2]`` -- a ``k x k`` linear system
(nested and overlapping factors included), from one pass over the rows per
pair of terms.  The residual variance follows from ``E[sum r^2]``.  The
result only starts the optimiser; the fit itself is exact.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..design.groups import factor_codes


def _pair_sum(codes_a: np.ndarray, codes_b: np.ndarray, w: np.ndarray, w2: np.ndarray) -> float:
    """``sum over cells of (a, b) of [(sum w)^2 - sum w2]``."""
    cell, n_cells = factor_codes(codes_a.astype(np.int64) * (int(codes_b.max()) + 1) + codes_b)
    s = np.bincount(cell, weights=w, minlength=n_cells)
    return float(s @ s - w2.sum())


def moment_start(terms: Sequence, r: np.ndarray) -> Optional[np.ndarray]:
    """Relative standard deviations ``sqrt(sigma2_t / sigma2)`` of scalar ``terms``
    (objects with ``codes``, ``G``, ``base`` ``(n, 1)``) from the residuals ``r``;
    None when a term has more than one column or the moments are degenerate."""
    if not terms or any(t.q != 1 for t in terms):
        return None
    k = len(terms)
    b = [np.asarray(t.base[:, 0], dtype=float) for t in terms]
    S = np.empty(k)
    M = np.empty((k, k))
    for i, t in enumerate(terms):
        sr = np.bincount(t.codes, weights=b[i] * r, minlength=t.G)
        S[i] = float(sr @ sr - np.sum((b[i] * r) ** 2))
        for j in range(i, k):
            bb = b[i] * b[j]
            M[i, j] = M[j, i] = _pair_sum(t.codes, terms[j].codes, bb, bb * bb)
    try:
        s2_terms = np.linalg.solve(M, S)
    except np.linalg.LinAlgError:
        return None
    total = float(r @ r)
    s2_terms = np.clip(s2_terms, 1e-4 * total / r.size, None)
    s2 = (total - sum(float(s * (bi @ bi)) for s, bi in zip(s2_terms, b))) / r.size
    s2 = max(s2, 0.05 * total / r.size)
    if not np.all(np.isfinite(s2_terms)):
        return None
    return np.sqrt(s2_terms / s2)
