"""Tests for the lme4-style and statsmodels-style front-ends."""
from __future__ import annotations

import numpy as np
import pandas as pd
import patsy
import pytest

import mixedlm_ext as mx

from mixedlm_ext import FormulaSyntaxError
from mixedlm_ext.syntax.lme4 import parse_lme4
from mixedlm_ext.syntax.statsmodels import spec_from_statsmodels
from mixedlm_ext.spec.model import ModelSpec, REEquation, ResidualSpec
from mixedlm_ext.syntax.stata import parse_stata


def eq(group, columns=(), constant=True, covariance="identity", label=None):
    """Shorthand for an expected :class:`REEquation`."""
    if label is None:
        label = group[-1] if group else "_all"
    return REEquation(tuple(group), tuple(columns), constant, covariance, None, label)


# ---------------------------------------------------------------------------
# lme4 formulas of the reference cases (r_call / lme4_call / lmer fields)
# ---------------------------------------------------------------------------

REFERENCE_LME4 = [
    ("weight ~ week + (1|id)", "mixed weight week || id:"),
    ("weight ~ week + (week|id)", "mixed weight week || id: week, covariance(unstructured)"),
    ("reaction ~ days + (days|subject)", "mixed reaction days || subject: days, covariance(unstructured)"),
    ("y ~ x1 + x2 + (1+x1|g) + (0+x2|g)",
     "mixed y x1 x2 || g: x1, covariance(unstructured) || g: x2, noconstant"),
    ("diameter ~ 1 + (1|plate) + (1|sample)", None),
    ("strength ~ 1 + (1|batch/cask)", None),
    ("gsp ~ private + emp + hwy + water + other + unemp + (1|region) + (1|region:state)", None),
    ("gsp ~ private + emp + hwy + water + other + unemp + (1|region) + (1|region:state)"
     " + (0+unemp|region:state)", None),
    ("weight ~ week + (1|id) + (0+week|id)", None),
    ("gsp ~ private + emp + hwy + water + other + unemp + (1 | region) + \n    (1 | region:state)", None),
]


@pytest.mark.parametrize("formula, stata", REFERENCE_LME4)
def test_reference_formulas_parse(formula, stata):
    spec = parse_lme4(formula)
    assert isinstance(spec, ModelSpec) and spec.random
    if stata is not None:
        assert spec == parse_stata(stata)


def test_same_random_tuple_as_stata():
    a = parse_stata("mixed weight week || id: week, covariance(unstructured)")
    b = parse_lme4("weight ~ week + (week | id)")
    assert a.random == b.random
    assert b.random == (eq(("id",), ("week",), True, "unstructured"),)


def test_random_intercept():
    spec = parse_lme4("weight ~ week + (1 | id)")
    assert spec == ModelSpec(response="weight", fixed="week", random=(eq(("id",)),))
    assert spec.reml is False and spec.residual == ResidualSpec()


def test_reml_flag():
    assert parse_lme4("y ~ x + (1|g)", reml=True).reml is True
    assert parse_lme4("y ~ x + (1|g)").reml is False


def test_double_bar_is_independent():
    spec = parse_lme4("weight ~ week + (week || id)")
    assert spec.random == (eq(("id",), ("week",), True, "independent"),)
    assert spec == parse_stata("mixed weight week || id: week")


def test_single_effect_is_identity():
    assert parse_lme4("y ~ (1 || g)").random == (eq(("g",)),)
    assert parse_lme4("y ~ (0 + x | g)").random == (eq(("g",), ("x",), False),)
    assert parse_lme4("y ~ (x - 1 | g)").random == (eq(("g",), ("x",), False),)
    assert parse_lme4("y ~ (-1 + x | g)").random == (eq(("g",), ("x",), False),)


def test_slopes_in_order_constant_last():
    spec = parse_lme4("y ~ (1 + z2 + z1 | g)")
    assert spec.random[0].columns == ("z2", "z1")
    assert spec.random[0].effect_names == ("z2", "z1", "_cons")
    assert spec.random[0].covariance == "unstructured"
    assert parse_lme4("y ~ (z2 + 1 + z1 | g)").random == spec.random
    assert parse_lme4("y ~ (z2 + z1 | g)").random == spec.random


def test_nested_slash():
    spec = parse_lme4("strength ~ 1 + (1 | batch/cask)")
    assert spec.fixed == "" and spec.constant is True
    assert spec.random == (eq(("batch",)), eq(("batch", "cask"), label="cask"))
    # the same spec as Stata's nested levels
    assert spec == parse_stata("mixed strength || batch: || cask:")


