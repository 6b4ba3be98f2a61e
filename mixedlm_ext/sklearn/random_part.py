"""The random part of the estimator's predictions on new data: ``Z b_hat`` of seen groups.

The BLUPs come from :func:`~mixedlm_ext.postestimation.blups.level_blups`
without their covariances (the estimator never uses them); the lookup of
new rows into the BLUP tables is postestimation's
:class:`~mixedlm_ext.postestimation.terms.TermLayout`, the same one
``results.predict`` uses.  Rows of groups not seen in training add 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..design.types import Level
from ..postestimation.blups import level_blups
from ..postestimation.terms import TermLayout, group_index


def effect_columns(level: Level) -> list[str]:
    """Column names of a level's BLUPs: each block's effects, an expanded block's
    as ``effect[factor level]``."""
    names = []
    for blk in level.blocks:
        if blk.expand_levels is None:
            names += list(blk.effects)
        else:
            names += ["%s[%s]" % (e, lev) for lev in blk.expand_levels for e in blk.effects]
    return names


@dataclass(frozen=True, eq=False)
class RandomPart:
    """The BLUPs of a fit and how rows of new data find them (picklable)."""

    layout: TermLayout
    b: dict[str, np.ndarray]  # term key -> BLUP table (TermLayout.tables)
    frames: dict[str, pd.DataFrame]  # level label -> BLUPs, groups x effects (coarsest first)

    @classmethod
    def of(cls, results) -> "RandomPart":
        """From fitted results (or their wrapper): BLUPs at the estimates."""
        design = results.model.design
        layout = TermLayout.of(design)
        blups = level_blups(results.model.objective, np.asarray(results.opt.theta, dtype=float), None,
                            covariances=False)
        frames = {}
        for li, lb in sorted(blups.items()):
            lvl = design.levels[li]
            index = group_index(lvl.keys, lvl.path) if lvl.path else pd.Index(["_all"])
            frames[lvl.label] = pd.DataFrame(lb.b, index=index, columns=effect_columns(lvl))
        return cls(layout, layout.tables(blups, "b"), frames)

    @property
    def has_terms(self) -> bool:
        """Whether the model has random effects."""
        return bool(self.layout.terms)

    @property
    def columns(self) -> list[str]:
        """Data columns the random part needs (grouping and random-effect variables)."""
        return self.layout.columns

    def contribution(self, data: pd.DataFrame) -> np.ndarray:
        """Per row, ``z_i' b_g`` summed over the terms (0 for groups not seen in training)."""
        rows = self.layout.rows(data)
        total = self.layout.random_part(rows, self.b, len(self.layout.design.levels) - 1)
        return np.zeros(len(data)) if total is None else total
