"""The random-effects terms of a design: which BLUP tables exist and how rows find them.

A *term* is a set of random effects reported together (one DataFrame of
:attr:`~mixedlm_ext.postestimation.mixin.PostestimationMixin.random_effects`):
the non-expanded blocks of a level form one term named by the level; every
expanded block (Stata's ``R.x``, crossed lme4 terms) is its own term in long
format (one row per group and factor level).

:class:`TermLayout` is built once from a design.  It gives each term's table
(index and BLUPs or covariances, from :func:`~.blups.level_blups`), the row
of that table each row of a data frame uses (-1: a group not in the
estimation sample) and the random part ``Z b_hat`` of the rows.  Results'
``predict`` and the scikit-learn estimator both use it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import pandas as pd

from ..design.random import base_matrix, effect_variables
from ..design.types import Block, Design
from .blups import LevelBLUP


@dataclass(frozen=True)
class RandomEffectsTerm:
    """A set of random effects reported together (one DataFrame)."""

    key: str
    level_index: int
    blocks: tuple[tuple[Block, int], ...]  # (block, column offset within the level)
    expanded: bool
    effects: tuple[str, ...]  # column names


@dataclass(frozen=True)
class TermRows:
    """The rows of a data frame seen by one term."""

    Z: np.ndarray  # (n, k) the term's random-effects design
    pos: np.ndarray  # (n,) row of the term's table to use (-1: not estimated)


def require_columns(frame: pd.DataFrame, cols, what: str) -> None:
    """Every name in ``cols`` is a column of ``frame`` (ValueError otherwise)."""
    for c in cols:
        if c not in frame.columns:
            raise ValueError("variable '%s' not found in data (%s)" % (c, what))


def group_index(keys: Optional[pd.DataFrame], path: tuple) -> pd.Index:
    """Index of the groups of a level from its ``keys`` frame."""
    if not path or keys is None or keys.shape[1] == 0:
        return pd.Index(["_all"], name="_all")
    if len(path) == 1:
        return pd.Index(keys[path[0]].to_numpy(), name=path[0])
    return pd.MultiIndex.from_frame(keys[list(path)])


def value_family(values) -> str:
    """``"number"``, ``"text"`` or ``"other"``: what kind of values an array holds."""
    kind = pd.api.types.infer_dtype(values, skipna=True)
    if kind in ("integer", "floating", "mixed-integer-float", "decimal", "boolean"):
        return "number"
    if kind in ("string", "unicode", "bytes"):
        return "text"
    return "other" if kind != "empty" else "empty"


def lookup(index: pd.Index, frame: pd.DataFrame, cols) -> np.ndarray:
    """Position of each row of ``frame[cols]`` in ``index`` (-1 when absent or missing).

    Raises ``ValueError`` when a column holds another kind of values than the
    estimation sample's (numbers against text): no row could match a group.
    """
    sub = frame[list(cols)]
    for k, c in enumerate(cols):
        fitted = index.get_level_values(k) if isinstance(index, pd.MultiIndex) else index
        new, old = value_family(sub[c].to_numpy()), value_family(fitted.to_numpy())
        if "empty" not in (new, old) and new != old:
            raise ValueError("grouping variable '%s' of the new data holds %s (dtype %s) but the estimation "
                             "data held %s (dtype %s): no row would match a fitted group; convert it"
                             % (c, new, sub[c].dtype, old, fitted.dtype))
    missing = sub.isna().any(axis=1).to_numpy()
    if len(cols) == 1:
        idx = index.get_indexer(sub[cols[0]].to_numpy())
    else:
        idx = index.get_indexer(pd.MultiIndex.from_frame(sub))
    idx = np.asarray(idx, dtype=np.intp)
    idx[missing] = -1
    return idx


def expand_index(levels: tuple, names: tuple) -> pd.Index:
    """Index of the factor levels of an expanded block."""
    if len(names) == 1:
        vals = [lv[0] if isinstance(lv, tuple) and len(lv) == 1 else lv for lv in levels]
        return pd.Index(vals, name=names[0])
    return pd.MultiIndex.from_tuples([tuple(lv) for lv in levels], names=list(names))


def _level_terms(design: Design, li: int) -> list[tuple[str, int, tuple, bool, tuple]]:
    """The terms of one level as ``(key, level, blocks, expanded, effects)``:
    expanded blocks in equation order, then the level's plain blocks."""
    lvl = design.levels[li]
    out, plain, off = [], [], 0
    for blk in lvl.blocks:
        if blk.expand_levels is None:
            plain.append((blk, off))
        else:
            eq = blk.equation
            if eq.factor is not None:
                key = "R.%s" % eq.factor if not lvl.path else "%s:R.%s" % (lvl.label, eq.factor)
                effects = ("R.%s" % eq.factor,)
            else:
                key, effects = blk.label, tuple(blk.effects)
            out.append((key, li, ((blk, off),), True, effects))
        off += blk.q
    if plain:
        out.append((lvl.label, li, tuple(plain), False, tuple(e for blk, _ in plain for e in blk.effects)))
    return out