def test_nested_slash_three_levels_with_slopes():
    spec = parse_lme4("y ~ (x | a/b/c)")
    assert [e.group for e in spec.random] == [("a",), ("a", "b"), ("a", "b", "c")]
    assert [e.label for e in spec.random] == ["a", "b", "c"]
    assert all(e.columns == ("x",) and e.covariance == "unstructured" for e in spec.random)


def test_interaction_grouping():
    spec = parse_lme4("y ~ x + (1 | region) + (1 | region:state)")
    assert spec.random == (eq(("region",)), eq(("region", "state"), label="region:state"))
    assert spec.random[1].level_name == "region:state"


def test_interaction_inside_slash():
    spec = parse_lme4("y ~ (1 | a:b/c)")
    assert spec.random == (eq(("a", "b"), label="a:b"), eq(("a", "b", "c"), label="c"))


def test_crossed_terms():
    spec = parse_lme4("diameter ~ 1 + (1 | plate) + (1 | sample)")
    assert spec.random == (eq(("plate",)), eq(("sample",)))


def test_block_diagonal_repeats():
    spec = parse_lme4("y ~ x1 + x2 + (1 + x1 | g) + (0 + x2 | g)")
    assert spec.random == (
        eq(("g",), ("x1",), True, "unstructured"),
        eq(("g",), ("x2",), False, "identity"),
    )


@pytest.mark.parametrize(
    "formula, fixed, constant",
    [
        ("y ~ x", "x", True),
        ("y ~ 1 + x", "x", True),
        ("y ~ x + 1", "x", True),
        ("y ~ 0 + x", "x", False),
        ("y ~ x + 0", "x", False),
        ("y ~ x - 1", "x", False),
        ("y ~ -1 + x", "x", False),
        ("y ~ - 1 + x + (1|g)", "x", False),
        ("y ~ 1", "", True),
        ("y ~ 0 + (1|g)", "", False),
        ("y ~ (1|g)", "", True),
        ("y ~ x1 + C(region) + x1:x2 + (1|g)", "x1 + C(region) + x1:x2", True),
        ("y ~ a*b - a + (1|g)", "a*b - a", True),
        ("y ~ I(x - 1) + np.log(z + 1) + (1|g)", "I(x - 1) + np.log(z + 1)", True),
        ("y ~ C(a, Treatment(reference='x-y')) + (1|g)", "C(a, Treatment(reference='x-y'))", True),
        ("y~x+(x|g)", "x", True),
        ("y ~ x + (1|g) + z", "x + z", True),
    ],
)
def test_fixed_part(formula, fixed, constant):
    spec = parse_lme4(formula)
    assert spec.fixed == fixed
    assert spec.constant is constant


def test_fixed_part_is_valid_patsy():
    df = pd.DataFrame({"y": np.arange(6.0), "x": np.arange(6.0), "r": list("aabbcc")})
    spec = parse_lme4("y ~ 0 + x + C(r) + I(x - 1) + (1|r)")
    X = patsy.dmatrix(("1 + " if spec.constant else "0 + ") + spec.fixed, df)
    assert X.shape == (6, 5)


@pytest.mark.parametrize(
    "override, expected",
    [
        ("exchangeable", "exchangeable"),
        ("independent", "independent"),
        ("identity", "identity"),
        ("unstructured", "unstructured"),
        ("exch", "exchangeable"),
        ("un", "unstructured"),
    ],
)
def test_covariance_override(override, expected):
    spec = parse_lme4("weight ~ week + (week | id)", covariance={"id": override})
    assert spec.random[0].covariance == expected
    assert spec == parse_stata("mixed weight week || id: week, covariance(%s)" % override)


def test_covariance_override_single_effect_stays_identity():
    spec = parse_lme4("y ~ (1 | id)", covariance={"id": "unstructured"})
    assert spec.random[0].covariance == "identity"


def test_covariance_override_by_label():
    spec = parse_lme4("y ~ (x | a/b) + (x | c:d)", covariance={"b": "independent", "c:d": "exchangeable"})
    assert [e.covariance for e in spec.random] == ["unstructured", "independent", "exchangeable"]


