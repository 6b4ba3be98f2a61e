"""The sufficient statistics of a Dask DataFrame, partition by partition.

:func:`dask_statistics` projects the frame on the columns the model reads,
scans it when the model needs levels first (factor variables, ``R.x``
factors, crossed groupings), puts each panel's rows in one partition when a
residual structure needs them in time order (a shuffle, only if some panel
spans partitions), and reduces every partition to its statistics, adding
them in a tree on the workers.  :func:`dask_design` makes the design: from
the merged statistics on the client, or, when the per-panel cross-products
are too large for it, with them left on the workers (:mod:`.shards`).
"""
from __future__ import annotations

import operator
import re

import pandas as pd

from ..core.errors import ModelSpecificationError
from ..design.build import model_variables, used_columns
from ..design.statistics import SufficientStatistics
from ..design.statistics_chunk import chunk_statistics
from ..design.statistics_design import design_from_statistics
from ..design.statistics_layout import Scan, levels_to_scan, needs_group_scan, scan_frame, statistics_layout
from ..spec.model import ModelSpec
from .frames import frame_meta, import_dask
from .shards import MAX_CLIENT_ELEMENTS, can_shard, light_statistics, sharded_design

SPLIT_EVERY = 8  # partitions' statistics added together per task of the tree


def tree_reduce(dask, items: list, combine, split_every: int = SPLIT_EVERY):
    """One delayed object combining ``items`` (delayed) in a tree of fan-in ``split_every``."""
    while len(items) > 1:
        groups = [items[i:i + split_every] for i in range(0, len(items), split_every)]
        items = [dask.delayed(_combine_all, pure=True)(combine, *g) if len(g) > 1 else g[0] for g in groups]
    return items[0]


def _combine_all(combine, *parts):
    out = parts[0]
    for p in parts[1:]:
        out = combine(out, p)
    return out


def _subset_columns(spec: ModelSpec, columns) -> list[str]:
    """Columns named in the ``if`` condition."""
    if not spec.subset:
        return []
    return [c for c in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", spec.subset) if c in columns]


def model_frame(spec: ModelSpec, ddf):
    """The Dask frame projected on the columns the model reads (and the ``if`` condition)."""
    meta = frame_meta(ddf)
    v = model_variables(spec, meta)
    cols = list(dict.fromkeys(used_columns(spec, v) + _subset_columns(spec, meta.columns)))
    return ddf[cols]


def _panel_keys(path: list, part: pd.DataFrame) -> pd.DataFrame:
    return part[path].drop_duplicates()


def _whole_panels(dask, spec: ModelSpec, layout, frame):
    """``frame`` with every panel in one partition (shuffled only when some panel spans partitions)."""
    path = list(layout.panel_path)
    if not path or frame.npartitions == 1:
        return frame
    parts = frame[path].to_delayed()
    keys = dask.compute(*[dask.delayed(_panel_keys, pure=True)(path, p) for p in parts])
    if not pd.concat(keys, ignore_index=True).duplicated().any():
        return frame
    return frame.shuffle(on=path)


def dask_scan(spec: ModelSpec, frame) -> Scan:
    """The levels and groupings the layout needs (an empty scan when it needs none)."""
    dask, _ = import_dask()
    meta = frame_meta(frame)
    factors = levels_to_scan(spec, meta)
    if not factors and not needs_group_scan(spec):
        return Scan({})
    scans = [dask.delayed(scan_frame, pure=True)(spec, p, factors) for p in frame.to_delayed()]
    return tree_reduce(dask, scans, operator.add).compute()


def partition_statistics(dask, spec: ModelSpec, ddf) -> tuple[object, list]:
    """The layout and one delayed :class:`SufficientStatistics` per partition."""
    frame = model_frame(spec, ddf)
    layout = statistics_layout(spec, frame_meta(frame), dask_scan(spec, frame))
    if spec.residual.kind in ("ar", "exponential"):  # lagged cross-products: a panel's rows together
        frame = _whole_panels(dask, spec, layout, frame)
    lay = dask.delayed(layout, pure=True)
    return layout, [dask.delayed(chunk_statistics, pure=True)(lay, p) for p in frame.to_delayed()]


def dask_statistics(spec: ModelSpec, ddf) -> SufficientStatistics:
    """The :class:`SufficientStatistics` of the rows of the Dask DataFrame ``ddf``."""
    dask, _ = import_dask()
    _, parts = partition_statistics(dask, spec, ddf)
    return tree_reduce(dask, parts, operator.add).compute()


STATISTICS_ON = ("auto", "client", "workers")


def dask_design(spec: ModelSpec, ddf, statistics_on: str = "auto"):
    """The design of the rows of ``ddf``: from the merged statistics on the client
    (``"client"``), or with the per-panel cross-products left on the workers in
    shards of whole clusters (``"workers"``, :mod:`.shards`); ``"auto"`` keeps
    them on the workers when they exceed ``MAX_CLIENT_ELEMENTS`` numbers and the
    model allows it."""
    if statistics_on not in STATISTICS_ON:
        raise ValueError("statistics_on must be one of %s, got %r" % (", ".join(STATISTICS_ON), statistics_on))
    dask, _ = import_dask()
    layout, parts = partition_statistics(dask, spec, ddf)
    if statistics_on == "client":
        return design_from_statistics(tree_reduce(dask, parts, operator.add).compute())
    why = can_shard(layout)
    if why is not None and statistics_on == "workers":
        raise ModelSpecificationError("statistics_on='workers' is not available with %s; use "
                                      "statistics_on='client'" % why)
    parts = list(dask.persist(*parts))  # the per-partition statistics stay where they were computed
    light = tree_reduce(dask, [dask.delayed(light_statistics, pure=True)(p) for p in parts], operator.add).compute()
    size = len(light.panels) * layout.Q * (layout.Q + layout.k)
    if statistics_on == "auto" and (why is not None or size <= MAX_CLIENT_ELEMENTS):
        return design_from_statistics(tree_reduce(dask, parts, operator.add).compute())
    return sharded_design(dask, light, parts, n_shards=max(2, min(len(parts), 16)))
