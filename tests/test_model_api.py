"""The statsmodels contract, the fixed interface, the CLI and the iteration log."""
from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from statsmodels.base.model import LikelihoodModel, LikelihoodModelResults

import mixedlm_ext as mx


@pytest.fixture(scope="module")
def pig():
    return mx.load_dataset("pig")


@pytest.fixture(scope="module")
def res(pig):
    return mx.mixed("mixed weight week || id: week, covariance(unstructured) reml", pig)


def test_statsmodels_classes(res):
    """to_statsmodels(): statsmodels' own results class over the same estimates."""
    sm = res.to_statsmodels()
    assert isinstance(sm.model, LikelihoodModel)
    assert isinstance(sm._results, LikelihoodModelResults)
    np.testing.assert_allclose(np.asarray(sm.params), np.asarray(res.params))
    np.testing.assert_allclose(np.asarray(sm.bse), np.asarray(res.bse))
    np.testing.assert_allclose(np.asarray(sm.pvalues), np.asarray(res.pvalues), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(sm.conf_int())[:2], np.asarray(res.conf_int())[:2])
    assert list(sm.params.index) == list(res.params.index)
    assert abs(sm.model.loglike(np.asarray(res.params)) - res.llf) < 1e-8 * abs(res.llf)
    assert res._results is res


