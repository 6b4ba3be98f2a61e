"""Stata's names for the fixed part: the factor-variable coder and the coefficient rows.

The Stata front-end writes each factor-variable term as one patsy factor
``fv("i.region#c.unemp", "region", region, unemp)`` (term, the sets of
factors whose base cells are not estimated, the columns it reads).
:data:`fv` is a patsy stateful transform: it learns the levels from the
estimation rows and builds the term's estimated cells for any data with
that coding (an unseen level is an error, not a silent zero).

:func:`factor_variable_names` gives the Stata name of every ``fv`` column
(``2.region#c.unemp``); :func:`coefficient_rows` lists every row Stata's
coefficient table can show, in order: estimated cells, base cells
(``1b.region``, shown with ``baselevels``) and columns omitted for
collinearity.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import product
from typing import Optional, Sequence

import numpy as np
import pandas as pd
import patsy

from ..syntax.stata.factor_variables import FVFactor, FVTerm, parse_fv_term

PATSY_FACTOR_NAME = re.compile(r"^C\((?P<var>[A-Za-z_][A-Za-z0-9_]*)(?:,[^\]]*)?\)\[T\.(?P<lev>.*)\]$")
FV_CALL = re.compile(r'^fv\("(?P<term>[^"]*)", "(?P<drops>[^"]*)"(?P<args>[^)]*)\)(?:\[(?P<k>\d+)\])?\Z')


def level_text(value) -> str:
    """A level as Stata writes it in names: ``2`` for 2 and 2.0, ``1`` for True."""
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class Cell:
    """One cell of a factor-variable term: a column, or a base cell (not estimated)."""

    name: str  # Stata's name: 2.region#c.unemp, 1b.region#co.unemp
    label: str  # the row label under the term's header: "2", "1 2"
    base: bool
    levels: tuple  # per part: the level value (None for a continuous part)
    inferable: bool = False  # a base cell implied by a lower-order term of the model (shown with allbaselevels)


@dataclass(frozen=True)
class TermCoding:
    """The levels a term was coded with (learnt from the estimation rows)."""

    term: FVTerm
    drops: tuple[frozenset, ...]
    all_levels: dict  # var -> every level seen (sorted)
    levels: dict  # var -> the selected levels
    bases: dict  # var -> base level value (None: no base)

    def cells(self) -> list[Cell]:
        """Every cell, first part varying slowest; base cells flagged."""
        choices = [self.levels[p.var] if isinstance(p, FVFactor) else (None,) for p in self.term.parts]
        out = []
        for combo in product(*choices):
            at_base = {p.var for p, v in zip(self.term.parts, combo)
                       if isinstance(p, FVFactor) and self.bases[p.var] is not None and v == self.bases[p.var]}
            hits = [d for d in self.drops if d <= at_base]
            inferable = any(len(d) < len(self.term.parts) for d in hits)  # the rest of the term is in the model
            out.append(Cell(self._name(combo, at_base, bool(hits)),
                            " ".join(level_text(v) for v in combo if v is not None), bool(hits), combo, inferable))
        return out

    def _name(self, combo: tuple, at_base: set, base: bool) -> str:
        pieces = []
        for p, v in zip(self.term.parts, combo):
            if not isinstance(p, FVFactor):
                pieces.append(("co.%s" if base else "c.%s") % p.var)
            elif base:
                pieces.append("%s%s.%s" % (level_text(v), "b" if p.var in at_base else "o", p.var))
            else:
                pieces.append("%s.%s" % (level_text(v), p.var))
        return "#".join(pieces)

    @property
    def header(self) -> Optional[str]:
        """The term's heading in the coefficient table (``region#c.unemp``); None for ``c.x#c.x``."""
        if not self.term.factors:
            return None
        return "#".join(p.var if isinstance(p, FVFactor) else p.text for p in self.term.parts)


def _drop_sets(drops: str) -> tuple[frozenset, ...]:
    return tuple(frozenset(d.split("*")) for d in drops.split("|") if d)


