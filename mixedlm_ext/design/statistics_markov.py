"""Markov residuals (AR(1), exponential) from per-panel, per-gap sums.

With ``corr = a^d`` between successive rows ``d`` apart (``a = phi`` for
AR(1) on integer ``t``, the exponential structure's ``rho`` on real ``t``) the
precision matrix is tridiagonal: a row is whitened as ``(w_i - a_i w_{i-1}) /
sqrt(1 - a_i^2)`` with ``a_i = a^(t_i - t_{i-1})``.  So the products of each
panel's first row and, per panel and per distinct gap ``d``, the sums of
``w_i w_i'``, ``w_i w_{i-1}' + w_{i-1} w_i'`` and ``w_{i-1} w_{i-1}'`` are
sufficient statistics (the in-memory ``MarkovWhitener``'s), gaps allowed.
They are kept in one table keyed by the panel and the gap, the first rows
under the gap 0 (real gaps are positive: repeated times are refused).  A
panel's rows must be in one chunk.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.errors import ModelSpecificationError
from ..core.linalg import group_starts, grouped_crossprod
from ..structures.residual.kernel import format_time
from ..structures.residual.structure import panel_label
from .groups import group_codes
from .statistics import KeyedTable

GAP = "__gap__"  # the key column of the gap (0: a panel's first row)


def is_markov(res) -> bool:
    """Whether the residual structure's statistics are the per-gap sums."""
    return res.kind == "exponential" or (res.kind == "ar" and (res.order or 1) == 1)


def empty_markov(keys: pd.DataFrame, K: int) -> KeyedTable:
    z = np.zeros((0, K, K))
    return KeyedTable(keys.assign(**{GAP: np.zeros(0)}), {"count": np.zeros(0), "S0": z, "S1": z, "S2": z},
                      complete=True)


def check_integer_times(text: str, name: str, t: np.ndarray) -> None:
    """``t(name)`` holds integers (``text``: the option, for the message)."""
    bad = np.flatnonzero(t != np.round(t))
    if bad.size:
        raise ModelSpecificationError("%s: t(%s) must hold integers; found %s=%g" % (text, name, name, t[bad[0]]))


def check_distinct_times(text: str, name: str, t: np.ndarray, codes: np.ndarray, keys: pd.DataFrame) -> np.ndarray:
    """No time repeated within a panel (rows sorted by panel, then ``t``); returns whether
    each row after the first continues its predecessor's panel."""
    same = codes[1:] == codes[:-1]
    rep = np.flatnonzero(same & (t[1:] == t[:-1]))
    if rep.size:
        raise ModelSpecificationError(
            "%s: t(%s) has repeated values within a panel: %s=%s appears more than once in panel %s"
            % (text, name, name, format_time(t[rep[0]]), panel_label(keys, codes[rep[0]])))
    return same


def markov_table(res, keys: pd.DataFrame, codes: np.ndarray, t: np.ndarray, V: np.ndarray) -> KeyedTable:
    """The chunk's per-(panel, gap) sums (rows sorted by panel, then ``t``)."""
    same = check_distinct_times("residuals(%s)" % res.kind, res.time, t, codes, keys)
    d = np.diff(t)
    n = codes.size
    first = group_starts(codes)
    cur = np.flatnonzero(np.concatenate([[False], same]))
    prev = cur - 1
    gap = np.concatenate([np.zeros(first.size), d[cur - 1]])
    owner = np.concatenate([codes[first], codes[cur]])
    table = pd.DataFrame({"_owner": owner, GAP: gap})
    code, cell = group_codes(table, ("_owner", GAP))
    order = np.argsort(code, kind="stable")
    A = np.concatenate([V[first], V[cur]])[order]
    B = np.concatenate([np.zeros((first.size, V.shape[1])), V[prev]])[order]
    code = code[order]
    G = len(cell)
    X = grouped_crossprod(A, B, code, G)
    out_keys = keys.iloc[cell["_owner"].to_numpy()].reset_index(drop=True).assign(**{GAP: cell[GAP].to_numpy()})
    sums = {"count": np.bincount(code, minlength=G).astype(float), "S0": grouped_crossprod(A, A, code, G),
            "S1": X + np.swapaxes(X, 1, 2), "S2": grouped_crossprod(B, B, code, G)}
    assert n == int(sums["count"].sum())
    return KeyedTable(out_keys, sums, complete=True)


class MarkovStatistics:
    """The whitened cross-products of one by-group's panels from the per-gap sums."""

    def __init__(self, kernel, gaps: np.ndarray, S0: np.ndarray, S1: np.ndarray, S2: np.ndarray,
                 count: np.ndarray):
        self.kernel = kernel
        self.gaps, self.S0, self.S1, self.S2, self.count = gaps, S0, S1, S2, count
        self.first = gaps == 0

    def full(self, rho: np.ndarray) -> tuple[np.ndarray, float]:
        base = float(self.kernel.natural(rho, 1.0)[0])  # phi (AR(1)) or rho (exponential)
        a = np.where(self.first, 0.0, base ** np.where(self.first, 1.0, self.gaps))
        one = 1.0 - a * a
        if not np.all(one > 0):
            raise np.linalg.LinAlgError("residual correlation is not positive definite")
        F = (self.S0 - a[:, None, None] * self.S1 + (a * a)[:, None, None] * self.S2) / one[:, None, None]
        return F, float((self.count * np.log(one)).sum())

    def correlation(self, rho: np.ndarray, t: np.ndarray) -> np.ndarray:
        """``C`` of one panel's rows at times ``t``."""
        base = float(self.kernel.natural(rho, 1.0)[0])
        return base ** np.abs(t[:, None] - t[None, :])


def median_gap(gaps: np.ndarray, count: np.ndarray) -> float:
    """The median gap between successive rows (each gap weighted by how often it occurs)."""
    real = gaps > 0
    if not real.any():
        return 1.0
    order = np.argsort(gaps[real])
    g, cum = gaps[real][order], np.cumsum(count[real][order])
    N = int(round(cum[-1]))
    kth = lambda k: float(g[np.searchsorted(cum, k)])  # noqa: E731  the k-th smallest (1-based)
    return kth((N + 1) // 2) if N % 2 else 0.5 * (kth(N // 2) + kth(N // 2 + 1))
