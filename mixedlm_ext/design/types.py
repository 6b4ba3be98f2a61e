"""What a bound design is made of: blocks, levels and the :class:`Design`.

A :class:`Design` is built once by :func:`~.build.build_design` and never
changed afterwards: every derived quantity (the working fixed part, the
cross-products, the weights) is computed before it is constructed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import pandas as pd

from ..core.linalg import grouped_crossprod
from ..spec.model import ModelSpec, REEquation
from ..structures.covariance import CovStruct
from ..structures.residual.structure import ResidualStructure, make_residual
from .fixed import FixedPart
from .working import WorkingFixedPart


@dataclass(frozen=True)
class Block:
    """One random-effects equation inside a level.

    The block's random effects are ``effects`` (base columns), repeated once
    per level of ``expand_by`` when that is set (Stata's ``R.x`` and crossed
    lme4 terms): its relative factor is ``kron(I_k, Lambda)``.
    """

    equation: REEquation
    structure: CovStruct
    effects: tuple[str, ...]
    label: str
    expand_by: Optional[tuple[str, ...]] = None
    expand_levels: Optional[tuple] = None

    @property
    def n_expand(self) -> int:
        return 1 if self.expand_levels is None else len(self.expand_levels)

    @property
    def q(self) -> int:
        return self.structure.q * self.n_expand

    def expand(self, M: np.ndarray) -> np.ndarray:
        """``kron(I_k, M)``: a per-level ``q x q`` matrix repeated over the factor's levels."""
        M = np.asarray(M, dtype=float)
        return M if self.n_expand == 1 else np.kron(np.eye(self.n_expand), M)

    def relative_factor(self, theta: np.ndarray) -> np.ndarray:
        return self.expand(self.structure.relative_factor(theta))

    def factor_from_natural(self, nat: np.ndarray, sigma2: float) -> np.ndarray:
        return self.expand(self.structure.factor_from_natural(nat, sigma2))

    @property
    def title(self) -> str:
        return self.structure.title


@dataclass(frozen=True, eq=False)
class Level:
    """A grouping level: one group per distinct value of its path."""

    label: str
    path: tuple[str, ...]
    blocks: tuple[Block, ...]
    codes: np.ndarray  # row -> group index (rows sorted)
    n_groups: int
    parent: Optional[np.ndarray] = None  # group -> parent group at the coarser level
    key_values: Optional[dict] = None  # path column -> its value for each group

    @property
    def keys(self) -> Optional[pd.DataFrame]:
        """Group -> values of the path columns (made when asked for: most fits never do)."""
        if self.key_values is None:
            return None
        return pd.DataFrame(self.key_values, index=pd.RangeIndex(self.n_groups))

    @property
    def q(self) -> int:
        return sum(b.q for b in self.blocks)

    def sizes(self) -> np.ndarray:
        return np.bincount(self.codes, minlength=self.n_groups)


