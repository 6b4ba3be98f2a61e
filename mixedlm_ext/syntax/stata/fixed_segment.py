"""The fixed part ``depvar [indepvars] [weight] [if exp] [in range] [, opts]`` of a command.

The independent variables may use factor-variable notation
(:mod:`.factor_variables`); each factor term becomes one patsy factor
``fv(...)`` that the design stage evaluates with Stata's coding and names.
"""
from __future__ import annotations

import re
from typing import NamedTuple, Optional

from ...core.errors import StataSyntaxError
from ..scanning import is_ident, top_level_positions
from .if_translator import translate_if
from .option_table import apply_options
from .factor_variables import FVTerm, parse_fv_token, patsy_call
from .scan import STATA_QUOTES, split_comma, split_top
from .settings import CommandSettings
from .weights import extract_weight

__all__ = ["FixedSegment", "parse_fixed_segment"]


class FixedSegment(NamedTuple):
    """What the fixed segment says: response, patsy RHS, constant, ``if`` and ``in``."""

    response: str
    fixed: str
    constant: bool
    subset: Optional[str]
    in_range: Optional[tuple[int, int]]


def _varlist_tokens(varlist: str) -> list[str]:
    """Whitespace-separated tokens, a parenthesised ``i(1 3).a`` kept whole."""
    return [t for t in split_top(varlist.replace("\t", " ").replace("\n", " "), " ") if t]


def _fixed_terms(tokens: list[str], segment: str) -> str:
    """The patsy right-hand side of the fixed-part tokens (factor variables included)."""
    terms: list[FVTerm] = []
    for token in tokens:
        if not is_ident(token) and not re.match(r"[A-Za-z0-9_.()# /]+\Z", token):
            raise StataSyntaxError("invalid variable name or term %r in %r" % (token, segment))
        try:
            terms += parse_fv_token(token)
        except StataSyntaxError as exc:
            raise StataSyntaxError("%s in %r" % (exc, segment)) from None
    unique: list[FVTerm] = []
    for t in terms:  # Stata drops a repeated term (i.a i.a##c.x)
        if t.key not in [u.key for u in unique]:
            unique.append(t)
    return " + ".join(t.parts[0].var if t.is_plain else patsy_call(t, unique) for t in unique)


def _qualifier_positions(body: str, word: str) -> list[int]:
    """Positions of the keyword ``word`` (``if``/``in``) at the top level of ``body``."""
    positions = [m.start() for m in re.finditer(r"(?<![A-Za-z0-9_.])%s(?![A-Za-z0-9_(])" % word, body)]
    top = set(top_level_positions(body, word, STATA_QUOTES))
    return [p for p in positions if p in top]


def _in_range(text: str, segment: str) -> tuple[int, int]:
    """``f/l``, ``#``, with ``f``/``l``/``L`` and negative numbers (from the end)."""
    def bound(word: str) -> int:
        if word in ("f", "F"):
            return 1
        if word in ("l", "L"):
            return -1
        if re.match(r"-?\d+\Z", word) and int(word) != 0:
            return int(word)
        raise StataSyntaxError("invalid observation number %r in 'in %s' in %r" % (word, text, segment))

    words = text.split()
    if len(words) != 1:
        raise StataSyntaxError("'in' needs one range such as 1/100, got %r in %r" % (text.strip(), segment))
    first, _, last = words[0].partition("/")
    lo = bound(first)
    return lo, bound(last) if last else lo


def _split_qualifiers(body: str, segment: str) -> tuple[str, Optional[str], Optional[tuple[int, int]]]:
    """Split ``varlist [if exp] [in range]`` (either order) into its three parts."""
    ifs, ins = _qualifier_positions(body, "if"), _qualifier_positions(body, "in")
    if len(ifs) > 1 or len(ins) > 1:
        raise StataSyntaxError("'%s' given more than once in %r" % ("if" if len(ifs) > 1 else "in", segment))
    cuts = sorted([(p, "if") for p in ifs] + [(p, "in") for p in ins])
    if not cuts:
        return body, None, None
    pieces = {}
    for k, (pos, word) in enumerate(cuts):
        end = cuts[k + 1][0] if k + 1 < len(cuts) else len(body)
        pieces[word] = body[pos + 2:end]
    expr = pieces.get("if")
    if expr is not None and not expr.strip():
        raise StataSyntaxError("'if' without an expression in %r" % segment)
    rng = _in_range(pieces["in"], segment) if "in" in pieces else None
    return body[:cuts[0][0]], expr, rng


def parse_fixed_segment(segment: str, g: CommandSettings) -> FixedSegment:
    """Parse ``depvar [indepvars] [weight] [if exp] [in range] [, opts]``."""
    body, opts = split_comma(segment)
    body = extract_weight(body, segment.strip(), g)
    varlist, expr, in_range = _split_qualifiers(body, segment.strip())
    tokens = _varlist_tokens(varlist)
    if not tokens:
        raise StataSyntaxError("missing dependent variable in %r" % segment.strip())
    depvar = tokens[0]
    if not is_ident(depvar):
        raise StataSyntaxError("invalid dependent variable %r in %r" % (depvar, segment.strip()))
    fixed = _fixed_terms(tokens[1:], segment.strip())
    local = apply_options(opts, segment.strip(), True, g)
    subset = translate_if(expr) if expr is not None else None
    return FixedSegment(depvar, fixed, not local.noconstant, subset, in_range)
