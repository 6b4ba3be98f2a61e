"""Parse lme4-style formulas into a :class:`~mixedlm_ext.spec.model.ModelSpec`.

Syntax accepted::

    y ~ fixed + offset(expr) + (terms | g) + (terms || g) + (1 | a/b) + (1 | a:b)

* The fixed part (everything outside the bar terms) is a patsy right-hand
  side; its intercept (``1``, ``0``, ``-1``) is moved to ``constant``.
* ``(terms | g)``: correlated random effects (``unstructured``);
  ``(terms || g)``: uncorrelated (``independent``).  One effect: ``identity``.
* Grouping ``a/b`` expands to ``(.. | a) + (.. | a:b)``; ``a:b`` groups by the
  pair of columns.
* Random-effects terms may be expressions (``I(x^2)``, ``log(x)``, ``x:z``)
  and crossings (``x*z`` is ``x + z + x:z``); R's ``^`` is a power.
* ``offset(expr)`` adds ``expr`` to the linear predictor with coefficient 1.

The helpers :func:`split_response`, :func:`split_terms` and
:func:`fixed_part` are shared with the statsmodels-style front-end.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from itertools import combinations
from typing import Optional

from ..core.errors import FormulaSyntaxError
from ..spec.model import ModelSpec, REEquation
from ..spec.vocabulary import COVARIANCE_TYPES, covariance_type
from .scanning import find_imbalance, is_ident, top_level_chars

__all__ = ["FormulaSyntaxError", "parse_lme4"]

# Formulas quote strings with either kind of quote.
FORMULA_QUOTES = "'\""
OFFSET = re.compile(r"offset\((.*)\)\Z", re.S)


@dataclass(frozen=True)
class Term:
    """One top-level term of a formula side with its sign (``+`` or ``-``)."""

    sign: str
    text: str


def _check_formula_balanced(text: str) -> None:
    """Raise :class:`FormulaSyntaxError` on unbalanced parentheses or quotes."""
    problem = find_imbalance(text, FORMULA_QUOTES)
    if problem is None:
        return
    if problem.stray_close is not None:
        raise FormulaSyntaxError("unbalanced parentheses: unexpected ')' in %r" % text)
    raise FormulaSyntaxError("unbalanced parentheses or quotes in %r" % text)


def split_response(formula: str) -> tuple[str, str]:
    """Split ``"y ~ rhs"`` into ``("y", "rhs")``.

    Raises
    ------
    FormulaSyntaxError
        If there is not exactly one ``~`` or the response is not a name.
    """
    if not isinstance(formula, str):
        raise TypeError("formula must be a string, got %s" % type(formula).__name__)
    _check_formula_balanced(formula)
    parts = formula.split("~")
    if len(parts) != 2:
        raise FormulaSyntaxError("formula must have the form 'y ~ terms', got %r" % formula)
    response, rhs = parts[0].strip(), parts[1].strip()
    if not is_ident(response):
        raise FormulaSyntaxError("the response must be a column name, got %r in %r" % (response, formula))
    if not rhs:
        raise FormulaSyntaxError("empty right-hand side in %r" % formula)
    return response, rhs


def split_terms(text: str) -> list[Term]:
    """Split a formula side on top-level ``+``/``-`` (signs kept).

    Parameters
    ----------
    text : str
        E.g. ``"week + (week | id) - 1"``.

    Returns
    -------
    list of Term
    """
    _check_formula_balanced(text)
    terms: list[Term] = []
    sign, start = "+", 0
    for i, ch, depth in top_level_chars(text, FORMULA_QUOTES):
        if depth == 0 and ch in "+-" and not _is_exponent(text, i):
            _append_term(terms, sign, text[start:i], text, allow_empty=not terms and not text[:i].strip())
            sign, start = ch, i + 1
    _append_term(terms, sign, text[start:], text, allow_empty=False)
    return terms


def _is_exponent(text: str, i: int) -> bool:
    """True for the sign of a number exponent such as ``1e-3``."""
    return bool(re.search(r"(?<![A-Za-z_])\d+\.?\d*[eE]\Z", text[:i]))


def _append_term(terms: list[Term], sign: str, piece: str, text: str, allow_empty: bool) -> None:
    piece = piece.strip()
    if piece:
        terms.append(Term(sign, piece))
    elif not allow_empty:
        raise FormulaSyntaxError("empty term in %r" % text)


def intercept_value(term: Term) -> Optional[bool]:
    """``+1``/``-0`` -> True, ``+0``/``-1`` -> False, other terms -> None."""
    if term.text not in ("0", "1"):
        return None
    return (term.text == "1") == (term.sign == "+")


def _check_parenthesized(term: Term) -> None:
    """A parenthesised fixed term must be an expression: ``(1 id)`` is a
    random-effects term that lost its ``|``."""
    text = term.text.strip()
    if not (text.startswith("(") and text.endswith(")")):
        return
    try:
        compile(text.replace(":", "*"), "<formula>", "eval")
    except SyntaxError:
        raise FormulaSyntaxError("term %r is not a valid term; a random-effects term needs '|', as in "
                                 "'(1 | id)'" % text) from None


def fixed_part(terms: list[Term]) -> tuple[str, bool]:
    """patsy right-hand side without the intercept, and the intercept flag.

    Parameters
    ----------
    terms : list of Term
        The fixed-effects terms (bar terms already removed).

    Returns
    -------
    tuple
        ``(fixed, constant)``; ``fixed`` joins the terms with ``" + "``
        (``" - "`` for removed terms), ``""`` when there are none.
    """
    constant = True
    pieces: list[str] = []
    for term in terms:
        _check_parenthesized(term)
        value = intercept_value(term)
        if value is not None:
            constant = value
            continue
        if term.sign == "-":
            pieces.append("- " + term.text)
        else:
            pieces.append(("+ " if pieces else "") + term.text)
    return " ".join(pieces), constant


def normalize_covariance(name: str) -> str:
    """Full covariance name from a name or Stata abbreviation (``un``)."""
    full = covariance_type(name)
    if full is None:
        raise FormulaSyntaxError(
            "unknown covariance type %r (expected one of %s)" % (name, ", ".join(COVARIANCE_TYPES))
        )
    return full


def random_effects(text: str, where: str, default_constant: bool = True) -> tuple[tuple[str, ...], bool]:
    """Columns and intercept flag of a random-effects term list.

    Parameters
    ----------
    text : str
        E.g. ``"1 + week"``, ``"0 + week"``, ``"week"``.
    where : str
        Quoted in error messages.
    default_constant : bool
        Intercept when neither ``1`` nor ``0``/``-1`` is given.

    Returns
    -------
    tuple
        ``(columns, constant)``: slopes in the order given.
    """
    constant = default_constant
    columns: list[str] = []
    for term in split_terms(text):
        value = intercept_value(term)
        if value is not None:
            constant = value
            continue
        if term.sign == "-":
            raise FormulaSyntaxError("a random-effects term cannot be removed with '-': got %r in %r"
                                     % ("-" + term.text, where))
        for name in _crossing(term.text, where):
            if name in columns:
                raise FormulaSyntaxError("variable %r repeated in %r" % (name, where))
            columns.append(name)
    return tuple(columns), constant


def _crossing(text: str, where: str) -> list[str]:
    """A random-effects term's columns: ``x``, an expression (``I(x**2)``,
    ``x:z``) or a crossing ``x*z`` (``x``, ``z``, ``x:z``, as in R)."""
    stars = [i for i, ch, depth in top_level_chars(text, FORMULA_QUOTES) if depth == 0 and ch == "*"
             and text[i - 1:i] != "*" and text[i + 1:i + 2] != "*"]
    if not stars:
        return [" ".join(text.split())]
    pieces = [p.strip() for p in _cut(text, stars)]
    if any(not p for p in pieces):
        raise FormulaSyntaxError("invalid term %r in %r" % (text, where))
    out = []
    for order in range(1, len(pieces) + 1):
        out += [":".join(c) for c in combinations(pieces, order)]
    return out


def _cut(text: str, positions: list[int]) -> list[str]:
    bounds = [-1] + positions + [len(text)]
    return [text[a + 1:b] for a, b in zip(bounds, bounds[1:])]


def r_arithmetic(formula: str) -> str:
    """R's ``^`` (power inside ``I()``, crossing outside) as patsy's ``**``."""
    out, quote = [], None
    for ch in formula:
        if quote:
            quote = None if ch == quote else quote
        elif ch in FORMULA_QUOTES:
            quote = ch
        elif ch == "^":
            ch = "**"
        out.append(ch)
    return "".join(out)


def default_covariance(n_effects: int, correlated: bool) -> str:
    """``unstructured``/``independent`` with 2+ effects, else ``identity``."""
    if n_effects <= 1:
        return "identity"
    return "unstructured" if correlated else "independent"


def _bar_split(inner: str, where: str) -> tuple[str, str, bool]:
    """``"x | g"`` -> ``("x", "g", True)``; ``"x || g"`` -> correlated False."""
    bars = [i for i, ch, depth in top_level_chars(inner, FORMULA_QUOTES) if depth == 0 and ch == "|"]
    if len(bars) == 1:
        return inner[: bars[0]], inner[bars[0] + 1 :], True
    if len(bars) == 2 and bars[1] == bars[0] + 1:
        return inner[: bars[0]], inner[bars[1] + 1 :], False
    raise FormulaSyntaxError("a random-effects term needs exactly one '|' or '||', got %r" % where)


def _grouping(text: str, where: str) -> list[tuple[tuple[str, ...], str]]:
    """Grouping factor -> list of ``(group, label)``: ``a/b`` gives two."""
    if not text.strip():
        raise FormulaSyntaxError("missing grouping factor in %r" % where)
    out: list[tuple[tuple[str, ...], str]] = []
    path: tuple[str, ...] = ()
    for part in text.split("/"):
        names = tuple(n.strip() for n in part.split(":"))
        bad = [n for n in names if not is_ident(n)]
        if bad:
            raise FormulaSyntaxError("invalid grouping factor %r in %r" % (bad[0] or part.strip(), where))
        path = path + names
        out.append((path, ":".join(names)))
    return out


def is_bar_term(term: Term) -> bool:
    """True for a parenthesised term containing a top-level ``|``."""
    text = term.text
    if not (text.startswith("(") and text.endswith(")")):
        return False
    inner = text[1:-1]
    depths = [d for i, ch, d in top_level_chars(text, FORMULA_QUOTES) if ch == ")" and i < len(text) - 1]
    if 0 in depths:  # e.g. "(a) : (b)": not one parenthesised group
        return False
    return any(ch == "|" and depth == 0 for _, ch, depth in top_level_chars(inner, FORMULA_QUOTES))


def _bar_equations(term: Term) -> list[REEquation]:
    """Expand one ``(terms | g)`` term into its equations."""
    where = term.text
    if term.sign == "-":
        raise FormulaSyntaxError("a random-effects term cannot be removed with '-': %r" % where)
    lhs, rhs, correlated = _bar_split(term.text[1:-1], where)
    if not lhs.strip():
        raise FormulaSyntaxError("missing random-effects terms before '|' in %r" % where)
    columns, constant = random_effects(lhs, where)
    n_effects = len(columns) + int(constant)
    if n_effects == 0:
        raise FormulaSyntaxError("no random effects in %r" % where)
    cov = default_covariance(n_effects, correlated)
    return [
        REEquation(group=group, columns=columns, constant=constant, covariance=cov, label=label)
        for group, label in _grouping(rhs, where)
    ]


def _check_no_bare_bars(terms: list[Term], formula: str) -> None:
    """Reject ``|`` outside a parenthesised random-effects term."""
    for term in terms:
        if any(ch == "|" for _, ch, _ in top_level_chars(term.text, FORMULA_QUOTES)):
            raise FormulaSyntaxError(
                "random-effects term %r must be enclosed in parentheses, e.g. '(1 | g)', in %r"
                % (term.text, formula)
            )


def _apply_overrides(random: list[REEquation], covariance: Optional[dict[str, str]]) -> list[REEquation]:
    """Replace the covariance of equations whose label is in ``covariance``."""
    if not covariance:
        return random
    labels = {eq.level_name for eq in random}
    unknown = sorted(set(covariance) - labels)
    if unknown:
        raise FormulaSyntaxError(
            "covariance given for unknown grouping %r (groupings: %s)"
            % (unknown[0], ", ".join(sorted(labels)))
        )
    out = []
    for eq in random:
        if eq.level_name in covariance:
            n_effects = len(eq.columns) + int(eq.constant)
            cov = normalize_covariance(covariance[eq.level_name])
            eq = replace(eq, covariance=cov if n_effects > 1 else "identity")
        out.append(eq)
    return out


def _term_key(term: Term) -> str:
    return re.sub(r"\s+", "", term.text)


def updated_formula(old: str, new: str) -> str:
    """lme4's ``update(fit, new)``: ``.`` on either side of ``new`` stands for that side of
    ``old`` (``". ~ . + x"``, ``". ~ . - (1 | g) + (1 | h)"``, ``"log_y ~ ."``); a term
    after ``-`` is removed."""
    old_y, old_rhs = split_response(old)
    parts = new.split("~")
    if len(parts) != 2:
        raise FormulaSyntaxError("update formula must have the form '. ~ . + term', got %r" % new)
    y = parts[0].strip() or "."
    y = old_y if y == "." else y
    terms: list[Term] = []
    for term in split_terms(parts[1]):
        if term.text == "." and term.sign == "+":
            terms += split_terms(old_rhs)
        elif term.sign == "-" and intercept_value(term) is None:
            gone = [t for t in terms if _term_key(t) == _term_key(term) and t.sign == "+"]
            if not gone:
                raise FormulaSyntaxError("update: term %r is not in %r" % (term.text, old))
            terms = [t for t in terms if t not in gone]
        else:
            terms.append(term)
    if not terms:
        raise FormulaSyntaxError("update %r leaves no terms in %r" % (new, old))
    rhs = " ".join(("" if k == 0 and t.sign == "+" else t.sign + " ") + t.text for k, t in enumerate(terms))
    return "%s ~ %s" % (y, rhs.strip())


def parse_lme4(formula: str, *, reml: bool = False, covariance: Optional[dict[str, str]] = None) -> ModelSpec:
    """Parse an lme4-style formula into a :class:`ModelSpec`.

    Parameters
    ----------
    formula : str
        E.g. ``"weight ~ week + (week | id)"``,
        ``"y ~ x1 + x2 + (1 + x1 | g) + (0 + x2 | g)"``,
        ``"strength ~ 1 + (1 | batch/cask)"``.
    reml : bool, default False
        Fit by REML (the default is ML, as in Stata).
    covariance : dict, optional
        Grouping label -> covariance type overriding the default
        (``{"id": "exchangeable"}``).  Labels are the grouping variable,
        ``"a:b"`` for an ``a:b`` grouping and ``"b"`` for the inner level of
        ``a/b``.  With one effect the structure is always ``identity``.

    Returns
    -------
    ModelSpec
        Random-effects equations in the order the bar terms appear.

    Raises
    ------
    FormulaSyntaxError
        For malformed formulas or unsupported random-effects terms.
    """
    response, rhs = split_response(r_arithmetic(formula))
    terms = split_terms(rhs)
    fixed_terms = [t for t in terms if not is_bar_term(t)]
    _check_no_bare_bars(fixed_terms, formula)
    offsets = [m.group(1).strip() for t in fixed_terms for m in [OFFSET.match(t.text)] if m]
    if any(OFFSET.match(t.text) and t.sign == "-" for t in fixed_terms):
        raise FormulaSyntaxError("an offset cannot be removed with '-' in %r" % formula)
    fixed, constant = fixed_part([t for t in fixed_terms if not OFFSET.match(t.text)])
    random = [eq for t in terms if is_bar_term(t) for eq in _bar_equations(t)]
    random = _apply_overrides(random, covariance)
    offset = "I(%s)" % " + ".join("(%s)" % o for o in offsets) if offsets else None
    return ModelSpec(response=response, fixed=fixed, constant=constant, random=tuple(random), reml=bool(reml),
                     offset=offset)
