"""Build a :class:`~mixedlm_ext.spec.model.ModelSpec` from statsmodels-style arguments.

Mirrors ``statsmodels.formula.api.mixedlm(formula, data, groups=...,
re_formula=..., vc_formula=...)``:

* ``groups`` names the grouping column;
* ``re_formula`` gives the random effects of each group (``None``: random
  intercept only), with a free (``unstructured``) covariance as in
  statsmodels;
* ``vc_formula`` ``{"name": "0 + C(sub)"}`` adds variance components nested
  within the groups: a random intercept for each ``sub`` within a group, all
  sharing one variance (``"0 + sub"`` for a text column, as statsmodels);
  ``"0 + x"`` with a numeric ``x`` an uncorrelated random slope.
"""
from __future__ import annotations

import re
from typing import Optional

from .lme4 import (
    FormulaSyntaxError,
    is_bar_term,
    default_covariance,
    fixed_part,
    intercept_value,
    random_effects,
    split_response,
    split_terms,
)
from ..spec.model import ModelSpec, REEquation
from .scanning import is_ident

__all__ = ["spec_from_statsmodels"]

def _strip_tilde(text: str, what: str) -> str:
    """Drop a leading ``~`` of a one-sided formula."""
    text = text.strip()
    if text.startswith("~"):
        text = text[1:].strip()
    if not text or "~" in text:
        raise FormulaSyntaxError("invalid %s %r" % (what, text))
    return text


def _group_equation(groups: str, re_formula: Optional[str]) -> REEquation:
    """The equation of the ``groups`` level from ``re_formula``."""
    if re_formula is None:
        return REEquation(group=(groups,), label=groups)
    text = _strip_tilde(re_formula, "re_formula")
    try:
        columns, constant = random_effects(text, re_formula)
    except FormulaSyntaxError as exc:
        raise NotImplementedError(
            "only plain variable names, 1 and 0 are supported in re_formula: %s" % exc
        ) from None
    n_effects = len(columns) + int(constant)
    return REEquation(
        group=(groups,),
        columns=columns,
        constant=constant,
        covariance=default_covariance(n_effects, correlated=True),
        label=groups,
    )


_VC_TERM = re.compile(r"(?:C\(\s*(?P<cvar>[A-Za-z_][A-Za-z0-9_]*)\s*\)|(?P<var>[A-Za-z_][A-Za-z0-9_]*))"
                      r"(?::(?P<slope>[A-Za-z_][A-Za-z0-9_]*))?\Z")


def _vc_equation(groups: str, name: str, formula: str, categorical: frozenset) -> REEquation:
    """The equation of one variance component: ``0 + C(var)`` / ``0 + var`` (a
    categorical column: a random intercept per level within a group), ``0 + x``
    (a numeric column: an uncorrelated random slope), ``0 + C(var):x``."""
    terms = split_terms(_strip_tilde(formula, "vc_formula"))
    intercepts = [intercept_value(t) for t in terms if intercept_value(t) is not None]
    others = [t for t in terms if intercept_value(t) is None]
    m = _VC_TERM.match(others[0].text.replace(" ", "")) if len(others) == 1 and others[0].sign == "+" else None
    if m is None or intercepts != [False]:
        raise NotImplementedError(
            "vc_formula[%r] = %r: the supported forms are '0 + C(var)', '0 + var', '0 + x' and "
            "'0 + C(var):x'" % (name, formula))
    factor = m.group("cvar") or (m.group("var") if m.group("var") in categorical else None)
    if factor is None:
        if m.group("slope"):
            raise NotImplementedError("vc_formula[%r] = %r: '%s' is not a categorical column"
                                      % (name, formula, m.group("var")))
        return REEquation(group=(groups,), columns=(m.group("var"),), constant=False, covariance="identity",
                          label=name)
    slope = m.group("slope")
    return REEquation(group=(groups, factor), columns=(slope,) if slope else (), constant=not slope,
                      covariance="identity", label=name)


def _vc_equations(groups: str, vc_formula: Optional[dict[str, str]], categorical: frozenset) -> list[REEquation]:
    """One identity equation per variance component, sorted by name as statsmodels orders them."""
    if not vc_formula:
        return []
    return [_vc_equation(groups, name, vc_formula[name], categorical) for name in sorted(vc_formula)]


def spec_from_statsmodels(
    formula: str,
    groups: str,
    re_formula: Optional[str] = None,
    vc_formula: Optional[dict[str, str]] = None,
    reml: bool = True,
    categorical=(),
) -> ModelSpec:
    """Translate ``statsmodels``' ``mixedlm`` arguments into a :class:`ModelSpec`.

    Parameters
    ----------
    formula : str
        Fixed-effects formula ``"y ~ x1 + x2"`` (``0 +``/``- 1`` drops the
        constant).
    groups : str
        Name of the grouping column (arrays are not accepted here).
    re_formula : str, optional
        ``None`` (random intercept), ``"~week"``, ``"1 + week"``,
        ``"0 + week"``...: plain variable names only.
    vc_formula : dict, optional
        ``{"vcname": "0 + C(var)"}``: variance components for ``var`` nested
        within ``groups`` (group ``(groups, var)``, label ``vcname``);
        ``"0 + var"`` the same when ``var`` is in ``categorical`` (statsmodels
        codes a text column as categorical without ``C()``), otherwise an
        uncorrelated random slope on ``var`` at the ``groups`` level;
        ``"0 + C(var):x"`` a random slope on ``x`` per level of ``var``.
    categorical : collection of str
        The columns patsy would code as categorical (text, categories, booleans).
    reml : bool, default True
        statsmodels' default.

    Returns
    -------
    ModelSpec
        The ``groups`` equation first, then the variance components sorted
        by name.  With ``re_formula="0"`` the ``groups`` equation has no
        effects (it still defines the clusters).

    Raises
    ------
    TypeError
        If ``groups`` is not a string.
    FormulaSyntaxError
        For a malformed ``formula``.
    NotImplementedError
        For ``re_formula``/``vc_formula`` forms beyond the ones above.
    """
    if not isinstance(groups, str) or not is_ident(groups):
        raise TypeError("groups must be a column name (a string), got %r" % (groups,))
    response, rhs = split_response(formula)
    terms = split_terms(rhs)
    if any(is_bar_term(t) or "|" in t.text for t in terms):
        raise FormulaSyntaxError("random-effects terms '( | )' belong in parse_lme4, not in %r" % formula)
    fixed, constant = fixed_part(terms)
    random = [_group_equation(groups, re_formula)] + _vc_equations(groups, vc_formula, frozenset(categorical))
    return ModelSpec(response=response, fixed=fixed, constant=constant, random=tuple(random), reml=bool(reml))
