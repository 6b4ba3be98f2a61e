"""Checks of the data against a specification; each error names the problem."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.errors import ModelSpecificationError


RESERVED_VARIABLE_NAMES = ("_cons",)  # Stata's name of the constant


def check_columns(data: pd.DataFrame, names, what: str) -> None:
    """Every name is a column of ``data``, exactly once, and not a reserved name."""
    for nm in names:
        if nm not in data.columns:
            raise ModelSpecificationError("variable '%s' not found (%s)" % (nm, what))
        if isinstance(data.columns.get_loc(nm), (slice, np.ndarray)):
            raise ModelSpecificationError("the data has more than one column named '%s' (%s); "
                                          "column names must be unique" % (nm, what))
        if nm in RESERVED_VARIABLE_NAMES:
            raise ModelSpecificationError("variable '%s' (%s) has the name of the constant; rename it"
                                          % (nm, what))


def check_group_types(df, names) -> None:
    """Grouping variables must be sortable: one type of value per column (``df``: a
    data frame or a :class:`~.table.ColumnTable`)."""
    for c in dict.fromkeys(names):
        if df[c].dtype == object and len({type(v) for v in df[c]}) > 1:
            raise ModelSpecificationError(
                "grouping variable '%s' mixes values of different types (e.g. numbers and strings); "
                "convert it to one type" % c)


def check_finite(data, names) -> None:
    """Infinite values are not data: say which variable holds them."""
    for nm in dict.fromkeys(names):
        col = data[nm]
        if isinstance(col, np.ndarray) and col.dtype.kind in "iub":
            continue
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            v = np.asarray(col, dtype=float)
            if np.isinf(v).any():
                raise ModelSpecificationError("variable '%s' has %d infinite value(s)" % (nm, int(np.isinf(v).sum())))


def check_numeric(data, names, what: str) -> None:
    """Numeric (or boolean) columns only; a string column is a factor variable."""
    for nm in names:
        if pd.api.types.is_bool_dtype(data[nm]):
            continue
        if not pd.api.types.is_numeric_dtype(data[nm]):
            raise ModelSpecificationError(
                "variable '%s' is not numeric (%s); use i.%s (or C(%s)) for a factor variable"
                % (nm, what, nm, nm)
            )


def as_plain_numbers(df, names):
    """Nullable (``boolean``, ``Int64``, ``Float64``) columns as float64, once their
    missing values (``pd.NA``) have been dropped (``df``: a data frame or a
    :class:`~.table.ColumnTable`)."""
    out = {}
    for nm in dict.fromkeys(names):
        col = df[nm]
        if isinstance(col.dtype, pd.api.extensions.ExtensionDtype) and (
                pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col)):
            out[nm] = np.asarray(col, dtype=float)
    if not out:
        return df
    return df.assign(**out) if isinstance(df, pd.DataFrame) else df.with_columns(**out)


def group_range(v: np.ndarray, codes: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Smallest and largest value of ``v`` per group (runs of sorted codes, else ``ufunc.at``)."""
    if codes.size and np.all(codes[1:] >= codes[:-1]):
        starts = np.searchsorted(codes, np.arange(n_groups))
        return np.minimum.reduceat(v, starts), np.maximum.reduceat(v, starts)
    lo, hi = np.full(n_groups, np.inf), np.full(n_groups, -np.inf)
    np.minimum.at(lo, codes, v)
    np.maximum.at(hi, codes, v)
    return lo, hi


def check_level_effects(label: str, blocks: list, df, codes: np.ndarray, n_groups: int) -> None:
    """Each random effect appears once per level, is not identically zero, and a
    random slope is not constant within every group when the level has a random
    intercept (it would be collinear with it)."""
    lows, highs = {}, {}
    for blk in blocks:
        for c in blk.equation.columns:
            lows[c], highs[c] = group_range(np.asarray(df[c], dtype=float), codes, n_groups)
    check_effect_extremes(label, blocks, lows, highs)


def check_effect_extremes(label: str, blocks: list, lows: dict, highs: dict) -> None:
    """:func:`check_level_effects` from each random-effects variable's minimum and
    maximum within every group of the level (``lows``/``highs``: column -> ``(G,)``)."""
    seen = set()
    for blk in blocks:
        for e in blk.effects:
            if (blk.expand_by, e) in seen:
                raise ModelSpecificationError(
                    "level %s: %s appears in more than one equation; a repeated level needs "
                    "distinct terms (use noconstant in the later equations)" % (label, e))
            seen.add((blk.expand_by, e))
        for c in blk.equation.columns:
            if not (np.any(lows[c] != 0) or np.any(highs[c] != 0)):
                raise ModelSpecificationError(
                    "level %s: random-effects variable '%s' is zero in every observation" % (label, c))
    has_intercept = any(b.equation.constant and b.expand_by is None for b in blocks)
    for blk in blocks:
        for c in blk.equation.columns if has_intercept and blk.expand_by is None else ():
            lo, hi = lows[c], highs[c]
            if np.all(hi - lo <= 1e-12 * np.maximum(np.abs(hi), 1.0)):
                raise ModelSpecificationError(
                    "level %s: random-effects variable '%s' is constant within every group, so its random "
                    "slope is collinear with the random intercept and not identified" % (label, c))


