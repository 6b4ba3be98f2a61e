"""Scanning of Stata command text: balance check and top-level splitting.

Stata quotes strings with double quotes only; "top level" means outside
parentheses and such quotes.
"""
from __future__ import annotations

import re
from typing import Optional

from ...core.errors import StataSyntaxError
from ..scanning import find_imbalance, split_top_level

__all__ = ["STATA_QUOTES", "check_balanced", "normspace", "split_comma", "split_top", "split_words"]

# Stata quotes strings with double quotes only.
STATA_QUOTES = '"'


def check_balanced(text: str, where: Optional[str] = None) -> None:
    """Raise :class:`StataSyntaxError` on unbalanced parentheses or quotes.

    Parameters
    ----------
    text : str
        Text to check.
    where : str, optional
        Text quoted in the error message (defaults to ``text``).
    """
    where = text if where is None else where
    problem = find_imbalance(text, STATA_QUOTES)
    if problem is None:
        return
    if problem.stray_close is not None:
        raise StataSyntaxError(
            "unbalanced parentheses: unexpected ')' at position %d in %r" % (problem.stray_close, where)
        )
    if problem.open_quote:
        raise StataSyntaxError("unbalanced double quotes in %r" % where)
    raise StataSyntaxError("unbalanced parentheses: %d unclosed '(' in %r" % (problem.unclosed, where))


def split_top(text: str, sep: str, maxsplit: int = -1) -> list[str]:
    """Split ``text`` on ``sep`` outside parentheses and quotes."""
    return split_top_level(text, sep, STATA_QUOTES, maxsplit)


def split_comma(text: str) -> tuple[str, Optional[str]]:
    """Split at the first top-level comma: ``(body, options or None)``."""
    parts = split_top(text, ",", maxsplit=1)
    if len(parts) == 1:
        return parts[0], None
    return parts[0], parts[1]


def split_words(text: str) -> list[str]:
    """Whitespace-separated tokens."""
    return text.split()


def normspace(text: str) -> str:
    """Collapse runs of whitespace and strip; ``' , '`` becomes ``', '``."""
    text = re.sub(r"\s+", " ", text.strip())
    return re.sub(r"\s*,\s*", ", ", text)
