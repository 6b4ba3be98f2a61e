"""lme4's language: the random-term grammar, offset(), predict(re_form=), update(), and the lme4
views of a fit (summary(style="lme4"), ranef(), fixef(), VarCorr()) against stored lme4 values."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedlm_ext as mx

REF = Path(__file__).parent / "reference"
TRUST = json.loads((REF / "peers" / "trust_lme4.json").read_text())["standard"]
BLUPS = json.loads((REF / "blups_lme4.json").read_text())
SPELL = json.loads((REF / "peers" / "statsmodels_spellings.json").read_text())["lme4"]


@pytest.fixture(scope="module")
def sleep():
    return mx.load_dataset("sleepstudy")


@pytest.fixture(scope="module")
def sleep_reml(sleep):
    return mx.lmer("reaction ~ days + (days | subject)", sleep)


def _nested3(seed=3):
    rng = np.random.default_rng(seed)
    rows = []
    for a in range(4):
        ua = rng.normal()
        for b in range(3):
            ub = rng.normal(scale=0.7)
            for c in range(3):
                uc = rng.normal(scale=0.5)
                for _ in range(4):
                    x = rng.normal()
                    rows.append((a, b, c, x, 1 + 0.5 * x + ua + ub + uc + rng.normal(scale=0.6)))
    return pd.DataFrame(rows, columns=["a", "b", "c", "x", "y"])


# -- the random-term grammar -------------------------------------------------------------
def test_nested_slash_and_colon_match_lme4():
    """(1 | batch/cask) and (1 | batch) + (1 | batch:cask) are lme4's pastes model."""
    pastes = mx.load_dataset("pastes")
    ref = SPELL["pastes_vc_reml"]["tight"]
    for f in ("strength ~ 1 + (1 | batch/cask)", "strength ~ 1 + (1 | batch) + (1 | batch:cask)"):
        res = mx.lmer(f, pastes)
        assert abs(res.llf - ref["llf"]) < 1e-6
        vc = res.VarCorr().frame.set_index("grp")["vcov"]
        assert np.isclose(vc["batch"], ref["re"]["batch:var(_cons)"], rtol=1e-4)
        assert np.isclose(vc.iloc[0], ref["re"]["cask:var(_cons)"], rtol=1e-4)
    assert list(mx.lmer("strength ~ 1 + (1 | batch/cask)", pastes).ranef()) == ["cask:batch", "batch"]
    assert list(mx.lmer("strength ~ 1 + (1 | batch:cask)", pastes).ranef()) == ["batch:cask"]


def test_three_level_slash_is_stata_nesting():
    df = _nested3()
    a = mx.lmer("y ~ x + (1 | a/b/c)", df, REML=False)
    b = mx.mixed("mixed y x || a: || b: || c:", df)
    assert abs(a.llf - b.llf) < 1e-8
    np.testing.assert_allclose(a.params.to_numpy(), b.params.to_numpy(), rtol=1e-6)
    assert list(a.ranef()) == ["c:b:a", "b:a", "a"]


@pytest.mark.parametrize("formula,same", [
    ("reaction ~ days + (days || subject)", "reaction ~ days + (1 | subject) + (0 + days | subject)"),
    ("reaction ~ days + (0 + days | subject)", "reaction ~ days + (days - 1 | subject)"),
])
def test_double_bar_and_no_intercept(sleep, formula, same):
    a, b = mx.lmer(formula, sleep), mx.lmer(same, sleep)
    assert abs(a.llf - b.llf) < 1e-8
    assert sorted(a.params.index) == sorted(b.params.index)
    np.testing.assert_allclose(a.params.to_numpy(), b.params[a.params.index].to_numpy(), rtol=1e-5)


def test_double_bar_is_stata_independent(sleep):
    a = mx.lmer("reaction ~ days + (days || subject)", sleep, REML=False)
    b = mx.mixed("mixed reaction days || subject: days", sleep)
    assert abs(a.llf - b.llf) < 1e-8
    assert list(a.VarCorr()) == ["subject", "subject.1"]  # lme4 names the split groups so


def test_crossed_plus_slope_matches_lme4():
    """(1 | plate) + (1 | sample): lme4's penicillin fit."""
    pen = mx.load_dataset("penicillin")
    for method, ref in (("ml", TRUST["penicillin_crossed_ml"]), ("reml", TRUST["penicillin_crossed_reml"])):
        res = mx.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", pen, REML=method == "reml")
        assert abs(res.llf - ref["tight"]["llf"]) < 1e-6
    df = _nested3()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = mx.lmer("y ~ x + (1 + x | a) + (1 | c)", df)  # c crosses a
    assert set(res.ranef()) == {"a", "c"} and list(res.ranef()["a"].columns) == ["(Intercept)", "x"]