def _base_value(factor: FVFactor, levels: list, counts: dict):
    """The base level of a factor from its levels (sorted) and their frequencies."""
    b = factor.base
    if b == "none" or not levels:
        return None
    if b == "first":
        return levels[0]
    if b == "last":
        return levels[-1]
    if b == "freq":
        return max(levels, key=lambda v: (counts[v], -levels.index(v)))
    if b.startswith("#"):
        k = int(b[1:])
        if not 1 <= k <= len(levels):
            raise ValueError("base #%d of %s: the variable has %d levels" % (k, factor.var, len(levels)))
        return levels[k - 1]
    matches = [v for v in levels if level_text(v) == b[1:]]
    if not matches:
        raise ValueError("base level %s of %s is not a level of the variable (levels: %s)"
                         % (b[1:], factor.var, ", ".join(level_text(v) for v in levels)))
    return matches[0]


def term_coding(term_text: str, drops: str, columns: dict) -> TermCoding:
    """The coding of a term from the estimation values of its variables (``var -> values``)."""
    term = parse_fv_term(term_text)
    all_levels, levels, bases = {}, {}, {}
    for f in term.factors:
        s = pd.Series(np.asarray(columns[f.var])).dropna()
        counts = s.value_counts().to_dict()
        lv = sorted(counts, key=_sort_key)
        all_levels[f.var] = tuple(lv)
        levels[f.var] = tuple(v for v in lv if f.selection is None or level_text(v) in f.selection)
        bases[f.var] = _base_value(f, lv, counts)
    return TermCoding(term, _drop_sets(drops), all_levels, levels, bases)


def _sort_key(v):
    return (0, float(v), "") if isinstance(v, (int, float, np.integer, np.floating, bool, np.bool_)) else (1, 0.0, str(v))


class FactorVariableCoder:
    """patsy stateful transform behind :data:`fv`: memorise the levels, then code any data."""

    def __init__(self) -> None:
        self._values: dict[str, list] = {}
        self.coding: Optional[TermCoding] = None
        self._args: tuple[str, str] = ("", "")

    def memorize_chunk(self, term: str, drops: str, *columns) -> None:
        self._args = (term, drops)
        names = parse_fv_term(term).variables
        for name, col in zip(names, columns):
            self._values.setdefault(name, []).append(np.asarray(col))

    def memorize_finish(self) -> None:
        values = {k: np.concatenate(v) for k, v in self._values.items()}
        self.coding = term_coding(self._args[0], self._args[1], values)
        self._values = {}

    def transform(self, term: str, drops: str, *columns) -> np.ndarray:
        coding = self.coding
        cols = dict(zip(coding.term.variables, columns))
        n = len(np.asarray(columns[0])) if columns else 0
        codes = {}
        for f in coding.term.factors:
            values = pd.Series(np.asarray(cols[f.var]))
            idx = pd.Index(coding.all_levels[f.var]).get_indexer(values)
            unseen = (idx < 0) & values.notna().to_numpy()
            if unseen.any():
                raise ValueError("level %s of %s was not in the estimation data"
                                 % (level_text(values[unseen].iloc[0]), f.var))
            codes[f.var] = np.asarray(coding.all_levels[f.var], dtype=object)[np.maximum(idx, 0)]
        kept = [c for c in coding.cells() if not c.base]
        out = np.ones((n, len(kept)))
        for j, cell in enumerate(kept):
            for p, v in zip(coding.term.parts, cell.levels):
                if isinstance(p, FVFactor):
                    out[:, j] *= codes[p.var] == v
                else:
                    out[:, j] *= np.asarray(cols[p.var], dtype=float)
        return out


fv = patsy.stateful_transform(FactorVariableCoder)


def _fv_code(column: str, m: re.Match) -> str:
    """The ``fv(...)`` call of a patsy column name (without its ``[k]`` column index)."""
    return column if m.group("k") is None else column[: column.rindex("[")]