def check_identified(design) -> None:
    """Refuse models with more random-effect parameters than the data identify."""
    n = design.n
    for lvl in design.levels:
        sizes = lvl.sizes()
        if lvl.path and lvl.n_groups == 1 and any(b.expand_by is None for b in lvl.blocks):
            raise ModelSpecificationError(
                "level %s has a single group (%s): its random-effects variance is not identified; "
                "grouping factors need more than one group (lme4 refuses this too)"
                % (lvl.label, ", ".join("%s=%s" % kv for kv in zip(lvl.path, lvl.keys.iloc[0]))))
        for blk in lvl.blocks:
            if blk.expand_by is None and blk.structure.q > 1 and sizes.max() < blk.structure.q and lvl.n_groups > 0:
                raise ModelSpecificationError(
                    "level %s: %d random effects but at most %d observations per group; "
                    "the covariance is not identified" % (lvl.label, blk.structure.q, sizes.max())
                )
        for blk in lvl.blocks:
            if blk.expand_by is not None and blk.n_expand >= n and design.spec.residual.kind == "independent":
                raise ModelSpecificationError(
                    "%s has one observation per level: its variance is not identified separately from the "
                    "residual variance (lme4 refuses this too)" % ",".join(blk.expand_by))
        if lvl.n_groups >= n and design.spec.residual.kind == "independent" and lvl.q >= 1 and lvl is design.levels[-1]:
            raise ModelSpecificationError(
                "level %s has one observation per group: its variance is not identified "
                "separately from the residual variance" % lvl.label
            )


def _well_posed_pairs(ZtZ: np.ndarray) -> bool:
    """Every panel's ``2 x 2`` cross-product safely invertible (else a pseudo-inverse)."""
    a, b, d = ZtZ[:, 0, 0], ZtZ[:, 0, 1], ZtZ[:, 1, 1]
    return bool(np.all(a * d - b * b > 1e-8 * np.maximum(a * d, 1e-300)))


def _panel_fit_residual(design) -> float:
    """Residual sum of squares of ``y`` on ``X`` and every panel's own copy of the
    random-effects columns (all levels), from the cross-products.  The span is at
    least that of the fixed and random effects, so a clearly positive value rules
    an exact fit out."""
    ZtZ, ZtXY, B = design.ZtZ, design.ZtXY, design.XYtXY
    q = ZtZ.shape[1]
    if q == 1:  # one column per panel: elementwise
        z = ZtZ[:, 0, 0]
        inv_z = np.where(z > 0, 1.0 / np.where(z > 0, z, 1.0), 0.0)
        W = B - np.einsum("gi,g,gj->ij", ZtXY[:, 0, :], inv_z, ZtXY[:, 0, :])
    elif q == 2 and _well_posed_pairs(ZtZ):  # 2 x 2 inverses written out
        a, b, d = ZtZ[:, 0, 0], ZtZ[:, 0, 1], ZtZ[:, 1, 1]
        det = a * d - b * b
        c1, c2 = ZtXY[:, 0, :], ZtXY[:, 1, :]
        X1 = (d / det)[:, None] * c1 - (b / det)[:, None] * c2
        X2 = (a / det)[:, None] * c2 - (b / det)[:, None] * c1
        W = B - (c1.T @ X1 + c2.T @ X2)
    else:
        w, V = np.linalg.eigh(ZtZ)
        tol = 1e-12 * np.maximum(w[:, -1:], 1e-300) * ZtZ.shape[1]
        inv_w = np.where(w > tol, 1.0 / np.where(w > tol, w, 1.0), 0.0)
        VC = np.matmul(np.swapaxes(V, 1, 2), ZtXY)  # (G, q, p+1)
        W = B - np.einsum("gqi,gq,gqj->ij", VC, inv_w, VC)
    p = W.shape[0] - 1
    if not p:
        return float(W[0, 0])
    wx, vx = np.linalg.eigh(W[:p, :p])
    keep = wx > 1e-12 * max(wx[-1], 1e-300) * p
    c = vx[:, keep].T @ W[:p, p]
    return float(W[p, p] - c @ (c / wx[keep]))


def check_exact_fit(design, max_elements: int = 2_000_000) -> None:
    """Refuse a response that the fixed and random effects fit exactly (for
    instance y constant within the groups of a random intercept): the residual
    variance is then zero and the likelihood has no maximum.  Checked densely
    for designs whose full ``[X Z]`` has at most ``max_elements`` entries, after a
    screen on the per-panel cross-products that settles almost every design;
    larger ones are checked after the fit (the residual variance estimate)."""
    widths = [lvl.q * (lvl.n_groups if lvl.path else 1) for lvl in design.levels]
    if not sum(widths) or design.n * (design.p + sum(widths)) > max_elements:
        return
    if design.ZtZ is not None and design.ZtZ.shape[1]:
        scale = float(np.sum((design.y - design.y.mean()) ** 2))
        if _panel_fit_residual(design) > 1e-8 * scale:
            return
    Z = design.Z.toarray() if hasattr(design.Z, "toarray") else np.asarray(design.Z)
    cols, off = [design.X], 0
    for lvl in design.levels[::-1]:  # Z's columns: finest level first
        Zl = Z[:, off:off + lvl.q]
        off += lvl.q
        if lvl.q and lvl.path:  # one copy of the level's columns per group
            full = np.zeros((design.n, lvl.n_groups * lvl.q))
            idx = lvl.codes[:, None] * lvl.q + np.arange(lvl.q)[None, :]
            np.put_along_axis(full, idx, Zl, axis=1)
            Zl = full
        cols.append(Zl)
    A = np.column_stack(cols)
    coef, *_ = np.linalg.lstsq(A, design.y, rcond=None)
    r = design.y - A @ coef
    scale = float(np.sum((design.y - design.y.mean()) ** 2))
    if scale > 0 and float(r @ r) <= 1e-20 * scale:
        raise ModelSpecificationError(
            "the fixed and random effects fit '%s' exactly (is it constant within the groups of a level?): "
            "the residual variance would be zero and the likelihood has no maximum" % design.spec.response)
