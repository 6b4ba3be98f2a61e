"""Frequency and sampling weights at every level.

* integer frequency weights give exactly the fit of the duplicated data (llf,
  estimates, SEs) on a nested three-level model and a random-slope model;
* the weighted pseudo-log-likelihood equals a brute-force nested quadrature of
  its definition (non-integer weights at all three levels);
* sampling weights all equal to 1 reproduce the unweighted estimates;
* each pwscale() method against its definition computed here;
* Stata's refusals.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import logsumexp

import mixedlm_ext as mx
from mixedlm_ext import ModelSpecificationError
from mixedlm_ext.design.weights import scale_level_one


def _fit(cmd, data, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mx.mixed(cmd, data, **kw)


def _duplicate(df, obs_w, levels):
    """Repeat rows ``obs_w`` times, then each group of ``levels`` (coarse to fine,
    ``(column, weight column)``) as many times as its weight, as new groups."""
    out = df.loc[df.index.repeat(df[obs_w])] if obs_w else df.copy()
    out = out.reset_index(drop=True)
    for col, wcol in levels:
        reps = out[wcol].astype(int).to_numpy()
        out = out.loc[out.index.repeat(reps)].copy()
        out["_k"] = out.groupby(level=0).cumcount()
        out[col] = out[col].astype(np.int64) * 1000 + out["_k"]
        out = out.reset_index(drop=True)
    return out.drop(columns="_k", errors="ignore")


def _assert_same_fit(a, b, se_rtol=1e-3):
    assert a.nobs == b.nobs
    assert abs(a.llf - b.llf) < 1e-7 * abs(b.llf)
    pa, pb = np.asarray(a.params), np.asarray(b.params)
    assert np.allclose(pa, pb, rtol=2e-5, atol=1e-7 * np.abs(pb).max())
    k = a.k_fe
    assert np.allclose(np.asarray(a.bse)[:k], np.asarray(b.bse)[:k], rtol=1e-4)
    assert np.allclose(np.asarray(a.bse)[k:], np.asarray(b.bse)[k:], rtol=se_rtol)
    assert abs(a.lrtest_linear.statistic - b.lrtest_linear.statistic) < 1e-5 * b.lrtest_linear.statistic


def test_fweights_equal_duplicated_data_nested():
    d = mx.load_dataset("productivity")
    rng = np.random.default_rng(7)
    d["f1"] = rng.integers(1, 3, len(d))
    d["f2"] = d.state.map(dict(zip(d.state.unique(), rng.integers(1, 3, d.state.nunique()))))
    d["f3"] = d.region.map(dict(zip(d.region.unique(), rng.integers(1, 3, d.region.nunique()))))
    cmd = "mixed gsp private emp hwy unemp %s|| region:%s || state:%s"
    a = _fit(cmd % ("[fw=f1] ", ", fweight(f3) ", ", fweight(f2)"), d)
    dup = _duplicate(d, "f1", [("region", "f3"), ("state", "f2")])
    b = _fit(cmd % ("", " ", ""), dup)
    assert a.nobs == len(dup) == int((d.f1 * d.f2 * d.f3).sum())
    _assert_same_fit(a, b)
    # statsmodels contract holds with weights
    assert np.isclose(a.model.loglike(a.params), a.llf, rtol=1e-12)


def test_fweights_equal_duplicated_data_random_slope():
    pig = mx.load_dataset("pig")
    rng = np.random.default_rng(3)
    pig["f1"] = rng.integers(1, 3, len(pig))
    pig["f2"] = pig.id.map(dict(zip(pig.id.unique(), rng.integers(1, 4, 48))))
    a = _fit("mixed weight week [fw=f1] || id: week, covariance(unstructured) fweight(f2)", pig)
    dup = _duplicate(pig, "f1", [("id", "f2")])
    b = _fit("mixed weight week || id: week, covariance(unstructured)", dup)
    _assert_same_fit(a, b, se_rtol=2e-3)
    assert "LR test vs. linear model" in str(a.summary())


# ---------------------------------------------------------------------------
def _gh(n=100):
    x, w = np.polynomial.hermite_e.hermegauss(n)  # weight exp(-x^2/2)
    return x, np.log(w / np.sqrt(2 * np.pi))


def _pseudo_loglik_3l(d, beta, v3, v2, s2, w1, w2, w3):
    """sum_k w_k log Int prod_j (Int prod_i f^{w_i|j} dphi(u_j))^{w_j|k} dphi(u_k), nested quadrature."""
    x, lw = _gh()
    r0 = d.y.to_numpy(float) - (beta[0] * d.x.to_numpy(float) + beta[1])
    total = 0.0
    for _, gk in d.groupby("region"):
        inner = np.zeros(x.size)  # log prod_j (...)^{w_j|k} at each node of u_k
        for _, gj in gk.groupby("state"):
            idx = gj.index.to_numpy()
            # residuals at the nodes (u_k node a, u_j node b)
            r = r0[idx][None, None, :] - np.sqrt(v3) * x[:, None, None] - np.sqrt(v2) * x[None, :, None]
            lf = (w1[idx] * (-0.5 * (np.log(2 * np.pi * s2) + r ** 2 / s2))).sum(axis=2)
            inner += w2[idx[0]] * logsumexp(lf + lw[None, :], axis=1)
        total += w3[gk.index[0]] * logsumexp(inner + lw)
    return total


def test_pseudo_likelihood_matches_quadrature():
    """Non-integer weights at all three levels: the engine's log pseudolikelihood
    is the nested integral of its definition (Gauss-Hermite quadrature)."""
    rng = np.random.default_rng(11)
    region = np.repeat(np.arange(6), 12)
    state = np.repeat(np.arange(24), 3)
    x = rng.normal(size=72)
    y = 1 + 0.5 * x + rng.normal(size=6)[region] + rng.normal(size=24)[state] + rng.normal(size=72)
    d = pd.DataFrame({"y": y, "x": x, "region": region, "state": state,
                      "w1": rng.uniform(0.5, 2.0, 72), "w2": rng.uniform(0.5, 3, 24)[state],
                      "w3": rng.uniform(1, 4, 6)[region]})
    res = _fit("mixed y x [pw=w1] || region:, pweight(w3) || state:, pweight(w2)", d)
    p = res.k_fe
    par = np.asarray(res.params)
    for scale in (1.0, 1.5):  # at the estimates and away from them
        q = par.copy()
        q[p:] *= scale
        q[:p] += 0.1 * (scale - 1)
        brute = _pseudo_loglik_3l(d, q[:p], q[p], q[p + 1], q[p + 2],
                                  d.w1.to_numpy(), d.w2.to_numpy(), d.w3.to_numpy())
        assert np.isclose(res.model.loglike(q), brute, rtol=1e-9)
    assert np.isclose(res.llf, res.model.loglike(par), rtol=1e-12)
    text = str(res.summary())
    assert "Log pseudolikelihood" in text and "(Std. err. adjusted for 6 clusters in region)" in text
    assert "LR test" not in text


def test_pweights_of_one_reproduce_unweighted():
    pig = mx.load_dataset("pig").assign(one=1.0)
    a = _fit("mixed weight week [pw=one] || id: week, covariance(unstructured) pweight(one)", pig)
    b = _fit("mixed weight week || id: week, covariance(unstructured)", pig)
    assert np.allclose(np.asarray(a.params), np.asarray(b.params), rtol=1e-5)
    assert np.isclose(a.llf, b.llf, rtol=1e-12)
    assert a.vce == "robust" and b.vce == "oim"  # pweights imply robust SEs
    c = _fit("mixed weight week || id: week, covariance(unstructured) vce(robust)", pig)
    assert np.allclose(np.asarray(a.bse), np.asarray(c.bse), rtol=1e-4)


@pytest.fixture(scope="module")
def survey_pig():
    pig = mx.load_dataset("pig")
    rng = np.random.default_rng(5)
    pig["w1"] = rng.uniform(0.5, 3.0, len(pig))
    pig["w2"] = pig.id.map(dict(zip(pig.id.unique(), rng.uniform(1, 5, 48))))
    return pig


@pytest.mark.parametrize("method", ["size", "effective", "gk"])
def test_pwscale_against_definition(survey_pig, method):
    pig = survey_pig.copy()
    g = pig.groupby("id")
    n_j = g.w1.transform("size")
    s1 = g.w1.transform("sum")
    s2 = g.w1.transform(lambda w: (w ** 2).sum())
    if method == "size":
        pig["v1"], pig["v2"] = pig.w1 * n_j / s1, pig.w2
    elif method == "effective":
        pig["v1"], pig["v2"] = pig.w1 * s1 / s2, pig.w2
    else:  # Graubard-Korn: level-two weight = group mean of w_i|j * w_j, level-one weights 1
        mean_prod = (pig.w1 * pig.w2).groupby(pig.id).mean()
        pig["v1"], pig["v2"] = 1.0, mean_prod.reindex(pig.id).to_numpy()
    a = _fit("mixed weight week [pw=w1] || id: week, pweight(w2) pwscale(%s)" % method, pig)
    b = _fit("mixed weight week [pw=v1] || id: week, pweight(v2)", pig)
    # two separate optimisations of the same objective agree to the optimiser's
    # precision (a wrong scaling moves the estimates by far more than 1e-5)
    assert np.isclose(a.llf, b.llf, rtol=1e-12)
    assert np.allclose(np.asarray(a.params), np.asarray(b.params), rtol=1e-5)
    assert np.allclose(np.asarray(a.bse), np.asarray(b.bse), rtol=1e-4)
    # the helper itself
    codes = pd.factorize(pig.id, sort=True)[0]
    gw = pig.groupby("id").w2.first().to_numpy()
    w1s, w2s = scale_level_one(pig.w1.to_numpy(), codes, method, gw)
    assert np.allclose(w1s, pig.v1.to_numpy())
    assert np.allclose(w2s[codes], pig.v2.to_numpy())


@pytest.mark.parametrize("command, message", [
    ("mixed weight week [pw=w1] || id:, reml", "not allowed with REML"),
    ("mixed weight week [fw=f1] || id:, pweight(w2)", "cannot be combined"),
    ("mixed weight week || id:, pweight(w1)", "varies within group"),
    ("mixed weight week [pw=w1] || id:, residuals(ar 1, t(week))",
     "observation-level weights are not allowed"),
    ("mixed weight week [fw=w1] || id:", "must be integers"),
    ("mixed weight week [fw=f1] || id:, pwscale(size)", "only allowed with sampling weights"),
    ("mixed weight week [pw=neg] || id:", "must be positive"),
    ("mixed weight week || id:, pwscale(gk)", "requires sampling weights"),
])
def test_refusals(survey_pig, command, message):
    pig = survey_pig.assign(f1=1, neg=-1.0)
    with pytest.raises(ModelSpecificationError, match=message):
        mx.mixed(command, pig)


def test_pwscale_three_levels_refused():
    d = mx.load_dataset("productivity").assign(w=1.0)
    with pytest.raises(ModelSpecificationError, match="two-level"):
        mx.mixed("mixed gsp emp [pw=w] || region: || state:, pwscale(size)", d)


def test_vce_oim_with_pweights_refused(survey_pig):
    with pytest.raises(ValueError, match="vce\\(oim\\) is not allowed with sampling weights"):
        mx.mixed("mixed weight week [pw=w1] || id:, vce(oim)", survey_pig)
