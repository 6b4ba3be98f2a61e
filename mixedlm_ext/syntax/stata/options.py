"""Option lists of a segment: tokens ``name`` / ``name(arg)`` and their arguments."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Union

from ...core.errors import StataSyntaxError
from ..scanning import top_level_chars
from .scan import STATA_QUOTES

__all__ = ["Option", "need_arg", "no_arg", "number_arg", "tokenize_options"]


@dataclass
class Option:
    """One option as typed: ``name`` or ``name(arg)``."""

    name: str
    arg: Optional[str]

    def text(self) -> str:
        """The option as typed, for error messages."""
        return self.name if self.arg is None else "%s(%s)" % (self.name, self.arg)


def _matching_paren(text: str, start: int) -> int:
    """Index of the ``)`` closing the ``(`` at ``start`` (quotes respected)."""
    for i, ch, depth in top_level_chars(text[start:], STATA_QUOTES):
        if ch == ")" and depth == 0:
            return start + i
    raise StataSyntaxError("unbalanced parentheses in %r" % text)


def tokenize_options(text: str, segment: str) -> list[Option]:
    """Split an option list such as ``cov(un) reml res(ar 1, t(time))``."""
    options = []
    pos = 0
    name_re = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*")
    while pos < len(text):
        if not text[pos:].strip():
            break
        m = name_re.match(text, pos)
        if m is None:
            bad = text[pos:].strip().split()[0]
            raise StataSyntaxError("invalid option %r in %r" % (bad, segment))
        name = m.group(1)
        pos = m.end()
        arg = None
        if pos < len(text) and text[pos] == "(":
            end = _matching_paren(text, pos)
            arg = text[pos + 1 : end]
            pos = end + 1
            if pos < len(text) and not text[pos].isspace():
                raise StataSyntaxError(
                    "invalid option %r in %r" % (text[m.start(1) :].split()[0], segment)
                )
        options.append(Option(name, arg))
    return options


def need_arg(opt: Option, segment: str) -> str:
    """The argument of ``name(arg)``, stripped; an error if it is missing or blank."""
    if opt.arg is None or not opt.arg.strip():
        raise StataSyntaxError("option %s() requires an argument in %r" % (opt.name, segment))
    return opt.arg.strip()


def no_arg(opt: Option, segment: str) -> None:
    """An error if an argument-free option was given one."""
    if opt.arg is not None:
        raise StataSyntaxError("option %r takes no argument in %r" % (opt.text(), segment))


def number_arg(opt: Option, segment: str, kind: type) -> Union[int, float]:
    """Numeric argument of ``opt`` converted with ``kind`` (int or float)."""
    arg = need_arg(opt, segment)
    try:
        value = kind(arg)
    except ValueError:
        raise StataSyntaxError(
            "option %s() needs %s, got %r in %r"
            % (opt.name, "an integer" if kind is int else "a number", arg, segment)
        ) from None
    if value < 0:
        raise StataSyntaxError("option %s() must not be negative in %r" % (opt.name, segment))
    return value
