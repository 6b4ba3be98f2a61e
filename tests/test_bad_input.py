"""Bad input gets a clear error naming the problem; nothing is silently dropped."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedlm_ext as mx
from mixedlm_ext import ModelSpecificationError, StataSyntaxError


@pytest.fixture(scope="module")
def pig():
    return mx.load_dataset("pig")


@pytest.mark.parametrize("cmd, match", [
    ("weight foo || id:", "variable 'foo' not found"),
    ("weight week || foo:", "variable 'foo' not found"),
    ("weight week || id: foo", "variable 'foo' not found"),
    ("nosuch week || id:", "variable 'nosuch' not found"),
])
def test_unknown_variables(pig, cmd, match):
    with pytest.raises(ModelSpecificationError, match=match):
        mx.mixed(cmd, pig)


@pytest.mark.parametrize("cmd, match", [
    ("weight week || id week", "missing ':'"),
    ("weight week || id: week, cov(foo)", "unknown covariance type 'foo'"),
    ("weight week || id:, foo", "unknown option 'foo'"),
    ("weight week || id: week, cov(un", "parenthes"),
    ("", "empty"),
])
def test_syntax_errors_say_where(pig, cmd, match):
    with pytest.raises(StataSyntaxError, match=match):
        mx.mixed(cmd, pig)


def test_non_numeric(pig):
    df = pig.assign(s="a")
    with pytest.raises(ModelSpecificationError, match="'s' is not numeric"):
        mx.mixed("weight s || id:", df)
    with pytest.raises(ModelSpecificationError, match="'s' is not numeric"):
        mx.mixed("weight week || id: s", df)
    with pytest.raises(ModelSpecificationError, match="dependent variable 'weight' is not numeric"):
        mx.mixed("weight week || id:", pig.assign(weight=pig.weight.astype(str)))


def test_factor_variable_accepts_strings(pig):
    df = pig.assign(half=np.where(pig.week <= 4, "early", "late"))
    r = mx.mixed("weight week i.half || id:", df)
    assert "late.half" in r.fe_params.index


def test_missing_rows_dropped_and_counted(pig):
    df = pig.copy()
    df.loc[[3, 7], "weight"] = np.nan
    with pytest.warns(UserWarning, match="2 observations with missing values"):
        r = mx.mixed("weight week || id:", df)
    assert r.nobs == 430
    assert "Number of obs    =        430" in str(r.summary())
    assert "2 observations with missing values dropped" in str(r.summary())


def test_collinear_fixed_effect_omitted_with_note(pig):
    df = pig.assign(w2=2 * pig.week)
    with pytest.warns(UserWarning, match="w2 omitted because of collinearity"):
        r = mx.mixed("weight week w2 || id:", df)
    assert "w2" not in r.fe_params.index
    assert "note: w2 omitted because of collinearity" in str(r.summary())


def test_unidentified_models(pig):
    df = pig.assign(c=np.arange(len(pig)))
    with pytest.raises(ModelSpecificationError, match="one observation per group"):
        mx.mixed("weight week || c:", df)
    with pytest.raises(ModelSpecificationError, match="_cons appears in more than one equation"):
        mx.mixed("weight week || id: week, cov(un) || id:", pig)
    with pytest.raises(ModelSpecificationError, match="'z' is zero in every observation"):
        mx.mixed("weight week || id: z", pig.assign(z=0.0))
    small = pig[pig.week <= 2]
    with pytest.raises(ModelSpecificationError, match="not identified"):
        mx.mixed("weight || id: week c, cov(un)", small.assign(c=small.week ** 2))


def test_boundary_variance_warns_and_is_reported():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"g": np.repeat(np.arange(30), 10), "x": rng.normal(size=300)})
    df["y"] = df.x + rng.normal(size=300)
    with pytest.warns(mx.BoundaryWarning):
        r = mx.mixed("y x || g:", df)
    assert r.converged
    row = r.variance_components.loc[("g", "var(_cons)")]
    assert row["estimate"] < 1e-8 and np.isnan(row["std_err"])
    assert r.lrtest_linear.statistic == 0.0 and r.lrtest_linear.pvalue == 1.0


def test_nonconvergence_is_reported(pig):
    with pytest.warns(mx.ConvergenceWarning):
        r = mx.mixed("weight week || id: week, cov(un)", pig, maxiter=1, em_iterations=0)
    assert not r.converged
    assert "convergence not achieved" in str(r.summary())


def test_infinite_values_named(pig):
    df = pig.assign(week=pig.week.astype(float))
    df.loc[3, "week"] = np.inf
    with pytest.raises(ModelSpecificationError, match="'week' has 1 infinite"):
        mx.mixed("weight week || id:", df)


def test_mixed_type_group_and_empty_selections(pig):
    df = pig.astype({"id": object})
    df.loc[0, "id"] = "a"
    with pytest.raises(ModelSpecificationError, match="mixes values of different types"):
        mx.mixed("weight week || id:", df)
    with pytest.raises(ModelSpecificationError, match="selects no rows"):
        mx.mixed("weight week if week > 100 || id:", pig)
    with pytest.raises(ModelSpecificationError, match="has no rows"):
        mx.mixed("weight week || id:", pig.iloc[:0])


def test_fitted_and_resid_in_data_order():
    prod = mx.load_dataset("productivity")
    r = mx.mixed("gsp private || region: || state:", prod)
    assert list(r.fittedvalues.index) == list(prod.index)
    np.testing.assert_allclose((r.fittedvalues + r.resid).to_numpy(), prod.gsp.to_numpy())
