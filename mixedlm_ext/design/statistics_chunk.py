"""The sufficient statistics of one chunk of rows (a pandas DataFrame).

:func:`chunk_statistics` applies the model's row selection exactly as the
in-memory design does (``if`` condition, rows with a missing value in a used
variable dropped and counted), checks the types, builds ``X`` with the
layout's coding, the random-effects columns and the weights, and reduces the
rows to per-cluster and per-panel cross-products (and the residual
structure's per-panel statistics, :mod:`.statistics_residual`).  Nothing it
returns grows with the number of rows.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..core.errors import ModelSpecificationError
from ..core.linalg import group_starts, grouped_crossprod
from .build import check_types, numeric_columns, select_estimation_rows, with_effect_columns
from .groups import group_codes
from .random import base_matrix, dense_expand, effect_column
from .statistics import KeyedTable, SufficientStatistics
from .statistics_layout import (Scan, StatisticsLayout, fixed_factors, random_effect_columns, scan_frame,
                                statistics_layout)
from .statistics_residual import residual_table
from .validate import as_plain_numbers, check_columns, check_group_types
from .weights import check_weight_values


def _index_of(values: pd.DataFrame, levels) -> np.ndarray:
    """Position of each row of ``values`` among ``levels`` (tuples for several columns); -1 if absent."""
    if values.shape[1] == 1:
        idx = pd.Index(list(levels)).get_indexer(values.iloc[:, 0].to_numpy())
    else:
        idx = pd.MultiIndex.from_tuples([tuple(l) for l in levels]).get_indexer(pd.MultiIndex.from_frame(values))
    return np.asarray(idx, dtype=np.intp)


def _unknown_level(what: str, cols, values: pd.DataFrame, idx: np.ndarray) -> ModelSpecificationError:
    row = values.iloc[int(np.flatnonzero(idx < 0)[0])]
    return ModelSpecificationError(
        "%s: the value %s of this chunk is not among the levels of the layout; every chunk must use "
        "the same levels (pass levels= to sufficient_statistics, or scan the whole data first)"
        % (what, ", ".join("%s=%s" % (c, row[c]) for c in cols)))


def _check_factor_levels(layout: StatisticsLayout, df: pd.DataFrame) -> None:
    """Every value of a fixed-part factor is a level the layout's coding knows."""
    proto = layout.fixed.frame
    for c in fixed_factors(layout.spec, layout.meta):
        known = pd.Index(pd.unique(proto[c]))
        idx = known.get_indexer(df[c].to_numpy())
        if np.any(idx < 0):
            raise _unknown_level("factor variable '%s'" % c, [c], df[[c]], idx)


def row_weights(layout: StatisticsLayout, df: pd.DataFrame) -> Optional[np.ndarray]:
    """Each row's total weight ``a_i`` (the product of its weights at every level), checked."""
    if layout.weights is None:
        return None
    a = np.ones(len(df))
    for w in layout.spec.weights:
        v = df[w.var].to_numpy(dtype=float)
        check_weight_values(v, w)
        a = a * v
    return a


