"""anova() in lme4's style and the parametric-bootstrap LR test."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mixedlm_ext as mx
from mixedlm_ext.inference.comparison import REFIT_NOTE, bootstrap_lrtest

PEERS = Path(__file__).parent / "reference" / "peers"
PROFILE = json.loads((PEERS / "profile_ci_lme4.json").read_text())["models"]


@pytest.fixture(scope="module")
def sleep():
    return mx.load_dataset("sleepstudy")


def test_anova_table_against_lme4_loglik(sleep):
    ind = mx.lmer("reaction ~ days + (days||subject)", sleep, REML=False)
    un = mx.lmer("reaction ~ days + (days|subject)", sleep, REML=False)
    ri = mx.lmer("reaction ~ days + (1|subject)", sleep, REML=False)
    tab = mx.anova(un, ri, ind, names=["un", "ri", "ind"])
    assert list(tab.index) == ["ri", "ind", "un"]  # sorted by size
    assert list(tab.columns) == ["npar", "AIC", "BIC", "llf", "deviance", "chi2", "df", "pvalue"]
    for name, key in (("ind", "sleepstudy_ind_ml"), ("un", "sleepstudy_un_ml")):
        assert tab.loc[name, "llf"] == pytest.approx(PROFILE[key]["fit"]["llf"], abs=1e-6)
    chi2 = 2 * (PROFILE["sleepstudy_un_ml"]["fit"]["llf"] - PROFILE["sleepstudy_ind_ml"]["fit"]["llf"])
    assert tab.loc["un", "chi2"] == pytest.approx(chi2, abs=1e-5)
    assert tab.loc["un", "pvalue"] == pytest.approx(stats.chi2.sf(chi2, 1), rel=1e-4)
    for name, r in (("ri", ri), ("ind", ind), ("un", un)):
        assert tab.loc[name, "AIC"] == pytest.approx(r.aic) and tab.loc[name, "BIC"] == pytest.approx(r.bic)
        assert tab.loc[name, "deviance"] == pytest.approx(-2 * r.llf)
    assert np.isnan(tab.loc["ri", "chi2"]) and tab.attrs["note"] == ""


def test_anova_refits_reml_with_different_fixed_effects_lrtest_refuses(sleep):
    r1 = mx.lmer("reaction ~ days + (1|subject)", sleep)
    r0 = mx.lmer("reaction ~ 1 + (1|subject)", sleep)
    with pytest.warns(UserWarning, match="refitting"):
        tab = mx.anova(r1, r0)
    assert tab.attrs["note"] == REFIT_NOTE
    ml1 = mx.lmer("reaction ~ days + (1|subject)", sleep, REML=False)
    assert tab.loc["model1", "llf"] == pytest.approx(ml1.llf, abs=1e-8)
    with pytest.raises(ValueError, match="REML fits with different fixed effects"):
        mx.lrtest(r1, r0)
    # same fixed effects, all REML: compared on the restricted likelihood, no refit
    ind = mx.lmer("reaction ~ days + (days||subject)", sleep)
    tab = mx.anova(ind, r1)
    assert tab.loc["model1", "llf"] == pytest.approx(ind.llf) and "REML" in tab.attrs["note"]
    with pytest.raises(ValueError, match="two or more"):
        mx.anova(r1)


def test_bootstrap_lrtest(sleep):
    ri = mx.lmer("reaction ~ days + (1|subject)", sleep, REML=False)
    ind = mx.lmer("reaction ~ days + (days||subject)", sleep, REML=False)
    chi = mx.lrtest(ind, ri)
    boot = mx.lrtest(ind, ri, method="bootstrap", n_boot=99, seed=4, progress=False)
    assert boot.statistic == chi.statistic and boot.kind == "bootstrap"
    p, lr = bootstrap_lrtest(ind, ri, chi.statistic, n_boot=99, seed=4)
    assert boot.pvalue == p == (1 + np.sum(lr >= chi.statistic)) / (1 + lr.size)
    assert boot.pvalue == pytest.approx(1 / 100)  # LR = 42: never reached under the null
    # under the null the replicate statistics are mostly near 0 (the boundary: about half exactly 0)
    assert np.mean(lr < 1e-6) > 0.25 and np.quantile(lr, 0.95) < stats.chi2.ppf(0.99, 1)


def test_bootstrap_lrtest_near_chibar2_when_null_holds():
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(40), 8)
    x = rng.normal(size=g.size)
    y = 1 + 0.5 * x + rng.normal(size=40)[g] + rng.normal(size=g.size)  # no random slope
    df = pd.DataFrame({"y": y, "x": x, "g": g})
    small = mx.mixed("mixed y x || g:", df)
    big = mx.mixed("mixed y x || g: x", df)
    chi = mx.lrtest(big, small)
    boot = mx.lrtest(big, small, method="bootstrap", n_boot=300, seed=5, progress=False)
    chibar = 0.5 * stats.chi2.sf(chi.statistic, 1) if chi.statistic > 0 else 1.0
    assert abs(boot.pvalue - chibar) < 0.1
    with pytest.raises(ValueError, match="method"):
        mx.lrtest(big, small, method="wald")


def test_new_entry_points_name_the_keyword_meant():
    res = mx.mixed("mixed weight week || id:", mx.load_dataset("pig"))
    calls = {"n_boot": lambda: res.bootstrap(n_boots=3), "dydx": lambda: res.margins(dydz="week"),
             "method": lambda: mx.lrtest(res, res, metod="bootstrap"),
             "random_effects": lambda: res.get_prediction(random_effect=True),
             "stddeviations": lambda: res.conf_int(method="profile", stddeviation=True),
             "names": lambda: mx.anova(res, res, name=["a", "b"]), "conditional": lambda: res.simulate(conditionl=True),
             "alphamax": lambda: res.profile(alpha_max=0.1)}
    for meant, call in calls.items():
        with pytest.raises(TypeError, match="did you mean '%s'" % meant):
            call()
