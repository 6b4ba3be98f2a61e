"""What the sufficient statistics of every chunk of one model share: the layout.

Sufficient statistics computed chunk by chunk (Dask partitions, sites of a
federated analysis, batches of a stream) can only be added when every chunk
codes its columns the same way: the same fixed-part columns (the levels of
every factor variable), the same expansion of ``R.x`` factors and, for
crossed designs, the same numbering of the groups.  A
:class:`StatisticsLayout` fixes all of it.  It is made from the model, the
column types and a :class:`Scan` (what one pass over the data finds: the
levels of the factor variables and, when the design needs them, the
combinations of the grouping variables); :func:`scan_frame` scans one
chunk and scans add up.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Optional

import numpy as np
import pandas as pd

from ..core.errors import ModelSpecificationError
from ..spec.model import ModelSpec
from .build import (equation_block, expanding_variables, model_variables, select_estimation_rows, used_columns,
                    with_effect_columns)
from .fixed import FixedPart, build_fixed_part
from .groups import group_codes, level_paths, merge_equations
from .random import base_matrix, uses_sparse_design
from .statistics_residual import check_residual_supported
from .types import Block
from .weights import weight_kind

# patsy transforms whose result depends on the whole sample (not computable chunk by chunk)
STATEFUL_TRANSFORMS = ("center", "standardize", "scale", "bs", "cr", "cc", "te")


@dataclass(frozen=True, eq=False)
class Scan:
    """What a pass over the estimation rows finds.

    ``values``: the distinct values of each factor variable (fixed-part
    factors, ``R.x`` factors); ``groups``: the distinct combinations of the
    grouping variables (None when the design does not need them).
    """

    values: dict
    groups: Optional[pd.DataFrame] = None

    def __add__(self, other: "Scan") -> "Scan":
        values = {k: pd.concat([v, other.values[k]], ignore_index=True).drop_duplicates()
                  for k, v in self.values.items()}
        groups = None
        if self.groups is not None:
            groups = pd.concat([self.groups, other.groups], ignore_index=True).drop_duplicates(ignore_index=True)
        return Scan(values, groups)


def _is_factor(col: pd.Series, in_factor: bool) -> bool:
    """Whether patsy codes the column as a categorical variable."""
    return in_factor or pd.api.types.is_bool_dtype(col) or not pd.api.types.is_numeric_dtype(col)


def known_categories(dtype) -> bool:
    """A pandas category type whose categories are known (Dask's may be unknown)."""
    return isinstance(dtype, pd.CategoricalDtype) and "__UNKNOWN_CATEGORIES__" not in list(dtype.categories)


def fixed_factors(spec: ModelSpec, meta: pd.DataFrame) -> list[str]:
    """The fixed part's variables that patsy codes as categorical."""
    v = model_variables(spec, meta)
    return [c for c in v["fixed"] if _is_factor(meta[c], c in v["factor"])]


def levels_to_scan(spec: ModelSpec, meta: pd.DataFrame) -> list[str]:
    """The variables whose levels must be found in the data: categorical
    variables of the fixed part (unless of a category type whose categories
    are known) and the ``R.x`` factors."""
    v = model_variables(spec, meta)
    out = [c for c in fixed_factors(spec, meta) if not known_categories(meta[c].dtype)]
    return list(dict.fromkeys(out + v["factor_re"]))


def needs_group_scan(spec: ModelSpec) -> bool:
    """Whether the design needs the combinations of the grouping variables
    before the statistics: groupings that may cross (paths that are not
    prefixes of each other) or ``R.x`` factors at ``_all`` (the sparse layout
    numbers every group)."""
    merged = merge_equations(spec.random)
    prefix_chain = all(b[: len(a)] == a for (a, _), (b, _) in zip(merged, merged[1:]))
    return not prefix_chain or uses_sparse_design(merged)


def random_part_columns(spec: ModelSpec) -> list[str]:
    """Every grouping and factor variable of the random part."""
    cols = []
    for eq in spec.random:
        cols += list(eq.group) + ([eq.factor] if eq.factor is not None else [])
    return list(dict.fromkeys(cols))


def scan_frame(spec: ModelSpec, data: pd.DataFrame, factors: Optional[list] = None) -> Scan:
    """The :class:`Scan` of one chunk (its estimation rows); ``factors``: the variables
    whose levels to find (default :func:`levels_to_scan` of the chunk's types)."""
    v = model_variables(spec, data)
    df, _ = select_estimation_rows(spec, data, used_columns(spec, v))
    factors = levels_to_scan(spec, data) if factors is None else factors
    values = {c: pd.Series(pd.unique(df[c].to_numpy()), name=c) for c in factors}
    groups = df[random_part_columns(spec)].drop_duplicates(ignore_index=True) if needs_group_scan(spec) else None
    return Scan(values, groups)


def _prototype(meta: pd.DataFrame, values: dict) -> pd.DataFrame:
    """A small frame holding every level of every factor variable (numbers elsewhere):
    enough for patsy to know the coding of the fixed part."""
    lengths = [len(v) for v in values.values()] + [len(meta[c].dtype.categories) for c in meta.columns
                                                   if isinstance(meta[c].dtype, pd.CategoricalDtype)]
    n = max([2] + lengths)
    cols = {}
    for c in meta.columns:
        dt = meta[c].dtype
        if c in values:
            vals = np.sort(np.asarray(values[c].dropna().to_numpy()))
            if isinstance(dt, pd.CategoricalDtype):  # categories unknown until scanned
                dt = pd.CategoricalDtype(vals, ordered=dt.ordered)
            cols[c] = pd.Series(np.resize(vals, n) if len(vals) else np.full(n, np.nan)).astype(dt, errors="ignore")
        elif isinstance(dt, pd.CategoricalDtype):
            cols[c] = pd.Categorical(np.resize(np.asarray(dt.categories), n), categories=dt.categories,
                                     ordered=dt.ordered)
        elif pd.api.types.is_bool_dtype(dt):
            cols[c] = np.resize([False, True], n)
        elif pd.api.types.is_numeric_dtype(dt):
            cols[c] = pd.Series(np.ones(n)).astype(dt, errors="ignore")
        else:
            cols[c] = pd.Series(["a"] * n, dtype=dt)
    return pd.DataFrame(cols)


@dataclass(frozen=True, eq=False)
class LevelLayout:
    """One grouping level of the layout: its label, full path and blocks."""

    label: str
    path: tuple[str, ...]
    blocks: tuple[Block, ...]
    keys: Optional[pd.DataFrame] = None  # the groups, numbered (sparse layouts only)

    @property
    def q(self) -> int:
        return sum(b.q for b in self.blocks)

    @property
    def n_groups(self) -> int:
        return 1 if self.keys is None else len(self.keys)


@dataclass(frozen=True, eq=False)
class StatisticsLayout:
    """The coding shared by every chunk's statistics of one model.

    ``fixed`` builds every candidate column of the fixed part (collinear ones
    are omitted later, from ``X'X``); ``levels`` are the grouping levels,
    coarsest first; ``sparse``: the random effects go through the crossed
    engine, whose cross-products are kept in the nested engine's level layout
    (every group numbered, ``keys`` of each level known).
    """

    spec: ModelSpec
    variables: dict
    used: tuple[str, ...]
    fixed: FixedPart
    levels: tuple[LevelLayout, ...]
    crossed: bool
    sparse: bool
    weights: Optional[str]  # the weight kind, if any
    meta: pd.DataFrame  # zero rows: the column types of the data

    @property
    def p_all(self) -> int:
        """Candidate fixed-part columns."""
        return len(self.fixed.names)

    @property
    def k(self) -> int:
        """Columns of ``[X y]``."""
        return self.p_all + 1

    @property
    def Q(self) -> int:
        """Random-effects columns (dense per-panel layout)."""
        return sum(l.q for l in self.levels)

    @property
    def panel_path(self) -> tuple[str, ...]:
        return self.levels[-1].path if self.levels else ()

    @property
    def top_path(self) -> tuple[str, ...]:
        """The coarsest level's path: the clusters (empty: one cluster)."""
        return self.levels[0].path if self.levels else ()

    @property
    def engine_is_crossed(self) -> bool:
        """The crossed engine evaluates the likelihood (sparse random effects, plain residual)."""
        res = self.spec.residual
        return self.sparse and res.is_plain

    @cached_property
    def signature(self) -> tuple:
        """What must agree for two chunks' statistics to be added."""
        expand = tuple(b.expand_levels for l in self.levels for b in l.blocks)
        keys = tuple(None if l.keys is None else tuple(map(tuple, l.keys.astype(object).to_numpy()))
                     for l in self.levels)
        return (self.spec, tuple(self.fixed.names), expand, keys)

    def same_coding(self, other: "StatisticsLayout") -> bool:
        return self is other or self.signature == other.signature


def _check_transforms(spec: ModelSpec) -> None:
    if spec.in_range is not None:
        raise ModelSpecificationError("in %d/%d selects rows by their position in the whole data, which "
                                      "chunks do not know; out of core, select rows with if" % spec.in_range)
    if re.search(r"\bib\(freq\)\.", spec.fixed):
        raise ModelSpecificationError("ib(freq). takes the most frequent level as base, which needs the whole "
                                      "sample's counts; out of core, give the base level (ib#. or ib(first).)")
    for name in STATEFUL_TRANSFORMS:
        if re.search(r"\b%s\s*\(" % name, spec.fixed):
            raise ModelSpecificationError(
                "the fixed part uses %s(), whose value depends on the whole sample: it cannot be computed "
                "chunk by chunk (out of core); compute the column beforehand" % name)


def random_effect_columns(spec: ModelSpec) -> list[str]:
    """The random-effects columns of every equation (variables or expressions), once."""
    return list(dict.fromkeys(c for eq in spec.random for c in eq.columns))


def _layout_levels(spec: ModelSpec, proto: pd.DataFrame, scan: Scan) -> tuple[tuple[LevelLayout, ...], bool, bool]:
    groups = scan.groups if scan.groups is not None else proto.iloc[:0]
    merged, paths, crossed = level_paths(merge_equations(spec.random), groups)
    sparse = crossed or uses_sparse_design(merged)
    out = []
    for (path, eqs), full in zip(merged, paths):
        blocks = []
        for eq in eqs:
            qe = base_matrix(eq, proto.iloc[:1]).shape[1]
            if qe == 0:
                continue
            expand_by = expanding_variables(eq, crossed)
            if not expand_by:
                blocks.append(equation_block(eq, qe))
                continue
            if eq.factor is not None:
                vals = pd.DataFrame({eq.factor: scan.values[eq.factor].dropna().to_numpy()})
            else:
                vals = groups
            blocks.append(equation_block(eq, qe, expand_by, group_codes(vals.drop_duplicates(), expand_by)[1]))
        keys = group_codes(groups.drop_duplicates(list(full)), full)[1] if (sparse and full) else None
        out.append(LevelLayout("_all" if crossed else eqs[0].level_name, full, tuple(blocks), keys))
    return tuple(out), crossed, sparse


def statistics_layout(spec: ModelSpec, meta: pd.DataFrame, scan: Optional[Scan] = None) -> StatisticsLayout:
    """The layout of ``spec`` for data with the column types of ``meta`` and
    the levels found by ``scan`` (a scan of the whole data, or of one chunk
    for statistics of that chunk alone)."""
    v = model_variables(spec, meta)
    used = used_columns(spec, v)
    _check_transforms(spec)
    check_residual_supported(spec)
    if spec.pwscale is not None:
        raise ModelSpecificationError("pwscale() is not supported out of core (from sufficient statistics): "
                                      "it rescales each group's weights by sums over the group")
    scan = scan if scan is not None else Scan({c: pd.Series([], dtype=object) for c in levels_to_scan(spec, meta)})
    missing = [c for c in levels_to_scan(spec, meta) if c not in scan.values]
    if missing:
        raise ValueError("the scan has no levels for the factor variable '%s'" % missing[0])
    if needs_group_scan(spec) and scan.groups is None:
        raise ValueError("this model needs the combinations of its grouping variables (scan_frame)")
    proto = _prototype(meta[used], scan.values)
    _, fixed = build_fixed_part(spec, proto, keep_collinear=True)
    levels, crossed, sparse = _layout_levels(spec, with_effect_columns(spec, proto), scan)
    kind = weight_kind(spec, sparse, list(levels))
    return StatisticsLayout(spec, v, tuple(used), fixed, levels, crossed, sparse, kind, meta[used].iloc[:0])