def reference_fit(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A least-squares ``b`` of the chunk (any ``b`` is exact; this one keeps ``y - X b`` small)."""
    if not X.shape[1] or not X.shape[0]:
        return np.zeros(X.shape[1])
    return np.linalg.lstsq(X, y, rcond=None)[0]


def dense_random_columns(layout: StatisticsLayout, df: pd.DataFrame) -> np.ndarray:
    """The rows' random-effects columns ``Z`` (levels finest first, as the design's)."""
    per_level = []
    for lvl in layout.levels[::-1]:
        cols = []
        for blk in lvl.blocks:
            base = base_matrix(blk.equation, df)
            if blk.expand_by is not None:
                vals = df[list(blk.expand_by)]
                idx = _index_of(vals, blk.expand_levels)
                if np.any(idx < 0):
                    raise _unknown_level("factor %s" % ",".join(blk.expand_by), blk.expand_by, vals, idx)
                base = dense_expand(base, idx, blk.n_expand)
            cols.append(base)
        per_level += cols
    return np.column_stack(per_level) if per_level else np.zeros((len(df), 0))


def layout_random_columns(layout: StatisticsLayout, df: pd.DataFrame) -> sp.csr_matrix:
    """``Z`` of the rows in the nested engine's level layout (every group of every
    level numbered, finest level first): the crossed engine's columns."""
    n = len(df)
    offs, total, cols, vals = {}, 0, [], []
    for li in range(len(layout.levels) - 1, -1, -1):
        lvl = layout.levels[li]
        if lvl.q:
            offs[li] = total
            total += lvl.n_groups * lvl.q
    for li, off in offs.items():
        lvl = layout.levels[li]
        g = np.zeros(n, dtype=np.intp)
        if lvl.path:
            g = _index_of(df[list(lvl.path)], lvl.keys.itertuples(index=False, name=None))
            if np.any(g < 0):
                raise _unknown_level("level %s" % lvl.label, lvl.path, df[list(lvl.path)], g)
        boff = 0
        for blk in lvl.blocks:
            base = base_matrix(blk.equation, df)
            qe = base.shape[1]
            pos = off + g[:, None] * lvl.q + boff + np.arange(qe)[None, :]
            if blk.expand_by is not None:
                e = _index_of(df[list(blk.expand_by)], blk.expand_levels)
                if np.any(e < 0):
                    raise _unknown_level("factor %s" % ",".join(blk.expand_by), blk.expand_by,
                                         df[list(blk.expand_by)], e)
                pos = pos + e[:, None] * qe
            cols.append(pos)
            vals.append(base)
            boff += blk.q
    if not cols:
        return sp.csr_matrix((n, total))
    idx, val = np.column_stack(cols), np.column_stack(vals)
    w = idx.shape[1]
    Z = sp.csr_matrix((val.ravel(), idx.ravel(), np.arange(0, n * w + 1, w)), shape=(n, total))
    Z.sum_duplicates()
    return Z


def _panel_checks(layout: StatisticsLayout, df: pd.DataFrame, starts: np.ndarray) -> tuple[dict, dict]:
    """Per panel: extremes of the random-effects variables and of the level weights."""
    lows, highs = {}, {}
    re_cols = random_effect_columns(layout.spec)
    level_w = [w.var for w in layout.spec.weights if w.level is not None]
    for name, cols in (("re", re_cols), ("w", level_w)):
        M = df[cols].to_numpy(dtype=float) if cols else np.zeros((len(df), 0))
        lows[name] = np.minimum.reduceat(M, starts, axis=0) if len(df) else np.zeros((0, len(cols)))
        highs[name] = np.maximum.reduceat(M, starts, axis=0) if len(df) else np.zeros((0, len(cols)))
    return lows, highs


def empty_statistics(layout: StatisticsLayout, n_rows: int, n_dropped: int) -> SufficientStatistics:
    """The statistics of a chunk without estimation rows."""
    keys = lambda path: layout.meta[list(path)].iloc[:0].reset_index(drop=True)  # noqa: E731
    k, Q, p = layout.k, layout.Q, layout.p_all
    n_re = len(random_effect_columns(layout.spec))
    n_w = len([w for w in layout.spec.weights if w.level is not None])
    sums = {"count": np.zeros(0)}
    if not layout.engine_is_crossed and layout.spec.residual.is_plain:
        sums.update(ZtZ=np.zeros((0, Q, Q)), ZtW=np.zeros((0, Q, k)))
    panels = KeyedTable(keys(layout.panel_path), sums, {"re": np.zeros((0, n_re)), "w": np.zeros((0, n_w))},
                        {"re": np.zeros((0, n_re)), "w": np.zeros((0, n_w))})
    clusters = KeyedTable(keys(layout.top_path), {"WtW": np.zeros((0, k, k)), "weight": np.zeros(0)})
    residual = residual_table(layout, None, None)
    ZtZ = ZtW = None
    if layout.engine_is_crossed:
        n_u = sum(l.n_groups * l.q for l in layout.levels)
        ZtZ, ZtW = sp.csr_matrix((n_u, n_u)), np.zeros((n_u, k))
    return SufficientStatistics(layout, n_rows, 0, n_dropped, np.zeros(p), 0.0, clusters, panels, residual, ZtZ, ZtW)


