"""Translation of a parsed Stata ``if`` expression into a pandas ``eval`` string."""
from __future__ import annotations

from ...core.errors import StataSyntaxError
from .if_parser import COMPARISONS, LOGICAL, ExprParser, Node, is_logical, strip_paren

__all__ = ["translate_if"]


def _wrap(node: Node, text: str) -> str:
    """Parenthesise ``text`` unless ``node`` is an atom."""
    if strip_paren(node)[0] in ("num", "str", "name", "missing"):
        return text
    return "(%s)" % text


_FLIP = {"==": "==", "!=": "!=", "<": ">", ">": "<", "<=": ">=", ">=": "<="}


class _Emitter:
    """Emit a pandas ``eval`` string from an expression tree."""

    def __init__(self, text: str) -> None:
        self.text = text

    def error(self, what: str) -> StataSyntaxError:
        return StataSyntaxError("%s in if expression %r" % (what, self.text))

    def operand(self, node: Node) -> str:
        """Emit ``node`` parenthesised unless it is an atom."""
        return _wrap(node, self.emit(node))

    def as_bool(self, node: Node) -> str:
        """Emit ``node`` as a boolean operand (Stata: nonzero is true)."""
        if is_logical(node):
            return self.operand(node)
        return "(%s != 0)" % self.emit(node)

    def emit(self, node: Node) -> str:
        kind = node[0]
        if kind in ("num", "str", "name"):
            return node[1]
        if kind == "missing":
            raise self.error("missing value %r may only be compared with ==, !=, < or >=" % node[1])
        if kind == "paren":
            return self.emit(node[1])
        if kind == "neg":
            return "-%s" % self.operand(node[1])
        if kind == "not":
            return self.negation(strip_paren(node[1]))
        if kind == "call":
            return self.call(node)
        return self.binary(node[1], node[2], node[3])

    def negation(self, inner: Node) -> str:
        if not is_logical(inner):
            return "%s == 0" % self.operand(inner)
        return "~%s" % self.operand(inner)

    def binary(self, op: str, left: Node, right: Node) -> str:
        if op in LOGICAL:
            return "%s %s %s" % (self.as_bool(left), op, self.as_bool(right))
        if op in COMPARISONS:
            if strip_paren(right)[0] == "missing":
                return self.missing_comparison(op, left)
            if strip_paren(left)[0] == "missing":
                return self.missing_comparison(_FLIP[op], right)
        pyop = "**" if op == "^" else op
        return "%s %s %s" % (self.operand(left), pyop, self.operand(right))

    def missing_comparison(self, op: str, other: Node) -> str:
        """``x == .`` style comparisons (missing is +infinity in Stata)."""
        value = self.operand(other)
        if op in ("==", ">="):
            return "%s != %s" % (value, value)
        if op in ("!=", "<"):
            return "%s == %s" % (value, value)
        raise self.error("comparison %r with missing value '.' is not supported" % op)

    def call(self, node: Node) -> str:
        fname, args = node[1], node[2]
        parts = [self.operand(a) for a in args]
        if fname == "inlist" and len(args) >= 2:
            return "%s in [%s]" % (parts[0], ", ".join(self.emit(a) for a in args[1:]))
        if fname == "inrange" and len(args) == 3:
            return "(%s >= %s) & (%s <= %s)" % (parts[0], parts[1], parts[0], parts[2])
        if fname == "missing" and len(args) == 1:
            return "%s != %s" % (parts[0], parts[0])
        raise self.error("function %s() with %d argument(s) is not supported" % (fname, len(args)))


def translate_if(expression: str) -> str:
    """Translate a Stata ``if`` expression into a pandas ``eval`` string.

    Parameters
    ----------
    expression : str
        The expression after ``if`` (e.g. ``"week <= 5"``,
        ``"a==1 & b~=2"``, ``"!(x > 3) | inlist(g, 1, 2)"``).

    Returns
    -------
    str
        An expression for ``DataFrame.eval``/``DataFrame.query``.  Each
        comparison joined by ``&``/``|`` is parenthesised (pandas' ``&``
        binds tighter than ``==``); ``~=`` becomes ``!=``; ``!`` of a
        condition becomes ``~``; a bare numeric operand ``x`` of a logical
        operator becomes ``(x != 0)`` and ``!x`` becomes ``x == 0`` (Stata's
        truth rule, and ``~`` of an integer column would be bitwise);
        ``^`` becomes ``**``; ``x == .`` / ``missing(x)`` become ``x != x``;
        ``inlist(x, a, b)`` becomes ``x in [a, b]`` and ``inrange(x, a, b)``
        a pair of comparisons.

    Raises
    ------
    StataSyntaxError
        On invalid or unsupported syntax.
    """
    node = strip_paren(ExprParser(expression).parse())
    emitter = _Emitter(expression.strip())
    if not is_logical(node):
        return "%s != 0" % emitter.operand(node)
    return emitter.emit(node)
