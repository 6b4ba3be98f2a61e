"""The random effects of a crossed design regrouped into *terms*.

A term (MixedModels.jl's ``ReMat``) is a grouping (one code per row, ``G``
groups), ``q`` base columns per row and a ``q x q`` relative factor shared by
all groups, so the term's part of ``Z`` is the row-wise Kronecker product of
the group indicators and the base columns, and its part of ``Lambda`` is
``kron(I_G, Lambda_t)``.  Blocks of one level with the same grouping
(``(1|a) + (0+x|a)``) share a term (block-diagonal ``Lambda_t``).

The *level layout* is the nested engine's: one ``(G, q)`` array per level
with random effects, finest first, flattened row major into one ``u`` vector;
each term knows the positions of its entries in it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from ..design.groups import group_codes
from ..design.random import base_matrix
from ..design.types import Block, Design, Level, block_positions


@dataclass(frozen=True, eq=False)
class CrossedTerm:
    """One grouping factor with its base columns and relative factor."""

    label: str
    codes: np.ndarray  # (n,) row -> group
    G: int
    base: np.ndarray  # (n, q)
    blocks: tuple[tuple[int, int, int], ...]  # (global block index, column offset in term, qe)
    pos: np.ndarray  # (G, q) flat position in the level-layout u vector

    @property
    def q(self) -> int:
        return self.base.shape[1]

    def factor(self, lams: Sequence[np.ndarray]) -> np.ndarray:
        """``Lambda_t`` from the per-block base factors (global block order)."""
        if len(self.blocks) == 1:
            return np.asarray(lams[self.blocks[0][0]], dtype=float)
        out = np.zeros((self.q, self.q))
        for bi, off, qe in self.blocks:
            out[off:off + qe, off:off + qe] = lams[bi]
        return out


def level_layout(design: Design) -> tuple[dict[int, int], int]:
    """Levels with random effects, finest first, and each one's offset in the
    flattened level-layout ``u`` vector (``(G, q)`` per level, row major)."""
    offs, total = {}, 0
    for li in range(len(design.levels) - 1, -1, -1):
        lvl = design.levels[li]
        if lvl.q == 0:
            continue
        offs[li] = total
        total += lvl.n_groups * lvl.q
    return offs, total


def _block_grouping(design: Design, lvl: Level, blk: Block, start: int, boff: int, qe: int):
    """``(codes, G, pos, key, label)`` of one block: its grouping and where its
    entries sit in the level-layout ``u`` vector (``start``: the level's offset,
    ``boff``: the block's column offset in the level)."""
    G_l, q_l = lvl.n_groups, lvl.q
    if blk.expand_by is None:
        pos = start + np.arange(G_l)[:, None] * q_l + boff + np.arange(qe)[None, :]
        return lvl.codes, G_l, pos, None, lvl.label
    ecodes, _ = group_codes(design.table, tuple(blk.expand_by))
    k = blk.n_expand
    codes = lvl.codes * k + ecodes if lvl.path else ecodes
    G = G_l * k if lvl.path else k
    g = np.arange(G)
    grp, e = (g // k, g % k) if lvl.path else (np.zeros(G, dtype=np.intp), g)
    pos = start + grp[:, None] * q_l + boff + e[:, None] * qe + np.arange(qe)[None, :]
    return codes, G, pos, tuple(blk.expand_by), ",".join(blk.expand_by)


def build_terms(design: Design) -> tuple[list[CrossedTerm], int]:
    """The design's random effects as crossed terms (in design order) and the
    length of the level-layout ``u`` vector."""
    offs, total = level_layout(design)
    parts: dict = {}  # (level, grouping) -> label, codes, G, [(block, offset, qe)], [base], [pos]
    bi = 0
    for li, lvl in enumerate(design.levels):
        boff = 0
        for blk in lvl.blocks:
            base = base_matrix(blk.equation, design.table)
            qe = base.shape[1]
            codes, G, pos, by, label = _block_grouping(design, lvl, blk, offs[li], boff, qe)
            key = (li, by)
            if key not in parts:
                parts[key] = (label, np.asarray(codes, dtype=np.intp), int(G), [], [], [])
            _, _, _, blocks, bases, poss = parts[key]
            blocks.append((bi, sum(b.shape[1] for b in bases), qe))
            bases.append(base)
            poss.append(pos)
            boff += blk.q
            bi += 1
    terms = [CrossedTerm(label, codes, G, np.column_stack(bases), tuple(blocks), np.column_stack(poss))
             for label, codes, G, blocks, bases, poss in parts.values()]
    return terms, total


def term_matrix(terms: Sequence[CrossedTerm], n: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """Sparse ``[Z_t1 Z_t2 ...]`` (n x sum G q) and the column offset of each term."""
    offs = np.concatenate([[0], np.cumsum([t.G * t.q for t in terms])]).astype(np.int64)
    if not terms:
        return sp.csr_matrix((n, 0)), offs
    idx = np.column_stack([offs[i] + t.codes.astype(np.int64)[:, None] * t.q + np.arange(t.q)[None, :]
                           for i, t in enumerate(terms)])
    val = np.column_stack([t.base for t in terms])
    w = idx.shape[1]
    Z = sp.csr_matrix((val.ravel(), idx.ravel(), np.arange(0, n * w + 1, w, dtype=np.int64)),
                      shape=(n, int(offs[-1])))
    Z.sum_duplicates()
    return Z, offs


def block_factors_from_dense(design: Design, Lam: np.ndarray) -> list[np.ndarray]:
    """Per-block base factors (design block order) read off a dense
    design-order ``Lambda`` (columns finest level first)."""
    return [Lam[b.offset:b.offset + b.qe, b.offset:b.offset + b.qe] for b in block_positions(design)]
