"""Tokenizer and recursive-descent parser of Stata ``if`` expressions.

The tree is made of tuples: ``("num"|"str"|"name"|"missing", text)``,
``("paren", node)``, ``("neg", node)``, ``("not", node)``,
``("bin", op, left, right)`` and ``("call", name, args)``.
"""
from __future__ import annotations

import re
from typing import Optional

from ...core.errors import StataSyntaxError

__all__ = ["COMPARISONS", "LOGICAL", "ExprParser", "Node", "is_logical", "strip_paren"]

_EXPR_TOKEN = re.compile(
    r"""\s*(?:
        (?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
      | (?P<missing>\.[a-z]?(?![A-Za-z0-9_]))
      | (?P<str>"[^"]*")
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<op>==|!=|~=|<=|>=|<|>|&|\||!|~|\+|-|\*|/|\^|\(|\)|,|=)
    )""",
    re.VERBOSE,
)

COMPARISONS = ("==", "!=", "<", ">", "<=", ">=")
LOGICAL = ("&", "|")

Node = tuple


def _tokenize_expr(text: str) -> list[tuple[str, str]]:
    """Tokens ``(kind, text)`` of a Stata expression."""
    tokens = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _EXPR_TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            bad = text[pos:].strip()[:1]
            raise StataSyntaxError("invalid character %r in if expression %r" % (bad, text))
        kind = m.lastgroup
        value = m.group(kind)
        if kind == "op" and value == "~=":
            value = "!="
        if kind == "op" and value == "~":
            value = "!"
        if kind == "op" and value == "=":
            raise StataSyntaxError("use '==' for equality, not '=', in if expression %r" % text)
        tokens.append((kind, value))
        pos = m.end()
    return tokens


class ExprParser:
    """Recursive-descent parser for Stata expressions (Stata precedence).

    From loosest to tightest: ``|``, ``&``, comparisons, ``+ -``, ``* /``,
    unary minus, ``^``, ``!``.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize_expr(text)
        self.pos = 0

    def error(self, what: str) -> StataSyntaxError:
        return StataSyntaxError("%s in if expression %r" % (what, self.text))

    def peek(self) -> Optional[str]:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise self.error("unexpected end")
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def expect(self, value: str) -> None:
        kind, got = self.take()
        if got != value:
            raise self.error("expected %r, got %r" % (value, got))

    def parse(self) -> Node:
        if not self.tokens:
            raise self.error("empty expression")
        node = self.binary(0)
        if self.pos < len(self.tokens):
            tok = self.peek()
            if tok == "in":
                raise self.error("'in' ranges are not supported")
            raise self.error("unexpected %r" % tok)
        return node

    _LEVELS: tuple[tuple[str, ...], ...] = (("|",), ("&",), COMPARISONS, ("+", "-"), ("*", "/"))

    def binary(self, level: int) -> Node:
        if level == len(self._LEVELS):
            return self.unary()
        node = self.binary(level + 1)
        while self.peek() in self._LEVELS[level] and self.tokens[self.pos][0] == "op":
            op = self.take()[1]
            node = ("bin", op, node, self.binary(level + 1))
        return node

    def unary(self) -> Node:
        if self.peek() == "-" and self.tokens[self.pos][0] == "op":
            self.take()
            return ("neg", self.unary())
        return self.power()

    def power(self) -> Node:
        node = self.negation()
        if self.peek() == "^" and self.tokens[self.pos][0] == "op":
            self.take()
            node = ("bin", "^", node, self.unary())
        return node

    def negation(self) -> Node:
        if self.peek() == "!" and self.tokens[self.pos][0] == "op":
            self.take()
            return ("not", self.negation())
        return self.atom()

    def atom(self) -> Node:
        kind, value = self.take()
        if kind == "op" and value == "(":
            node = self.binary(0)
            self.expect(")")
            return ("paren", node)
        if kind == "name" and self.peek() == "(":
            return self.call(value)
        if kind in ("num", "str", "name", "missing"):
            return (kind, value)
        raise self.error("unexpected %r" % value)

    def call(self, fname: str) -> Node:
        self.expect("(")
        args = [self.binary(0)]
        while self.peek() == ",":
            self.take()
            args.append(self.binary(0))
        self.expect(")")
        return ("call", fname, tuple(args))


def strip_paren(node: Node) -> Node:
    """``node`` without the parentheses around it."""
    while node[0] == "paren":
        node = node[1]
    return node


def is_logical(node: Node) -> bool:
    """True for a condition (comparison, ``&``/``|``, ``!``, ``inlist``...), not a number."""
    node = strip_paren(node)
    if node[0] == "not":
        return True
    if node[0] == "call":
        return node[1] in ("inlist", "inrange", "missing")
    return node[0] == "bin" and node[1] in COMPARISONS + LOGICAL
