"""A design made from sufficient statistics alone: no rows, the same likelihood.

:func:`design_from_statistics` turns (merged) :class:`SufficientStatistics`
into a :class:`StatisticsDesign`: a :class:`~.types.Design` whose row-level
arrays (``y``, ``X``, ``Z``, ``data``, level codes) have no rows, and whose
cross-products, levels (keys, parents, group sizes), fixed part, working
metric and weights are exactly those the in-memory design stage would
compute from the same rows.  The objective, the optimizer, inference and
the BLUPs use only these; what needs the rows (predictions, ``estat
wcorrelation``, small-sample degrees of freedom) is refused or, on Dask,
computed partition by partition.

Collinearity is decided from ``X'X`` by the in-memory design's rule
(:func:`~.working.schur_ratios`: a column is omitted when its part not
explained by the earlier kept columns has a norm at or below
:data:`~.working.COLLINEAR_TOL` of its norm).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..core.errors import ModelSpecificationError, warn_user
from ..structures.residual.structure import ResidualStructure
from .build import check_estimation_rows
from .groups import group_codes
from .statistics import KeyedTable, SufficientStatistics
from .statistics_layout import random_effect_columns
from .statistics_residual import StatisticsResidual
from .table import ColumnTable
from .types import Design, Level
from .validate import check_effect_extremes, check_identified
from .weights import WeightInfo, level_totals, level_weight
from .working import COLLINEAR_TOL, WorkingFixedPart, constant_first, schur_ratios



@dataclass(frozen=True, eq=False)
class StatisticsLevel(Level):
    """A level known by its groups (keys, parents, sizes), without row codes."""

    group_sizes: Optional[np.ndarray] = None

    def sizes(self) -> np.ndarray:
        return self.group_sizes


@dataclass
class StatisticsWeightInfo(WeightInfo):
    """Weights known by their per-group values and sums (no row weights)."""

    log_precision: float = 0.0  # sum log w of precision weights

    @property
    def neg2_logdet(self) -> float:
        return -self.log_precision if self.is_precision else 0.0


@dataclass(frozen=True, eq=False)
class StatisticsDesign(Design):
    """A :class:`Design` made from sufficient statistics (see the module docstring)."""

    n_obs: int = 0
    cluster_XYtXY: Optional[np.ndarray] = field(repr=False, default=None)  # (C, p+1, p+1), working metric
    cluster_weight: Optional[np.ndarray] = field(repr=False, default=None)  # (C,) sum of the weights
    residual_table: Optional[KeyedTable] = field(repr=False, default=None)  # working metric
    layout_ZtZ: Optional[sp.csr_matrix] = field(repr=False, default=None)  # crossed: level layout
    layout_ZtXY: Optional[np.ndarray] = field(repr=False, default=None)
    metric: Optional[tuple] = field(repr=False, default=None)  # statistics_metric of the whole data

    holds_rows = False

    @property
    def n(self) -> int:
        return self.n_obs

    def cluster_crossproducts(self) -> tuple[np.ndarray, np.ndarray]:
        return self.cluster_XYtXY, self.cluster_weight

    def layout_crossproducts(self) -> Optional[tuple]:
        if self.layout_ZtZ is None:
            return None
        return self.layout_ZtZ, self.layout_ZtXY

    def residual_structure(self) -> ResidualStructure:
        res = self.spec.residual
        if res.is_plain:
            return super().residual_structure()
        return StatisticsResidual(res)


def collinear_columns(XtX: np.ndarray, names: list[str]) -> np.ndarray:
    """Columns to keep, decided from ``X'X`` as Stata does from ``X`` (constant first,
    then in order; a column is dropped when its residual on the kept earlier
    columns has a norm at or below :data:`~.working.COLLINEAR_TOL` of its own norm)."""
    p = XtX.shape[0]
    order = constant_first(p, names.index("_cons") if "_cons" in names else None)
    keep = np.zeros(p, dtype=bool)
    if p:
        ratios = schur_ratios(XtX, order, np.sqrt(np.maximum(np.diagonal(XtX), 0.0)))
        keep[np.asarray(order)[ratios > COLLINEAR_TOL]] = True
    return keep


def _working_metric(WtW: np.ndarray, b_ref: np.ndarray, keep: np.ndarray):
    """``M`` with ``[Xw yw] = [X, y - X b_ref] M`` (``Xw`` orthonormal, ``yw`` the OLS
    residual of the kept columns), and ``(Rx, b_ols)``; two Cholesky passes (CholeskyQR2)."""
    p_all = keep.size
    kidx, didx = np.flatnonzero(keep), np.flatnonzero(~keep)
    XtX = WtW[:p_all, :p_all]
    A = XtX[np.ix_(kidx, kidx)]
    rhs = WtW[kidx, p_all] + XtX[np.ix_(kidx, didx)] @ b_ref[didx]
    p = kidx.size
    Rx = np.eye(p)
    Mx = np.eye(p)
    G = A
    for _ in range(2):
        R = np.linalg.cholesky(G).T if p else np.zeros((0, 0))
        Ri = np.linalg.inv(R) if p else R
        Mx, Rx = Mx @ Ri, R @ Rx
        G = Ri.T @ G @ Ri
    b_full = b_ref.copy()
    if p:
        b_full[kidx] += np.linalg.solve(A, rhs)
        b_full[didx] = 0.0
    M = np.zeros((p_all + 1, p + 1))
    M[kidx, :p] = Mx
    M[:p_all, p] = b_ref - b_full
    M[p_all, p] = 1.0
    return M, Rx, b_full[kidx]


def statistics_metric(stats: SufficientStatistics):
    """``(fixed part, working fixed part, M, b)`` of the whole data the statistics
    summarise: the columns kept after the collinearity check (decided from
    ``X'X``, notes warned), ``Rx``/``b_ols``, and ``M`` with
    ``[Xw yw] = [X, y - X b] M`` for the statistics' reference ``b``."""
    layout = stats.layout
    WtW = stats.clusters.sums["WtW"].sum(axis=0)
    names = list(layout.fixed.names)
    keep = collinear_columns(WtW[:-1, :-1], names)
    for nm, k in zip(names, keep):
        if not k:
            warn_user("note: %s omitted because of collinearity" % nm)
    fixed = replace(layout.fixed, columns=tuple(c for c, k in zip(layout.fixed.columns, keep) if k),
                    names=tuple(n for n, k in zip(names, keep) if k),
                    omitted=tuple(n for n, k in zip(names, keep) if not k))
    M, Rx, b_ols = _working_metric(WtW, stats.metric, keep)
    p = Rx.shape[0]
    Rx_inv = np.linalg.inv(Rx) if p else Rx
    logdet = 2.0 * float(np.log(np.abs(np.diag(Rx))).sum()) if p else 0.0
    working = WorkingFixedPart(np.zeros((0, p)), np.zeros(0), None, Rx, Rx_inv, logdet, b_ols)
    return fixed, working, M, stats.metric


def _level_groups(stats: SufficientStatistics) -> list[tuple[np.ndarray, pd.DataFrame]]:
    """Per level: each panel's group and the level's keys (sorted)."""
    layout, panels = stats.layout, stats.panels
    out = []
    for lvl in layout.levels:
        if not lvl.path:
            out.append((np.zeros(len(panels), dtype=np.intp), pd.DataFrame(index=[0])))
            continue
        codes, keys = group_codes(panels.keys, lvl.path)
        if lvl.keys is not None:  # sparse layouts number every group (the scan's keys)
            if len(lvl.keys) != len(keys):
                raise ModelSpecificationError("level %s: the statistics hold %d groups, the layout %d"
                                              % (lvl.label, len(keys), len(lvl.keys)))
            keys = lvl.keys
        out.append((codes, keys.reset_index(drop=True)))
    return out


def _design_levels(stats: SufficientStatistics, groups, checks: bool = True) -> tuple[Level, ...]:
    layout, panels = stats.layout, stats.panels
    count = panels.sums["count"]
    re_cols = random_effect_columns(layout.spec)
    levels, prev = [], None
    for lvl, (codes, keys) in zip(layout.levels, groups):
        G = len(keys)
        parent = None
        if prev is not None:
            parent = np.zeros(G, dtype=np.intp)
            parent[codes] = prev
        lows = {c: _group_extreme(panels.lows["re"][:, j], codes, G, np.minimum) for j, c in enumerate(re_cols)}
        highs = {c: _group_extreme(panels.highs["re"][:, j], codes, G, np.maximum) for j, c in enumerate(re_cols)}
        if lvl.blocks and checks:
            check_effect_extremes(lvl.blocks[0].label, list(lvl.blocks), lows, highs)
        sizes = np.bincount(codes, weights=count, minlength=G).round().astype(np.intp)
        key_values = {c: keys[c].array for c in keys.columns} if lvl.path else None
        levels.append(StatisticsLevel(lvl.label, lvl.path, lvl.blocks, np.zeros(0, dtype=np.intp), G, parent,
                                      key_values, sizes))
        prev = codes
    return tuple(levels)


def _group_extreme(values: np.ndarray, codes: np.ndarray, G: int, how) -> np.ndarray:
    out = np.full(G, np.inf if how is np.minimum else -np.inf)
    how.at(out, codes, values)
    return out


def _weights(stats: SufficientStatistics, levels, groups) -> Optional[StatisticsWeightInfo]:
    layout = stats.layout
    kind = layout.weights
    if kind is None:
        return None
    specs = layout.spec.weights
    if kind == "precision":
        ones = [np.ones(l.n_groups) for l in levels]
        return StatisticsWeightInfo("precision", None, None, ones, ones, None, float(stats.n), ("_obs",),
                                    stats.log_weight)
    labels = [l.label for l in levels]
    level_w = [np.ones(l.n_groups) for l in levels]
    j = 0
    for w in specs:
        if w.level is None:
            continue
        li = labels.index(w.level)
        codes, _ = groups[li]
        G = levels[li].n_groups
        lo = _group_extreme(stats.panels.lows["w"][:, j], codes, G, np.minimum)
        hi = _group_extreme(stats.panels.highs["w"][:, j], codes, G, np.maximum)
        j += 1
        level_w[li] = level_weight(lo, hi, w)
    total = float(stats.clusters.sums["weight"].sum())
    return StatisticsWeightInfo(kind, None, None, level_w, level_totals(levels, level_w), None, total,
                                tuple("_obs" if w.level is None else w.level for w in specs))


def design_from_statistics(stats: SufficientStatistics, metric: Optional[tuple] = None) -> StatisticsDesign:
    """The :class:`StatisticsDesign` of the rows the statistics summarise.

    ``metric`` (:func:`statistics_metric` of the whole data) makes the design of
    a part of the data in the whole data's coding and metric (a shard of whole
    top-level clusters); the checks of the whole data are then not repeated.
    """
    layout, spec = stats.layout, stats.spec
    whole = metric is None
    if whole:
        check_estimation_rows(spec, stats.n_rows, stats.n, stats.n_dropped)
        metric = statistics_metric(stats)
    fixed, working, M, reference = metric
    if whole and spec.reml and stats.n <= len(fixed.names):
        raise ModelSpecificationError("REML needs more observations than fixed effects (%d observations, %d "
                                      "fixed effects after collinear ones are omitted)" % (stats.n, len(fixed.names)))
    s = stats.in_metric(reference).transformed(M, working.b_ols)
    groups = _level_groups(s)
    levels = _design_levels(s, groups, checks=whole)
    p, Q = len(fixed.names), layout.Q
    cl = s.clusters.sums
    design = StatisticsDesign(
        spec, np.zeros(0), np.zeros((0, p)), fixed, levels, np.zeros((0, Q)), pd.RangeIndex(0),
        np.zeros(0, dtype=np.intp), stats.n_dropped, ColumnTable.from_frame(layout.meta, layout.meta.columns),
        working,
        s.panels.sums.get("ZtZ"), s.panels.sums.get("ZtW"), cl["WtW"].sum(axis=0),
        sparse_re=layout.sparse, crossed_groupings=layout.crossed, weights=_weights(s, levels, groups),
        n_obs=stats.n, cluster_XYtXY=cl["WtW"], cluster_weight=cl["weight"], residual_table=s.residual,
        layout_ZtZ=s.layout_ZtZ, layout_ZtXY=s.layout_ZtW, metric=metric,
        offset=np.zeros(0) if spec.offset else None)
    if whole:
        check_identified(design)
    return design