def test_fit_and_summary_without_statsmodels_base():
    """A fit and its Stata table load neither statsmodels' model classes nor scipy.stats
    (together about 0.45 s of a fresh process); the statsmodels tests load them on use."""
    code = ("import sys, mixedlm_ext as mx\n"
            "r = mx.mixed('weight week || id: week, covariance(unstructured) reml', mx.load_dataset('pig'))\n"
            "str(r.summary()); r.conf_int(); r.pvalues\n"
            "print(sorted(m for m in ('statsmodels.base.model', 'scipy.stats') if m in sys.modules))\n"
            "r.t_test('week = 0')\n"
            "print('statsmodels.base.model' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "[]" and out[1] == "True"


def test_loglike_at_params_is_llf(res):
    assert abs(res.model.loglike(np.asarray(res.params)) - res.llf) < 1e-8 * abs(res.llf)


def test_ml_loglike_depends_on_beta(pig):
    r = mx.mixed("weight week || id:", pig)
    p = np.asarray(r.params).copy()
    assert abs(r.model.loglike(p) - r.llf) < 1e-8
    p[0] += 0.1
    assert r.model.loglike(p) < r.llf


def test_params_names_and_cov(res):
    names = list(res.params.index)
    assert names[:2] == ["week", "_cons"]
    assert names[2:] == ["id:var(week)", "id:var(_cons)", "id:cov(week,_cons)", "Residual:var(Residual)"]
    cov = res.cov_params()
    assert cov.shape == (6, 6) and list(cov.index) == names
    np.testing.assert_allclose(np.sqrt(np.diag(cov)), res.bse)
    assert np.allclose(cov.iloc[:2, 2:], 0)


def test_fixed_interface(res):
    assert list(res.fe_params.index) == ["week", "_cons"]
    assert list(res.bse_fe.index) == ["week", "_cons"]
    vc = res.variance_components
    assert list(vc.columns) == ["estimate", "std_err", "ci_low", "ci_high"]
    assert ("id", "cov(week,_cons)") in vc.index and ("Residual", "var(Residual)") in vc.index
    assert res.lrtest_linear.kind == "chi2(3)"
    assert res.wald_chi2.df == 1 and res.wald_chi2.pvalue < 1e-10
    g = res.estat_group()
    assert list(g.columns) == ["n_groups", "min", "avg", "max"] and g.loc["id", "n_groups"] == 48


def test_statsmodels_tests(res):
    z = res.tvalues["week"]
    assert np.isclose(z, res.fe_params["week"] / res.bse_fe["week"])
    tt = res.t_test("week = 6")
    assert np.isclose(float(np.squeeze(tt.effect)), res.fe_params["week"])
    assert np.isclose(float(np.squeeze(tt.tvalue)), (res.fe_params["week"] - 6) / res.bse_fe["week"])
    wt = res.wald_test("week = 0, _cons = 0", scalar=True)
    b = res.fe_params.values
    V = res.cov_fe.values
    assert np.isclose(float(wt.statistic), b @ np.linalg.solve(V, b))
    ci = res.conf_int()
    assert ci.shape == (6, 2)
    lo, hi = ci.loc["id:var(_cons)"]
    v, s = res.variance_components.loc[("id", "var(_cons)"), ["estimate", "std_err"]]
    assert np.isclose(lo, v * np.exp(-1.959964 * s / v), rtol=1e-6)  # log scale, as Stata
    assert res.aic == pytest.approx(-2 * res.llf + 2 * 6)
    assert res.bic == pytest.approx(-2 * res.llf + np.log(432) * 6)
    assert res.converged


def test_fit_does_not_mutate_model(pig):
    m = mx.MixedLMExt.from_stata("weight week || id: week", pig)
    before = (m.design.ZtZ.copy(), m.objective.theta_start().copy(), list(m.exog_names))
    r1 = m.fit()
    r2 = m.fit()
    assert r1.llf == r2.llf
    assert np.array_equal(before[0], m.design.ZtZ) and list(m.exog_names) == before[2]


def test_iteration_log_in_stata_form(pig):
    out = io.StringIO()
    mx.mixed("mixed weight week || id:", pig, log=True, emlog=True, stream=out)
    text = out.getvalue()
    assert "Performing EM optimization" in text
    assert "Performing gradient-based optimization:" in text
    assert "Iteration 0:  Log likelihood = -1014.9268" in text or "Iteration 0:  Log likelihood = -101" in text
    assert "Computing standard errors" in text


def test_reml_title_and_label(pig):
    r = mx.mixed("weight week || id:, reml", pig)
    s = str(r.summary())
    assert "Mixed-effects REML regression" in s and "Log restricted-likelihood" in s


def test_cli_prints_table():
    out = subprocess.run([sys.executable, "-m", "mixedlm_ext", "mixed weight week || id:", "--dataset", "pig"],
                         capture_output=True, text=True, check=True).stdout
    assert "Mixed-effects ML regression" in out and "chibar2(01) = 472.65" in out


def test_cli_reads_csv(tmp_path, pig):
    f = tmp_path / "pig.csv"
    pig.to_csv(f, index=False)
    out = subprocess.run([sys.executable, "-m", "mixedlm_ext", "weight week || id: week", "--data", str(f)],
                         capture_output=True, text=True, check=True).stdout
    assert "id: Independent" in out and "chi2(2) = 764.42" in out


def test_if_condition_and_factor_variables():
    prod = mx.load_dataset("productivity")
    r = mx.mixed("gsp private emp i.region if year >= 1975 || state:", prod)
    assert r.nobs == int((prod.year >= 1975).sum())
    assert "2.region" in r.fe_params.index and "1.region" not in r.fe_params.index
    assert r.fe_params.index[-1] == "_cons"


def test_block_diagonal_level():
    d = mx.load_dataset("blockdiag")
    r = mx.mixed("mixed y x1 x2 || g: x1, covariance(unstructured) || g: x2, noconstant", d)
    labels = list(r.variance_components.index)
    assert labels == [("g", "var(x1)"), ("g", "var(_cons)"), ("g", "cov(x1,_cons)"), ("g", "var(x2)"),
                      ("Residual", "var(Residual)")]
    s = str(r.summary())
    assert "g: Unstructured" in s and "g: Identity" in s


def test_noconstant_fixed_and_random(pig):
    r = mx.mixed("weight week, noconstant || id: week, noconstant", pig)
    assert list(r.fe_params.index) == ["week"]
    assert ("id", "var(week)") in r.variance_components.index


def test_codes_need_not_be_unique_across_parents():
    """|| a: || b: groups by the pair: b codes repeat across a."""
    rng = np.random.default_rng(1)
    a = np.repeat(np.arange(20), 30)
    b = np.tile(np.repeat(np.arange(3), 10), 20)
    y = rng.normal(size=20)[a] + rng.normal(size=60)[a * 3 + b] + rng.normal(size=600)
    df = pd.DataFrame({"y": y, "a": a, "b": b})
    r = mx.mixed("y || a: || b:", df)
    assert r.estat_group().loc["b", "n_groups"] == 60
    df2 = df.assign(b=a * 3 + b)  # unique codes: same model
    assert abs(mx.mixed("y || a: || b:", df2).llf - r.llf) < 1e-8


def test_cli_honours_the_commands_nolog(tmp_path):
    """Stata's `mixed ..., nolog` prints no iteration log on the command line either."""
    run = [sys.executable, "-m", "mixedlm_ext", "--dataset", "pig"]
    quiet = subprocess.run(run + ["mixed weight i.week in 1/200 || id:, nolog"], capture_output=True, text=True,
                           check=True).stdout
    loud = subprocess.run(run + ["mixed weight i.week in 1/200 || id:"], capture_output=True, text=True,
                          check=True).stdout
    assert "Iteration 0" not in quiet and "Iteration 0" in loud
    assert "Number of obs    =        200" in quiet
    assert "\n        week |\n          2  |" in quiet  # factor variables laid out as Stata


def test_statsmodels_tools_take_the_results(res, pig):
    """statsmodels' summary_col reads the results directly, as it reads its own."""
    from statsmodels.iolib.summary2 import summary_col

    other = mx.mixed("weight week || id:", pig)
    text = str(summary_col([res, other], stars=False))
    assert "id:var(_cons)" in text and "%.4f" % res.params["week"] in text
    assert "%.4f" % other.bse["_cons"] in text
