"""Checks of the data against a specification; each error names the problem."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.errors import ModelSpecificationError


def check_columns(data: pd.DataFrame, names, what: str) -> None:
    """Every name is a column of ``data``."""
    for nm in names:
        if nm not in data.columns:
            raise ModelSpecificationError("variable '%s' not found (%s)" % (nm, what))


def check_group_types(df: pd.DataFrame, names) -> None:
    """Grouping variables must be sortable: one type of value per column."""
    for c in dict.fromkeys(names):
        if df[c].dtype == object and df[c].map(type).nunique() > 1:
            raise ModelSpecificationError(
                "grouping variable '%s' mixes values of different types (e.g. numbers and strings); "
                "convert it to one type" % c)


def check_finite(data: pd.DataFrame, names) -> None:
    """Infinite values are not data: say which variable holds them."""
    for nm in dict.fromkeys(names):
        col = data[nm]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            v = col.to_numpy(dtype=float)
            if np.isinf(v).any():
                raise ModelSpecificationError("variable '%s' has %d infinite value(s)" % (nm, int(np.isinf(v).sum())))


def check_numeric(data: pd.DataFrame, names, what: str) -> None:
    """Numeric (or boolean) columns only; a string column is a factor variable."""
    for nm in names:
        if pd.api.types.is_bool_dtype(data[nm]):
            continue
        if not pd.api.types.is_numeric_dtype(data[nm]):
            raise ModelSpecificationError(
                "variable '%s' is not numeric (%s); use i.%s (or C(%s)) for a factor variable"
                % (nm, what, nm, nm)
            )


def check_level_effects(label: str, blocks: list, df: pd.DataFrame) -> None:
    """Each random effect appears once per level and is not identically zero."""
    seen = set()
    for blk in blocks:
        for e in blk.effects:
            if (blk.expand_by, e) in seen:
                raise ModelSpecificationError(
                    "level %s: %s appears in more than one equation; a repeated level needs "
                    "distinct terms (use noconstant in the later equations)" % (label, e))
            seen.add((blk.expand_by, e))
        for c in blk.equation.columns:
            if not np.any(df[c].to_numpy(dtype=float) != 0):
                raise ModelSpecificationError(
                    "level %s: random-effects variable '%s' is zero in every observation" % (label, c))


def check_identified(design) -> None:
    """Refuse models with more random-effect parameters than the data identify."""
    n = design.n
    for lvl in design.levels:
        sizes = lvl.sizes()
        for blk in lvl.blocks:
            if blk.expand_by is None and blk.structure.q > 1 and sizes.max() < blk.structure.q and lvl.n_groups > 0:
                raise ModelSpecificationError(
                    "level %s: %d random effects but at most %d observations per group; "
                    "the covariance is not identified" % (lvl.label, blk.structure.q, sizes.max())
                )
        if lvl.n_groups >= n and design.spec.residual.kind == "independent" and lvl.q >= 1 and lvl is design.levels[-1]:
            raise ModelSpecificationError(
                "level %s has one observation per group: its variance is not identified "
                "separately from the residual variance" % lvl.label
            )
