"""dfmethod(): Satterthwaite and Kenward-Roger against lmerTest/pbkrtest, and the simple methods.

Reference: tests/reference/small_sample_lmertest.json (lmerTest Satterthwaite and
Kenward-Roger df and p-values, pbkrtest's adjusted SEs) for four REML models,
fit here with the equivalent Stata commands.  Tolerances (relative): df 1e-3,
KR standard errors 1e-4; p-values on the log scale (they are as small as 1e-108,
where the last digits of t move p a lot).
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import SMALL_SAMPLE_COMMANDS, load_reference
from scipy import stats

import mixedlm_ext as mx
from mixedlm_ext.inference.smallsample import kenward_roger_pieces, normalize_df_method, vcov_jacobian

REF = load_reference("small_sample_lmertest")

COMMANDS = SMALL_SAMPLE_COMMANDS


def _fit(case, dfm):
    cmd, ds = COMMANDS[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mx.mixed("%s dfmethod(%s)" % (cmd, dfm), mx.load_dataset(ds))


@pytest.fixture(scope="module")
def fits():
    return {(c, m): _fit(c, m) for c in COMMANDS for m in ("satterthwaite", "kroger")}


def _close_p(p, ref):
    """p-values: relative 1e-3 on log(p)."""
    return abs(np.log(p) - np.log(ref)) <= 1e-3 * max(1.0, abs(np.log(ref)))


@pytest.mark.parametrize("case", list(COMMANDS))
def test_satterthwaite(case, fits):
    res = fits[(case, "satterthwaite")]
    ref = REF[case]
    assert res.df_method == "satterthwaite" and res.use_t
    for name, df in ref["satterthwaite_df"].items():
        assert abs(res.fe_df[name] / df - 1) < 1e-3, (name, res.fe_df[name], df)
        assert _close_p(res.pvalues[name], ref["satterthwaite_p"][name]), name
    # no adjustment of the covariance
    for name, se in ref["se"].items():
        assert abs(res.bse_fe[name] / se - 1) < 1e-4


@pytest.mark.parametrize("case", list(COMMANDS))
def test_kenward_roger(case, fits):
    res = fits[(case, "kroger")]
    ref = REF[case]
    assert res.df_method == "kroger"
    for name, df in ref["kenward_roger_df"].items():
        assert abs(res.fe_df[name] / df - 1) < 1e-3, (name, res.fe_df[name], df)
        assert abs(res.bse_fe[name] / ref["kenward_roger_se"][name] - 1) < 1e-4, name
        assert _close_p(res.pvalues[name], ref["kenward_roger_p"][name]), name
    # the covariance reported is the adjusted one
    assert np.allclose(np.diag(res.cov_fe.values), res.bse_fe.values ** 2)


def test_python_front_ends_and_tests(fits):
    """fit(df_method="kenward-roger") through the lme4 and statsmodels front-ends; t_test / wald_test."""
    data = mx.load_dataset("sleepstudy")
    ref = REF["sleepstudy_un_reml"]
    a = mx.lmer("reaction ~ days + (days | subject)", data, df_method="kenward-roger")
    b = mx.MixedLMExt.from_formula("reaction ~ days", data, groups="subject", re_formula="~days").fit(
        df_method="satterthwaite")
    assert abs(a.fe_df["days"] / ref["kenward_roger_df"]["days"] - 1) < 1e-3
    assert abs(a.bse_fe["days"] / ref["kenward_roger_se"]["days"] - 1) < 1e-4
    assert abs(b.fe_df["days"] / ref["satterthwaite_df"]["days"] - 1) < 1e-3
    # t_test uses the coefficient's df; a combination gets its own
    tt = a.t_test("days = 0")
    assert np.isclose(np.squeeze(tt.df_denom), a.fe_df["days"])
    assert np.isclose(float(np.squeeze(tt.pvalue)), a.pvalues["days"], rtol=1e-10)
    tt2 = a.t_test("_cons + 5 * days = 300")
    df2 = float(np.squeeze(tt2.df_denom))
    L = np.array([5.0, 1.0])
    se2 = np.sqrt(L @ a.cov_fe.values @ L)
    t2 = (L @ a.fe_params.values - 300) / se2
    assert np.isclose(float(np.squeeze(tt2.tvalue)), t2)
    assert np.isclose(float(np.squeeze(tt2.pvalue)), 2 * stats.t.sf(abs(t2), df2))
    assert 5 < df2 < 100
    # one-row Wald/F test = t test squared, same df
    ft = a.f_test("days = 0")
    assert np.isclose(float(np.squeeze(ft.fvalue)), a.tvalues["days"] ** 2)
    assert np.isclose(ft.df_denom, a.fe_df["days"])
    # CIs from t
    ci = np.asarray(a.conf_int())[:2]
    q = stats.t.ppf(0.975, a.fe_df.values)
    assert np.allclose(ci[:, 1], a.fe_params.values + q * a.bse_fe.values)
    # the model F test replaces the Wald chi2 in the header
    text = str(a.summary())
    assert "DF method: Kenward-Roger" in text and "F(1, 17.00)" in text and "P>|t|" in text
    assert "Wald chi2" not in text


def test_multi_row_tests(fits):
    res = fits[("productivity_3l_reml", "satterthwaite")]
    w = res.wald_test("private = 0, emp = 0")
    assert w.df_num == 2 and 100 < w.df_denom < 800
    b = res.fe_params.values
    L = np.zeros((2, 7))
    L[0, 0] = L[1, 1] = 1
    F = b @ L.T @ np.linalg.solve(L @ res.cov_fe.values @ L.T, L @ b) / 2
    assert np.isclose(float(np.squeeze(w.fvalue)), F)
    f = res.ftest_model
    assert f.df_num == 6 and f.pvalue < 1e-10
    kr = fits[("productivity_3l_reml", "kroger")]
    wk = kr.wald_test("private = 0, emp = 0")
    assert wk.df_num == 2 and 100 < wk.df_denom < 800


def test_satterthwaite_derivative_precision(fits):
    """The numerical dC/dphi equals the analytic -Phi P_m Phi of the Kenward-Roger pieces."""
    res = fits[("productivity_3l_reml", "satterthwaite")]
    ob = res.model.objective
    phi = np.asarray(res.params)[res.k_fe:]
    jac = vcov_jacobian(ob, phi, np.ones(phi.size, dtype=bool))
    Phi, _, P, _ = kenward_roger_pieces(ob, phi)
    for J, Pm in zip(jac, P):
        analytic = -Phi @ Pm @ Phi
        assert np.max(np.abs(J - analytic)) < 1e-6 * np.max(np.abs(analytic))


def test_simple_methods():
    pig = mx.load_dataset("pig")
    r = mx.mixed("mixed weight week || id:, reml dfmethod(residual)", pig)
    assert np.allclose(r.fe_df.values, 432 - 2)
    r = mx.mixed("mixed weight week || id:, dfmethod(repeated)", pig)  # ML allowed
    assert r.fe_df["_cons"] == 48 - 1 and r.fe_df["week"] == 432 - 48 - 1
    r = mx.mixed("mixed weight week || id: week, reml dfmethod(anova)", pig)
    assert np.allclose(r.fe_df.values, 47)
    r = mx.mixed("mixed strength || batch: || cask:, reml dfmethod(anova)", mx.load_dataset("pastes"))
    assert r.fe_df["_cons"] == 9
    assert normalize_df_method("Kenward-Roger") == "kroger" and normalize_df_method("sat") == "satterthwaite"


@pytest.mark.parametrize("command, message", [
    ("mixed weight week || id:, dfmethod(satterthwaite)", "only available with REML"),
    ("mixed weight week || id:, dfmethod(kroger)", "only available with REML"),
    ("mixed weight week || id:, dfmethod(residual) vce(robust)", "may not be combined"),
    ("mixed weight week || id:, reml vce(robust)", "not allowed with REML"),
    ("mixed gsp emp || region: || state:, reml dfmethod(repeated)", "two-level"),
])
def test_refusals(command, message):
    data = mx.load_dataset("productivity" if "gsp" in command else "pig")
    with pytest.raises(ValueError, match=message):
        mx.mixed(command, data)


def test_dfmethod_with_weights_refused():
    pig = mx.load_dataset("pig").assign(w=2.0)
    with pytest.raises(ValueError, match="not allowed with weights"):
        mx.mixed("mixed weight week [fw=w] || id:, dfmethod(residual)", pig)


def test_statsmodels_term_tests_use_the_small_sample_degrees_of_freedom():
    """wald_test_terms runs statsmodels' loop over terms through the fit's own wald_test."""
    res = mx.mixed("weight week || id: week, reml dfmethod(satterthwaite)", mx.load_dataset("pig"))
    table = res.wald_test_terms().summary_frame()
    df = res.fe_df
    for term in ("week", "_cons"):
        one = res.wald_test(term + " = 0", scalar=True)
        assert table.loc[term, "df denom"] == pytest.approx(df[term], rel=1e-10)
        assert table.loc[term, "F"] == pytest.approx(float(one.statistic), rel=1e-10)
        assert table.loc[term, "P>F"] == pytest.approx(float(one.pvalue), rel=1e-8)
