"""Recognising Dask DataFrames without importing Dask, and importing it when needed."""
from __future__ import annotations


def is_dask_frame(obj) -> bool:
    """Whether ``obj`` is a Dask DataFrame (checked without importing Dask)."""
    root = (type(obj).__module__ or "").split(".")[0]
    return root in ("dask", "dask_expr") and all(hasattr(obj, a) for a in ("map_partitions", "npartitions",
                                                                              "to_delayed", "columns"))


def import_dask():
    """``(dask, dask.dataframe)``; a clear ImportError naming the extra when Dask is missing."""
    try:
        import dask
        import dask.dataframe as dd
    except ImportError as exc:  # pragma: no cover - the test environment has Dask
        raise ImportError("fitting a Dask DataFrame needs Dask: pip install \"mixedlm_ext[dask]\" "
                          "(dask[dataframe,distributed] and pyarrow)") from exc
    return dask, dd


def frame_meta(ddf):
    """The zero-row pandas frame with the columns and types of a Dask DataFrame."""
    return ddf._meta


def map_frame(ddf, fn, *args, meta):
    """``fn(partition, *args)`` on every partition of ``ddf`` (a lazy Dask collection);
    ``args`` are sent to the workers once."""
    dask, _ = import_dask()
    shared = [dask.delayed(a, pure=True) if not isinstance(a, (str, type(None))) else a for a in args]
    return ddf.map_partitions(fn, *shared, meta=meta)
