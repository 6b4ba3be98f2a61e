"""Grouping levels: integer codes, the merging of equations, nesting or crossing."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..spec.model import REEquation
from .table import take


_LOOKUP_SPAN = 4  # integer codes by a lookup table while max - min < 4 n (+1024)


def factor_codes(values) -> tuple[np.ndarray, int]:
    """Row -> index of its value among the sorted distinct values, and their number.

    Integers with a moderate range go through a lookup table (one pass, no
    sort, no hashing); anything else through :func:`pandas.factorize`
    (sorted, as ``groupby(sort=True)`` orders groups; categoricals by their
    categories)."""
    arr = values if isinstance(values, np.ndarray) else None
    if arr is not None and arr.dtype.kind in "iu" and arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if hi - lo < _LOOKUP_SPAN * arr.size + 1024:
            present = np.zeros(hi - lo + 1, dtype=bool)
            shifted = arr - lo
            present[shifted] = True
            rank = np.cumsum(present, dtype=np.intp) - 1
            return rank[shifted], int(rank[-1]) + 1
    codes, uniques = pd.factorize(values, sort=True)
    return codes.astype(np.intp, copy=False), len(uniques)


def combined_codes(columns: list) -> tuple[np.ndarray, int]:
    """Codes of the combinations of several columns, in lexicographic order of their values."""
    codes, G = factor_codes(columns[0])
    for col in columns[1:]:
        c, k = factor_codes(col)
        codes, G = factor_codes(codes.astype(np.int64) * k + c)
    return codes, G


def first_rows(codes: np.ndarray, n_groups: int) -> np.ndarray:
    """The first row of each group."""
    if codes.size and np.all(codes[1:] >= codes[:-1]):  # rows sorted by group: run starts
        return np.searchsorted(codes, np.arange(n_groups))
    return np.unique(codes, return_index=True)[1]


def _values(df, name: str):
    """A column as numpy values (extension types as their pandas array)."""
    col = df[name]
    if not isinstance(col, pd.Series):  # a ColumnTable's array
        return col
    return col.array if isinstance(col.dtype, pd.api.extensions.ExtensionDtype) else col.to_numpy()


def group_key_values(df, cols: tuple[str, ...]) -> tuple[np.ndarray, dict]:
    """Row -> group index (groups sorted by their values) and, per column, each group's value."""
    if not cols:
        return np.zeros(len(df), dtype=np.intp), {}
    codes, G = combined_codes([_values(df, c) for c in cols])
    rows = first_rows(codes, G)
    return codes, {c: take(_values(df, c), rows) for c in cols}


def group_codes(df: pd.DataFrame, cols: tuple[str, ...]) -> tuple[np.ndarray, pd.DataFrame]:
    """Row -> group index (groups sorted by their values) and the group keys."""
    if not cols:
        return np.zeros(len(df), dtype=np.intp), pd.DataFrame(index=[0])
    codes, values = group_key_values(df, cols)
    return codes, pd.DataFrame(values, index=pd.RangeIndex(int(codes.max()) + 1 if codes.size else 0))


def merge_equations(eqs: tuple[REEquation, ...]) -> list[tuple[tuple[str, ...], list[REEquation]]]:
    """Group equations by grouping path, keeping first-appearance order."""
    out: list[tuple[tuple[str, ...], list[REEquation]]] = []
    for eq in eqs:
        for path, lst in out:
            if path == eq.group and eq.factor is None and all(e.factor is None for e in lst):
                lst.append(eq)
                break
        else:
            if eq.group == () and out and out[-1][0] == ():
                out[-1][1].append(eq)  # _all: R.a || _all: R.b -> one level, block diagonal
            else:
                out.append((eq.group, [eq]))
    return out


def nested_in_data(df: pd.DataFrame, paths: list[tuple[str, ...]]) -> bool:
    """Whether each grouping (in order) nests within the previous one."""
    prev = None
    for path in paths:
        if not path:
            if prev is not None:
                return False
            prev = path
            continue
        if prev:
            fine = group_codes(df, path)[0]
            coarse, Gc = combined_codes([_values(df, c) for c in prev])
            G = int(fine.max()) + 1 if fine.size else 0
            _, n_pairs = factor_codes(fine.astype(np.int64) * Gc + coarse)
            if n_pairs > G:
                return False
        prev = path
    return True


def as_crossed(merged):
    """Crossed groupings become blocks of one ``_all`` level, expanded by their grouping."""
    eqs = [eq for _, lst in merged for eq in lst]
    return [((), eqs)]


def level_paths(merged, df: pd.DataFrame) -> tuple[list, list[tuple[str, ...]], bool]:
    """Full grouping path of each merged level and whether the groupings cross.

    A level's path extends the coarser level's (``|| region: || state:`` gives
    ``(region, state)``).  Paths that are not prefixes of each other are
    checked in the data: if they do not nest, the design is crossed and all
    equations become blocks of one ``_all`` level.
    """
    paths: list[tuple[str, ...]] = []
    prev: tuple[str, ...] = ()
    for path, _ in merged:
        full = path if (path[: len(prev)] == prev or path == ()) else tuple(dict.fromkeys(prev + path))
        paths.append(full)
        prev = full
    prefix_chain = all(b[: len(a)] == a for (a, _), (b, _) in zip(merged, merged[1:]))
    crossed = len(merged) > 1 and not prefix_chain and not nested_in_data(df, [p for p, _ in merged])
    if crossed:
        return as_crossed(merged), [()], True
    return merged, paths, False