@pytest.mark.parametrize(
    "formula, fragments",
    [
        ("y x + (1|g)", ["'y ~ terms'"]),
        ("y ~ x ~ z", ["'y ~ terms'"]),
        ("log(y) ~ x + (1|g)", ["response must be a column name", "'log(y)'"]),
        ("y ~ ", ["empty right-hand side"]),
        ("y ~ x + (1|g", ["unbalanced parentheses"]),
        ("y ~ x + 1|g)", ["unbalanced parentheses"]),
        ("y ~ x + + z", ["empty term"]),
        ("y ~ x +", ["empty term"]),
        ("y ~ x + 1|g", ["must be enclosed in parentheses"]),
        ("y ~ x + (1 - x | g)", ["cannot be removed", "'-x'"]),
        ("y ~ x + (x* | g)", ["invalid term", "'x*'"]),
        ("y ~ x + (x + x | g)", ["repeated"]),
        ("y ~ x + (0 | g)", ["no random effects"]),
        ("y ~ x + ( | g)", ["missing random-effects terms"]),
        ("y ~ x + (1 | )", ["missing grouping factor"]),
        ("y ~ x + (1 | g*h)", ["invalid grouping factor", "'g*h'"]),
        ("y ~ x + (1 | g/)", ["invalid grouping factor"]),
        ("y ~ x + (1 | g | h)", ["exactly one '|' or '||'"]),
        ("y ~ x + (1 ||| g)", ["exactly one '|' or '||'"]),
        ("y ~ x - (1 | g)", ["cannot be removed"]),
    ],
)
def test_lme4_errors(formula, fragments):
    with pytest.raises(FormulaSyntaxError) as info:
        parse_lme4(formula)
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))


def test_lme4_error_is_value_error():
    assert issubclass(FormulaSyntaxError, ValueError)


def test_covariance_override_errors():
    with pytest.raises(FormulaSyntaxError, match="unknown grouping 'idd'"):
        parse_lme4("y ~ (x | id)", covariance={"idd": "independent"})
    with pytest.raises(FormulaSyntaxError, match="unknown covariance type 'foo'"):
        parse_lme4("y ~ (x | id)", covariance={"id": "foo"})


def test_lme4_keyword_only():
    with pytest.raises(TypeError):
        parse_lme4("y ~ (1|g)", True)  # type: ignore[misc]


# ---------------------------------------------------------------------------
# statsmodels-style front-end
# ---------------------------------------------------------------------------


def test_sm_random_intercept():
    spec = spec_from_statsmodels("weight ~ week", groups="id")
    assert spec == ModelSpec(response="weight", fixed="week", random=(eq(("id",)),), reml=True)
    assert spec.with_options(reml=False) == parse_stata("mixed weight week || id:")


@pytest.mark.parametrize("re_formula", ["~week", "~ week", "1 + week", "~1 + week", "week + 1", "week"])
def test_sm_random_slope(re_formula):
    spec = spec_from_statsmodels("weight ~ week", "id", re_formula=re_formula, reml=False)
    assert spec.random == (eq(("id",), ("week",), True, "unstructured"),)
    assert spec == parse_lme4("weight ~ week + (week | id)")


def test_sm_no_constant_slope():
    spec = spec_from_statsmodels("weight ~ week", "id", re_formula="0 + week")
    assert spec.random == (eq(("id",), ("week",), False),)
    spec = spec_from_statsmodels("weight ~ week", "id", re_formula="~week - 1")
    assert spec.random == (eq(("id",), ("week",), False),)


def test_sm_intercept_only_re_formula():
    assert spec_from_statsmodels("y ~ x", "g", re_formula="1").random == (eq(("g",)),)
    assert spec_from_statsmodels("y ~ x", "g", re_formula="~1").random == (eq(("g",)),)


def test_sm_empty_group_equation():
    spec = spec_from_statsmodels("y ~ x", "g", re_formula="0", vc_formula={"s": "0 + C(s)"})
    assert spec.random == (eq(("g",), (), False), eq(("g", "s"), label="s"))


def test_sm_fixed_intercept():
    assert spec_from_statsmodels("y ~ 0 + x", "g").constant is False
    assert spec_from_statsmodels("y ~ x - 1", "g").constant is False
    spec = spec_from_statsmodels("y ~ 1", "g")
    assert spec.fixed == "" and spec.constant is True
    assert spec_from_statsmodels("y ~ C(r) + x", "g").fixed == "C(r) + x"


def test_sm_variance_components():
    spec = spec_from_statsmodels(
        "y ~ x",
        "school",
        re_formula="1",
        vc_formula={"classroom": "0 + C(classroom)", "b_teacher": "0+C(teacher)"},
    )
    assert spec.random == (
        eq(("school",)),
        eq(("school", "teacher"), label="b_teacher"),  # sorted by name, as statsmodels does
        eq(("school", "classroom"), label="classroom"),
    )
    assert spec.random[2].level_name == "classroom"


@pytest.mark.parametrize("vc", ["~0 + C(c)", "-1 + C(c)", "C(c) - 1", "C(c) + 0", " 0 + C( c ) "])
def test_sm_vc_forms(vc):
    spec = spec_from_statsmodels("y ~ x", "g", vc_formula={"vc": vc})
    assert spec.random[1] == eq(("g", "c"), label="vc")


