"""Sufficient statistics of a linear mixed model: mergeable, chunk by chunk.

An LMM needs one pass over the data, after which only cross-products
matter: per lowest-level group (panel) ``Z'Z`` and ``Z'[X y]``, per top-level
cluster ``[X y]'[X y]``, the counts and, for a residual structure, its
per-panel statistics.  :class:`SufficientStatistics` holds them for one
chunk of rows (:func:`~.statistics_chunk.chunk_statistics`); ``s1 + s2``
holds them for the rows of both, so chunks can be Dask partitions, sites
that share summaries instead of rows, or batches of a stream.  A design is
made from them alone (:func:`~.statistics_design.design_from_statistics`).

The response enters as ``y - X b`` for a reference ``b`` (each chunk's own
least-squares fit), so sums of squares do not cancel; two chunks with
different references are added after moving one to the other's, exactly
(the statistics are bilinear in ``[X y]``).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..core.errors import ModelSpecificationError
from ..core.linalg import group_starts
from ..structures.residual.structure import panel_label
from .groups import group_codes

# How each array's trailing axes change with the metric of [X y]: "W" an axis over
# [X y], "V" an axis over [Z X y], None an axis that does not change.
TRAILING_AXES = {
    "ZtW": (None, "W"), "WtW": ("W", "W"), "F": ("V", "V"), "s": ("V",),
    "H": (None, None, "V", "V"), "S": (None, None, "V", "V"),
    "S0": ("V", "V"), "S1": ("V", "V"), "S2": ("V", "V"),
}


def transform_trailing(arr: np.ndarray, kinds: tuple, M: np.ndarray, Q: int) -> np.ndarray:
    """``arr`` with each trailing axis of kind ``"W"`` multiplied by ``M`` (``k x k'``)
    and each of kind ``"V"`` by ``diag(I_Q, M)``."""
    V = np.zeros((Q + M.shape[0], Q + M.shape[1]))
    V[:Q, :Q] = np.eye(Q)
    V[Q:, Q:] = M
    out = arr
    for j, kind in enumerate(kinds):
        if kind is None:
            continue
        axis = out.ndim - len(kinds) + j
        out = np.moveaxis(np.tensordot(out, M if kind == "W" else V, axes=([axis], [0])), -1, axis)
    return out


@dataclass(frozen=True, eq=False)
class KeyedTable:
    """Arrays with one row per group, the groups named by ``keys`` (the values of
    the grouping path; no columns: one group).  Merging adds ``sums``, takes
    minima of ``lows`` and maxima of ``highs``; ``items`` (object arrays) and,
    when ``complete``, every array need each group whole in one part."""

    keys: pd.DataFrame
    sums: dict = field(default_factory=dict)
    lows: dict = field(default_factory=dict)
    highs: dict = field(default_factory=dict)
    items: dict = field(default_factory=dict)
    complete: bool = False

    def __len__(self) -> int:
        return len(self.keys)

    def take(self, rows: np.ndarray) -> "KeyedTable":
        """The table of the groups ``rows`` (positions)."""
        pick = lambda d: {k: v[rows] for k, v in d.items()}  # noqa: E731
        return replace(self, keys=self.keys.iloc[rows].reset_index(drop=True), sums=pick(self.sums),
                       lows=pick(self.lows), highs=pick(self.highs), items=pick(self.items))

    def transformed(self, M: np.ndarray, Q: int) -> "KeyedTable":
        sums = {k: transform_trailing(v, TRAILING_AXES[k], M, Q) if k in TRAILING_AXES else v
                for k, v in self.sums.items()}
        items = {}
        for k, v in self.items.items():
            if k in TRAILING_AXES:
                new = np.empty(len(v), dtype=object)
                new[:] = [transform_trailing(a, TRAILING_AXES[k], M, Q) for a in v]
                v = new
            items[k] = v
        return replace(self, sums=sums, items=items)

    def merged(self, other: "KeyedTable", what: str) -> "KeyedTable":
        """The groups of both tables (``what`` names them in errors)."""
        keys = pd.concat([self.keys, other.keys], ignore_index=True)
        cols = tuple(keys.columns)
        if not len(keys):
            return self
        if cols:
            codes, new_keys = group_codes(keys, cols)
        else:
            codes, new_keys = np.zeros(len(keys), dtype=np.intp), keys.iloc[:1].reset_index(drop=True)
        order = np.argsort(codes, kind="stable")
        starts = group_starts(codes[order])
        if (self.complete or self.items) and starts.size < len(keys):
            dup = codes[order][np.flatnonzero(np.diff(codes[order]) == 0)[0]]
            label = panel_label(new_keys, dup)
            raise ModelSpecificationError(
                "%s needs every panel whole in one chunk, but panel %s has rows in two chunks; put each "
                "panel's rows in one partition (for example ddf.shuffle(on=[...]) on the panel variables)"
                % (what, label))

        def reduce(a: dict, b: dict, how) -> dict:
            return {k: how(np.concatenate([a[k], b[k]])[order], starts, axis=0) for k in a}

        items = {k: np.concatenate([self.items[k], other.items[k]])[order] for k in self.items}
        return KeyedTable(new_keys, reduce(self.sums, other.sums, np.add.reduceat),
                          reduce(self.lows, other.lows, np.minimum.reduceat),
                          reduce(self.highs, other.highs, np.maximum.reduceat), items, self.complete)


@dataclass(frozen=True, eq=False)
class SufficientStatistics:
    """The statistics of one chunk of rows (or of several, added).

    Attributes
    ----------
    layout : ~.statistics_layout.StatisticsLayout
        The coding shared with every other chunk of the model.
    n_rows, n, n_dropped : int
        Rows read, estimation rows, rows dropped for missing values.
    metric : (p,) array
        The reference ``b``: the statistics are of ``[X, y - X b]`` (rows
        scaled by the square roots of the weights).
    log_weight : float
        ``sum log w`` of precision weights (0 otherwise).
    clusters : KeyedTable
        Per top-level cluster: ``WtW`` (``[X y]'[X y]``) and ``weight``
        (sum of the weights; the count without weights).
    panels : KeyedTable
        Per panel (lowest-level group): ``count``, ``ZtZ`` and ``ZtW`` (when
        the nested engine uses them), extremes of the random-effects and
        level-weight variables (checks).
    residual : KeyedTable, optional
        Per panel (and ``by()`` value): the residual structure's statistics.
    layout_ZtZ, layout_ZtW : optional
        Sparse ``Z'Z`` and ``Z'[X y]`` in the nested engine's level layout
        (crossed designs).
    """

    layout: object  # statistics_layout.StatisticsLayout
    n_rows: int
    n: int
    n_dropped: int
    metric: np.ndarray
    log_weight: float
    clusters: KeyedTable
    panels: KeyedTable
    residual: Optional[KeyedTable] = None
    layout_ZtZ: Optional[sp.csr_matrix] = None
    layout_ZtW: Optional[np.ndarray] = None

    @property
    def spec(self):
        return self.layout.spec

    def in_metric(self, b: np.ndarray) -> "SufficientStatistics":
        """The same statistics with reference ``b`` (exact: ``[X, y - X b] = [X, y - X b0] M``)."""
        b = np.asarray(b, dtype=float)
        M = shift_matrix(self.metric, b)
        return self.transformed(M, b)

    def transformed(self, M: np.ndarray, metric: np.ndarray) -> "SufficientStatistics":
        """The statistics of ``[X y] M`` (any ``k x k'`` matrix ``M``), labelled ``metric``."""
        Q = self.layout.Q
        return replace(self, metric=metric, clusters=self.clusters.transformed(M, Q),
                       panels=self.panels.transformed(M, Q),
                       residual=None if self.residual is None else self.residual.transformed(M, Q),
                       layout_ZtW=None if self.layout_ZtW is None else self.layout_ZtW @ M)

    def __add__(self, other: "SufficientStatistics") -> "SufficientStatistics":
        if not isinstance(other, SufficientStatistics):
            return NotImplemented
        if not self.layout.same_coding(other.layout):
            raise ValueError(coding_difference(self.layout, other.layout))
        if other.n == 0 or self.n == 0:
            a, b = (self, other) if other.n == 0 else (other, self)  # keep the metric of the one with rows
        else:
            a, b = self, other.in_metric(self.metric)
        what = "residuals(%s)" % self.spec.residual.kind
        residual = None
        if a.residual is not None:
            residual = a.residual.merged(b.residual, what)
        ZtZ = None if a.layout_ZtZ is None else a.layout_ZtZ + b.layout_ZtZ
        ZtW = None if a.layout_ZtW is None else a.layout_ZtW + b.layout_ZtW
        return SufficientStatistics(a.layout, a.n_rows + b.n_rows, a.n + b.n, a.n_dropped + b.n_dropped,
                                    a.metric, a.log_weight + b.log_weight,
                                    a.clusters.merged(b.clusters, "the clusters"),
                                    a.panels.merged(b.panels, "the panels"), residual, ZtZ, ZtW)

    def __radd__(self, other):
        if other == 0:  # sum([s1, s2, ...])
            return self
        return NotImplemented

    def __repr__(self) -> str:
        return ("<SufficientStatistics: %s, %d observations, %d panels, %d clusters>"
                % (self.spec.response, self.n, len(self.panels), len(self.clusters)))


def shift_matrix(b_old: np.ndarray, b_new: np.ndarray) -> np.ndarray:
    """``M`` with ``[X, y - X b_new] = [X, y - X b_old] M``."""
    p = b_old.size
    M = np.eye(p + 1)
    M[:p, p] = b_old - b_new
    return M


def coding_difference(a, b) -> str:
    """Why two layouts cannot be added (for the error message)."""
    if a.spec != b.spec:
        return "the statistics belong to different models"
    if tuple(a.fixed.names) != tuple(b.fixed.names):
        extra = sorted(set(a.fixed.names) ^ set(b.fixed.names))
        return ("the chunks code the fixed part differently (columns %s in one only): the chunks hold "
                "different levels of a factor variable; pass levels={variable: [all levels]} to "
                "sufficient_statistics so every chunk uses the same coding" % ", ".join(extra[:5]))
    return ("the chunks number the levels of an R.x factor or the groups of a crossed design differently; "
            "pass levels= (R.x factors) and groups= (crossed designs) to sufficient_statistics so every "
            "chunk uses the same coding")