def _design_terms(design: Design) -> tuple[RandomEffectsTerm, ...]:
    """The random-effects terms of a design, coarsest level first, then in
    equation order; a key repeated gets a ``#2``, ``#3`` suffix."""
    specs = [t for li, lvl in enumerate(design.levels) if lvl.q > 0 for t in _level_terms(design, li)]
    seen: dict[str, int] = {}
    terms = []
    for key, li, blocks, expanded, effects in specs:
        seen[key] = seen.get(key, 0) + 1
        unique = key if seen[key] == 1 else "%s#%d" % (key, seen[key])
        terms.append(RandomEffectsTerm(unique, li, blocks, expanded, effects))
    return tuple(terms)


@dataclass(frozen=True, eq=False)
class TermLayout:
    """The random-effects terms of one design and the lookups into their tables."""

    design: Design
    terms: tuple[RandomEffectsTerm, ...]

    @classmethod
    def of(cls, design: Design) -> "TermLayout":
        return cls(design, _design_terms(design))

    def term(self, key: str) -> RandomEffectsTerm:
        """The term with key ``key`` (KeyError listing the keys otherwise)."""
        for t in self.terms:
            if t.key == key:
                return t
        raise KeyError("no random-effects term %r; available: %s"
                       % (key, ", ".join(t.key for t in self.terms) or "(none)"))

    @property
    def columns(self) -> list[str]:
        """Data columns the random part needs (grouping, random-effect and factor variables)."""
        cols: list[str] = []
        for lvl in self.design.levels:
            if lvl.q == 0:
                continue
            cols += list(lvl.path)
            for blk in lvl.blocks:
                cols += [v for c in blk.equation.columns for v in effect_variables(c, self.design.data.columns)]
                cols += list(blk.expand_by or ())
        return list(dict.fromkeys(cols))

    def table(self, t: RandomEffectsTerm, blup: LevelBLUP, which: str) -> tuple[pd.Index, np.ndarray]:
        """``(index, values)`` of a term: BLUPs ``(n, k)`` (``which="b"``) or
        covariances ``(n, k, k)`` (``"cond"``, ``"comp"``), from its level's BLUPs."""
        lvl = self.design.levels[t.level_index]
        gindex = group_index(lvl.keys, lvl.path)
        arr = {"b": blup.b, "cond": blup.cond, "comp": blup.comp}[which]
        if not t.expanded:
            cols = np.concatenate([np.arange(o, o + blk.q) for blk, o in t.blocks])
            return gindex, (arr[:, cols] if which == "b" else arr[:, cols][:, :, cols])
        blk, o = t.blocks[0]
        k, qe = blk.n_expand, blk.structure.q
        G = arr.shape[0]
        if which == "b":
            vals = arr[:, o:o + k * qe].reshape(G * k, qe)
        else:
            s = arr[:, o:o + k * qe, o:o + k * qe].reshape(G, k, qe, k, qe)
            vals = s[:, np.arange(k), :, np.arange(k), :]  # (k, G, qe, qe)
            vals = np.swapaxes(vals, 0, 1).reshape(G * k, qe, qe)
        eindex = expand_index(blk.expand_levels, blk.expand_by)
        if not lvl.path:
            return eindex, vals
        g_tuples = [g if isinstance(g, tuple) else (g,) for g in gindex]
        e_tuples = [e if isinstance(e, tuple) else (e,) for e in eindex]
        tuples = [gt + et for gt in g_tuples for et in e_tuples]
        return pd.MultiIndex.from_tuples(tuples, names=list(lvl.path) + list(blk.expand_by)), vals

    def tables(self, blups: dict[int, LevelBLUP], which: str) -> dict[str, np.ndarray]:
        """``term key -> values`` of every term (see :meth:`table`)."""
        return {t.key: self.table(t, blups[t.level_index], which)[1] for t in self.terms}

    def _group_positions(self, li: int, frame: pd.DataFrame, estimation: bool) -> np.ndarray:
        """Row -> group of level ``li`` in the estimation sample (-1: not there)."""
        lvl = self.design.levels[li]
        if estimation:
            return lvl.codes.astype(np.intp)
        if not lvl.path:
            return np.zeros(len(frame), dtype=np.intp)
        require_columns(frame, lvl.path, "grouping variable of level %s" % lvl.label)
        return lookup(group_index(lvl.keys, lvl.path), frame, lvl.path)

    def rows(self, frame: pd.DataFrame, estimation: bool = False) -> dict[str, TermRows]:
        """For each term: the rows' random-effects design and the table row each uses.

        ``estimation=True``: ``frame`` is the estimation sample (the groups are
        the design's codes).
        """
        n = len(frame)
        out = {}
        level_pos: dict[int, np.ndarray] = {}
        for t in self.terms:
            lvl = self.design.levels[t.level_index]
            if t.level_index not in level_pos:
                level_pos[t.level_index] = self._group_positions(t.level_index, frame, estimation)
            g = level_pos[t.level_index]
            Zs = []
            for blk, _ in t.blocks:
                needed = [v for c in blk.equation.columns for v in effect_variables(c, self.design.data.columns)]
                require_columns(frame, needed, "random effects of level %s" % lvl.label)
                Zs.append(base_matrix(blk.equation, frame))
            Zt = np.column_stack(Zs) if Zs else np.zeros((n, 0))
            if t.expanded:
                blk = t.blocks[0][0]
                require_columns(frame, blk.expand_by, "factor of term %s" % t.key)
                eidx = lookup(expand_index(blk.expand_levels, blk.expand_by), frame, blk.expand_by)
                pos = np.where((g >= 0) & (eidx >= 0), g * blk.n_expand + eidx, -1)
            else:
                pos = g.copy()
            out[t.key] = TermRows(Zt, pos)
        return out

    def random_part(self, rows: dict[str, TermRows], b: dict[str, np.ndarray],
                    upto: int) -> Optional[np.ndarray]:
        """``Z b_hat`` per row from the terms of levels ``<= upto``; unseen groups add 0.

        ``b`` is :meth:`tables` with ``which="b"``.  None when there are no terms.
        """
        total = None
        for t in self.terms:
            r = rows[t.key]
            if total is None:
                total = np.zeros(r.Z.shape[0])
            if t.level_index > upto:
                continue
            seen = r.pos >= 0
            contrib = np.zeros(r.Z.shape[0])
            contrib[seen] = np.einsum("ij,ij->i", r.Z[seen], b[t.key][r.pos[seen]])
            total += contrib
        return total
