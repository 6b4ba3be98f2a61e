"""The used columns of the estimation rows, read once from the user's data frame.

A :class:`ColumnTable` maps column names to arrays (numpy arrays; pandas
extension arrays -- categoricals, nullable types, arrow strings -- kept as
they are), all of one length.  The design stage reads the data frame once
into a table and works on the arrays, which costs microseconds per column
where a pandas column lookup costs tens; the estimation rows' data frame
(``Design.data``) is made from the table when asked for.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import pandas as pd


def is_extension(values) -> bool:
    """Whether ``values`` is a pandas extension array (not a numpy array)."""
    return isinstance(getattr(values, "dtype", None), pd.api.extensions.ExtensionDtype)


def take(values, rows: np.ndarray):
    """``values[rows]`` for numpy and extension arrays alike."""
    return values.take(rows) if is_extension(values) else values[rows]


class ColumnTable:
    """Read-only name -> array mapping of equally long columns; like a data frame,
    ``len`` is the number of rows and iteration yields the column names."""

    def __init__(self, arrays: dict):
        self._arrays = dict(arrays)
        self.n = len(next(iter(self._arrays.values()))) if self._arrays else 0

    @classmethod
    def from_frame(cls, data: pd.DataFrame, names) -> "ColumnTable":
        out = {}
        for nm in names:
            col = data[nm]
            out[nm] = col.array if is_extension(col) else col.to_numpy()
        return cls(out)

    def __getitem__(self, name: str):
        return self._arrays[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return self.n

    def __contains__(self, name) -> bool:
        return name in self._arrays

    @property
    def columns(self) -> list[str]:
        return list(self._arrays)

    def floats(self, name: str) -> np.ndarray:
        """Column ``name`` as float64 (no copy when it already is)."""
        return np.asarray(self._arrays[name], dtype=float)

    def take(self, rows: np.ndarray) -> "ColumnTable":
        return ColumnTable({k: take(v, rows) for k, v in self._arrays.items()})

    def with_columns(self, **columns) -> "ColumnTable":
        return ColumnTable({**self._arrays, **columns})

    def missing(self) -> np.ndarray:
        """Rows with a missing value in any column."""
        out = np.zeros(self.n, dtype=bool)
        for v in self._arrays.values():
            if isinstance(v, np.ndarray) and v.dtype.kind in "iub":
                continue
            out |= np.isnan(v) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else np.asarray(pd.isna(v))
        return out

    def frame(self) -> pd.DataFrame:
        """The table as a data frame (RangeIndex)."""
        return pd.DataFrame(self._arrays, index=pd.RangeIndex(self.n))
