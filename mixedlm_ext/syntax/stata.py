"""Parse Stata ``mixed`` commands into a :class:`~mixedlm_ext._spec.ModelSpec`.

Syntax accepted (see ``STATA_MIXED.md``)::

    [mixed] depvar [indepvars] [if exp] [, fe_opts] || level: [varlist] [, re_opts] || ... [, opts]

* The fixed part may use ``i.var`` (-> ``C(var)``), ``ib#.var`` / ``ib(#).var``
  (-> ``C(var, Treatment(reference=#))``) and ``c.var`` (-> ``var``).
* ``if exp`` is translated to a pandas ``DataFrame.eval`` string.
* Every ``|| level: ...`` segment becomes one :class:`REEquation`; levels nest
  from left to right, ``_all`` is the single all-data group and ``R.var`` a
  factor random effect.
* Global options (``reml``, ``residuals()``, display and maximisation
  options) may follow the comma of any segment.

Options and covariance/residual types accept Stata's minimal abbreviations
(``cov(un)``, ``res(ar 1, t(time))``, ``stddev``, ``nocons`` ...).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Optional, Union

from ..core.errors import StataSyntaxError
from ..spec.model import ModelSpec, REEquation, ResidualSpec, WeightSpec
from ..spec.vocabulary import RESIDUAL_ABBREVIATIONS, RESIDUAL_DEFAULT_ORDER, covariance_type, match_abbreviation
from .scanning import find_imbalance, is_ident, split_top_level, top_level_chars, top_level_positions

__all__ = ["StataSyntaxError", "parse_stata", "translate_if"]


# Stata quotes strings with double quotes only.
STATA_QUOTES = '"'

# ---------------------------------------------------------------------------
# Low-level scanning helpers (parentheses and double quotes aware)
# ---------------------------------------------------------------------------


def _check_balanced(text: str, where: Optional[str] = None) -> None:
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


def _split_top(text: str, sep: str, maxsplit: int = -1) -> list[str]:
    """Split ``text`` on ``sep`` outside parentheses and quotes."""
    return split_top_level(text, sep, STATA_QUOTES, maxsplit)


def _split_comma(text: str) -> tuple[str, Optional[str]]:
    """Split at the first top-level comma: ``(body, options or None)``."""
    parts = _split_top(text, ",", maxsplit=1)
    if len(parts) == 1:
        return parts[0], None
    return parts[0], parts[1]


def _words(text: str) -> list[str]:
    """Whitespace-separated tokens."""
    return text.split()


def _normspace(text: str) -> str:
    """Collapse runs of whitespace and strip; ``' , '`` becomes ``', '``."""
    text = re.sub(r"\s+", " ", text.strip())
    return re.sub(r"\s*,\s*", ", ", text)


# ---------------------------------------------------------------------------
# Abbreviations
# ---------------------------------------------------------------------------


def _covariance_type(word: str, segment: str) -> str:
    """Normalise a ``covariance()`` argument (``un`` -> ``unstructured``)."""
    full = covariance_type(word)
    if full is None:
        raise StataSyntaxError("unknown covariance type %r in %r" % (word.strip(), segment))
    return full


# ---------------------------------------------------------------------------
# Option lists
# ---------------------------------------------------------------------------


@dataclass
class _Option:
    """One option as typed: ``name`` or ``name(arg)``."""

    name: str
    arg: Optional[str]

    def text(self) -> str:
        return self.name if self.arg is None else "%s(%s)" % (self.name, self.arg)


def _matching_paren(text: str, start: int) -> int:
    """Index of the ``)`` closing the ``(`` at ``start`` (quotes respected)."""
    for i, ch, depth in top_level_chars(text[start:], STATA_QUOTES):
        if ch == ")" and depth == 0:
            return start + i
    raise StataSyntaxError("unbalanced parentheses in %r" % text)


def _tokenize_options(text: str, segment: str) -> list[_Option]:
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
        options.append(_Option(name, arg))
    return options


@dataclass
class _Globals:
    """Model-wide settings collected from the options of all segments."""

    reml: Optional[bool] = None
    residual: Optional[ResidualSpec] = None
    options: dict = field(default_factory=dict)
    weights: list = field(default_factory=list)  # WeightSpec, observation level first
    pwscale: Optional[str] = None


@dataclass
class _Local:
    """Settings that belong to the segment being parsed."""

    noconstant: bool = False
    covariance: Optional[str] = None
    weight: Optional[tuple[str, str]] = None  # ("fweight"|"pweight", var) of fweight()/pweight()


def _need_arg(opt: _Option, segment: str) -> str:
    if opt.arg is None or not opt.arg.strip():
        raise StataSyntaxError("option %s() requires an argument in %r" % (opt.name, segment))
    return opt.arg.strip()


def _no_arg(opt: _Option, segment: str) -> None:
    if opt.arg is not None:
        raise StataSyntaxError("option %r takes no argument in %r" % (opt.text(), segment))


def _number(opt: _Option, segment: str, kind: type) -> Union[int, float]:
    """Numeric argument of ``opt`` converted with ``kind`` (int or float)."""
    arg = _need_arg(opt, segment)
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


def _parse_level(opt: _Option, segment: str) -> float:
    value = float(_number(opt, segment, float))
    if not 10 <= value <= 99.99:
        raise StataSyntaxError("level() must be between 10 and 99.99, got %r in %r" % (opt.arg, segment))
    return value


_VCE_ABBREV = {"oim": 3, "robust": 1, "cluster": 2}


def _parse_vce(opt: _Option, segment: str) -> str:
    """``vce(oim|robust|cluster var)`` with abbreviations normalised."""
    words = _words(_need_arg(opt, segment))
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


def _parse_dfmethod(opt: _Option, segment: str) -> str:
    """``dfmethod(name [, opts])``: method name normalised, rest kept."""
    arg = _need_arg(opt, segment)
    head, tail = _split_comma(arg)
    words = _words(head)
    method = match_abbreviation(words[0], _DF_ABBREV) if len(words) == 1 else None
    if method is None:
        raise StataSyntaxError("unknown dfmethod %r in %r" % (head.strip(), segment))
    return method if tail is None else _normspace("%s, %s" % (method, tail))


def _residual_kind(text: str, segment: str) -> tuple[str, Optional[int]]:
    """Parse ``type [#]`` (or glued ``ar2``) of ``residuals()``."""
    words = _words(text)
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


def _parse_residuals(opt: _Option, segment: str) -> ResidualSpec:
    """``residuals(type [#] [, t(var) by(var)])`` -> :class:`ResidualSpec`."""
    arg = _need_arg(opt, segment)
    head, tail = _split_comma(arg)
    kind, order = _residual_kind(head, segment)
    time = by = None
    for sub in _tokenize_options(tail or "", segment):
        var = _need_arg(sub, segment)
        if not is_ident(var):
            raise StataSyntaxError("invalid variable name %r in %s() in %r" % (var, sub.name, segment))
        if sub.name == "t":
            time = var
        elif sub.name == "by":
            by = var
        else:
            raise StataSyntaxError("unknown residuals() suboption %r in %r" % (sub.text(), segment))
    return ResidualSpec(kind=kind, order=order, time=time, by=by)


def _set_method(g: _Globals, reml: bool, segment: str) -> None:
    if g.reml is not None and g.reml != reml:
        raise StataSyntaxError("options reml and mle may not be combined (in %r)" % segment)
    g.reml = reml


def _set_residual(g: _Globals, opt: _Option, segment: str) -> None:
    if g.residual is not None:
        raise StataSyntaxError("option residuals() specified more than once (in %r)" % segment)
    g.residual = _parse_residuals(opt, segment)


def _flag(key: str, value: object) -> Callable[[_Option, str, _Globals], None]:
    """Handler for an argument-free option stored as ``(key, value)``."""

    def handler(opt: _Option, segment: str, g: _Globals) -> None:
        _no_arg(opt, segment)
        g.options[key] = value

    return handler


def _valued(key: str, convert: Callable[[_Option, str], object]) -> Callable[[_Option, str, _Globals], None]:
    """Handler for ``key(arg)`` stored as ``(key, convert(arg))``."""

    def handler(opt: _Option, segment: str, g: _Globals) -> None:
        g.options[key] = convert(opt, segment)

    return handler


def _method_handler(reml: bool) -> Callable[[_Option, str, _Globals], None]:
    def handler(opt: _Option, segment: str, g: _Globals) -> None:
        _no_arg(opt, segment)
        _set_method(g, reml, segment)

    return handler


def _residual_handler(opt: _Option, segment: str, g: _Globals) -> None:
    _set_residual(g, opt, segment)


_GlobalHandler = Callable[[_Option, str, _Globals], None]

# Global options: full name -> (minimal abbreviation length, handler).
_GLOBAL_OPTIONS: dict[str, tuple[int, _GlobalHandler]] = {
    "reml": (4, _method_handler(True)),
    "mle": (2, _method_handler(False)),
    "residuals": (3, _residual_handler),
    "stddeviations": (6, _flag("stddeviations", True)),
    "variance": (3, _flag("stddeviations", False)),
    "level": (1, _valued("level", _parse_level)),
    "nolog": (5, _flag("log", False)),
    "log": (3, _flag("log", True)),
    "emlog": (5, _flag("emlog", True)),
    "emonly": (6, _flag("emonly", True)),
    "iterate": (4, _valued("iterate", lambda o, s: _number(o, s, int))),
    "emiterate": (6, _valued("emiterate", lambda o, s: _number(o, s, int))),
    "tolerance": (3, _valued("tolerance", lambda o, s: _number(o, s, float))),
    "emtolerance": (5, _valued("emtolerance", lambda o, s: _number(o, s, float))),
    "noretable": (9, _flag("noretable", True)),
    "nofetable": (9, _flag("nofetable", True)),
    "nolrtest": (4, _flag("nolrtest", True)),
    "nogroup": (4, _flag("nogroup", True)),
    "noheader": (4, _flag("noheader", True)),
    "nostderr": (8, _flag("nostderr", True)),
    "dfmethod": (3, _valued("dfmethod", _parse_dfmethod)),
    "vce": (3, _valued("vce", _parse_vce)),
    "pwscale": (7, lambda o, s, g: _set_pwscale(g, o, s)),
}

_LOCAL_OPTIONS = {"noconstant": 6, "covariance": 3, "fweight": 2, "pweight": 2}

_WEIGHT_ABBREV = {"fweight": 2, "pweight": 2, "aweight": 2, "iweight": 2}
_PWSCALE = ("size", "effective", "gk")


def _weight_variable(arg: str, kind: str, segment: str) -> str:
    """The variable of a weight (only a plain variable name is supported)."""
    arg = arg.strip()
    if not is_ident(arg):
        raise StataSyntaxError(
            "%s: only a variable name is supported as the weight, got %r in %r" % (kind, arg, segment))
    return arg


def _extract_weight(body: str, segment: str, g: _Globals) -> str:
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
    g.weights.insert(0, WeightSpec(kind=kind, var=_weight_variable(var, kind, segment), level=None))
    return rest


def _set_pwscale(g: _Globals, opt: _Option, segment: str) -> None:
    arg = _need_arg(opt, segment).lower()
    if arg not in _PWSCALE:
        raise StataSyntaxError("pwscale() must be size, effective or gk, got %r in %r" % (opt.arg, segment))
    if g.pwscale is not None and g.pwscale != arg:
        raise StataSyntaxError("option pwscale() specified more than once (in %r)" % segment)
    g.pwscale = arg


def _apply_options(text: Optional[str], segment: str, is_fixed: bool, g: _Globals) -> _Local:
    """Parse the option list of one segment.

    Global options update ``g``; ``noconstant`` (and, in a random-effects
    segment, ``covariance()``) are returned for the segment itself.
    """
    local = _Local()
    if text is None:
        return local
    if not text.strip():
        raise StataSyntaxError("empty option list after ',' in %r" % segment)
    for opt in _tokenize_options(text, segment):
        name = opt.name.lower()
        local_name = match_abbreviation(name, _LOCAL_OPTIONS)
        if local_name == "noconstant":
            _no_arg(opt, segment)
            local.noconstant = True
            continue
        if local_name == "covariance":
            if is_fixed:
                raise StataSyntaxError(
                    "option covariance() is only allowed in a random-effects equation, not in %r" % segment
                )
            local.covariance = _covariance_type(_need_arg(opt, segment), segment)
            continue
        if local_name in ("fweight", "pweight"):
            if is_fixed:
                raise StataSyntaxError(
                    "option %s() is only allowed in a random-effects equation (observation-level "
                    "weights are written [%s=var]), not in %r" % (local_name, local_name[:2], segment))
            if local.weight is not None:
                raise StataSyntaxError("more than one weight option in %r" % segment)
            local.weight = (local_name, _weight_variable(_need_arg(opt, segment), local_name, segment))
            continue
        full = "mle" if name == "ml" else match_abbreviation(name, {k: v[0] for k, v in _GLOBAL_OPTIONS.items()})
        if full is None:
            raise StataSyntaxError("unknown option %r in %r" % (opt.text(), segment))
        _GLOBAL_OPTIONS[full][1](opt, segment, g)
    return local


# ---------------------------------------------------------------------------
# The ``if`` expression
# ---------------------------------------------------------------------------

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

_COMPARISONS = ("==", "!=", "<", ">", "<=", ">=")
_LOGICAL = ("&", "|")

_Node = tuple


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


class _ExprParser:
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

    def parse(self) -> _Node:
        if not self.tokens:
            raise self.error("empty expression")
        node = self.binary(0)
        if self.pos < len(self.tokens):
            tok = self.peek()
            if tok == "in":
                raise self.error("'in' ranges are not supported")
            raise self.error("unexpected %r" % tok)
        return node

    _LEVELS: tuple[tuple[str, ...], ...] = (("|",), ("&",), _COMPARISONS, ("+", "-"), ("*", "/"))

    def binary(self, level: int) -> _Node:
        if level == len(self._LEVELS):
            return self.unary()
        node = self.binary(level + 1)
        while self.peek() in self._LEVELS[level] and self.tokens[self.pos][0] == "op":
            op = self.take()[1]
            node = ("bin", op, node, self.binary(level + 1))
        return node

    def unary(self) -> _Node:
        if self.peek() == "-" and self.tokens[self.pos][0] == "op":
            self.take()
            return ("neg", self.unary())
        return self.power()

    def power(self) -> _Node:
        node = self.negation()
        if self.peek() == "^" and self.tokens[self.pos][0] == "op":
            self.take()
            node = ("bin", "^", node, self.unary())
        return node

    def negation(self) -> _Node:
        if self.peek() == "!" and self.tokens[self.pos][0] == "op":
            self.take()
            return ("not", self.negation())
        return self.atom()

    def atom(self) -> _Node:
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

    def call(self, fname: str) -> _Node:
        self.expect("(")
        args = [self.binary(0)]
        while self.peek() == ",":
            self.take()
            args.append(self.binary(0))
        self.expect(")")
        return ("call", fname, tuple(args))


def _strip_paren(node: _Node) -> _Node:
    while node[0] == "paren":
        node = node[1]
    return node


def _is_logical(node: _Node) -> bool:
    node = _strip_paren(node)
    if node[0] == "not":
        return True
    if node[0] == "call":
        return node[1] in ("inlist", "inrange", "missing")
    return node[0] == "bin" and node[1] in _COMPARISONS + _LOGICAL


def _wrap(node: _Node, text: str) -> str:
    """Parenthesise ``text`` unless ``node`` is an atom."""
    if _strip_paren(node)[0] in ("num", "str", "name", "missing"):
        return text
    return "(%s)" % text


_FLIP = {"==": "==", "!=": "!=", "<": ">", ">": "<", "<=": ">=", ">=": "<="}


class _Emitter:
    """Emit a pandas ``eval`` string from an expression tree."""

    def __init__(self, text: str) -> None:
        self.text = text

    def error(self, what: str) -> StataSyntaxError:
        return StataSyntaxError("%s in if expression %r" % (what, self.text))

    def operand(self, node: _Node) -> str:
        """Emit ``node`` parenthesised unless it is an atom."""
        return _wrap(node, self.emit(node))

    def as_bool(self, node: _Node) -> str:
        """Emit ``node`` as a boolean operand (Stata: nonzero is true)."""
        if _is_logical(node):
            return self.operand(node)
        return "(%s != 0)" % self.emit(node)

    def emit(self, node: _Node) -> str:
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
            return self.negation(_strip_paren(node[1]))
        if kind == "call":
            return self.call(node)
        return self.binary(node[1], node[2], node[3])

    def negation(self, inner: _Node) -> str:
        if not _is_logical(inner):
            return "%s == 0" % self.operand(inner)
        return "~%s" % self.operand(inner)

    def binary(self, op: str, left: _Node, right: _Node) -> str:
        if op in _LOGICAL:
            return "%s %s %s" % (self.as_bool(left), op, self.as_bool(right))
        if op in _COMPARISONS:
            if _strip_paren(right)[0] == "missing":
                return self.missing_comparison(op, left)
            if _strip_paren(left)[0] == "missing":
                return self.missing_comparison(_FLIP[op], right)
        pyop = "**" if op == "^" else op
        return "%s %s %s" % (self.operand(left), pyop, self.operand(right))

    def missing_comparison(self, op: str, other: _Node) -> str:
        """``x == .`` style comparisons (missing is +infinity in Stata)."""
        value = self.operand(other)
        if op in ("==", ">="):
            return "%s != %s" % (value, value)
        if op in ("!=", "<"):
            return "%s == %s" % (value, value)
        raise self.error("comparison %r with missing value '.' is not supported" % op)

    def call(self, node: _Node) -> str:
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
    node = _strip_paren(_ExprParser(expression).parse())
    emitter = _Emitter(expression.strip())
    if not _is_logical(node):
        return "%s != 0" % emitter.operand(node)
    return emitter.emit(node)


# ---------------------------------------------------------------------------
# The fixed part
# ---------------------------------------------------------------------------


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


def _parse_fixed_segment(segment: str, g: _Globals) -> tuple[str, str, bool, Optional[str]]:
    """Parse ``depvar [indepvars] [if exp] [, opts]``.

    Returns
    -------
    tuple
        ``(response, fixed, constant, subset)``.
    """
    body, opts = _split_comma(segment)
    body = _extract_weight(body, segment.strip(), g)
    varlist, expr = _split_if(body, segment.strip())
    tokens = _words(varlist)
    if "in" in tokens:
        raise StataSyntaxError("'in' ranges are not supported: %r" % segment.strip())
    if not tokens:
        raise StataSyntaxError("missing dependent variable in %r" % segment.strip())
    depvar = tokens[0]
    if not is_ident(depvar):
        raise StataSyntaxError("invalid dependent variable %r in %r" % (depvar, segment.strip()))
    terms = [_fixed_term(t, segment.strip()) for t in tokens[1:]]
    local = _apply_options(opts, segment.strip(), True, g)
    subset = translate_if(expr) if expr is not None else None
    return depvar, " + ".join(terms), not local.noconstant, subset


# ---------------------------------------------------------------------------
# Random-effects equations
# ---------------------------------------------------------------------------


@dataclass
class _REVars:
    columns: tuple[str, ...]
    factor: Optional[str]


def _re_varlist(text: str, where: str) -> _REVars:
    """Variables of one random-effects equation (``x1 x2`` or ``R.var``)."""
    columns: list[str] = []
    factors: list[str] = []
    for token in _words(text):
        m = re.match(r"R\.([A-Za-z_][A-Za-z0-9_]*)\Z", token)
        if m is not None:
            factors.append(m.group(1))
            continue
        name = token[2:] if token.startswith("c.") else token
        if not is_ident(name):
            raise StataSyntaxError("invalid random-effects variable %r in %r" % (token, where))
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
    head, opts = _split_comma(segment)
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


def _parse_re_segment(segment: str, path: list[str], g: _Globals) -> REEquation:
    """Parse one ``level: [varlist] [, re_opts]`` segment."""
    where = "|| " + segment.strip()
    level, rest = _split_level(segment, where)
    varlist, opts = _split_comma(rest)
    revars = _re_varlist(varlist, where)
    local = _apply_options(opts, where, False, g)
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


# ---------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------


def _strip_command(command: str) -> str:
    """Remove surrounding blanks and the optional leading ``mixed``."""
    if not isinstance(command, str):
        raise TypeError("command must be a string, got %s" % type(command).__name__)
    text = command.strip()
    m = re.match(r"mixed(?![A-Za-z0-9_.])\s*", text)
    if m is not None:
        text = text[m.end() :]
    if not text:
        raise StataSyntaxError("empty command: %r" % command)
    return text


def parse_stata(command: str) -> ModelSpec:
    """Parse a Stata ``mixed`` command into a :class:`ModelSpec`.

    Parameters
    ----------
    command : str
        E.g. ``"mixed weight week || id: week, covariance(unstructured) reml"``.
        The leading ``mixed`` is optional.

    Returns
    -------
    ModelSpec
        ``random`` holds one :class:`REEquation` per ``||`` segment, in the
        order given (coarsest first); ``options`` holds the display and
        maximisation options as ``(key, value)`` pairs.

    Raises
    ------
    StataSyntaxError
        With a message quoting the offending token and segment.

    Examples
    --------
    >>> spec = parse_stata("mixed gsp private emp || region: || state:")
    >>> [eq.group for eq in spec.random]
    [('region',), ('region', 'state')]
    """
    text = _strip_command(command)
    _check_balanced(text, command.strip())
    segments = _split_top(text, "||")
    g = _Globals()
    response, fixed, constant, subset = _parse_fixed_segment(segments[0], g)
    path: list[str] = []
    random = tuple(_parse_re_segment(seg, path, g) for seg in segments[1:])
    return ModelSpec(
        response=response,
        fixed=fixed,
        constant=constant,
        random=random,
        residual=g.residual or ResidualSpec(),
        reml=bool(g.reml),
        subset=subset,
        options=tuple(g.options.items()),
        weights=tuple(g.weights),
        pwscale=g.pwscale,
    )
