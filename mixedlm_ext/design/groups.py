"""Grouping levels: integer codes, the merging of equations, nesting or crossing."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..spec.model import REEquation


def group_codes(df: pd.DataFrame, cols: tuple[str, ...]) -> tuple[np.ndarray, pd.DataFrame]:
    """Row -> group index (groups sorted by their values) and the group keys."""
    if not cols:
        return np.zeros(len(df), dtype=np.intp), pd.DataFrame(index=[0])
    g = df.groupby(list(cols), sort=True, observed=True)
    codes = g.ngroup().to_numpy().astype(np.intp)
    keys = g.size().reset_index()[list(cols)]
    return codes, keys


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
            fine = df.groupby(list(path), sort=False, observed=True)
            n_parents = fine[list(prev)].nunique() if len(prev) > 1 else fine[prev[0]].nunique()
            n_parents = np.asarray(n_parents).reshape(len(n_parents), -1)
            if (n_parents > 1).any():
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
