"""Bind a :class:`ModelSpec` to data: the design stage.

:func:`build_design` validates the data, drops incomplete rows (and counts
them), builds the fixed part with Stata's names, the grouping codes of every
level, the random-effects design of every level, sorts the rows so groups
are contiguous, and computes the cross-products the objective needs once.
Nothing here depends on the parameters, and the :class:`Design` it returns
is never changed afterwards.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Optional

import numpy as np
import pandas as pd

from ..core.errors import ModelSpecificationError, warn_user
from ..core.linalg import grouped_crossprod, orthonormalize
from ..spec.model import ModelSpec
from ..structures.covariance import make_structure
from .fixed import build_fixed_part, formula_variables, unknown_formula_names
from .groups import group_codes, level_paths, merge_equations
from .random import (base_matrix, dense_expand, effect_column, effect_variables, finish_Z, hstack_columns,
                     sparse_expand, uses_sparse_design)
from .types import Block, Design, Level, WorkingFixedPart
from .validate import (as_plain_numbers, check_columns, check_exact_fit, check_finite, check_group_types,
                       check_identified, check_level_effects, check_numeric)
from .weights import bind_weights


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


def select_estimation_rows(spec: ModelSpec, data: pd.DataFrame, used: list[str]) -> tuple[pd.DataFrame, int]:
    """Rows selected by the ``if`` condition with no missing value in a used column
    (index: positions in ``data``), and the number dropped for missing values."""
    df = data.set_axis(pd.RangeIndex(len(data)))  # positions; labels restored by the caller
    if spec.in_range is not None:
        df = df.iloc[in_range_rows(spec.in_range, len(df))]
    if spec.subset:
        try:
            mask = df.eval(spec.subset)
        except Exception as exc:
            raise ModelSpecificationError("cannot evaluate the if condition %r: %s" % (spec.subset, exc)) from None
        df = df.loc[np.asarray(mask, dtype=bool)]
    df = df[used]
    complete = df.notna().all(axis=1).to_numpy()
    return df.loc[complete], int((~complete).sum())


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


def with_effect_columns(spec: ModelSpec, df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with a column for each random slope on an expression (``c.x#c.x``, ``I(x^2)``)."""
    derived = {c for eq in spec.random for c in eq.columns if c not in df.columns}
    return df.assign(**{c: effect_column(c, df) for c in sorted(derived)}) if derived else df


def check_types(spec: ModelSpec, df: pd.DataFrame, v: dict) -> None:
    check_finite(df, [spec.response] + v["fixed"] + v["random"] + v["residual"])
    y = df[spec.response]
    if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
        raise ModelSpecificationError("dependent variable '%s' is not numeric" % spec.response)
    check_numeric(df, [c for c in v["fixed"] if c not in v["factor"]], "fixed part")
    check_numeric(df, v["random"], "random effects")
    check_numeric(df, [spec.residual.time] if spec.residual.time is not None else [], "residuals() option t()")
    check_numeric(df, v["weights"], "weights")


def _block(eq, df: pd.DataFrame, crossed: bool, sparse: bool):
    """The block of one equation and its columns of ``Z`` (None: no random effects)."""
    base = base_matrix(eq, df)
    if base.shape[1] == 0:
        return None, None  # a level with no random effects only defines panels (residuals())
    struct = make_structure(eq.covariance, base.shape[1])
    expand_by = (eq.factor,) if eq.factor is not None else (eq.group if crossed else None)
    if not expand_by:
        return Block(eq, struct, eq.effect_names, eq.level_name), base
    ecodes, ekeys = group_codes(df, expand_by)
    levels = tuple(tuple(r) if len(r) > 1 else r[0] for r in ekeys.itertuples(index=False))
    expand = sparse_expand if sparse else dense_expand
    return Block(eq, struct, eq.effect_names, eq.level_name, tuple(expand_by), levels), \
        expand(base, ecodes, len(levels))


def _levels(merged, paths, df: pd.DataFrame, crossed: bool, sparse: bool):
    """The levels (coarsest first) and ``Z`` (columns finest level first)."""
    levels, Z_by_level, parent_codes = [], [], None
    for (path, eqs), full in zip(merged, paths):
        codes, keys = group_codes(df, full)
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


