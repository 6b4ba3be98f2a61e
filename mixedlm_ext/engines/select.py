"""The one place that chooses the random-effects engine of a design."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..core.linalg import group_starts
from .crossed import CrossedEngine
from .nested import NestedEngine


def make_engine(design, residual_is_plain: bool) -> tuple[object, Optional[np.ndarray]]:
    """The engine of ``design`` and the panel-to-group run starts, if any.

    * crossed random effects (and ``R.x`` factors at ``_all``) with a plain
      residual: :class:`~.crossed.CrossedEngine` (sparse, blocked);
    * otherwise :class:`~.nested.NestedEngine`, with the design's group
      weights when it has weights.  When the residual panels are finer than
      the finest level with random effects, the returned run starts sum the
      panels' cross-products into that level's groups.
    """
    if design.sparse_re and residual_is_plain:
        return CrossedEngine(design), None
    qs, parents, pre = design.engine_layout()
    weights = None
    if design.weights is not None and not design.weights.is_precision:
        weights = [design.weights.level_total[li] for li in design.re_level_indices()]
    engine = NestedEngine(qs, parents, weights)
    return engine, (group_starts(pre) if (pre is not None and qs) else None)
