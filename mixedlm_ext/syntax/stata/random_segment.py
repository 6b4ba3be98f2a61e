"""Random-effects segments ``|| level: [varlist] [, re_opts]`` of a command."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from ...core.errors import StataSyntaxError
from ...spec.model import REEquation, WeightSpec
from ..scanning import is_ident
from .factor_variables import parse_fv_term
from .option_table import apply_options
from .scan import split_comma, split_words
from .settings import CommandSettings

__all__ = ["parse_re_segment"]


@dataclass
class _REVars:
    """Variables of one equation: slope columns, or the factor of ``R.var``."""

    columns: tuple[str, ...]
    factor: Optional[str]


def random_slope_name(token: str, where: str) -> str:
    """The effect name of a random-slope token: ``x`` / ``c.x`` -> ``x``,
    ``c.x#c.z`` -> ``c.x#c.z`` (the product; the design evaluates it)."""
    if is_ident(token):
        return token
    try:
        term = parse_fv_term(token)
    except StataSyntaxError:
        raise StataSyntaxError("invalid random-effects variable %r in %r" % (token, where)) from None
    if term.factors:
        raise StataSyntaxError("%s: must use R. when specifying factor variables in random-effects equations "
                               "(R.%s) in %r" % (token, term.factors[0].var, where))
    return term.parts[0].var if term.is_plain else term.text


def _re_varlist(text: str, where: str) -> _REVars:
    """Variables of one random-effects equation (``x1 x2`` or ``R.var``)."""
    columns: list[str] = []
    factors: list[str] = []
    for token in split_words(text):
        m = re.match(r"R\.([A-Za-z_][A-Za-z0-9_]*)\Z", token)
        if m is not None:
            factors.append(m.group(1))
            continue
        name = random_slope_name(token, where)
        if name in columns:
            raise StataSyntaxError("variable %r repeated in %r" % (name, where))
        columns.append(name)
    if factors and (columns or len(factors) > 1):
        raise StataSyntaxError("an R.varname term must be the only variable of its equation in %r" % where)
    return _REVars(tuple(columns), factors[0] if factors else None)


def _equation_covariance(n_effects: int, requested: Optional[str], factor: Optional[str], where: str) -> str:
    """Covariance structure of one equation, with Stata's defaults."""
    if factor is not None:
        if requested not in (None, "identity", "exchangeable"):
            raise StataSyntaxError(
                "covariance(%s) is not allowed with R.%s (only identity or exchangeable) in %r"
                % (requested, factor, where)
            )
        return requested or "identity"
    if n_effects <= 1:
        return "identity"
    return requested or "independent"


def _split_level(segment: str, where: str) -> tuple[str, str]:
    """``level: rest`` -> ``(level, rest)`` with checks."""
    head, opts = split_comma(segment)
    if ":" not in head:
        first = head.split()[0] if head.split() else ""
        if not first:
            raise StataSyntaxError("'||' segment without a level in %r" % where)
        raise StataSyntaxError("missing ':' after level name %r in %r" % (first, where))
    level, rest = segment.split(":", 1)
    level = level.strip()
    if not level:
        raise StataSyntaxError("'||' segment without a level in %r" % where)
    if not is_ident(level):
        raise StataSyntaxError("invalid level name %r in %r" % (level, where))
    return level, rest


def _group_for(level: str, path: list[str]) -> tuple[str, ...]:
    """Grouping tuple of a level given the nesting path so far (updated)."""
    if level == "_all":
        return ()
    if level in path:
        return tuple(path[: path.index(level) + 1])
    path.append(level)
    return tuple(path)


def parse_re_segment(segment: str, path: list[str], g: CommandSettings) -> REEquation:
    """Parse one ``level: [varlist] [, re_opts]`` segment."""
    where = "|| " + segment.strip()
    level, rest = _split_level(segment, where)
    varlist, opts = split_comma(rest)
    revars = _re_varlist(varlist, where)
    local = apply_options(opts, where, False, g)
    if local.weight is not None:
        if level == "_all":
            raise StataSyntaxError("%s() is not allowed at level _all in %r" % (local.weight[0], where))
        if any(w.level == level for w in g.weights):
            raise StataSyntaxError("weights for level %s specified more than once in %r" % (level, where))
        g.weights.append(WeightSpec(kind=local.weight[0], var=local.weight[1], level=level))
    constant = revars.factor is None and not local.noconstant
    n_effects = len(revars.columns) + int(constant)
    cov = _equation_covariance(n_effects, local.covariance, revars.factor, where)
    return REEquation(
        group=_group_for(level, path),
        columns=revars.columns,
        constant=constant,
        covariance=cov,
        factor=revars.factor,
        label=level,
    )