def working_fixed_part(X: np.ndarray, y: np.ndarray, row_scale: Optional[np.ndarray] = None) -> WorkingFixedPart:
    """The orthonormalised, OLS-centred fixed part (rows scaled by ``row_scale``: weights)."""
    if row_scale is not None:
        X, y = X * row_scale[:, None], y * row_scale
    p = X.shape[1]
    if not p:
        return WorkingFixedPart(X, y.copy(), np.zeros((0, 0)), np.zeros((0, 0)), 0.0, np.zeros(0))
    try:
        Xw, Rx = orthonormalize(X)
    except np.linalg.LinAlgError:  # very ill-conditioned: Householder
        Xw, Rx = np.linalg.qr(X)
    b_ols = np.linalg.solve(Rx, Xw.T @ y)
    logdet = 2.0 * float(np.log(np.abs(np.diag(Rx))).sum())
    return WorkingFixedPart(Xw, y - X @ b_ols, Rx, np.linalg.inv(Rx), logdet, b_ols)


def panel_crossproducts(Z, working: WorkingFixedPart, codes: np.ndarray, n_panels: int):
    """Per-panel ``Z'Z``, ``Z'[Xw yw]`` and the global ``[Xw yw]'[Xw yw]``."""
    XY = np.column_stack([working.Xw, working.yw])
    return grouped_crossprod(Z, Z, codes, n_panels), grouped_crossprod(Z, XY, codes, n_panels), XY.T @ XY


def _with_crossproducts(design: Design) -> Design:
    """The design with its weights bound and its cross-products computed."""
    info = bind_weights(design)
    working = design.working
    if info is not None:
        working = working_fixed_part(design.X, design.y, np.sqrt(info.total_obs))
    XY = np.column_stack([working.Xw, working.yw])
    if design.sparse_re:  # the crossed engine builds its own sparse cross-products of Z
        return replace(design, working=working, XYtXY=XY.T @ XY, weights=info)
    Z = design.Z if info is None else design.Z * np.sqrt(info.total_obs)[:, None]
    ZtZ, ZtXY, XYtXY = panel_crossproducts(Z, working, design.panel_codes, design.n_panels)
    return replace(design, working=working, ZtZ=ZtZ, ZtXY=ZtXY, XYtXY=XYtXY, weights=info)


def build_design(spec: ModelSpec, data: pd.DataFrame) -> Design:
    """Validate ``data`` against ``spec`` and build the :class:`Design`."""
    if not isinstance(data, pd.DataFrame):
        raise TypeError("data must be a pandas DataFrame, got %s" % type(data).__name__)
    v = model_variables(spec, data)
    df, n_dropped = select_estimation_rows(spec, data, used_columns(spec, v))
    check_estimation_rows(spec, len(data), len(df), n_dropped)
    check_types(spec, df, v)
    df = as_plain_numbers(df, numeric_columns(spec, v))

    df = with_effect_columns(spec, df)
    merged, paths, crossed = level_paths(merge_equations(spec.random), df)
    sparse = crossed or uses_sparse_design(merged)
    check_group_types(df, v["group"] + v["factor_re"])
    if paths and paths[-1]:
        df = df.sort_values(list(paths[-1]), kind="stable")
    row_pos = df.index.to_numpy()
    df = df.reset_index(drop=True)

    offset = effect_column(spec.offset, df, "the offset") if spec.offset else None
    y = df[spec.response].to_numpy(dtype=float) - (offset if offset is not None else 0.0)
    X, fixed = build_fixed_part(spec, df)
    if spec.reml and len(df) <= X.shape[1]:
        raise ModelSpecificationError("REML needs more observations than fixed effects (%d observations, %d "
                                      "fixed effects after collinear ones are omitted)" % (len(df), X.shape[1]))
    for nm in fixed.omitted:
        warn_user("note: %s omitted because of collinearity" % nm)
    levels, Z = _levels(merged, paths, df, crossed, sparse)
    design = Design(spec, y, X, fixed, levels, Z, data.index[row_pos], row_pos, n_dropped, df,
                    working_fixed_part(X, y), sparse_re=sparse, crossed_groupings=crossed, offset=offset)
    check_identified(design)
    if spec.residual.kind == "independent" and spec.residual.by is None:
        check_exact_fit(design)
    return _with_crossproducts(design)
