"""Every reference case without residual structure matches through ``mixed()``.

Tolerances (relative) from tests/reference/README.md: llf 1e-6, fixed effects
1e-5, fixed-effect SEs and variance components 1e-4, variance-component SEs
1e-3.  The same models through the lme4-style front-end give the same llf.
"""
from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import REFERENCE_CASE_IDS, load_reference

import mixedlm_ext as mx

NO_RESIDUAL = [c for c in REFERENCE_CASE_IDS if "residuals(" not in load_reference(c)["stata"]]


def _fit(case):
    data = mx.load_dataset(case["data"].replace(".csv", ""))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mx.mixed(case["stata"], data)


def _rel(a, b, floor=1e-12):
    return abs(a - b) / max(abs(b), floor)


def _vc_row(res, key):
    level, par = key.split(":", 1)
    vc = res.variance_components
    if (level, par) in vc.index:
        return vc.loc[(level, par)]
    # labels that follow Stata's printed form: match by position within level
    case_pars = [k.split(":", 1)[1] for k in _vc_row.case["re"] if k.split(":", 1)[0] == level]
    rows = vc.xs(level, level="level")
    return rows.iloc[case_pars.index(par)]


@pytest.fixture(scope="module")
def fits():
    return {}


@pytest.mark.parametrize("case_id", NO_RESIDUAL)
def test_reference_case(case_id, fits):
    case = load_reference(case_id)
    res = _fit(case)
    _vc_row.case = case
    assert res.converged
    assert res.nobs == case["n"]
    assert _rel(res.llf, case["llf"]) < 1e-6
    for k, v in case["fe"].items():
        assert abs(res.fe_params[k] - v) <= 1e-5 * max(abs(v), 1e-6), k
    for k, v in case["fe_se"].items():
        assert _rel(res.bse_fe[k], v) < 1e-4, k
    for k, v in case["re"].items():
        row = _vc_row(res, k)
        assert _rel(row["estimate"], v, 1e-8) < 1e-4, k
        assert _rel(row["std_err"], case["re_se"][k], 1e-10) < 1e-3, k
        lo, hi = case["re_ci"][k]
        assert _rel(row["ci_low"], lo, 1e-10) < 2e-3 and _rel(row["ci_high"], hi, 1e-10) < 2e-3, k
    if "wald_chi2" in case:
        assert _rel(res.wald_chi2.statistic, case["wald_chi2"]["statistic"]) < 1e-4
        assert res.wald_chi2.df == case["wald_chi2"]["df"]
    lr = case["lr_chi2"]
    assert _rel(res.llf_linear, lr["ll_linear"]) < 1e-9
    assert abs(res.lrtest_linear.statistic - lr["statistic"]) < 1e-4 * lr["statistic"]
    assert res.lrtest_linear.df == lr["df"] and res.lrtest_linear.kind == lr["kind"]


def _lmer_formula(case):
    m = re.search(r"lmer\((.*), d, REML=(TRUE|FALSE)\)", case.get("r_call") or "")
    return (m.group(1), m.group(2) == "TRUE") if m else None


LMER_CASES = [c for c in NO_RESIDUAL if _lmer_formula(load_reference(c))]


@pytest.mark.parametrize("case_id", LMER_CASES)
def test_lme4_front_end_same_llf(case_id):
    case = load_reference(case_id)
    formula, reml = _lmer_formula(case)
    data = mx.load_dataset(case["data"].replace(".csv", ""))
    res = mx.lmer(formula, data, reml=reml)
    assert _rel(res.llf, case["llf"]) < 1e-6


def test_statsmodels_front_end_matches_stata():
    pig = mx.load_dataset("pig")
    a = mx.MixedLMExt.from_formula("weight ~ week", pig, groups="id", re_formula="~week", reml=False).fit()
    b = mx.mixed("weight week || id: week, cov(un)", pig)
    assert abs(a.llf - b.llf) < 1e-6
    np.testing.assert_allclose(a.fe_params[["week", "_cons"]], b.fe_params[["week", "_cons"]], rtol=1e-6)


def test_statsmodels_vc_formula_nested():
    """statsmodels' vc_formula nested components equal Stata's nested levels."""
    pastes = mx.load_dataset("pastes")
    a = mx.MixedLMExt.from_formula("strength ~ 1", pastes, groups="batch", vc_formula={"cask": "0 + C(cask)"}).fit()
    case = load_reference("pastes_nested_reml")
    assert _rel(a.llf, case["llf"]) < 1e-6
