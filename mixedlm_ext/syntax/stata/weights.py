"""Weights: ``[fw=var]`` / ``[pw=var]`` of the fixed part and the weight variable check."""
from __future__ import annotations

import re

from ...core.errors import StataSyntaxError
from ...spec.model import WeightSpec
from ...spec.vocabulary import match_abbreviation
from ..scanning import is_ident
from .settings import CommandSettings

__all__ = ["extract_weight", "weight_variable"]

_WEIGHT_ABBREV = {"fweight": 2, "pweight": 2, "aweight": 2, "iweight": 2}


def weight_variable(arg: str, kind: str, segment: str) -> str:
    """The variable of a weight (only a plain variable name is supported)."""
    arg = arg.strip()
    if not is_ident(arg):
        raise StataSyntaxError(
            "%s: only a variable name is supported as the weight, got %r in %r" % (kind, arg, segment))
    return arg


def extract_weight(body: str, segment: str, g: CommandSettings) -> str:
    """Remove ``[fw=var]`` / ``[pw=var]`` from the fixed part, recording it in ``g``."""
    if "[" not in body and "]" not in body:
        return body
    found = list(re.finditer(r"\[([^\[\]]*)\]", body))
    rest = re.sub(r"\[([^\[\]]*)\]", " ", body)
    if len(found) != 1 or "[" in rest or "]" in rest:
        raise StataSyntaxError("invalid weight specification in %r: use one [fw=var] or [pw=var]" % segment)
    inner = found[0].group(1)
    if "=" not in inner:
        raise StataSyntaxError("invalid weight %r in %r: use [fw=var] or [pw=var]"
                               % (found[0].group(0), segment))
    word, var = inner.split("=", 1)
    kind = match_abbreviation(word.strip(), _WEIGHT_ABBREV)
    if kind is None:
        raise StataSyntaxError("unknown weight type %r in %r" % (word.strip(), segment))
    if kind in ("aweight", "iweight"):
        raise StataSyntaxError("%ss are not allowed with mixed (only fweights and pweights) in %r"
                               % (kind, segment))
    g.weights.insert(0, WeightSpec(kind=kind, var=weight_variable(var, kind, segment), level=None))
    return rest
