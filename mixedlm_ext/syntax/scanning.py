"""Text scanning shared by the front-ends: names, parenthesis balance, top-level splitting.

"Top level" means outside parentheses and quotes.  Which characters quote
differs between the syntaxes (Stata: ``"`` only; formulas: ``"`` and ``'``),
so the scanners take the quote characters as an argument; a quote ends at
the next occurrence of the character that opened it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator, Optional

__all__ = [
    "IDENT_RE",
    "Imbalance",
    "find_imbalance",
    "is_ident",
    "split_top_level",
    "top_level_chars",
    "top_level_positions",
]

IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def is_ident(token: str) -> bool:
    """Return True if ``token`` is a valid Stata/Python variable name."""
    return bool(IDENT_RE.match(token))


@dataclass(frozen=True)
class Imbalance:
    """The first problem :func:`find_imbalance` met.

    Attributes
    ----------
    stray_close : int or None
        Position of a ``)`` without a matching ``(`` (scanning stops there).
    open_quote : bool
        A quote is still open at the end of the text.
    unclosed : int
        Number of ``(`` still open at the end of the text.
    """

    stray_close: Optional[int] = None
    open_quote: bool = False
    unclosed: int = 0


def find_imbalance(text: str, quotes: str) -> Optional[Imbalance]:
    """Unbalanced parentheses or quotes in ``text``, or None when balanced.

    Parameters
    ----------
    text : str
        Text to check.
    quotes : str
        The characters that open (and close) a quoted string.
    """
    depth = 0
    quote: Optional[str] = None
    for pos, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in quotes:
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                return Imbalance(stray_close=pos)
    if quote or depth:
        return Imbalance(open_quote=quote is not None, unclosed=depth)
    return None


def top_level_chars(text: str, quotes: str) -> Iterator[tuple[int, str, int]]:
    """Yield ``(index, char, depth)`` for characters outside quotes.

    ``depth`` is the parenthesis depth around the character; a ``(`` and
    its ``)`` carry the depth outside them.  Quote characters are skipped.
    """
    depth = 0
    quote: Optional[str] = None
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
            continue
        if ch in quotes:
            quote = ch
            continue
        if ch == "(":
            depth += 1
            yield i, ch, depth - 1
            continue
        if ch == ")":
            depth -= 1
        yield i, ch, depth


def top_level_positions(text: str, sep: str, quotes: str) -> list[int]:
    """Positions where ``sep`` occurs outside parentheses and quotes (no overlaps)."""
    positions: list[int] = []
    for i, _, depth in top_level_chars(text, quotes):
        if depth == 0 and (not positions or i >= positions[-1] + len(sep)) and text.startswith(sep, i):
            positions.append(i)
    return positions


def split_top_level(text: str, sep: str, quotes: str, maxsplit: int = -1) -> list[str]:
    """Split ``text`` on ``sep`` outside parentheses and quotes."""
    pieces = []
    start = 0
    for count, pos in enumerate(top_level_positions(text, sep, quotes)):
        if maxsplit >= 0 and count >= maxsplit:
            break
        pieces.append(text[start:pos])
        start = pos + len(sep)
    pieces.append(text[start:])
    return pieces