def test_sm_vc_text_column_and_slopes():
    """statsmodels codes a text column as categorical without C(); '0 + x' on a number is a slope."""
    c = spec_from_statsmodels("y ~ x", "g", vc_formula={"vc": "0 + c"}, categorical={"c"})
    assert c.random[1] == eq(("g", "c"), label="vc")
    x = spec_from_statsmodels("y ~ x", "g", vc_formula={"vc": "0 + x"}, categorical={"c"})
    assert x.random[1] == REEquation(group=("g",), columns=("x",), constant=False, label="vc")
    cx = spec_from_statsmodels("y ~ x", "g", vc_formula={"vc": "0 + C(c):x"})
    assert cx.random[1] == REEquation(group=("g", "c"), columns=("x",), constant=False, label="vc")


def test_sm_same_as_stata_nested():
    spec = spec_from_statsmodels("strength ~ 1", "batch", vc_formula={"cask": "0 + C(cask)"}, reml=True)
    assert spec == parse_stata("mixed strength || batch: || cask:, reml")


def test_sm_reml_default():
    assert spec_from_statsmodels("y ~ x", "g").reml is True
    assert spec_from_statsmodels("y ~ x", "g", reml=False).reml is False


@pytest.mark.parametrize(
    "vc",
    ["C(c)", "1 + C(c)", "0 + C(c) + C(d)", "0 + C(c, Sum)", "0 + x*z"],
)
def test_sm_vc_unsupported(vc):
    with pytest.raises(NotImplementedError, match="supported forms are '0 \\+ C\\(var\\)'"):
        spec_from_statsmodels("y ~ x", "g", vc_formula={"vc": vc})


@pytest.mark.parametrize("re_formula,columns", [("~np.log(x)", ("np.log(x)",)), ("~x:z", ("x:z",)),
                                                ("~x*z", ("x", "z", "x:z")), ("~I(x**2)", ("I(x**2)",))])
def test_sm_re_formula_expressions(re_formula, columns):
    """Random slopes on expressions: one column each, evaluated by the design."""
    spec = spec_from_statsmodels("y ~ x", "g", re_formula=re_formula)
    assert spec.random[0].columns == columns


@pytest.mark.parametrize("formula,columns", [
    ("y ~ x + (log(x) | g)", ("log(x)",)), ("y ~ x + (x:z | g)", ("x:z",)),
    ("y ~ x + (x*z | g)", ("x", "z", "x:z")), ("y ~ x + (1 + I(x^2) || g)", ("I(x**2)",))])
def test_lme4_random_expressions(formula, columns):
    """lme4's random terms may be expressions and crossings (R's ^ is a power inside I())."""
    assert parse_lme4(formula).random[0].columns == columns


def test_random_expressions_fit_as_their_columns():
    """A random slope on I(week^2) or c.week#c.week is the same model as one on a generated week2."""
    pig = mx.load_dataset("pig")
    ref = mx.lmer("weight ~ week + (1 + week2 || id)", pig.assign(week2=pig.week ** 2), REML=False)
    for fit in (mx.lmer("weight ~ week + (1 + I(week^2) || id)", pig, REML=False),
                mx.mixed("mixed weight week || id: c.week#c.week", pig)):
        assert abs(fit.llf - ref.llf) < 1e-8
        np.testing.assert_allclose(fit.params.to_numpy(), ref.params.to_numpy(), rtol=1e-6)
        np.testing.assert_allclose(fit.predict(pig.head(5)).to_numpy(), ref.predict(pig.assign(
            week2=pig.week ** 2).head(5)).to_numpy(), rtol=1e-8)
    with pytest.raises(mx.ModelSpecificationError, match="columns"):
        mx.lmer("weight ~ week + (C(id) | id)", pig)


def test_lme4_power_is_arithmetic_inside_I():
    """R's I(week^2) is a square, not patsy/Python's bitwise xor."""
    pig = mx.load_dataset("pig")
    a = mx.lmer("weight ~ week + I(week^2) + (1|id)", pig)
    b = mx.lmer("weight ~ week + week2 + (1|id)", pig.assign(week2=pig.week ** 2))
    np.testing.assert_allclose(a.fe_params.to_numpy(), b.fe_params.to_numpy(), rtol=1e-8)


def test_sm_errors():
    with pytest.raises(TypeError, match="column name"):
        spec_from_statsmodels("y ~ x", groups=np.array([1, 2]))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="column name"):
        spec_from_statsmodels("y ~ x", groups="not a name")
    with pytest.raises(FormulaSyntaxError, match="parse_lme4"):
        spec_from_statsmodels("y ~ x + (1|g)", "g")
    with pytest.raises(FormulaSyntaxError):
        spec_from_statsmodels("y x", "g")
    with pytest.raises(FormulaSyntaxError, match="re_formula"):
        spec_from_statsmodels("y ~ x", "g", re_formula="~")
