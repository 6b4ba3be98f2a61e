"""Tests for the Stata ``mixed`` command parser (``mixedlm_ext.syntax.stata``)."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import patsy
import pytest

from mixedlm_ext.syntax.lme4 import parse_lme4
from mixedlm_ext.spec.model import ModelSpec, REEquation, ResidualSpec
from mixedlm_ext import StataSyntaxError
from mixedlm_ext.syntax.stata import parse_stata, translate_if
from mixedlm_ext.syntax.stata.factor_variables import parse_fv_token
import mixedlm_ext as mx

# Every ``stata`` string of the shared reference cases (hard-coded on purpose:
# tests must not read files outside the repository).
REFERENCE_COMMANDS = [
    "mixed y x1 x2 || g: x1, covariance(unstructured) || g: x2, noconstant",
    "mixed follicles sin1 cos1 || mare:, residuals(ar 1, t(time)) reml",
    "mixed follicles sin1 cos1 || mare:, residuals(ar 2, t(time))",
    "mixed follicles sin1 cos1 || mare:, noconstant residuals(exchangeable)",
    "mixed follicles sin1 cos1 || mare:, residuals(exponential, t(time))",
    "mixed follicles sin1 cos1 || mare:, residuals(ma 2, t(time))",
    "mixed follicles sin1 cos1 || mare:, residuals(toeplitz 2, t(time))",
    "mixed strength || batch: || cask:, reml",
    "mixed diameter || _all: R.plate || _all: R.sample",
    "mixed diameter || _all: R.plate || _all: R.sample, reml",
    "mixed weight week if week <= 5 || id:, noconstant residuals(banded 1, t(week))",
    "mixed weight week || id:",
    "mixed weight week || id:, reml",
    "mixed weight week || id: week, covariance(exchangeable)",
    "mixed weight week || id: week, covariance(identity)",
    "mixed weight week || id: week",
    "mixed weight week || id: week, covariance(unstructured)",
    "mixed weight week || id: week, covariance(unstructured) reml",
    "mixed weight week if week <= 4 || id:, noconstant residuals(unstructured, t(week))",
    "mixed gsp private emp hwy water other unemp || region: || state:",
    "mixed gsp private emp hwy water other unemp || region: || state:, reml",
    "mixed gsp private emp hwy water other unemp || region: || state: unemp",
    "mixed gsp private emp hwy water other unemp || state:, residuals(independent, by(region))",
    "mixed reaction days || subject: days, residuals(ar 1, t(days))",
    "mixed reaction days || subject: days, covariance(unstructured) reml",
]

# Commands printed in the seed (Stata's feature overview).
SEED_COMMANDS = [
    "mixed sat x1 x2 || school: x2 || class:",
    "mixed weight week || id:",
    "mixed weight week || id: week",
    "mixed gsp private emp hwy water other unemp || region: || state:",
    "mixed follicles sin1 cos1 || mare:, residuals(ar2, t(time)) nolog",
]


def eq(group, columns=(), constant=True, covariance="identity", factor=None, label=None):
    """Shorthand for an expected :class:`REEquation`."""
    if label is None:
        label = group[-1] if group else "_all"
    return REEquation(tuple(group), tuple(columns), constant, covariance, factor, label)


# ---------------------------------------------------------------------------
# Reference and seed commands
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("command", REFERENCE_COMMANDS + SEED_COMMANDS)
def test_reference_and_seed_commands_parse(command):
    spec = parse_stata(command)
    assert isinstance(spec, ModelSpec)
    assert spec.random, "every reference command has a random part"
    # the leading "mixed" is optional
    assert parse_stata(command[len("mixed ") :]) == spec


def test_pig_random_intercept():
    spec = parse_stata("mixed weight week || id:")
    assert spec == ModelSpec(response="weight", fixed="week", random=(eq(("id",)),))
    assert spec.reml is False and spec.subset is None and spec.options == ()
    assert spec.residual == ResidualSpec()


def test_pig_random_slope_default_independent():
    spec = parse_stata("mixed weight week || id: week")
    assert spec.random == (eq(("id",), ("week",), True, "independent"),)
    assert spec.random[0].effect_names == ("week", "_cons")


@pytest.mark.parametrize(
    "cov, expected",
    [("exchangeable", "exchangeable"), ("identity", "identity"), ("unstructured", "unstructured")],
)
def test_pig_random_slope_covariances(cov, expected):
    spec = parse_stata("mixed weight week || id: week, covariance(%s)" % cov)
    assert spec.random == (eq(("id",), ("week",), True, expected),)
    assert spec.reml is False


def test_pig_un_reml_options_without_comma():
    spec = parse_stata("mixed weight week || id: week, covariance(unstructured) reml")
    assert spec.reml is True
    assert spec.random[0].covariance == "unstructured"


def test_seed_sat_example_nesting():
    spec = parse_stata("mixed sat x1 x2 || school: x2 || class:")
    assert spec.fixed == "x1 + x2"
    assert spec.random == (
        eq(("school",), ("x2",), True, "independent"),
        eq(("school", "class")),
    )


def test_productivity_three_levels():
    spec = parse_stata("mixed gsp private emp hwy water other unemp || region: || state:")
    assert spec.response == "gsp"
    assert spec.fixed == "private + emp + hwy + water + other + unemp"
    assert spec.constant is True
    assert spec.random == (eq(("region",)), eq(("region", "state")))
    assert [e.level_name for e in spec.random] == ["region", "state"]


def test_productivity_slope_at_state():
    spec = parse_stata("mixed gsp private emp hwy water other unemp || region: || state: unemp")
    assert spec.random[1] == eq(("region", "state"), ("unemp",), True, "independent")


def test_pastes_nested_reml():
    spec = parse_stata("mixed strength || batch: || cask:, reml")
    assert spec.fixed == "" and spec.constant is True and spec.reml is True
    assert spec.random == (eq(("batch",)), eq(("batch", "cask")))


def test_three_nested_levels():
    spec = parse_stata("y || a: || b: || c:")
    assert [e.group for e in spec.random] == [("a",), ("a", "b"), ("a", "b", "c")]
    assert [e.label for e in spec.random] == ["a", "b", "c"]


def test_ovary_ar2_seed_glued_order():
    spec = parse_stata("mixed follicles sin1 cos1 || mare:, residuals(ar2, t(time)) nolog")
    assert spec.residual == ResidualSpec("ar", 2, "time", None)
    assert spec.options == (("log", False),)
    assert spec.random == (eq(("mare",)),)
    spaced = parse_stata("mixed follicles sin1 cos1 || mare:, residuals(ar 2, t(time))")
    assert spaced.residual == spec.residual


@pytest.mark.parametrize(
    "rspec, expected",
    [
        ("ar 1, t(time)", ResidualSpec("ar", 1, "time")),
        ("ar, t(time)", ResidualSpec("ar", 1, "time")),
        ("ma 2, t(time)", ResidualSpec("ma", 2, "time")),
        ("ma2, t(time)", ResidualSpec("ma", 2, "time")),
        ("toeplitz 2, t(time)", ResidualSpec("toeplitz", 2, "time")),
        ("toe 2, t(time)", ResidualSpec("toeplitz", 2, "time")),
        ("banded 1, t(week)", ResidualSpec("banded", 1, "week")),
        ("ba 1, t(week)", ResidualSpec("banded", 1, "week")),
        ("banded, t(week)", ResidualSpec("banded", None, "week")),
        ("exponential, t(time)", ResidualSpec("exponential", None, "time")),
        ("exp, t(time)", ResidualSpec("exponential", None, "time")),
        ("exchangeable", ResidualSpec("exchangeable")),
        ("exc", ResidualSpec("exchangeable")),
        ("exch", ResidualSpec("exchangeable")),
        ("unstructured, t(week)", ResidualSpec("unstructured", None, "week")),
        ("un, t(week)", ResidualSpec("unstructured", None, "week")),
        ("uns, t(week)", ResidualSpec("unstructured", None, "week")),
        ("independent, by(region)", ResidualSpec("independent", None, None, "region")),
        ("ind, by(region)", ResidualSpec("independent", None, None, "region")),
        ("ar 1, t(time) by(sex)", ResidualSpec("ar", 1, "time", "sex")),
        ("ar 1 , by(sex)  t(time)", ResidualSpec("ar", 1, "time", "sex")),
    ],
)
def test_residual_types(rspec, expected):
    assert parse_stata("y x || id:, residuals(%s)" % rspec).residual == expected


@pytest.mark.parametrize("name", ["residuals", "resid", "res", "residual"])
def test_residuals_abbreviation(name):
    spec = parse_stata("y x || id:, %s(ar 1, t(t))" % name)
    assert spec.residual == ResidualSpec("ar", 1, "t")


def test_exchangeable_residuals_with_noconstant_level():
    spec = parse_stata("mixed follicles sin1 cos1 || mare:, noconstant residuals(exchangeable)")
    assert spec.residual == ResidualSpec("exchangeable")
    # the level only defines panels: no random effects at all
    assert spec.random == (eq(("mare",), (), False, "identity"),)
    assert spec.random[0].effect_names == ()


def test_residual_by_region():
    spec = parse_stata(
        "mixed gsp private emp hwy water other unemp || state:, residuals(independent, by(region))"
    )
    assert spec.residual == ResidualSpec("independent", None, None, "region")
    assert spec.random == (eq(("state",)),)


# ---------------------------------------------------------------------------
# Fixed part
# ---------------------------------------------------------------------------


def test_factor_variables_in_fixed_part():
    """Each factor term is one patsy factor fv(term, base sets, columns); c.x alone stays x."""
    spec = parse_stata("y i.region ib3.state ib(2).g c.x z || id:")
    assert spec.fixed == ('fv("i.region", "region", region) + fv("ib3.state", "state", state) + '
                          'fv("ib2.g", "g", g) + x + z')


@pytest.mark.parametrize("token,terms", [
    ("i.a##c.x", ["i.a", "c.x", "i.a#c.x"]),
    ("a##b", ["i.a", "i.b", "i.a#i.b"]),
    ("i.a##i.b##c.x", ["i.a", "i.b", "c.x", "i.a#i.b", "i.a#c.x", "i.b#c.x", "i.a#i.b#c.x"]),
    ("a#c.x", ["i.a#c.x"]),
    ("c.x#c.x", ["c.x#c.x"]),
    ("ibn.a", ["ibn.a"]),
    ("ib(last).a", ["ib(last).a"]), ("ib(freq).a", ["ib(freq).a"]), ("ib(#2).a", ["ib(#2).a"]),
    ("i(1 3).a", ["i(1 3).a"]), ("i(1/3).a", ["i(1 2 3).a"]), ("2.a", ["2.a"]), ("i2.a", ["2.a"]),
])
def test_factor_variable_tokens(token, terms):
    assert [t.text for t in parse_fv_token(token)] == terms


@pytest.mark.parametrize("command,base", [
    ("y i.a || g:", {"i.a": [("a",)]}),
    ("y i.a##c.x || g:", {"i.a": [("a",)], "i.a#c.x": [("a",)]}),
    ("y i.a#c.x || g:", {"i.a#c.x": []}),  # no c.x: every level gets its slope
    ("y i.a#i.b || g:", {"i.a#i.b": [("a", "b")]}),  # cell means around the base cell
    ("y i.a##i.b || g:", {"i.a#i.b": [("a",), ("b",), ("a", "b")]}),
    ("y i.a i.a#i.b || g:", {"i.a#i.b": [("b",), ("a", "b")]}),
    ("y ibn.a, noconstant || g:", {"ibn.a": []}),
])
def test_base_cells_depend_on_the_other_terms(command, base):
    """A cell is a base cell when dropping its base-level factors leaves a term of the model."""
    spec = parse_stata(command)
    for call in re.findall(r'fv\("([^"]*)", "([^"]*)"', spec.fixed):
        if call[0] in base:
            expected = "|".join("*".join(s) for s in base[call[0]])
            assert call[1] == expected, (call, expected)


@pytest.mark.parametrize("command,expected", [
    ("y x in 1/10 || g:", (1, 10)), ("y x in 5 || g:", (5, 5)), ("y x in f/l || g:", (1, -1)),
    ("y x in -10/L || g:", (-10, -1)), ("y x if x > 2 in 1/10 || g:", (1, 10)),
    ("y x in 1/10 if x > 2 || g:", (1, 10)),
])
def test_in_range(command, expected):
    spec = parse_stata(command)
    assert spec.in_range == expected
    assert spec.fixed == "x"
    if "if" in command:
        assert spec.subset == "x > 2"


def test_in_range_selects_rows():
    pig = mx.load_dataset("pig")
    a = mx.mixed("mixed weight week in 1/90 || id:", pig)
    b = mx.mixed("mixed weight week || id:", pig.iloc[:90])
    assert a.nobs == 90 and abs(a.llf - b.llf) < 1e-10
    c = mx.mixed("mixed weight week if week > 2 in 10/-10 || id:", pig)
    d = mx.mixed("mixed weight week if week > 2 || id:", pig.iloc[9:-9])
    assert c.nobs == d.nobs and abs(c.llf - d.llf) < 1e-10
    with pytest.raises(mx.ModelSpecificationError, match="out of range"):
        mx.mixed("mixed weight week in 1/1000 || id:", pig)


def test_no_covariates_gives_empty_fixed():
    spec = parse_stata("diameter || _all: R.plate")
    assert spec.response == "diameter" and spec.fixed == "" and spec.constant is True


def test_fixed_noconstant():
    spec = parse_stata("mixed y x, noconstant || id:")
    assert spec.constant is False
    assert spec.random == (eq(("id",)),)
    assert parse_stata("mixed y x, nocons || id:").constant is False


def test_global_options_in_fixed_segment():
    spec = parse_stata("mixed y x, noconstant reml || id: x")
    assert spec.constant is False and spec.reml is True
    assert spec.random[0].constant is True


def test_no_random_part_is_allowed():
    spec = parse_stata("mixed y x1 x2")
    assert spec.random == () and spec.fixed == "x1 + x2"


def test_whitespace_variants():
    a = parse_stata("mixed weight week||id:week,cov(un) reml")
    b = parse_stata("  mixed   weight  week   ||   id :  week ,  covariance( unstructured )   reml  ")
    assert a == b
    assert a.random == (eq(("id",), ("week",), True, "unstructured"),)


def test_variable_named_like_command_prefix():
    spec = parse_stata("mixedscore x || id:")
    assert spec.response == "mixedscore"


# ---------------------------------------------------------------------------
# if expressions
# ---------------------------------------------------------------------------


@pytest.fixture
def frame():
    return pd.DataFrame(
        {
            "week": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
            "id": [1, 1, 5, 5, 10, 10, 11, 11, 12, 12],
            "a": [1, 1, 2, 2, 1, 1, 2, 2, 1, 1],
            "b": [2, 3, 2, 3, 2, 3, 2, 3, 2, 3],
            "flag": [0, 1, 0, 1, 0, 1, 0, 1, 2, 0],
            "x": [0.5, np.nan, 1.5, 2.5, np.nan, 3.5, 4.5, 5.5, 6.5, 7.5],
            "s": ["u", "v", "u", "v", "u", "v", "u", "v", "u", "v"],
        }
    )


def _rows(frame, expr):
    return frame.index[frame.eval(expr).to_numpy(dtype=bool)].tolist()


@pytest.mark.parametrize(
    "stata, pandas_expr, expected_mask",
    [
        ("week <= 5", "week <= 5", lambda f: f.week <= 5),
        ("id<=10", "id <= 10", lambda f: f.id <= 10),
        ("a==1 & b!=2", "(a == 1) & (b != 2)", lambda f: (f.a == 1) & (f.b != 2)),
        ("a==1 & b~=2", "(a == 1) & (b != 2)", lambda f: (f.a == 1) & (f.b != 2)),
        ("a==1 | b==2", "(a == 1) | (b == 2)", lambda f: (f.a == 1) | (f.b == 2)),
        ("a==2 | b==3 & week>4", "(a == 2) | ((b == 3) & (week > 4))",
         lambda f: (f.a == 2) | ((f.b == 3) & (f.week > 4))),
        ("(a==2 | b==3) & week>4", "((a == 2) | (b == 3)) & (week > 4)",
         lambda f: ((f.a == 2) | (f.b == 3)) & (f.week > 4)),
        ("!(a==1)", "~(a == 1)", lambda f: f.a != 1),
        ("~(a==1) & week>=3", "(~(a == 1)) & (week >= 3)", lambda f: (f.a != 1) & (f.week >= 3)),
        ("!flag", "flag == 0", lambda f: f.flag == 0),
        ("flag", "flag != 0", lambda f: f.flag != 0),
        ("flag & a==1", "(flag != 0) & (a == 1)", lambda f: (f.flag != 0) & (f.a == 1)),
        ("week > 2 & week < 8", "(week > 2) & (week < 8)", lambda f: (f.week > 2) & (f.week < 8)),
        ("week*2 >= id + 1", "(week * 2) >= (id + 1)", lambda f: f.week * 2 >= f.id + 1),
        ("week^2 < 20", "(week ** 2) < 20", lambda f: f.week ** 2 < 20),
        ("-week > -3", "(-week) > (-3)", lambda f: -f.week > -3),
        ('s == "u"', 's == "u"', lambda f: f.s == "u"),
        ("x < .", "x == x", lambda f: f.x.notna()),
        ("x == .", "x != x", lambda f: f.x.isna()),
        ("x != . & week > 3", "(x == x) & (week > 3)", lambda f: f.x.notna() & (f.week > 3)),
        ("missing(x)", "x != x", lambda f: f.x.isna()),
        ("!missing(x)", "~(x != x)", lambda f: f.x.notna()),
        ("inlist(id, 1, 10)", "id in [1, 10]", lambda f: f.id.isin([1, 10])),
        ("inrange(week, 3, 6)", "(week >= 3) & (week <= 6)", lambda f: f.week.between(3, 6)),
        ("inrange(week, 3, 6) & a == 1", "((week >= 3) & (week <= 6)) & (a == 1)",
         lambda f: f.week.between(3, 6) & (f.a == 1)),
        ("week <= 2.5e0", "week <= 2.5e0", lambda f: f.week <= 2.5),
        ("x > .5", "x > .5", lambda f: f.x > 0.5),
    ],
)
def test_if_translation(frame, stata, pandas_expr, expected_mask):
    assert translate_if(stata) == pandas_expr
    assert _rows(frame, pandas_expr) == frame.index[expected_mask(frame).to_numpy(dtype=bool)].tolist()
    # DataFrame.query works too
    assert frame.query(pandas_expr).index.tolist() == _rows(frame, pandas_expr)


def test_if_in_command(frame):
    spec = parse_stata("mixed weight week if week <= 5 || id:, noconstant residuals(banded 1, t(week))")
    assert spec.subset == "week <= 5"
    assert spec.fixed == "week"
    assert spec.random == (eq(("id",), (), False),)
    assert spec.residual == ResidualSpec("banded", 1, "week")
    spec = parse_stata("mixed weight week if week <= 4 || id:, noconstant residuals(unstructured, t(week))")
    assert spec.subset == "week <= 4"
    spec = parse_stata("y week if a==1 & b~=2 || id:")
    assert spec.subset == "(a == 1) & (b != 2)"
    assert _rows(frame, spec.subset) == [1, 5, 9]


def test_if_with_comma_inside_function_and_fixed_options():
    spec = parse_stata("y week if inlist(id, 1, 5), noconstant || id:")
    assert spec.subset == "id in [1, 5]"
    assert spec.constant is False


def test_if_expression_with_pipe_is_not_a_segment_split():
    spec = parse_stata("y week if a==1 | b==2 || id:")
    assert spec.subset == "(a == 1) | (b == 2)"
    assert len(spec.random) == 1


def test_no_if_gives_no_subset():
    assert parse_stata("y x || id:").subset is None


# ---------------------------------------------------------------------------
# Random-effects equations
# ---------------------------------------------------------------------------


def test_block_diagonal_repeated_level():
    spec = parse_stata("mixed y x1 x2 || g: x1, covariance(unstructured) || g: x2, noconstant")
    assert spec.random == (
        eq(("g",), ("x1",), True, "unstructured"),
        eq(("g",), ("x2",), False, "identity"),
    )


def test_block_diagonal_stata_manual_form():
    spec = parse_stata("y z1 z2 z3 || school: z1 z2, cov(un) || school: z3, nocons")
    assert spec.random == (
        eq(("school",), ("z1", "z2"), True, "unstructured"),
        eq(("school",), ("z3",), False, "identity"),
    )


def test_repeated_level_after_nested_level_keeps_its_path():
    spec = parse_stata("y || a: || b: || a: x, nocons || c:")
    assert [e.group for e in spec.random] == [("a",), ("a", "b"), ("a",), ("a", "b", "c")]


def test_all_with_factor():
    spec = parse_stata("mixed diameter || _all: R.plate || _all: R.sample")
    assert spec.random == (
        eq((), (), False, "identity", "plate", "_all"),
        eq((), (), False, "identity", "sample", "_all"),
    )
    assert spec.random[0].effect_names == ("R.plate",)
    assert spec.random[0].level_name == "_all"


def test_all_is_not_in_nesting_path():
    spec = parse_stata("y x || _all: R.a || b:")
    assert spec.random == (eq((), (), False, "identity", "a", "_all"), eq(("b",)))
    spec = parse_stata("y x || b: || _all: R.a || c:")
    assert [e.group for e in spec.random] == [("b",), (), ("b", "c")]


def test_factor_exchangeable_allowed():
    spec = parse_stata("y || _all: R.a, cov(exch)")
    assert spec.random[0].covariance == "exchangeable"
    assert spec.random[0].factor == "a"


def test_factor_within_level():
    spec = parse_stata("y || id: R.visit")
    assert spec.random == (eq(("id",), (), False, "identity", "visit"),)


def test_all_with_variables():
    spec = parse_stata("y x || _all: x")
    assert spec.random == (eq((), ("x",), True, "independent", None, "_all"),)


def test_noconstant_is_per_equation():
    spec = parse_stata("y x || a: x, nocons || b: x")
    assert spec.random[0] == eq(("a",), ("x",), False, "identity")
    assert spec.random[1] == eq(("a", "b"), ("x",), True, "independent")
    assert spec.constant is True


def test_slope_order_and_constant_last():
    spec = parse_stata("y || id: z2 z1 z3")
    assert spec.random[0].columns == ("z2", "z1", "z3")
    assert spec.random[0].effect_names == ("z2", "z1", "z3", "_cons")
    assert spec.random[0].covariance == "independent"


def test_c_prefix_in_random_varlist():
    assert parse_stata("y || id: c.week").random[0].columns == ("week",)


@pytest.mark.parametrize(
    "word, expected",
    [
        ("id", "identity"), ("ident", "identity"), ("identity", "identity"),
        ("ind", "independent"), ("indep", "independent"), ("independent", "independent"),
        ("exc", "exchangeable"), ("exch", "exchangeable"), ("exchangeable", "exchangeable"),
        ("un", "unstructured"), ("uns", "unstructured"), ("unstr", "unstructured"),
        ("unstructured", "unstructured"),
    ],
)
@pytest.mark.parametrize("optname", ["covariance", "cov", "covar"])
def test_covariance_abbreviations(word, expected, optname):
    spec = parse_stata("y x || id: x z, %s(%s)" % (optname, word))
    assert spec.random[0].covariance == expected


@pytest.mark.parametrize("cov", ["un", "exch", "ind", "id"])
def test_single_effect_covariance_reduces_to_identity(cov):
    assert parse_stata("y x || id:, cov(%s)" % cov).random[0].covariance == "identity"
    assert parse_stata("y x || id: x, nocons cov(%s)" % cov).random[0].covariance == "identity"


# ---------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "opts, expected",
    [
        ("stddeviations", {"stddeviations": True}),
        ("stddev", {"stddeviations": True}),
        ("variance", {"stddeviations": False}),
        ("var", {"stddeviations": False}),
        ("level(90)", {"level": 90.0}),
        ("level(97.5)", {"level": 97.5}),
        ("l(90)", {"level": 90.0}),
        ("nolog", {"log": False}),
        ("log", {"log": True}),
        ("emlog", {"emlog": True}),
        ("emonly", {"emonly": True}),
        ("iterate(50)", {"iterate": 50}),
        ("iter(0)", {"iterate": 0}),
        ("emiterate(5)", {"emiterate": 5}),
        ("emtolerance(1e-8)", {"emtolerance": 1e-8}),
        ("tolerance(1e-7)", {"tolerance": 1e-7}),
        ("tol(0.001)", {"tolerance": 0.001}),
        ("noretable", {"noretable": True}),
        ("nofetable", {"nofetable": True}),
        ("nolrtest", {"nolrtest": True}),
        ("nogroup", {"nogroup": True}),
        ("noheader", {"noheader": True}),
        ("nostderr", {"nostderr": True}),
        ("dfmethod(kroger)", {"dfmethod": "kroger"}),
        ("dfmethod(sat)", {"dfmethod": "satterthwaite"}),
        ("dfm(residual)", {"dfmethod": "residual"}),
        ("vce(oim)", {"vce": "oim"}),
        ("vce(robust)", {"vce": "robust"}),
        ("vce(r)", {"vce": "robust"}),
        ("vce(cluster   id)", {"vce": "cluster id"}),
        ("vce(cl id)", {"vce": "cluster id"}),
        ("nolog stddev level(99) nogroup",
         {"log": False, "stddeviations": True, "level": 99.0, "nogroup": True}),
    ],
)
def test_options(opts, expected):
    spec = parse_stata("y x || id: x, %s" % opts)
    assert spec.option_dict == expected
    assert spec.reml is False


def test_options_types():
    spec = parse_stata("y x || id:, iterate(50) level(90) tolerance(1e-6)")
    d = spec.option_dict
    assert isinstance(d["iterate"], int)
    assert isinstance(d["level"], float) and isinstance(d["tolerance"], float)
    assert isinstance(spec.options, tuple) and all(isinstance(p, tuple) and len(p) == 2 for p in spec.options)


def test_options_in_any_segment():
    a = parse_stata("y x || a: x, cov(un) reml nolog || b:")
    b = parse_stata("y x || a: x, cov(un) || b:, reml nolog")
    assert a == b
    assert a.reml is True and a.option_dict == {"log": False}


def test_later_option_overrides_earlier():
    spec = parse_stata("y x || id:, variance stddev")
    assert spec.option_dict == {"stddeviations": True}


@pytest.mark.parametrize("word, reml", [("reml", True), ("mle", False), ("ml", False)])
def test_estimation_method(word, reml):
    assert parse_stata("y x || id:, %s" % word).reml is reml


def test_spec_is_hashable_and_frozen():
    spec = parse_stata("mixed weight week || id: week, cov(un) reml nolog")
    hash(spec)
    with pytest.raises(Exception):
        spec.reml = False  # type: ignore[misc]


# ---------------------------------------------------------------------------
# Same spec as the lme4 front-end
# ---------------------------------------------------------------------------


def test_same_random_as_lme4_unstructured():
    stata = parse_stata("mixed weight week || id: week, covariance(unstructured)")
    lme4 = parse_lme4("weight ~ week + (week | id)")
    assert stata.random == lme4.random
    assert stata == lme4


def test_same_spec_as_lme4_block_diagonal():
    stata = parse_stata("mixed y x1 x2 || g: x1, covariance(unstructured) || g: x2, noconstant")
    lme4 = parse_lme4("y ~ x1 + x2 + (1+x1|g) + (0+x2|g)")
    assert stata == lme4


def test_same_spec_as_lme4_random_intercept_reml():
    assert parse_stata("mixed weight week || id:, reml") == parse_lme4("weight ~ week + (1|id)", reml=True)


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command, fragments",
    [
        ("", ["empty command"]),
        ("   ", ["empty command"]),
        ("mixed", ["empty command"]),
        ("mixed   ", ["empty command"]),
        ("mixed weight week || id: week, cov(foo)",
         ["unknown covariance type 'foo'", "'|| id: week, cov(foo)'"]),
        ("mixed weight week || id: week, covariance()", ["covariance() requires an argument"]),
        ("mixed weight week || id week", ["missing ':'", "'id'", "'|| id week'"]),
        ("mixed weight week || id", ["missing ':'", "'id'"]),
        ("mixed weight week ||", ["without a level"]),
        ("mixed weight week || || id:", ["without a level"]),
        ("mixed weight week || : week", ["without a level", "'|| : week'"]),
        ("mixed weight week || id: week, cov(un", ["unbalanced parentheses"]),
        ("mixed weight week || id: week, cov(un))", ["unbalanced parentheses", "')'"]),
        ("mixed weight week if (week <= 5 || id:", ["unbalanced parentheses"]),
        ('mixed weight week if s == "a || id:', ["unbalanced double quotes"]),
        ("mixed weight week || id:, foo", ["unknown option 'foo'", "'|| id:, foo'"]),
        ("mixed weight week || id:, reml bar(1)", ["unknown option 'bar(1)'"]),
        ("mixed weight week, cov(un) || id:", ["covariance() is only allowed in a random-effects equation"]),
        ("mixed weight week || id:, reml mle", ["reml and mle may not be combined"]),
        ("mixed weight week || id:, residuals(ar 1, t(t)) residuals(ma 1, t(t))",
         ["residuals() specified more than once"]),
        ("mixed weight week || id:, residuals(foo)", ["unknown residual type 'foo'"]),
        ("mixed weight week || id:, residuals(ar x, t(t))", ["positive integer", "'x'"]),
        ("mixed weight week || id:, residuals(ar 0, t(t))", ["positive integer"]),
        ("mixed weight week || id:, residuals(exchangeable 2)", ["takes no order"]),
        ("mixed weight week || id:, residuals(ar 1, t(t) foo(x))",
         ["unknown residuals() suboption 'foo(x)'"]),
        ("mixed weight week || id:, residuals(ar 1, t(1x))", ["invalid variable name '1x'"]),
        ("mixed weight week || id:, residuals()", ["residuals() requires an argument"]),
        ("mixed weight week || id:, level(5)", ["level() must be between 10 and 99.99"]),
        ("mixed weight week || id:, level(abc)", ["needs a number", "'abc'"]),
        ("mixed weight week || id:, iterate(1.5)", ["needs an integer"]),
        ("mixed weight week || id:, nolog(3)", ["takes no argument"]),
        ("mixed weight week || id:, vce(bootstrap)", ["unknown vce type 'bootstrap'"]),
        ("mixed weight week || id:, vce(cluster)", ["vce(cluster) needs one variable"]),
        ("mixed weight week || id:, dfmethod(foo)", ["unknown dfmethod 'foo'"]),
        ("mixed weight week || id:,", ["empty option list"]),
        ("mixed weight week || id:, reml, nolog", ["invalid option ','"]),
        ("mixed weight 2week || id:", ["invalid variable name or term '2week'", "'weight 2week'"]),
        ("mixed weight week-1 || id:", ["'week-1'"]),
        ("mixed weight i.a##c.b#c.z || id:", ["cannot mix '#' and '##'"]),
        ("mixed weight i.a#i.a || id:", ["repeated in the interaction"]),
        ("mixed weight i(a b).g || id:", ["invalid level 'a'"]),
        ("mixed weight i.a# || id:", ["invalid interaction"]),
        ("mixed weight x* || id:", ["'x*'"]),
        ("mixed weight ib().g || id:", ["invalid base level"]),
        ("mixed i.weight week || id:", ["invalid dependent variable 'i.weight'"]),
        ("mixed , reml || id:", ["missing dependent variable"]),
        ("mixed weight week || id: 2x", ["invalid random-effects variable '2x'", "'|| id: 2x'"]),
        ("mixed weight week || id: i.x", ["must use R. when specifying factor variables"]),
        ("mixed weight week || id: c.x#i.z", ["must use R."]),
        ("mixed weight week || id: week week", ["repeated"]),
        ("mixed weight week || i d: week", ["invalid level name 'i d'"]),
        ("mixed weight week || 1id: week", ["invalid level name '1id'"]),
        ("mixed y || _all: R.a x", ["R.varname term must be the only variable"]),
        ("mixed y || _all: R.a R.b", ["R.varname term must be the only variable"]),
        ("mixed y || _all: R.a, cov(un)", ["covariance(unstructured) is not allowed with R.a"]),
        ("mixed y || _all: R.a, cov(ind)", ["not allowed with R.a"]),
        ("mixed weight week if || id:", ["'if' without an expression"]),
        ("mixed weight week if week = 5 || id:", ["use '=='"]),
        ("mixed weight week if week <= || id:", ["unexpected end"]),
        ("mixed weight week if week <= 5 5 || id:", ["unexpected '5'"]),
        ("mixed weight week if week @ 5 || id:", ["invalid character '@'"]),
        ("mixed weight week if foo(week) || id:", ["function foo()", "not supported"]),
        ("mixed weight week if week > . || id:", ["missing value"]),
        ("mixed weight week if . || id:", ["missing value"]),
        ("mixed weight week in 0/10 || id:", ["invalid observation number '0'"]),
        ("mixed weight week in 1/10 in 2/3 || id:", ["'in' given more than once"]),
        ("mixed weight week in 1 / 10 || id:", ["needs one range"]),
        ("mixed weight week [aw=n] || id:", ["aweights are not allowed"]),
        ("mixed weight week [fw=n+1] || id:", ["only a variable name is supported"]),
    ],
)
def test_errors(command, fragments):
    with pytest.raises(StataSyntaxError) as info:
        parse_stata(command)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_error_is_value_error():
    assert issubclass(StataSyntaxError, ValueError)
    with pytest.raises(ValueError):
        parse_stata("mixed weight week || id: week, cov(foo)")


def test_exact_covariance_error_message():
    with pytest.raises(StataSyntaxError) as info:
        parse_stata("mixed weight week || id: week, cov(foo)")
    assert str(info.value) == "unknown covariance type 'foo' in '|| id: week, cov(foo)'"


def test_non_string_command():
    with pytest.raises(TypeError):
        parse_stata(None)  # type: ignore[arg-type]


def test_time_variable_not_checked_here():
    # t() requirements are checked by the design stage, which sees the data
    assert parse_stata("y x || id:, residuals(ar 1)").residual == ResidualSpec("ar", 1)
