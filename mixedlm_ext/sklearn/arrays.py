"""Array mode of the estimator: column references, internal names, groups.

In array mode (``formula=None``) the estimator builds a data frame from
``X``, ``y`` and ``groups`` and a model on its columns; these helpers check
the arguments and name the frame's columns.
"""
from __future__ import annotations

import keyword
import numbers
from typing import Optional, Sequence

import numpy as np

# names the results use for something else (patsy's "Intercept" becomes "_cons")
RESERVED_NAMES = frozenset({"Intercept", "_cons", "Residual", "_all"})


def usable_name(name) -> bool:
    """Whether a column name can appear as such in the internal formula."""
    return (isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name)
            and name not in RESERVED_NAMES)


def free_name(cands: Sequence, taken: set) -> str:
    """The first candidate usable in a formula and not in ``taken``, else ``_<last><k>``;
    it is added to ``taken``."""
    for c in cands:
        if usable_name(c) and c not in taken:
            taken.add(c)
            return c
    k = 0
    while "_%s%d" % (cands[-1], k) in taken:
        k += 1
    taken.add("_%s%d" % (cands[-1], k))
    return "_%s%d" % (cands[-1], k)


def internal_names(feature_names: Sequence, y_name, g_names: Sequence) -> tuple[list[str], str, list[str], str]:
    """Column names of the internal data frame (features, response, grouping columns,
    weights): the real names when usable in a formula."""
    p = len(feature_names)
    feats = list(feature_names)
    if not all(usable_name(f) for f in feats) or len(set(feats)) < p:
        feats = ["x%d" % j for j in range(p)]
    taken = set(feats)
    y_col = free_name([y_name, "y"], taken)
    g_cols = [free_name([g, "group" if len(g_names) == 1 else "group%d" % k], taken) for k, g in enumerate(g_names)]
    return feats, y_col, g_cols, free_name(["sample_weight"], taken)


def _column_position(ref, names: Optional[Sequence], p: int, what: str) -> int:
    """Index of the column of X named or indexed by ``ref``."""
    if isinstance(ref, (numbers.Integral, np.integer)) and not isinstance(ref, (bool, np.bool_)):
        j = int(ref)
        if not -p <= j < p:
            raise ValueError("%s: column index %d out of range for X with %d columns" % (what, j, p))
        return j % p
    if not isinstance(ref, str):
        raise ValueError("%s must hold column names or indices, got %r" % (what, ref))
    if names is None:
        raise ValueError("%s: column %r given by name but X has no column names; use an index "
                         "(or a DataFrame / set_output(transform='pandas'))" % (what, ref))
    hits = [j for j, n in enumerate(names) if n == ref]
    if not hits:  # ColumnTransformer output names: "step__name"
        hits = [j for j, n in enumerate(names) if str(n).endswith("__" + ref)]
    if len(hits) != 1:
        raise ValueError("%s: column %r %s among %s" % (
            what, ref, "not found" if not hits else "ambiguous", list(names)))
    return hits[0]


def resolve_columns(refs, names: Optional[Sequence], p: int, what: str) -> list[int]:
    """Indices of the columns of X named or indexed by ``refs``.

    ``names`` are X's column names (None: X had none), ``p`` its number of
    columns; a name also matches a ``ColumnTransformer`` output ``"step__name"``.
    """
    if refs is None:
        return []
    if isinstance(refs, (str, numbers.Integral)):
        refs = [refs]
    out = [_column_position(r, names, p, what) for r in refs]
    if len(set(out)) != len(out):
        raise ValueError("%s: a column is listed twice: %r" % (what, refs))
    return out


def one_per_row(values, n: int, what: str = "groups") -> np.ndarray:
    """``values`` as a 1-D array with one value per row of X (ValueError otherwise)."""
    g = np.asarray(values)
    if g.ndim == 2 and g.shape[1] == 1:
        g = g[:, 0]
    if g.ndim != 1 or len(g) != n:
        raise ValueError("%s must be one-dimensional with one value per row of X "
                         "(got shape %s for %d rows)" % (what, np.shape(values), n))
    return g


def grouping_columns(groups, n: int) -> tuple[list[np.ndarray], list]:
    """``groups`` as one array per grouping level (coarsest first) and their names.

    One value per row gives one level; a 2-D array or DataFrame with ``k``
    columns gives ``k`` nested levels (each column nested in the one before).
    """
    names = list(groups.columns) if hasattr(groups, "columns") else [getattr(groups, "name", None)]
    g = np.asarray(groups, dtype=object) if hasattr(groups, "columns") else np.asarray(groups)
    if g.ndim == 1 or (g.ndim == 2 and g.shape[1] == 1):
        return [one_per_row(g, n)], names[:1]
    if g.ndim != 2 or g.shape[0] != n:
        raise ValueError("groups must have one row per row of X (got shape %s for %d rows)" % (g.shape, n))
    if len(names) != g.shape[1]:
        names = [None] * g.shape[1]
    return [g[:, k] for k in range(g.shape[1])], names
