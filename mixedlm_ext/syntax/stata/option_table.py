"""The option table: which options a segment accepts and what each one sets."""
from __future__ import annotations

from typing import Callable, Optional

from ...core.errors import StataSyntaxError
from ...spec.vocabulary import match_abbreviation
from .arguments import covariance_argument, dfmethod_argument, level_argument, residuals_argument, vce_argument
from .options import Option, need_arg, no_arg, number_arg, tokenize_options
from .settings import CommandSettings, SegmentSettings
from .weights import weight_variable

__all__ = ["apply_options"]

_OptionHandler = Callable[[Option, str, CommandSettings], None]

_PWSCALE = ("size", "effective", "gk")


def _set_method(g: CommandSettings, reml: bool, segment: str) -> None:
    """Record ``reml`` or ``mle``; the two may not be combined."""
    if g.reml is not None and g.reml != reml:
        raise StataSyntaxError("options reml and mle may not be combined (in %r)" % segment)
    g.reml = reml


def _set_residual(g: CommandSettings, opt: Option, segment: str) -> None:
    """Record ``residuals()``, which may be given once."""
    if g.residual is not None:
        raise StataSyntaxError("option residuals() specified more than once (in %r)" % segment)
    g.residual = residuals_argument(opt, segment)


def _flag(key: str, value: object) -> _OptionHandler:
    """Handler for an argument-free option stored as ``(key, value)``."""

    def handler(opt: Option, segment: str, g: CommandSettings) -> None:
        no_arg(opt, segment)
        g.options[key] = value

    return handler


def _valued(key: str, convert: Callable[[Option, str], object]) -> _OptionHandler:
    """Handler for ``key(arg)`` stored as ``(key, convert(arg))``."""

    def handler(opt: Option, segment: str, g: CommandSettings) -> None:
        g.options[key] = convert(opt, segment)

    return handler


def _method_handler(reml: bool) -> _OptionHandler:
    """Handler for ``reml`` (``reml=True``) or ``mle``."""

    def handler(opt: Option, segment: str, g: CommandSettings) -> None:
        no_arg(opt, segment)
        _set_method(g, reml, segment)

    return handler


def _residual_handler(opt: Option, segment: str, g: CommandSettings) -> None:
    """Handler for ``residuals()``."""
    _set_residual(g, opt, segment)


def _set_pwscale(g: CommandSettings, opt: Option, segment: str) -> None:
    """Record ``pwscale(size|effective|gk)``."""
    arg = need_arg(opt, segment).lower()
    if arg not in _PWSCALE:
        raise StataSyntaxError("pwscale() must be size, effective or gk, got %r in %r" % (opt.arg, segment))
    if g.pwscale is not None and g.pwscale != arg:
        raise StataSyntaxError("option pwscale() specified more than once (in %r)" % segment)
    g.pwscale = arg


# Global options: full name -> (minimal abbreviation length, handler).
_GLOBAL_OPTIONS: dict[str, tuple[int, _OptionHandler]] = {
    "reml": (4, _method_handler(True)),
    "mle": (2, _method_handler(False)),
    "residuals": (3, _residual_handler),
    "stddeviations": (6, _flag("stddeviations", True)),
    "variance": (3, _flag("stddeviations", False)),
    "level": (1, _valued("level", level_argument)),
    "nolog": (5, _flag("log", False)),
    "log": (3, _flag("log", True)),
    "emlog": (5, _flag("emlog", True)),
    "emonly": (6, _flag("emonly", True)),
    "iterate": (4, _valued("iterate", lambda o, s: number_arg(o, s, int))),
    "emiterate": (6, _valued("emiterate", lambda o, s: number_arg(o, s, int))),
    "tolerance": (3, _valued("tolerance", lambda o, s: number_arg(o, s, float))),
    "emtolerance": (5, _valued("emtolerance", lambda o, s: number_arg(o, s, float))),
    "noretable": (9, _flag("noretable", True)),
    "nofetable": (9, _flag("nofetable", True)),
    "nolrtest": (4, _flag("nolrtest", True)),
    "nogroup": (4, _flag("nogroup", True)),
    "noheader": (4, _flag("noheader", True)),
    "nostderr": (8, _flag("nostderr", True)),
    "baselevels": (10, _flag("baselevels", True)),
    "allbaselevels": (13, _flag("allbaselevels", True)),
    "noomitted": (9, _flag("noomitted", True)),
    "vsquish": (7, _flag("vsquish", True)),
    "dfmethod": (3, _valued("dfmethod", dfmethod_argument)),
    "vce": (3, _valued("vce", vce_argument)),
    "pwscale": (7, lambda o, s, g: _set_pwscale(g, o, s)),
}

# Options of the segment itself: full name -> minimal abbreviation length.
_LOCAL_OPTIONS = {"noconstant": 6, "covariance": 3, "fweight": 2, "pweight": 2}


def apply_options(text: Optional[str], segment: str, is_fixed: bool, g: CommandSettings) -> SegmentSettings:
    """Parse the option list of one segment.

    Global options update ``g``; ``noconstant`` (and, in a random-effects
    segment, ``covariance()``) are returned for the segment itself.
    """
    local = SegmentSettings()
    if text is None:
        return local
    if not text.strip():
        raise StataSyntaxError("empty option list after ',' in %r" % segment)
    for opt in tokenize_options(text, segment):
        name = opt.name.lower()
        local_name = match_abbreviation(name, _LOCAL_OPTIONS)
        if local_name == "noconstant":
            no_arg(opt, segment)
            local.noconstant = True
            continue
        if local_name == "covariance":
            if is_fixed:
                raise StataSyntaxError(
                    "option covariance() is only allowed in a random-effects equation, not in %r" % segment
                )
            local.covariance = covariance_argument(need_arg(opt, segment), segment)
            continue
        if local_name in ("fweight", "pweight"):
            if is_fixed:
                raise StataSyntaxError(
                    "option %s() is only allowed in a random-effects equation (observation-level "
                    "weights are written [%s=var]), not in %r" % (local_name, local_name[:2], segment))
            if local.weight is not None:
                raise StataSyntaxError("more than one weight option in %r" % segment)
            local.weight = (local_name, weight_variable(need_arg(opt, segment), local_name, segment))
            continue
        full = "mle" if name == "ml" else match_abbreviation(name, {k: v[0] for k, v in _GLOBAL_OPTIONS.items()})
        if full is None:
            raise StataSyntaxError("unknown option %r in %r" % (opt.text(), segment))
        _GLOBAL_OPTIONS[full][1](opt, segment, g)
    return local