def test_offset(sleep):
    a = mx.lmer("reaction ~ days + offset(10 * days) + (days | subject)", sleep)
    b = mx.lmer("r2 ~ days + (days | subject)", sleep.assign(r2=sleep.reaction - 10 * sleep.days))
    assert abs(a.llf - b.llf) < 1e-9
    np.testing.assert_allclose(a.fe_params["days"], b.fe_params["days"] + 0.0, rtol=1e-8)
    new = sleep.head(6)
    np.testing.assert_allclose(a.predict(new).to_numpy(), b.predict(new).to_numpy() + 10 * new.days, rtol=1e-10)
    np.testing.assert_allclose(a.predict(new, kind="xb").to_numpy(),
                               b.predict(new, kind="xb").to_numpy() + 10 * new.days, rtol=1e-10)
    np.testing.assert_allclose(a.resid.to_numpy(), b.resid.to_numpy(), atol=1e-8)
    two = mx.lmer("reaction ~ days + offset(5 * days) + offset(np.log(days + 1)) + (1 | subject)", sleep)
    c = mx.lmer("r3 ~ days + (1 | subject)", sleep.assign(r3=sleep.reaction - 5 * sleep.days - np.log(sleep.days + 1)))
    assert abs(two.llf - c.llf) < 1e-9


# -- predict(re_form=) and update() --------------------------------------------------------
def test_predict_re_form(sleep, sleep_reml):
    res = sleep_reml
    new = sleep.head(10)
    full = res.predict(new)
    np.testing.assert_allclose(full.to_numpy(), BLUPS["sleepstudy_un_reml"]["fitted_first10"], rtol=1e-5)
    assert np.allclose(res.predict(new, re_form=None), full)
    xb = res.predict(new, kind="xb")
    for na in (np.nan, pd.NA, "NA", "~0", 0):
        np.testing.assert_allclose(res.predict(newdata=new, re_form=na).to_numpy(), xb.to_numpy())
    np.testing.assert_allclose(res.predict(new, re_form="~(days | subject)").to_numpy(), full.to_numpy())
    with pytest.raises(ValueError, match="not a random-effects term of the model"):
        res.predict(new, re_form="~(1 | subject)")
    two = mx.lmer("reaction ~ days + (1 | subject) + (0 + days | subject)", sleep)
    u = two.ranef()["subject"].loc[new.subject]
    only = two.predict(new, re_form="~(1 | subject)").to_numpy()
    np.testing.assert_allclose(only, two.predict(new, kind="xb").to_numpy() + u["(Intercept)"].to_numpy())


def test_update(sleep, sleep_reml):
    smaller = mx.update(sleep_reml, ". ~ . - (days | subject) + (1 | subject)")
    direct = mx.lmer("reaction ~ days + (1 | subject)", sleep)
    assert smaller.model.formula == "reaction ~ days + (1 | subject)"
    assert abs(smaller.llf - direct.llf) < 1e-9
    ml = mx.update(sleep_reml, REML=False)
    assert not ml.reml and abs(ml.llf - TRUST["sleepstudy_un_ml"]["tight"]["llf"]) < 1e-6
    logged = mx.update(sleep_reml, "lr ~ .", data=sleep.assign(lr=np.log(sleep.reaction)))
    assert logged.model.formula == "lr ~ days + (days | subject)"
    stata = mx.mixed("mixed reaction days || subject:", sleep)
    slope = mx.update(stata, "mixed reaction days || subject: days")
    assert slope.model.formula == "mixed reaction days || subject: days" and slope.llf > stata.llf
    with pytest.raises(mx.FormulaSyntaxError, match="not in"):
        mx.update(sleep_reml, ". ~ . - x")