def _estimation_frame(layout: StatisticsLayout, data: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The chunk's estimation rows, checked, numbers made plain and rows sorted by panel."""
    spec, v = layout.spec, layout.variables
    check_columns(data, layout.used, "variables of the model")
    df, n_dropped = select_estimation_rows(spec, data, list(layout.used))
    if not len(df):
        return df, n_dropped
    check_types(spec, df, v)
    check_group_types(df, v["group"] + v["factor_re"])
    df = with_effect_columns(spec, as_plain_numbers(df, numeric_columns(spec, v)))
    _check_factor_levels(layout, df)
    proto = layout.fixed.frame
    df = df.assign(**{c: df[c].astype(proto[c].dtype) for c in fixed_factors(spec, layout.meta)
                      if isinstance(proto[c].dtype, pd.CategoricalDtype)})  # the layout's categories
    res = spec.residual
    order = list(layout.panel_path) + [c for c in (res.by, res.time) if c is not None and res.kind != "independent"]
    if res.kind == "independent" and res.by is not None:
        order.append(res.by)
    if order:
        df = df.sort_values(list(dict.fromkeys(order)), kind="stable")
    return df.reset_index(drop=True), n_dropped


def chunk_statistics(layout: StatisticsLayout, data: pd.DataFrame) -> SufficientStatistics:
    """The :class:`SufficientStatistics` of the rows of ``data`` for ``layout``'s model."""
    spec = layout.spec
    df, n_dropped = _estimation_frame(layout, data)
    if not len(df):
        return empty_statistics(layout, len(data), n_dropped)
    n = len(df)
    X = layout.fixed.matrix(df)
    y = df[spec.response].to_numpy(dtype=float)
    if spec.offset:  # lme4's offset(): the response minus it, as in memory
        y = y - effect_column(spec.offset, df, "the offset")
    a = row_weights(layout, df)
    sw = np.ones(n) if a is None else np.sqrt(a)
    b = reference_fit(X * sw[:, None], y * sw)
    W = np.column_stack([X, y - X @ b]) * sw[:, None]
    pcodes, pkeys = group_codes(df, layout.panel_path)
    ccodes, ckeys = group_codes(df, layout.top_path)
    clusters = KeyedTable(ckeys, {"WtW": grouped_crossprod(W, W, ccodes, len(ckeys)),
                                  "weight": np.bincount(ccodes, weights=sw * sw, minlength=len(ckeys))})
    starts = group_starts(pcodes)
    lows, highs = _panel_checks(layout, df, starts)
    sums = {"count": np.diff(np.append(starts, n)).astype(float)}
    res = spec.residual
    plain = res.is_plain
    ZtZ = ZtW = None
    if layout.engine_is_crossed:
        Zl = layout_random_columns(layout, df).multiply(sw[:, None]).tocsr()
        ZtZ, ZtW = (Zl.T @ Zl).tocsr(), np.asarray(Zl.T @ W)
    elif plain:
        Z = dense_random_columns(layout, df) * sw[:, None]
        sums.update(ZtZ=grouped_crossprod(Z, Z, pcodes, len(pkeys)), ZtW=grouped_crossprod(Z, W, pcodes, len(pkeys)))
    panels = KeyedTable(pkeys, sums, lows, highs)
    residual = None
    if not plain:
        V = np.column_stack([dense_random_columns(layout, df), W])
        residual = residual_table(layout, df, V)
    log_w = float(np.log(a).sum()) if (a is not None and layout.weights == "precision") else 0.0
    return SufficientStatistics(layout, len(data), n, n_dropped, b, log_w, clusters, panels, residual, ZtZ, ZtW)


def frame_statistics(spec, frame: pd.DataFrame, levels: Optional[dict] = None,
                     groups: Optional[pd.DataFrame] = None) -> SufficientStatistics:
    """The statistics of one pandas frame, coded by its own levels unless
    ``levels`` (factor variable -> every level) and ``groups`` (every
    combination of the grouping variables, crossed designs) say otherwise."""
    scan = scan_frame(spec, frame)
    values = dict(scan.values)
    for var, vals in (levels or {}).items():
        if var not in values:
            raise ValueError("levels: '%s' is not a factor variable of the model (factor variables: %s)"
                             % (var, ", ".join(values) or "none"))
        values[var] = pd.Series(list(vals), name=var)
    if groups is not None and scan.groups is None:
        raise ValueError("groups= is only needed for crossed designs and R.x factors at _all")
    scan = Scan(values, scan.groups if groups is None else groups[list(scan.groups.columns)].drop_duplicates())
    return chunk_statistics(statistics_layout(spec, frame.iloc[:0], scan), frame)