@dataclass(frozen=True, eq=False)
class Design:
    """Data bound to a model: matrices, codes and cross-products (built once)."""

    spec: ModelSpec
    y: np.ndarray
    X: np.ndarray
    fixed: FixedPart
    levels: tuple[Level, ...]  # coarsest first
    Z: object  # (n, Q) ndarray, or CSC for large crossed designs; columns finest level first
    row_index: pd.Index  # original labels of the (sorted) estimation rows
    row_pos: np.ndarray  # their positions in the user's data
    n_dropped: int
    table: object  # the estimation rows (sorted), used columns only: a design.table.ColumnTable
    working: WorkingFixedPart = field(repr=False)
    # per lowest-level panel Z'Z (G, Q, Q) and Z'[Xw yw] (G, Q, p+1); None for the crossed engine
    ZtZ: Optional[np.ndarray] = field(repr=False, default=None)
    ZtXY: Optional[np.ndarray] = field(repr=False, default=None)
    XYtXY: Optional[np.ndarray] = field(repr=False, default=None)  # [Xw yw]'[Xw yw]
    sparse_re: bool = False  # random effects through the crossed engine (crossed groupings, R.x at _all)
    crossed_groupings: bool = False  # groupings that do not nest
    weights: Optional[object] = field(repr=False, default=None)  # weights.WeightInfo
    offset: Optional[np.ndarray] = field(repr=False, default=None)  # lme4's offset(): y is the response minus it

    @property
    def data(self) -> pd.DataFrame:
        """The estimation rows (sorted), used columns only, as a data frame (made when
        asked for; the design's own computations read :attr:`table`)."""
        return self.table.frame()

    holds_rows = True  # the rows are here (a design from sufficient statistics has none)

    def residual_structure(self) -> ResidualStructure:
        """The (unbound) residual structure of the model, for this kind of design."""
        return make_residual(self.spec.residual)

    def cluster_crossproducts(self) -> tuple[np.ndarray, np.ndarray]:
        """Per top-level cluster: ``[Xw yw]'[Xw yw]`` ``(C, p+1, p+1)`` and the sum of the
        observations' weights (their number without weights) ``(C,)``."""
        top = self.levels[0]
        XY = self.XY
        a = np.ones(self.n) if self.weights is None else self.weights.total_obs
        return (grouped_crossprod(XY, XY, top.codes, top.n_groups),
                np.bincount(top.codes, weights=a, minlength=top.n_groups))

    def top_clusters(self, level_index: int) -> np.ndarray:
        """The top-level cluster of each group of level ``level_index`` (through the parent maps)."""
        c = np.arange(self.levels[level_index].n_groups)
        for j in range(level_index, 0, -1):
            c = self.levels[j].parent[c]
        return c

    def layout_crossproducts(self) -> Optional[tuple]:
        """``(Z'Z, Z'[Xw yw])`` in the nested engine's level layout when the design
        holds them instead of rows (crossed designs from sufficient statistics); else None."""
        return None

    # -- sizes -------------------------------------------------------------
    @property
    def n(self) -> int:
        return self.y.shape[0]

    @property
    def p(self) -> int:
        return self.X.shape[1]

    @property
    def Q(self) -> int:
        return self.Z.shape[1]

    @property
    def fe_names(self) -> list[str]:
        return list(self.fixed.names)

    @property
    def omitted(self) -> list[str]:
        return list(self.fixed.omitted)

    @property
    def has_constant(self) -> bool:
        return "_cons" in self.fixed.names

    # -- the working fixed part ------------------------------------------
    @property
    def Xw(self) -> np.ndarray:
        return self.working.Xw

    @property
    def yw(self) -> np.ndarray:
        return self.working.yw

    @property
    def Rx(self) -> np.ndarray:
        return self.working.Rx

    @property
    def Rx_inv(self) -> np.ndarray:
        return self.working.Rx_inv

    @property
    def logdet_Rx2(self) -> float:
        return self.working.logdet_Rx2

    @property
    def b_ols(self) -> np.ndarray:
        return self.working.b_ols

    @property
    def XY(self) -> np.ndarray:
        """``[Xw yw]``, ``(n, p+1)``."""
        return np.column_stack([self.Xw, self.yw])

    # -- levels ------------------------------------------------------------
    @property
    def panel_codes(self) -> np.ndarray:
        """Row -> lowest-level group (the panels of residual structures)."""
        if not self.levels:
            return np.zeros(self.n, dtype=np.intp)
        return self.levels[-1].codes

    @property
    def n_panels(self) -> int:
        return self.levels[-1].n_groups if self.levels else 1

    @property
    def blocks(self) -> list[Block]:
        """Every block, coarsest level first (the order of the parameters)."""
        return [b for lvl in self.levels for b in lvl.blocks]

    def re_level_indices(self) -> list[int]:
        """Indices into ``levels`` of the levels with random effects, finest first
        (the engine's level order)."""
        return [li for li in range(len(self.levels) - 1, -1, -1) if self.levels[li].q > 0]

    def re_levels(self) -> list[Level]:
        """The levels with random effects, finest first (the engine's level order)."""
        return [self.levels[li] for li in self.re_level_indices()]

    def engine_layout(self) -> tuple[list[int], list, Optional[np.ndarray]]:
        """The engine's levels: columns per level and parent maps, finest first.

        Returns ``(q per level, parent map per level, panel map)``.  A level
        without random effects (it only defines residual panels) is skipped;
        the parent map of the level below it is composed through it.  The
        panel map sends the panels (lowest-level groups) to the groups of the
        finest level with random effects when the panels are finer (else None).
        """
        qs, parents = [], []
        pending = None  # composed map from the last kept level to the current one
        pre = None  # panels -> groups of the finest level with random effects
        for lvl in self.levels[::-1]:
            if lvl.q > 0:
                if qs:
                    parents[-1] = pending
                qs.append(lvl.q)
                parents.append(None)
                pending = lvl.parent
            elif qs and pending is not None and lvl.parent is not None:
                pending = lvl.parent[pending]
            elif not qs:
                pre = lvl.parent if pre is None else (None if lvl.parent is None else lvl.parent[pre])
        return qs, parents, pre


@dataclass(frozen=True)
class BlockPosition:
    """Where a block's factor sits in the dense ``Lambda`` (columns finest level first):
    ``n_expand`` copies of a ``qe x qe`` factor from column ``offset``."""

    offset: int
    qe: int
    n_expand: int


def block_positions(design: Design) -> list[BlockPosition]:
    """Positions of every block (design order, coarsest level first) in the dense ``Lambda``."""
    level_offset, off = {}, 0
    for li in range(len(design.levels) - 1, -1, -1):
        level_offset[li] = off
        off += design.levels[li].q
    out = []
    for li, lvl in enumerate(design.levels):
        o = level_offset[li]
        for blk in lvl.blocks:
            out.append(BlockPosition(o, blk.structure.q, blk.n_expand))
            o += blk.q
    return out
