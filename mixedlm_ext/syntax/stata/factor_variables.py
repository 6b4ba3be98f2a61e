"""Stata's factor-variable notation: ``i.a``, ``ib3.a``, ``ibn.a``, ``i(1 3).a``, ``c.x``, ``#``, ``##``.

A token of a varlist is parsed into one or more :class:`FVTerm` (``##``
expands to every sub-interaction, lower orders first: ``i.a##c.x`` is
``i.a c.x i.a#c.x``).  A term is a product of parts, each a factor
(:class:`FVFactor`: indicators of its levels) or a continuous variable
(:class:`FVContinuous`).  Inside an interaction a variable without prefix
is a factor, as in Stata (``a#c.x`` is ``i.a#c.x``).

Which cells of a term are *base* cells (not estimated, shown as
``1b.region`` with ``baselevels``) depends on the other terms of the
model: a cell whose factors in a set ``T`` are at their base levels is
collinear with the term without ``T`` when that term is in the model (or
when ``T`` holds every part: Stata's base levels are bases even without a
constant).  :func:`base_sets` gives those sets; the design stage builds the
cells from the data (:mod:`mixedlm_ext.design.names`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import combinations
from typing import Optional, Union

from ...core.errors import StataSyntaxError
from ..scanning import is_ident, split_top_level

__all__ = ["FVContinuous", "FVFactor", "FVTerm", "base_sets", "parse_fv_term", "parse_fv_token", "patsy_call"]

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_PART = re.compile(r"(?:(?P<op>i|c|ibn|ib(?:\((?P<bpar>[^()]*)\)|(?P<bnum>\d+))|i\((?P<sel>[^()]*)\)|i?(?P<lev>\d+))\.)?"
                   r"(?P<var>%s)\Z" % _NAME)
_BASE_WORDS = ("first", "last", "freq")


@dataclass(frozen=True)
class FVFactor:
    """A factor part: indicators of the levels of ``var``.

    ``base`` is ``"first"`` (Stata's default, the lowest level), ``"last"``,
    ``"freq"`` (the most frequent level), ``"none"`` (``ibn.``), ``"#k"``
    (the k-th level) or ``"=v"`` (the level with value ``v``);
    ``selection`` the level values of ``i(1 3).a`` / ``2.a`` (None: all levels).
    """

    var: str
    base: str = "first"
    selection: Optional[tuple[str, ...]] = None

    @property
    def text(self) -> str:
        if self.selection is not None and self.base == "none":  # 2.a
            return "%s.%s" % (self.selection[0], self.var)
        if self.selection is not None:  # i(1 3).a keeps the default base
            return "i(%s).%s" % (" ".join(self.selection), self.var)
        return "%s.%s" % (self._base_op(), self.var)

    def _base_op(self) -> str:
        if self.base == "first":
            return "i"
        if self.base == "none":
            return "ibn"
        if self.base.startswith("="):
            return "ib%s" % self.base[1:] if self.base[1:].isdigit() else "ib(%s)" % self.base[1:]
        return "ib(%s)" % self.base


@dataclass(frozen=True)
class FVContinuous:
    """A continuous part ``c.x``."""

    var: str

    @property
    def text(self) -> str:
        return "c.%s" % self.var


Part = Union[FVFactor, FVContinuous]


@dataclass(frozen=True)
class FVTerm:
    """A product of parts, in the order written (``i.region#c.unemp``)."""

    parts: tuple[Part, ...]

    @property
    def text(self) -> str:
        """Stata's spelling (``ib3.region#c.unemp``); a lone ``c.x`` is ``c.x``."""
        return "#".join(p.text for p in self.parts)

    @property
    def factors(self) -> tuple[FVFactor, ...]:
        return tuple(p for p in self.parts if isinstance(p, FVFactor))

    @property
    def variables(self) -> tuple[str, ...]:
        """The data columns the term reads, each once, in order."""
        return tuple(dict.fromkeys(p.var for p in self.parts))

    @property
    def key(self) -> tuple:
        """What identifies the term's column space: its parts' kinds and variables."""
        return tuple(sorted(("f", p.var, p.selection or ()) if isinstance(p, FVFactor) else ("c", p.var, ())
                            for p in self.parts))

    @property
    def is_plain(self) -> bool:
        """A lone continuous variable (``x`` or ``c.x``): an ordinary column."""
        return len(self.parts) == 1 and isinstance(self.parts[0], FVContinuous)

    def without(self, factors: tuple[str, ...]) -> tuple:
        """:attr:`key` of the term with the factors ``factors`` removed."""
        return tuple(k for k in self.key if not (k[0] == "f" and k[1] in factors))


def _selection(text: str, token: str) -> tuple[str, ...]:
    """``"1 3"``, ``"1/4"``, ``"1 3/5"`` -> level values as strings."""
    out: list[str] = []
    for word in text.replace(",", " ").split():
        m = re.match(r"(-?\d+)/(-?\d+)\Z", word)
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            if hi < lo:
                raise StataSyntaxError("invalid numlist %r in %r" % (word, token))
            out += [str(v) for v in range(lo, hi + 1)]
        elif re.match(r"-?\d+\Z", word):
            out.append(str(int(word)))
        else:
            raise StataSyntaxError("invalid level %r in i(numlist) of %r (levels are integers)" % (word, token))
    if not out:
        raise StataSyntaxError("empty level list in %r" % token)
    return tuple(dict.fromkeys(out))


def _base(m: re.Match, token: str) -> str:
    if m.group("op") == "ibn":
        return "none"
    if m.group("bnum") is not None:
        return "=%d" % int(m.group("bnum"))
    if m.group("bpar") is None:
        return "first"
    arg = m.group("bpar").strip()
    if arg in _BASE_WORDS:
        return arg
    if re.match(r"#\d+\Z", arg):
        return arg
    if re.match(r"-?\d+\Z", arg):
        return "=%d" % int(arg)
    if not arg or '"' in arg:
        raise StataSyntaxError("invalid base level %r in %r" % (arg, token))
    return "=" + arg  # a string level (lenient: Stata's factors are integers)


def _part(text: str, in_interaction: bool, token: str) -> Part:
    m = _PART.match(text)
    if m is None:
        where = "" if text == token else " in %r" % token
        raise StataSyntaxError("invalid variable name or term %r%s" % (text, where))
    var, op = m.group("var"), m.group("op")
    if op == "c":
        return FVContinuous(var)
    if m.group("sel") is not None:
        return FVFactor(var, "first", _selection(m.group("sel"), token))
    if m.group("lev") is not None:  # 2.a: the indicator of one level, never a base
        return FVFactor(var, "none", (str(int(m.group("lev"))),))
    if op is None and not in_interaction:
        return FVContinuous(var)
    return FVFactor(var, _base(m, token))


def parse_fv_term(text: str, token: Optional[str] = None) -> FVTerm:
    """One term without ``##`` (``i.a#c.x``, ``ib3.a``, ``c.x#c.x``, ``x``)."""
    token = text if token is None else token
    pieces = split_top_level(text, "#", '"')
    if any(not p for p in pieces):
        raise StataSyntaxError("invalid interaction %r" % token)
    parts = tuple(_part(p, len(pieces) > 1, token) for p in pieces)
    seen = [p.var for p in parts if isinstance(p, FVFactor)]
    if len(seen) != len(set(seen)):
        raise StataSyntaxError("factor variable repeated in the interaction %r" % token)
    return FVTerm(parts)


def parse_fv_token(token: str) -> list[FVTerm]:
    """The terms of one varlist token; ``a##b##c`` gives every sub-interaction."""
    pieces = split_top_level(token, "##", '"')
    if len(pieces) == 1:
        return [parse_fv_term(token)]
    if any(not p or len(split_top_level(p, "#", '"')) > 1 for p in pieces):
        raise StataSyntaxError("cannot mix '#' and '##' in %r (write the interactions out)" % token)
    parts = [parse_fv_term(p, token).parts[0] if "." in p else _part(p, True, token) for p in pieces]
    terms = []
    for order in range(1, len(parts) + 1):
        for combo in combinations(parts, order):
            terms.append(FVTerm(tuple(combo)))
    return terms


def base_sets(term: FVTerm, model: list[FVTerm]) -> list[tuple[str, ...]]:
    """Sets of factors of ``term`` whose base cells are not estimated.

    A set ``T`` is listed when the term without ``T`` is in ``model``, or
    when ``T`` is every part of the term (a factor's base level is its base
    whatever else the model holds).  A cell is a base cell when its factors
    at their base levels include one of these sets.
    """
    keys = {t.key for t in model}
    names = [f.var for f in term.factors if f.base != "none"]
    out = []
    for order in range(1, len(names) + 1):
        for combo in combinations(names, order):
            rest = term.without(combo)
            if not rest or rest in keys:
                out.append(combo)
    return out


def patsy_call(term: FVTerm, model: list[FVTerm]) -> str:
    """The patsy factor that builds ``term``'s columns: ``fv("i.a#c.x", "a", a, x)``."""
    drops = "|".join("*".join(s) for s in base_sets(term, model))
    for v in term.variables:
        if not is_ident(v):  # pragma: no cover - the token grammar admits names only
            raise StataSyntaxError("invalid variable name %r" % v)
    return 'fv("%s", "%s", %s)' % (term.text, drops, ", ".join(term.variables))
