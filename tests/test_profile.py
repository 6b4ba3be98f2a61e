"""Profile-likelihood intervals against lme4's confint(method="profile") and a dense REML profile."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.optimize as so
from scipy import stats

import mixedlm_ext as mx

PEERS = Path(__file__).parent / "reference" / "peers"
REF = json.loads((PEERS / "profile_ci_lme4.json").read_text())["models"]
DATA = {"pig": "pig", "sleep": "sleepstudy", "pen": "penicillin"}
RTOL = 2e-3  # the tolerance (observed agreement: ~1e-5)


def lme4_name(name: str) -> str:
    """lme4's parameter name -> this package's (SD metric)."""
    if name == "sigma":
        return "Residual:sd(Residual)"
    if name == "(Intercept)":
        return "_cons"
    if not name.startswith(("sd_", "cor_")):
        return name  # a fixed effect
    fix = lambda t: "_cons" if t == "(Intercept)" else t  # noqa: E731
    kind, rest = name.split("_", 1)
    terms, group = rest.rsplit("|", 1)
    if kind == "sd":
        return "%s:sd(%s)" % (group, fix(terms))
    a, b = terms.split(".", 1) if not terms.startswith("(") else ("(Intercept)", terms.split(".", 1)[1])
    return "%s:corr(%s,%s)" % (group, fix(a), fix(b))


def fit_of(entry):
    formula, rest = entry["r_call"][len("lmer("):].rsplit(", data=", 1)
    data = mx.load_dataset(DATA[rest.split(",")[0]])
    return mx.lmer(formula, data, REML="REML=TRUE" in rest)


@pytest.fixture(scope="module", params=sorted(REF))
def case(request):
    entry = REF[request.param]
    res = fit_of(entry)
    return request.param, entry, res


def test_profile_intervals_match_lme4(case):
    name, entry, res = case
    for level in ("95", "99"):
        # lme4 profiles REML fits on the ML deviance (it refits by ML first): ml=True
        ci = res.profile_conf_int(alpha=1 - int(level) / 100, stddeviations=True, ml=res.reml)
        for pname, lim in entry["profile_" + level].items():
            ours = ci.loc[lme4_name(pname)]
            np.testing.assert_allclose([ours["lower"], ours["upper"]], [lim["lower"], lim["upper"]], rtol=RTOL,
                                       err_msg="%s %s %s" % (name, level, pname))
        # variances: the same profile, squared
        var = res.conf_int(alpha=1 - int(level) / 100, method="profile", stddeviations=False)
        for lab, lim in entry["variance_profile_" + level].items():
            lab = lab.replace("_all:var(R.", "").rstrip(")") + ":var(_cons)" if lab.startswith("_all") else lab
            if res.reml:
                continue  # REML default: the restricted profile (tested below)
            np.testing.assert_allclose(var.loc[lab, [0, 1]].to_numpy(float), [lim["lower"], lim["upper"]],
                                       rtol=RTOL, err_msg=lab)


def test_wald_intervals_unchanged(case):
    name, entry, res = case
    ci = res.conf_int()
    assert list(ci.index) == list(res.params.index)
    for pname, lim in entry["wald_95"].items():
        if lim["lower"] is None:
            continue
        np.testing.assert_allclose(ci.loc[lme4_name(pname)].to_numpy(), [lim["lower"], lim["upper"]], rtol=1e-5)
    # and they are the normal intervals of params +- z * bse (fixed effects)
    z = stats.norm.ppf(0.975)
    k = res.k_fe
    np.testing.assert_allclose(ci.to_numpy()[:k, 0], res.params.to_numpy()[:k] - z * res.bse.to_numpy()[:k])


def dense_reml_profile_zeta(data, c: float, sd_hat: float) -> float:
    """zeta of sd(id) = c for ``weight ~ week + (1|id)`` from the restricted likelihood
    of the marginal model, V = blockdiag(s2u J + s2e I) by pig (balanced: 9 weeks each)."""
    data = data.sort_values(["id", "week"])
    y = data["weight"].to_numpy(float).reshape(-1, 9)  # (48 pigs, 9 weeks)
    X = np.stack([np.ones_like(y), data["week"].to_numpy(float).reshape(-1, 9)], axis=2)  # (48, 9, 2)
    n, p = y.size, 2

    def neg2(s2u, s2e):
        Vi = np.linalg.inv(s2u * np.ones((9, 9)) + s2e * np.eye(9))
        logdet = y.shape[0] * np.linalg.slogdet(s2u * np.ones((9, 9)) + s2e * np.eye(9))[1]
        A = np.einsum("gia,ij,gjb->ab", X, Vi, X)
        b = np.linalg.solve(A, np.einsum("gia,ij,gj->a", X, Vi, y))
        r = y - X @ b
        return logdet + np.linalg.slogdet(A)[1] + np.einsum("gi,ij,gj->", r, Vi, r) + (n - p) * np.log(2 * np.pi)

    def prof(sd):
        return so.minimize_scalar(lambda t: neg2(sd ** 2, np.exp(t)), bounds=(-3, 5), method="bounded",
                                  options=dict(xatol=1e-10)).fun

    d0 = so.minimize_scalar(prof, bounds=(0.5 * sd_hat, 1.5 * sd_hat), method="bounded",
                            options=dict(xatol=1e-9)).fun
    return float(np.sign(c - sd_hat) * np.sqrt(max(prof(c) - d0, 0.0)))


def test_reml_profile_of_variance_is_the_restricted_likelihood():
    pig = mx.load_dataset("pig")
    res = mx.mixed("mixed weight week || id:, reml", pig)
    ci = res.profile_conf_int(stddeviations=True)
    row = ci.loc["id:sd(_cons)"]
    assert row["criterion"] == "REML"
    sd_hat = float(np.sqrt(res.params["id:var(_cons)"]))
    for end, target in ((row["lower"], -1.959964), (row["upper"], 1.959964)):
        assert dense_reml_profile_zeta(pig, end, sd_hat) == pytest.approx(target, abs=2e-4)
    # the fixed effects are profiled on the ML deviance, the same as after an ML fit
    ml = mx.mixed("mixed weight week || id:", pig).profile_conf_int()
    np.testing.assert_allclose(ci.loc[["week", "_cons"], ["lower", "upper"]].to_numpy(float),
                               ml.loc[["week", "_cons"], ["lower", "upper"]].to_numpy(float), rtol=1e-7)
    assert (ci.loc[["week", "_cons"], "criterion"] == "ML").all()


def test_variance_at_zero_interval_is_labelled_boundary():
    mix1 = pd.read_csv(PEERS / "data" / "mix1.csv")
    with pytest.warns(mx.BoundaryWarning):
        res = mx.lmer("resp ~ var1 + var2 + (1|var3)", mix1, REML=False)
    ci = res.conf_int(method="profile", stddeviations=True)
    assert ci.loc["var3:sd(_cons)", 0] == 0.0 and ci.loc["var3:sd(_cons)", "boundary"] == "lower"
    assert ci.loc["var3:sd(_cons)", 1] > 0.05
    assert (ci.drop("var3:sd(_cons)")["boundary"] == "").all()


def test_profile_traces_cross_at_the_interval_ends():
    res = mx.lmer("reaction ~ days + (days|subject)", mx.load_dataset("sleepstudy"), REML=False)
    traces = res.profile(stddeviations=True)
    ci = res.profile_conf_int(alpha=0.01, stddeviations=True)
    assert set(traces) == set(ci.index)
    for name, tr in traces.items():
        assert list(tr.columns[:2]) == ["zeta", name]
        assert np.all(np.diff(tr["zeta"]) > 0), name  # zeta increases with the parameter
        z = stats.norm.ppf(0.995)
        # the trace runs to |zeta| = z(0.995): its ends are the 99% interval
        np.testing.assert_allclose([tr[name].iloc[0], tr[name].iloc[-1]], ci.loc[name, ["lower", "upper"]].to_numpy(float),
                                   rtol=1e-6)
        np.testing.assert_allclose([tr["zeta"].iloc[0], tr["zeta"].iloc[-1]], [-z, z], atol=1e-5)


def test_equivalent_parameterisations_give_the_same_profile_intervals():
    """AR(1) and exponential residuals are one model on equally spaced weeks (phi1 = rho),
    here with var(id) at 0: the profiles must leave the boundary start (the deviance is
    flat in theta there) and agree."""
    pig = mx.load_dataset("pig")
    with pytest.warns(mx.BoundaryWarning):
        ar = mx.mixed("mixed weight week || id:, residuals(ar 1, t(week))", pig)
        ex = mx.mixed("mixed weight week || id:, residuals(exponential, t(week))", pig)
    a = ar.profile_conf_int(stddeviations=True)
    e = ex.profile_conf_int(stddeviations=True)
    np.testing.assert_allclose(a[["lower", "upper"]].to_numpy(float), e[["lower", "upper"]].to_numpy(float),
                               rtol=1e-4, atol=1e-8)
    assert a.loc["id:sd(_cons)", "boundary"] == e.loc["id:sd(_cons)", "boundary"] == "lower"


def test_profile_at_zero_is_the_model_without_that_effect():
    """With independent effects, sd(_cons) = 0 is the model without the random intercept:
    the profile there (the interval's lower end, labelled) is that model's deviance."""
    pig = mx.load_dataset("pig")
    full = mx.mixed("mixed weight week || id: week, residuals(ar 1, t(week))", pig)
    without = mx.mixed("mixed weight week || id: week, noconstant residuals(ar 1, t(week))", pig)
    ci = full.profile_conf_int(stddeviations=True)
    assert ci.loc["id:sd(_cons)", "lower"] == 0.0 and ci.loc["id:sd(_cons)", "boundary"] == "lower"
    prof = full.profile_result(stddeviations=True).profiles["id:sd(_cons)"]
    assert prof.zeta(1e-8) ** 2 == pytest.approx(2 * (full.llf - without.llf), rel=1e-4, abs=1e-6)
