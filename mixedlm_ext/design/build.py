"""Bind a :class:`ModelSpec` to data: the design stage.

:func:`build_design` validates the data, drops incomplete rows (and counts
them), builds the fixed part with Stata's names, the grouping codes of every
level, the random-effects design of every level, sorts the rows so groups
are contiguous, and computes the cross-products the objective needs once.
Nothing here depends on the parameters, and the :class:`Design` it returns
is never changed afterwards.

The data are read once: the used columns as vectors, integer group codes
without a pandas groupby (:func:`~.groups.factor_codes`), the rows sorted
by one permutation, and the cross-products of the random-effects columns and
the (centred) fixed part computed before anything is orthonormalised;
collinearity and the working fixed part are decided on the ``p x p`` Gram
matrix (:mod:`.working`).  A right-hand side of plain numeric variables is
read without patsy.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Optional

import numpy as np
import pandas as pd

from ..core.errors import ModelSpecificationError, warn_user
from ..core.linalg import grouped_crossprod
from ..spec.model import ModelSpec
from ..structures.covariance import make_structure
from .fixed import (build_fixed_part, drop_collinear, formula_variables, plain_fixed_part, plain_variables,
                    unknown_formula_names)
from .groups import combined_codes, first_rows, group_codes, group_key_values, level_paths, merge_equations
from .random import (base_matrix, dense_expand, effect_column, effect_variables, finish_Z, hstack_columns,
                     sparse_expand, uses_sparse_design)
from .types import Block, Design, Level
from .table import ColumnTable, take
from .validate import (as_plain_numbers, check_columns, check_exact_fit, check_finite, check_group_types,
                       check_identified, check_level_effects, check_numeric)
from .weights import bind_weights
from .working import (GramWorking, WorkingFixedPart, centered_columns, gram_working, panel_crossproducts,
                      row_working_part)


def model_variables(spec: ModelSpec, data: pd.DataFrame) -> dict[str, list[str]]:
    """The data columns each part of the model reads (checked to exist)."""
    check_columns(data, [spec.response], "dependent variable")
    fixed_vars, factor_vars = formula_variables(spec.fixed, data.columns)
    unknown = unknown_formula_names(spec.fixed, data.columns)
    if unknown:
        raise ModelSpecificationError("variable '%s' not found (fixed part)" % unknown[0])
    check_columns(data, fixed_vars, "fixed part")
    re_vars, group_vars, factor_re = [], [], []
    for eq in spec.random:
        eq_vars = [v for c in eq.columns for v in (effect_variables(c, data.columns) or [c])]
        check_columns(data, eq_vars, "random effects at level %s" % eq.level_name)
        check_columns(data, eq.group, "grouping variable")
        re_vars += eq_vars
        group_vars += list(eq.group)
        if eq.factor is not None:
            check_columns(data, [eq.factor], "R. factor at level %s" % eq.level_name)
            factor_re.append(eq.factor)
    res = spec.residual
    resid_vars = [v for v in (res.time, res.by) if v is not None]
    check_columns(data, resid_vars, "residuals() option")
    weight_vars = [w.var for w in spec.weights]
    check_columns(data, weight_vars, "weights")
    offset_vars = effect_variables(spec.offset, data.columns) if spec.offset else []
    if spec.offset and not offset_vars:
        raise ModelSpecificationError("offset(%s): no variable of the data in it" % spec.offset)
    return dict(fixed=fixed_vars, factor=sorted(factor_vars), random=re_vars + offset_vars, group=group_vars,
                factor_re=factor_re, residual=resid_vars, weights=weight_vars)


def _selected_rows(spec: ModelSpec, data: pd.DataFrame, table: ColumnTable) -> tuple[np.ndarray, int]:
    """Positions of the rows selected by ``in`` and ``if`` with no missing value in the
    columns of ``table`` (``data``'s used columns), and how many were dropped for missing values."""
    selected = None
    if spec.in_range is not None:
        selected = np.zeros(table.n, dtype=bool)
        selected[in_range_rows(spec.in_range, table.n)] = True
    if spec.subset:
        try:
            mask = data.set_axis(pd.RangeIndex(len(data))).eval(spec.subset)
        except Exception as exc:
            raise ModelSpecificationError("cannot evaluate the if condition %r: %s" % (spec.subset, exc)) from None
        mask = np.asarray(mask, dtype=bool)
        selected = mask if selected is None else selected & mask
    missing = table.missing()
    if selected is not None:
        missing &= selected
    keep = ~missing if selected is None else selected & ~missing
    rows = np.flatnonzero(keep) if not keep.all() else np.arange(table.n)
    return rows, int(missing.sum())


def select_estimation_rows(spec: ModelSpec, data: pd.DataFrame, used: list[str]) -> tuple[pd.DataFrame, int]:
    """Rows selected by the ``if`` condition with no missing value in a used column
    (index: positions in ``data``), and the number dropped for missing values."""
    rows, n_dropped = _selected_rows(spec, data, ColumnTable.from_frame(data, used))
    return data[used].iloc[rows].set_axis(pd.Index(rows)), n_dropped


def check_estimation_rows(spec: ModelSpec, n_rows: int, n_used: int, n_dropped: int) -> None:
    """Warn about rows dropped for missing values; refuse an empty estimation sample."""
    if n_dropped:
        warn_user("%d observation%s with missing values in the model's variables dropped"
                  % (n_dropped, "s" if n_dropped > 1 else ""))
    if n_used == 0:
        if n_rows == 0:
            raise ModelSpecificationError("no observations: the data has no rows")
        if n_dropped == 0:
            raise ModelSpecificationError("no observations: the if condition %r selects no rows" % spec.subset)
        raise ModelSpecificationError("no observations: every row has a missing value in a used variable")


def _estimation_rows(spec: ModelSpec, data: pd.DataFrame, used: list[str]) -> tuple[ColumnTable, np.ndarray, int]:
    """The used columns of the estimation rows, those rows' positions in ``data``, and
    how many were dropped for missing values."""
    table = ColumnTable.from_frame(data, used)
    rows, n_dropped = _selected_rows(spec, data, table)
    check_estimation_rows(spec, len(data), rows.size, n_dropped)
    return (table.take(rows) if rows.size < table.n else table), rows, n_dropped


def used_columns(spec: ModelSpec, v: dict) -> list[str]:
    """Every column the model reads, once, response first."""
    return list(dict.fromkeys([spec.response] + v["fixed"] + v["random"] + v["group"] + v["factor_re"]
                              + v["residual"] + v["weights"]))


def numeric_columns(spec: ModelSpec, v: dict) -> list[str]:
    """The columns used as numbers (made plain float64 by :func:`as_plain_numbers`)."""
    return [spec.response] + v["fixed"] + v["random"] + v["weights"] + \
        ([spec.residual.time] if spec.residual.time else [])


def in_range_rows(in_range: tuple[int, int], n: int) -> slice:
    """Stata's ``in f/l`` as positions of ``n`` rows (1-based, negative from the end)."""
    first, last = (k if k > 0 else n + 1 + k for k in in_range)
    if not (1 <= first <= n and 1 <= last <= n):
        raise ModelSpecificationError("in %d/%d: observation numbers out of range (the data has %d rows)"
                                      % (in_range[0], in_range[1], n))
    if last < first:
        raise ModelSpecificationError("in %d/%d: the range selects no rows" % in_range)
    return slice(first - 1, last)


def with_effect_columns(spec: ModelSpec, df):
    """``df`` (a data frame or a :class:`ColumnTable`) with a column for each random
    slope on an expression (``c.x#c.x``, ``I(x^2)``)."""
    derived = {c for eq in spec.random for c in eq.columns if c not in df.columns}
    if not derived:
        return df
    new = {c: effect_column(c, df) for c in sorted(derived)}
    return df.assign(**new) if isinstance(df, pd.DataFrame) else df.with_columns(**new)


def check_types(spec: ModelSpec, df, v: dict) -> None:
    """The used columns have the types their roles need (``df``: a data frame or a :class:`ColumnTable`)."""
    check_finite(df, [spec.response] + v["fixed"] + v["random"] + v["residual"])
    y = df[spec.response]
    if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
        raise ModelSpecificationError("dependent variable '%s' is not numeric" % spec.response)
    check_numeric(df, [c for c in v["fixed"] if c not in v["factor"]], "fixed part")
    check_numeric(df, v["random"], "random effects")
    check_numeric(df, [spec.residual.time] if spec.residual.time is not None else [], "residuals() option t()")
    check_numeric(df, v["weights"], "weights")


def expanding_variables(eq, crossed: bool) -> Optional[tuple]:
    """The variables whose levels repeat an equation's block (Stata's ``R.x``, or the group
    of a crossed term), None when it is not repeated."""
    by = (eq.factor,) if eq.factor is not None else (eq.group if crossed else None)
    return tuple(by) if by else None


def equation_block(eq, q: int, expand_by: Optional[tuple] = None, keys: Optional[pd.DataFrame] = None) -> Block:
    """The :class:`Block` of an equation with ``q`` base columns, repeated over the rows of
    ``keys`` (the levels of ``expand_by``) when given."""
    struct = make_structure(eq.covariance, q)
    if not expand_by:
        return Block(eq, struct, eq.effect_names, eq.level_name)
    levels = tuple(tuple(r) if len(r) > 1 else r[0] for r in keys.itertuples(index=False))
    return Block(eq, struct, eq.effect_names, eq.level_name, expand_by, levels)


def _block(eq, df: ColumnTable, crossed: bool, sparse: bool):
    """The block of one equation and its columns of ``Z`` (None: no random effects)."""
    base = base_matrix(eq, df)
    if base.shape[1] == 0:
        return None, None  # a level with no random effects only defines panels (residuals())
    expand_by = expanding_variables(eq, crossed)
    if not expand_by:
        return equation_block(eq, base.shape[1]), base
    ecodes, ekeys = group_codes(df, expand_by)
    block = equation_block(eq, base.shape[1], expand_by, ekeys)
    expand = sparse_expand if sparse else dense_expand
    return block, expand(base, ecodes, block.n_expand)


def _levels(merged, paths, df: ColumnTable, crossed: bool, sparse: bool, fine_codes=None):
    """The levels (coarsest first) and ``Z`` (columns finest level first).

    ``fine_codes``: the group codes of the finest level when already known."""
    levels, Z_by_level, parent_codes = [], [], None
    for li, ((path, eqs), full) in enumerate(zip(merged, paths)):
        if fine_codes is not None and li == len(paths) - 1 and full:
            codes, keys = fine_codes
        elif full:
            codes, keys = group_key_values(df, full)
        else:  # _all: one group
            codes, keys = np.zeros(len(df), dtype=np.intp), None
        G = int(codes.max()) + 1 if len(codes) else 0
        pairs = [_block(eq, df, crossed, sparse) for eq in eqs]
        blocks = [b for b, _ in pairs if b is not None]
        cols = [m for b, m in pairs if b is not None]
        check_level_effects(eqs[0].level_name, blocks, df, codes, G)
        if sparse:
            Zl = hstack_columns(cols, len(df))
        else:
            Zl = np.column_stack(cols) if cols else np.zeros((len(df), 0))
        parent = None
        if parent_codes is not None:
            parent = np.zeros(G, dtype=np.intp)
            parent[codes] = parent_codes
        label = "_all" if crossed else eqs[0].level_name
        levels.append(Level(label, full, tuple(blocks), codes, G, parent, keys))
        Z_by_level.append(Zl)
        parent_codes = codes
    if sparse:  # dense when small (other modules index it), CSC otherwise
        Z = finish_Z(hstack_columns(Z_by_level[::-1], len(df)))
    else:
        Z = np.column_stack(Z_by_level[::-1]) if Z_by_level else np.zeros((len(df), 0))
    return tuple(levels), Z


def _sorted_by_finest(table: ColumnTable, paths) -> tuple[ColumnTable, Optional[np.ndarray], Optional[tuple]]:
    """The rows sorted (stably) by the finest grouping, the permutation (None when
    already sorted) and that grouping's codes and keys (None without a grouping)."""
    if not (paths and paths[-1]):
        return table, None, None
    codes, G = combined_codes([table[c] for c in paths[-1]])
    order = None
    if codes.size and not np.all(codes[1:] >= codes[:-1]):
        order = np.argsort(codes, kind="stable")
        table, codes = table.take(order), codes[order]
    rows = first_rows(codes, G)
    return table, order, (codes, {c: take(table[c], rows) for c in paths[-1]})


def _columns_of(M: np.ndarray) -> list:
    """The columns of a dense matrix as contiguous vectors, ``None`` for a column of ones."""
    out = []
    for j in range(M.shape[1]):
        c = np.ascontiguousarray(M[:, j])
        out.append(None if c.size and c[0] == 1.0 and np.all(c == 1.0) else c)
    return out


def _fixed_candidates(spec: ModelSpec, table: ColumnTable):
    """``(columns, raw matrix or None, variables or None)`` of the fixed part's candidates:
    plain variables as vectors (``None``: the constant), else patsy's matrix after
    Stata's collinearity rule (``FixedPart`` then made by :func:`build_fixed_part`)."""
    variables = plain_variables(spec, table)
    if variables is None:
        X, fixed = build_fixed_part(spec, table.frame())
        return _columns_of(X), X, fixed
    cols = [table.floats(v) for v in variables] + ([None] if spec.constant else [])
    return cols, None, variables


def _fixed_part(spec: ModelSpec, table: ColumnTable, y: np.ndarray):
    """``(X, FixedPart, GramWorking or None, centred columns or None)``.

    The Gram path (:mod:`.working`) decides collinearity (plain variables) and the
    working part; when it cannot, the row-wise rule and QR decide."""
    n = len(table)
    cols, X, info = _fixed_candidates(spec, table)
    cc = centered_columns(cols, y)
    plain = X is None
    raw_norms = None
    if plain:
        raw_norms = np.array([np.sqrt(n) if c is None else float(np.linalg.norm(c)) for c in cols])
    gw = gram_working(cc, n, raw_norms)
    if plain:
        names = list(info) + (["_cons"] if spec.constant else [])
        Xc = np.column_stack([np.ones(n) if c is None else c for c in cols]) if cols else np.zeros((n, 0))
        keep = gw.keep if gw is not None else drop_collinear(Xc, names)
        fixed = plain_fixed_part(spec, table, info, keep)
        X = Xc[:, keep] if not keep.all() else Xc
        if gw is None:
            return X, fixed, None, None
        cc = centered_columns([c for c, k in zip(cols, keep) if k], y)
        return X, fixed, gw, cc
    return X, info, gw, (cc if gw is not None else None)


def working_fixed_part(X: np.ndarray, y: np.ndarray, row_scale: Optional[np.ndarray] = None) -> WorkingFixedPart:
    """The orthonormalised, OLS-centred fixed part (rows scaled by ``row_scale``: weights)."""
    return row_working_part(X, y, row_scale)


def _row_crossproducts(Z, working: WorkingFixedPart, codes: np.ndarray, n_panels: int):
    """Per-panel ``Z'Z``, ``Z'[Xw yw]`` and the global ``[Xw yw]'[Xw yw]`` from rows."""
    XY = np.column_stack([working.Xw, working.yw])
    return grouped_crossprod(Z, Z, codes, n_panels), grouped_crossprod(Z, XY, codes, n_panels), XY.T @ XY


def _gram_crossproducts(z_cols, cc, gw: GramWorking, codes: np.ndarray, n_panels: int, n: int):
    """The same from the columns: panel sums of ``Z'A`` carried to the working part by ``T``."""
    ZtZ, ZtA = panel_crossproducts(z_cols, cc.cols, codes, n_panels, n)
    return ZtZ, np.matmul(ZtA, gw.T), gw.T.T @ gw.G @ gw.T


def _with_crossproducts(design: Design, gw: Optional[GramWorking], cc) -> Design:
    """The design with its weights bound and its cross-products computed."""
    info = bind_weights(design)
    working = design.working
    n = design.n
    scale = None if info is None else np.sqrt(info.total_obs)
    if info is not None:
        gw = cc = None
        if design.p == 0 or design.X.shape[1] == design.p:
            cols = [None if np.all(c == 1.0) else np.ascontiguousarray(c) for c in design.X.T]
            cc = centered_columns(cols, design.y, scale)
            gw = gram_working(cc, n)
        working = gw.part(design.X, design.y, scale) if gw is not None else working_fixed_part(design.X, design.y,
                                                                                                 scale)
    if design.sparse_re:  # the crossed engine builds its own sparse cross-products of Z
        XYtXY = gw.T.T @ gw.G @ gw.T if gw is not None else None
        if XYtXY is None:
            XY = np.column_stack([working.Xw, working.yw])
            XYtXY = XY.T @ XY
        return replace(design, working=working, XYtXY=XYtXY, weights=info)
    if gw is not None:
        Z = design.Z
        z_cols = _columns_of(Z) if scale is None else [np.ascontiguousarray(Z[:, j]) * scale for j in range(Z.shape[1])]
        ZtZ, ZtXY, XYtXY = _gram_crossproducts(z_cols, cc, gw, design.panel_codes, design.n_panels, n)
    else:
        Z = design.Z if info is None else design.Z * scale[:, None]
        ZtZ, ZtXY, XYtXY = _row_crossproducts(Z, working, design.panel_codes, design.n_panels)
    return replace(design, working=working, ZtZ=ZtZ, ZtXY=ZtXY, XYtXY=XYtXY, weights=info)


def build_design(spec: ModelSpec, data: pd.DataFrame) -> Design:
    """Validate ``data`` against ``spec`` and build the :class:`Design`."""
    if not isinstance(data, pd.DataFrame):
        raise TypeError("data must be a pandas DataFrame, got %s" % type(data).__name__)
    v = model_variables(spec, data)
    table, rows, n_dropped = _estimation_rows(spec, data, used_columns(spec, v))
    check_types(spec, table, v)
    table = with_effect_columns(spec, as_plain_numbers(table, numeric_columns(spec, v)))
    merged, paths, crossed = level_paths(merge_equations(spec.random), table)
    sparse = crossed or uses_sparse_design(merged)
    check_group_types(table, v["group"] + v["factor_re"])
    table, order, fine = _sorted_by_finest(table, paths)
    row_pos = rows if order is None else rows[order]

    offset = effect_column(spec.offset, table, "the offset") if spec.offset else None
    y = table.floats(spec.response) - (offset if offset is not None else 0.0)
    X, fixed, gw, cc = _fixed_part(spec, table, y)
    if spec.reml and len(table) <= X.shape[1]:
        raise ModelSpecificationError("REML needs more observations than fixed effects (%d observations, %d "
                                      "fixed effects after collinear ones are omitted)" % (len(table), X.shape[1]))
    for nm in fixed.omitted:
        warn_user("note: %s omitted because of collinearity" % nm)
    levels, Z = _levels(merged, paths, table, crossed, sparse, fine)
    working = gw.part(X, y) if gw is not None else working_fixed_part(X, y)
    design = Design(spec, y, X, fixed, levels, Z, data.index[row_pos], row_pos, n_dropped, table,
                    working, sparse_re=sparse, crossed_groupings=crossed, offset=offset)
    check_identified(design)
    design = _with_crossproducts(design, gw, cc)
    if spec.residual.is_plain:
        check_exact_fit(design)
    return design
