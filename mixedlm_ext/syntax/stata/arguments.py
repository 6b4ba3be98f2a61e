"""Arguments of single options: ``covariance()``, ``level()``, ``vce()``,
``dfmethod()`` and ``residuals()``, with Stata's abbreviations normalised."""
from __future__ import annotations

import re
from typing import Optional

from ...core.errors import StataSyntaxError
from ...spec.model import ResidualSpec
from ...spec.vocabulary import RESIDUAL_ABBREVIATIONS, RESIDUAL_DEFAULT_ORDER, covariance_type, match_abbreviation
from ..scanning import is_ident
from .options import Option, need_arg, number_arg, tokenize_options
from .scan import normspace, split_comma, split_words

__all__ = ["covariance_argument", "dfmethod_argument", "level_argument", "residuals_argument", "vce_argument"]


def covariance_argument(word: str, segment: str) -> str:
    """Normalise a ``covariance()`` argument (``un`` -> ``unstructured``)."""
    full = covariance_type(word)
    if full is None:
        raise StataSyntaxError("unknown covariance type %r in %r" % (word.strip(), segment))
    return full


def level_argument(opt: Option, segment: str) -> float:
    """``level(#)``: a confidence level between 10 and 99.99."""
    value = float(number_arg(opt, segment, float))
    if not 10 <= value <= 99.99:
        raise StataSyntaxError("level() must be between 10 and 99.99, got %r in %r" % (opt.arg, segment))
    return value


_VCE_ABBREV = {"oim": 3, "robust": 1, "cluster": 2}


def vce_argument(opt: Option, segment: str) -> str:
    """``vce(oim|robust|cluster var)`` with abbreviations normalised."""
    words = split_words(need_arg(opt, segment))
    kind = match_abbreviation(words[0], _VCE_ABBREV)
    if kind is None:
        raise StataSyntaxError("unknown vce type %r in %r" % (words[0], segment))
    rest = words[1:]
    if kind == "cluster":
        if len(rest) != 1 or not is_ident(rest[0]):
            raise StataSyntaxError("vce(cluster) needs one variable name in %r" % segment)
        return "cluster %s" % rest[0]
    if rest:
        raise StataSyntaxError("unexpected %r in vce(%s) in %r" % (" ".join(rest), opt.arg, segment))
    return kind


_DF_ABBREV = {"residual": 3, "repeated": 3, "anova": 5, "satterthwaite": 3, "kroger": 2}


def dfmethod_argument(opt: Option, segment: str) -> str:
    """``dfmethod(name [, opts])``: method name normalised, rest kept."""
    arg = need_arg(opt, segment)
    head, tail = split_comma(arg)
    words = split_words(head)
    method = match_abbreviation(words[0], _DF_ABBREV) if len(words) == 1 else None
    if method is None:
        raise StataSyntaxError("unknown dfmethod %r in %r" % (head.strip(), segment))
    return method if tail is None else normspace("%s, %s" % (method, tail))


def _residual_kind(text: str, segment: str) -> tuple[str, Optional[int]]:
    """Parse ``type [#]`` (or glued ``ar2``) of ``residuals()``."""
    words = split_words(text)
    if not words:
        raise StataSyntaxError("residuals() needs a type in %r" % segment)
    order_text: Optional[str] = None
    m = re.match(r"([A-Za-z]+)(\d+)\Z", words[0])
    if m is not None and len(words) == 1:
        words = [m.group(1), m.group(2)]
    if len(words) > 2:
        raise StataSyntaxError("invalid residual type %r in %r" % (text.strip(), segment))
    kind = match_abbreviation(words[0], RESIDUAL_ABBREVIATIONS)
    if kind is None:
        raise StataSyntaxError("unknown residual type %r in %r" % (words[0], segment))
    if len(words) == 2:
        order_text = words[1]
        if kind not in RESIDUAL_DEFAULT_ORDER:
            raise StataSyntaxError(
                "residual type %s takes no order, got %r in %r" % (kind, order_text, segment)
            )
        if not order_text.isdigit() or int(order_text) < 1:
            raise StataSyntaxError(
                "residual order must be a positive integer, got %r in %r" % (order_text, segment)
            )
        return kind, int(order_text)
    return kind, RESIDUAL_DEFAULT_ORDER.get(kind)


def residuals_argument(opt: Option, segment: str) -> ResidualSpec:
    """``residuals(type [#] [, t(var) by(var)])`` -> :class:`ResidualSpec`."""
    arg = need_arg(opt, segment)
    head, tail = split_comma(arg)
    kind, order = _residual_kind(head, segment)
    time = by = None
    for sub in tokenize_options(tail or "", segment):
        var = need_arg(sub, segment)
        if not is_ident(var):
            raise StataSyntaxError("invalid variable name %r in %s() in %r" % (var, sub.name, segment))
        if sub.name == "t":
            time = var
        elif sub.name == "by":
            by = var
        else:
            raise StataSyntaxError("unknown residuals() suboption %r in %r" % (sub.text(), segment))
    return ResidualSpec(kind=kind, order=order, time=time, by=by)