# -- lme4's views of a fit -----------------------------------------------------------------
def test_fixef_ranef_varcorr(sleep_reml):
    fe = sleep_reml.fixef()
    assert list(fe.index) == ["(Intercept)", "days"]
    re = sleep_reml.ranef()["subject"]
    blup = BLUPS["sleepstudy_un_reml"]["blups"]["subject"]
    assert list(re.columns) == ["(Intercept)", "days"]
    assert [str(g) for g in re.index] == blup["groups"]
    for col in re.columns:
        np.testing.assert_allclose(re[col].to_numpy(), blup["blup"][col], rtol=1e-4, atol=1e-4)
    vc = sleep_reml.VarCorr()
    m = vc["subject"]
    assert list(m.columns) == ["(Intercept)", "days"]
    refvc = TRUST["sleepstudy_un_reml"]["varcorr"]
    assert np.isclose(m.loc["(Intercept)", "(Intercept)"], refvc["vcov"][0], rtol=1e-4)
    assert np.isclose(m.loc["(Intercept)", "days"], refvc["vcov"][1], rtol=1e-3)
    assert np.isclose(vc.sigma, refvc["sdcor"][3], rtol=1e-5)
    frame = vc.frame
    assert list(frame.columns) == ["grp", "var1", "var2", "vcov", "sdcor"]
    corr = frame[(frame.var1 == "(Intercept)") & (frame.var2 == "days")].sdcor.iloc[0]
    assert np.isclose(corr, refvc["sdcor"][1], rtol=1e-3)
    text = str(vc).splitlines()
    assert text[0].split() == ["Groups", "Name", "Std.Dev.", "Corr"]
    assert text[2].split() == ["days", "%.3f" % np.sqrt(m.loc["days", "days"]), "%.2f" % corr]


def test_lme4_summary_layout(sleep_reml):
    s = sleep_reml.summary(style="lme4")
    text = s.as_text().splitlines()
    assert text[0] == "Linear mixed model fit by REML ['lmerMod']"
    assert text[1] == "Formula: reaction ~ days + (days | subject)"
    assert text[3] == "REML criterion at convergence: %.1f" % (-2 * sleep_reml.llf)
    assert text[5] == "Scaled residuals: " and text[6].split() == ["Min", "1Q", "Median", "3Q", "Max"]
    q = np.quantile(sleep_reml.resid / np.sqrt(sleep_reml.sigma2), [0, 0.25, 0.5, 0.75, 1])
    assert [float(v) for v in text[7].split()] == [round(v, 4) for v in q]
    i = text.index("Random effects:")
    assert text[i + 1].split() == ["Groups", "Name", "Variance", "Std.Dev.", "Corr"]
    assert text[i + 2].split()[:2] == ["subject", "(Intercept)"]
    assert "Number of obs: 180, groups:  subject, 18" in text
    j = text.index("Fixed effects:")
    assert text[j + 1].split() == ["Estimate", "Std.", "Error", "t", "value"]
    assert text[j + 2].split() == ["(Intercept)", "251.405", "6.825", "36.838"]  # lme4 prints these
    assert text[j + 3].split() == ["days", "10.467", "1.546", "6.771"]
    k = text.index("Correlation of Fixed Effects:")
    assert text[k + 1].split() == ["(Intr)"] and text[k + 2].split() == ["days", "-0.138"]
    assert [t.title for t in s.tables] == ["Random effects", "Fixed effects", "Correlation of Fixed Effects"]
    assert "251.405" in s.as_latex() and "<table" in s.as_html()


def test_lme4_summary_ml_header(sleep):
    res = mx.lmer("reaction ~ days + (days | subject)", sleep, REML=False)
    text = res.summary(style="lme4").as_text().splitlines()
    assert text[0].startswith("Linear mixed model fit by maximum likelihood")
    assert text[3].split() == ["AIC", "BIC", "logLik", "deviance", "df.resid"]
    assert text[4].split() == ["%.1f" % res.aic, "%.1f" % res.bic, "%.1f" % res.llf, "%.1f" % (-2 * res.llf), "174"]
    with pytest.raises(TypeError, match="baselevels"):
        res.summary(style="lme4", baselevels=True)
    with pytest.raises(ValueError, match="style"):
        res.summary(style="sas")


def test_lme4_views_of_a_stata_fit():
    """A Stata-syntax fit has lme4's views too (the command is the formula line)."""
    pig = mx.load_dataset("pig")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = mx.mixed("mixed weight week || id: week, cov(un)", pig)
    assert res.summary(style="lme4").as_text().splitlines()[1] == "Formula: mixed weight week || id: week, cov(un)"
    assert list(res.VarCorr()["id"].columns) == ["(Intercept)", "week"]


def test_stata_factor_blocks_in_lme4_names():
    """|| _all: R.plate || sample: is lme4's (1 | plate) + (1 | sample): the same VarCorr and ranef."""
    pen = mx.load_dataset("penicillin")
    a = mx.mixed("mixed diameter || _all: R.plate || sample:", pen)
    b = mx.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", pen, REML=False)
    assert str(a.VarCorr()) == str(b.VarCorr())
    assert list(a.ranef()) == list(b.ranef()) == ["plate", "sample"]
    np.testing.assert_allclose(a.ranef()["plate"].to_numpy(), b.ranef()["plate"].to_numpy(), atol=1e-6)
