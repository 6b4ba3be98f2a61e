"""The fixed part ``depvar [indepvars] [weight] [if exp] [, opts]`` of a command."""
from __future__ import annotations

import re
from typing import Optional

from ...core.errors import StataSyntaxError
from ..scanning import is_ident, top_level_positions
from .if_translator import translate_if
from .option_table import apply_options
from .scan import STATA_QUOTES, split_comma, split_words
from .settings import CommandSettings
from .weights import extract_weight

__all__ = ["parse_fixed_segment"]


def _reference_literal(text: str) -> str:
    """``3`` -> ``3``; anything else -> a quoted string literal."""
    if re.match(r"-?\d+\Z", text):
        return str(int(text))
    return repr(text)


def _fixed_term(token: str, segment: str) -> str:
    """Translate one Stata fixed-effects term into a patsy term."""
    if is_ident(token):
        return token
    m = re.match(r"(i|c|ib(?:\(([^()]*)\)|([^.()]+)))\.([A-Za-z_][A-Za-z0-9_]*)\Z", token)
    if m is None:
        if "#" in token:
            raise StataSyntaxError(
                "factor-variable interactions are not supported: %r in %r" % (token, segment)
            )
        raise StataSyntaxError("invalid variable name or term %r in %r" % (token, segment))
    prefix, var = m.group(1), m.group(4)
    if prefix == "i":
        return "C(%s)" % var
    if prefix == "c":
        return var
    base = (m.group(2) if m.group(2) is not None else m.group(3)).strip()
    if base in ("first", "last", "freq", "n") or not base:
        raise StataSyntaxError(
            "base level %r of %r is not supported (give a level value) in %r" % (base, token, segment)
        )
    return "C(%s, Treatment(reference=%s))" % (var, _reference_literal(base))


def _split_if(body: str, segment: str) -> tuple[str, Optional[str]]:
    """Split ``varlist if exp`` into ``(varlist, exp or None)``."""
    positions = [m.start() for m in re.finditer(r"(?<![A-Za-z0-9_.])if(?![A-Za-z0-9_])", body)]
    positions = [p for p in positions if p in set(top_level_positions(body, "if", STATA_QUOTES))]
    if not positions:
        return body, None
    varlist, expr = body[: positions[0]], body[positions[0] + 2 :]
    if not expr.strip():
        raise StataSyntaxError("'if' without an expression in %r" % segment)
    return varlist, expr


def parse_fixed_segment(segment: str, g: CommandSettings) -> tuple[str, str, bool, Optional[str]]:
    """Parse ``depvar [indepvars] [if exp] [, opts]``.

    Returns
    -------
    tuple
        ``(response, fixed, constant, subset)``.
    """
    body, opts = split_comma(segment)
    body = extract_weight(body, segment.strip(), g)
    varlist, expr = _split_if(body, segment.strip())
    tokens = split_words(varlist)
    if "in" in tokens:
        raise StataSyntaxError("'in' ranges are not supported: %r" % segment.strip())
    if not tokens:
        raise StataSyntaxError("missing dependent variable in %r" % segment.strip())
    depvar = tokens[0]
    if not is_ident(depvar):
        raise StataSyntaxError("invalid dependent variable %r in %r" % (depvar, segment.strip()))
    terms = [_fixed_term(t, segment.strip()) for t in tokens[1:]]
    local = apply_options(opts, segment.strip(), True, g)
    subset = translate_if(expr) if expr is not None else None
    return depvar, " + ".join(terms), not local.noconstant, subset