def _codings(column_names: Sequence[str], frame: pd.DataFrame) -> dict[str, TermCoding]:
    """``fv(...)`` factor code -> its coding on ``frame`` (the estimation rows)."""
    out: dict[str, TermCoding] = {}
    for c in column_names:
        m = FV_CALL.match(c)
        if m is None:
            continue
        code = _fv_code(c, m)
        if code not in out:
            term = parse_fv_term(m.group("term"))
            out[code] = term_coding(m.group("term"), m.group("drops"), {v: frame[v] for v in term.variables})
    return out


def factor_variable_names(column_names: Sequence[str], frame: pd.DataFrame) -> dict[str, str]:
    """Stata names of the ``fv(...)`` columns among patsy's ``column_names``."""
    codings = _codings(column_names, frame)
    kept: dict[str, list] = {}  # per code: its non-base cells (once; a term may have many columns)
    out = {}
    for c in column_names:
        m = FV_CALL.match(c)
        if m is None:
            continue
        code = _fv_code(c, m)
        if code not in kept:
            kept[code] = [cell for cell in codings[code].cells() if not cell.base]
        out[c] = kept[code][int(m.group("k") or 0)].name
    return out


def factor_variable_columns(rhs: str) -> set[str]:
    """Variables used as factors by the ``fv(...)`` terms of a patsy right-hand side."""
    out: set[str] = set()
    for m in re.finditer(r'fv\("([^"]*)"', rhs):
        out |= {f.var for f in parse_fv_term(m.group(1)).factors}
    return out


@dataclass(frozen=True)
class CoefficientRow:
    """One row of Stata's coefficient table: a coefficient, a base cell or an omitted column."""

    name: str
    status: str  # "estimated", "base" or "omitted"
    header: Optional[str]  # the factor-variable term's heading (None: a plain row)
    label: str  # the row's label under the heading (the name for a plain row)
    inferable: bool = False  # a base cell implied by a lower-order term (Stata shows it with allbaselevels)


def stata_name(patsy_name: str) -> str:
    """patsy column name -> Stata's name (``C(region)[T.2]`` -> ``2.region``, ``Intercept`` -> ``_cons``)."""
    if patsy_name == "Intercept":
        return "_cons"
    m = PATSY_FACTOR_NAME.match(patsy_name)
    if m:
        return "%s.%s" % (m.group("lev"), m.group("var"))
    return patsy_name


def stata_names(column_names: Sequence[str], frame: pd.DataFrame) -> list[str]:
    """Stata's name of every patsy column (``fv`` terms coded on ``frame``, the estimation rows)."""
    fv_names = factor_variable_names(column_names, frame)
    return [fv_names.get(c) or stata_name(c) for c in column_names]


def coefficient_rows(column_names: Sequence[str], frame: pd.DataFrame,
                     omitted: Sequence[str]) -> list[CoefficientRow]:
    """Every row of the coefficient table, in Stata's order (constant last).

    ``column_names`` are patsy's names of the full right-hand side (coded on
    ``frame``, the estimation rows), ``omitted`` the Stata names dropped for
    collinearity.  Base cells of factor-variable terms are listed where
    Stata lists them, among their term's cells.
    """
    codings = _codings(column_names, frame)
    rows: list[CoefficientRow] = []
    done = set()
    for c in column_names:
        m = FV_CALL.match(c)
        if m is None:
            name = stata_name(c)
            rows.append(CoefficientRow(name, "omitted" if name in omitted else "estimated", None, name))
            continue
        code = _fv_code(c, m)
        if code in done:
            continue
        done.add(code)
        coding = codings[code]
        for cell in coding.cells():
            status = "base" if cell.base else ("omitted" if cell.name in omitted else "estimated")
            rows.append(CoefficientRow(cell.name, status, coding.header,
                                       cell.label if coding.header is not None else cell.name, cell.inferable))
    return [r for r in rows if r.name != "_cons"] + [r for r in rows if r.name == "_cons"]
