"""Postestimation: BLUPs and their variances, predict, estat, against lme4 and dense algebra."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedlm_ext as mx
from mixedlm_ext.core.linalg import block_diag, grouped_crossprod
from mixedlm_ext.structures.residual.structure import RESIDUAL_TYPES, ResidualStructure
from mixedlm_ext.spec.model import ResidualSpec

from conftest import load_reference

# Stata commands equivalent to the lme4 calls in blups_lme4.json
BLUP_MODELS = {
    "pig_ri_ml": ("pig", "mixed weight week || id:"),
    "pig_rs_un_ml": ("pig", "mixed weight week || id: week, covariance(unstructured)"),
    "productivity_3l_ml": ("productivity",
                           "mixed gsp private emp hwy water other unemp || region: || state:"),
    "sleepstudy_un_reml": ("sleepstudy",
                           "mixed reaction days || subject: days, covariance(unstructured) reml"),
}

_FITS: dict = {}


def fit(data_name: str, cmd: str):
    key = (data_name, cmd)
    if key not in _FITS:
        _FITS[key] = mx.mixed(cmd, mx.load_dataset(data_name))
    return _FITS[key]


@pytest.fixture(scope="module")
def prod():
    return fit(*BLUP_MODELS["productivity_3l_ml"])


@pytest.fixture(scope="module")
def pig_un():
    return fit(*BLUP_MODELS["pig_rs_un_ml"])


def _label(g) -> str:
    return ":".join(str(v) for v in g) if isinstance(g, tuple) else str(g)


# ---------------------------------------------------------------------------
# dense reference algebra: expand the design's compact Z to one column per group
# ---------------------------------------------------------------------------
def dense_parts(res):
    """``(Z, G, info)`` with Z (n, sum_g q) and G block diagonal, finest level first."""
    r = res._results
    d = r.model.design
    ob = r.model.objective
    Lam = ob.lambda_from_theta(r.opt.theta)
    s2 = r.fit_profile.sigma2
    cols, Gs, info, off = [], [], [], 0
    for li in range(len(d.levels) - 1, -1, -1):
        lvl = d.levels[li]
        q = lvl.q
        if q == 0:
            continue
        Zl = d.Z[:, off:off + q]
        lam = Lam[off:off + q, off:off + q]
        for g in range(lvl.n_groups):
            cols.append(Zl * (lvl.codes == g)[:, None])
            Gs.append(s2 * lam @ lam.T)
            info.append((li, g))
        off += q
    return np.column_stack(cols), block_diag(*Gs), info


def dense_blups(res, C=None):
    """BLUPs, conditional and comparative covariances by dense GLS."""
    r = res._results
    d = r.model.design
    s2 = r.fit_profile.sigma2
    Z, G, info = dense_parts(res)
    R = s2 * (np.eye(d.n) if C is None else C)
    V = Z @ G @ Z.T + R
    Vi = np.linalg.inv(V)
    X = d.X
    A = X.T @ Vi @ X
    beta = np.linalg.solve(A, X.T @ Vi @ d.y)
    b = G @ Z.T @ Vi @ (d.y - X @ beta)
    P = Vi - Vi @ X @ np.linalg.solve(A, X.T @ Vi)
    cond = G - G @ Z.T @ Vi @ Z @ G
    comp = G - G @ Z.T @ P @ Z @ G
    return beta, b, cond, comp, info


def stacked(res, which):
    """The package's per-level results stacked in the dense layout (finest first)."""
    r = res._results
    lbs = [r._pe_blups[li] for li in sorted(r._pe_blups, reverse=True)]
    if which == "b":
        return np.concatenate([lb.b.ravel() for lb in lbs])
    return block_diag(*[block_diag(*getattr(lb, which)) for lb in lbs])


# ---------------------------------------------------------------------------
# BLUPs against lme4
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("case", sorted(BLUP_MODELS))
def test_blups_and_condvar_match_lme4(case):
    ref = load_reference("blups_lme4")[case]
    res = fit(*BLUP_MODELS[case])
    for lme4_level, block in ref["blups"].items():
        key = lme4_level.split(":")[-1]  # region:state -> our nested level "state"
        est = res.random_effects[key]
        sd = res.random_effects_se[key]
        labels = [_label(g) for g in est.index]
        assert sorted(labels) == sorted(block["groups"])
        pos = [labels.index(g) for g in block["groups"]]
        for eff, vals in block["blup"].items():
            col = "_cons" if eff == "(Intercept)" else eff
            vals = np.asarray(vals)
            mine = est[col].to_numpy()[pos]
            # relative to the scale of the effect (single BLUPs can be ~0)
            np.testing.assert_allclose(mine, vals, rtol=1e-4, atol=1e-4 * np.abs(vals).max())
            np.testing.assert_allclose(sd[col].to_numpy()[pos], block["se"][eff], rtol=1e-3)


@pytest.mark.parametrize("case", sorted(BLUP_MODELS))
def test_fitted_matches_lme4(case):
    ref = load_reference("blups_lme4")[case]
    res = fit(*BLUP_MODELS[case])
    f = res.predict(kind="fitted")
    np.testing.assert_allclose(f.to_numpy()[:10], ref["fitted_first10"], rtol=1e-6)
    # labelled by the user's index, in its order
    data = mx.load_dataset(BLUP_MODELS[case][0])
    assert list(f.index) == list(data.index)


def test_random_effects_layout(prod, pig_un):
    re = prod.random_effects
    assert list(re) == ["region", "state"]
    assert re["region"].index.name == "region" and list(re["region"].columns) == ["_cons"]
    assert list(re["state"].index.names) == ["region", "state"]
    assert re["state"].shape == (48, 1)
    assert list(pig_un.random_effects["id"].columns) == ["week", "_cons"]
    cov = pig_un.random_effects_cov("conditional")["id"]
    assert list(cov.index.names) == ["id", "effect"] and cov.shape == (96, 2)
    np.testing.assert_allclose(np.sqrt(cov.xs("week", level="effect")["week"].to_numpy()),
                               pig_un.random_effects_se["id"]["week"].to_numpy())
    with pytest.raises(ValueError):
        pig_un.random_effects_cov("posterior")


@pytest.mark.parametrize("model", [
    ("productivity", "mixed gsp private emp hwy water other unemp || region: || state:"),
    ("pig", "mixed weight week || id: week, covariance(unstructured)"),
    ("blockdiag", "mixed y x1 || g: x1, covariance(unstructured) || g: x2, noconstant"),
    ("penicillin", "mixed diameter || _all: R.plate || sample:"),
])
def test_blups_conditional_and_comparative_vs_dense(model):
    res = fit(*model)
    beta, b, cond, comp, _ = dense_blups(res)
    np.testing.assert_allclose(res.fe_params.to_numpy(), beta, rtol=1e-6)
    np.testing.assert_allclose(stacked(res, "b"), b, rtol=1e-6, atol=1e-8 * np.abs(b).max())
    mc, mp = stacked(res, "cond"), stacked(res, "comp")
    mask = mc != 0  # within-group blocks
    np.testing.assert_allclose(mc[mask], cond[mask], rtol=1e-6, atol=1e-9 * np.abs(cond).max())
    np.testing.assert_allclose(mp[mask], comp[mask], rtol=1e-6, atol=1e-9 * np.abs(comp).max())
    # fixed-effect uncertainty only adds variance
    assert np.all(np.diag(mp) >= np.diag(mc) - 1e-12)


def test_crossed_lme4_terms():
    pen = mx.load_dataset("penicillin")
    res = mx.lmer("diameter ~ 1 + (1|plate) + (1|sample)", pen, reml=False)
    assert set(res.random_effects) == {"plate", "sample"}
    assert res.random_effects["plate"].shape == (24, 1)
    assert res.random_effects["sample"].index.name == "sample"
    beta, b, cond, comp, _ = dense_blups(res)
    np.testing.assert_allclose(stacked(res, "b"), b, rtol=1e-6, atol=1e-9)
    f = res.predict(kind="fitted")
    row = pen.iloc[5]
    expect = (res.fe_params["_cons"] + res.random_effects["plate"].loc[row["plate"], "_cons"]
              + res.random_effects["sample"].loc[row["sample"], "_cons"])
    assert f.loc[5] == pytest.approx(expect)
    with pytest.raises(ValueError, match="crossed|random-intercept"):
        res.estat_icc()


def test_factor_random_effects_long_format():
    res = fit("penicillin", "mixed diameter || _all: R.plate || sample:")
    re = res.random_effects
    assert list(re) == ["R.plate", "sample"]
    assert re["R.plate"].index.name == "plate" and list(re["R.plate"].columns) == ["R.plate"]
    rf = res.predict(kind="reffects")
    assert list(rf.columns) == ["R.plate", "sample:_cons"]
    pen = mx.load_dataset("penicillin")
    assert rf.loc[7, "R.plate"] == pytest.approx(re["R.plate"].loc[pen.loc[7, "plate"], "R.plate"])
    G = res.estat_recovariance("R.plate")
    assert G.shape == (1, 1) and G.iloc[0, 0] == pytest.approx(res.variance_components["estimate"].iloc[0])


# ---------------------------------------------------------------------------
# predict on the estimation sample
# ---------------------------------------------------------------------------
def test_predict_kinds_estimation_sample(prod):
    P = mx.load_dataset("productivity")
    b = prod.fe_params
    X = P[list(b.index[:-1])].to_numpy()
    xb = X @ b.to_numpy()[:-1] + b["_cons"]
    np.testing.assert_allclose(prod.predict(kind="xb").to_numpy(), xb, rtol=1e-12)
    Xc = np.column_stack([X, np.ones(len(P))])
    stdp = np.sqrt(np.einsum("ij,jk,ik->i", Xc, prod.cov_fe.to_numpy(), Xc))
    np.testing.assert_allclose(prod.predict(kind="stdp").to_numpy(), stdp, rtol=1e-10)
    re = prod.random_effects
    u_reg = re["region"]["_cons"].reindex(P["region"]).to_numpy()
    u_st = re["state"]["_cons"].reindex(pd.MultiIndex.from_frame(P[["region", "state"]])).to_numpy()
    np.testing.assert_allclose(prod.predict(kind="fitted", relevel="region").to_numpy(), xb + u_reg,
                               rtol=1e-12)
    fitted = prod.predict(kind="fitted")
    np.testing.assert_allclose(fitted.to_numpy(), xb + u_reg + u_st, rtol=1e-12)
    np.testing.assert_allclose(prod.predict(kind="fitted", relevel="state").to_numpy(), fitted.to_numpy())
    resid = prod.predict(kind="residuals")
    np.testing.assert_allclose(resid.to_numpy(), P["gsp"].to_numpy() - fitted.to_numpy(), atol=1e-12)
    np.testing.assert_allclose(prod.predict(kind="rstandard").to_numpy(),
                               resid.to_numpy() / np.sqrt(prod.sigma2), rtol=1e-12)
    rf = prod.predict(kind="reffects")
    assert list(rf.columns) == ["region:_cons", "state:_cons"]
    np.testing.assert_allclose(rf["state:_cons"].to_numpy(), u_st)
    only_state = prod.predict(kind="reffects", relevel="state")
    assert list(only_state.columns) == ["state:_cons"]
    # reses: the comparative (prediction-error) standard errors, per row
    rs = prod.predict(kind="reses")
    comp = prod.random_effects_cov("comparative")["region"]
    np.testing.assert_allclose(rs["region:_cons"].to_numpy(),
                               np.sqrt(comp["_cons"].to_numpy()[P["region"].to_numpy() - 1]))
    assert (rs["region:_cons"].to_numpy() >= prod.random_effects_se["region"]["_cons"].min()).all()
    with pytest.raises(ValueError, match="relevel"):
        prod.predict(kind="fitted", relevel="county")
    with pytest.raises(ValueError, match="kind"):
        prod.predict(kind="scores2")
    # statsmodels names
    np.testing.assert_allclose(prod.fittedvalues.sort_index().to_numpy(), fitted.to_numpy())
    np.testing.assert_allclose(prod.resid.sort_index().to_numpy(), resid.to_numpy())


def test_predict_aligns_with_user_index():
    pig = mx.load_dataset("pig")
    shuffled = pig.sample(frac=1.0, random_state=3)
    shuffled.index = ["r%03d" % i for i in shuffled.index]
    shuffled.loc[shuffled.index[:4], "weight"] = np.nan  # dropped rows
    with pytest.warns(UserWarning, match="missing"):
        res = mx.mixed("mixed weight week || id:", shuffled)
    f = res.predict(kind="fitted")
    assert len(f) == len(pig) - 4 and set(f.index) <= set(shuffled.index)
    full = res.predict(shuffled, kind="fitted")
    pd.testing.assert_series_equal(full.loc[f.index], f, check_names=False, rtol=1e-12)
    # the dropped rows get a prediction too (covariates and group are known)
    assert full.notna().all()


# ---------------------------------------------------------------------------
# predict on new data: seen and unseen groups
# ---------------------------------------------------------------------------
def test_predict_new_data_nested_seen_and_unseen(prod):
    P = mx.load_dataset("productivity")
    base = P.iloc[[0, 1, 40]].copy()  # states 1 (region 6) and 3 (region 7)
    new_state = base.copy()
    new_state["state"] = 99  # unseen state within seen regions
    new_region = base.copy()
    new_region["region"], new_region["state"] = 77, 99  # nothing seen
    nd = pd.concat([base, new_state, new_region], ignore_index=True)
    nd.index = ["a", "b", "c", "d", "e", "f", "g", "h", "i"]
    xb = prod.predict(nd, kind="xb")
    fit = prod.predict(nd, kind="fitted")
    est = prod.predict(kind="fitted")
    np.testing.assert_allclose(fit.loc[["a", "b", "c"]].to_numpy(), est.loc[[0, 1, 40]].to_numpy(),
                               rtol=1e-12)
    u_reg = prod.random_effects["region"]["_cons"]
    np.testing.assert_allclose(fit.loc[["d", "e", "f"]].to_numpy(),
                               xb.loc[["d", "e", "f"]].to_numpy() + u_reg.loc[base["region"]].to_numpy())
    np.testing.assert_allclose(fit.loc[["g", "h", "i"]].to_numpy(), xb.loc[["g", "h", "i"]].to_numpy())
    assert fit.attrs["unseen"] == {"region": ("g", "h", "i"), "state": ("d", "e", "f", "g", "h", "i")}
    un = prod.unseen_groups(nd)
    assert list(un.columns) == ["region", "state"]
    assert un["state"].tolist() == [False] * 3 + [True] * 6
    rf = prod.predict(nd, kind="reffects")
    assert rf.loc[["a", "b", "c", "d", "e", "f"], "region:_cons"].notna().all()
    assert rf.loc[["g", "h", "i"]].isna().all().all() and rf.loc[["d", "e", "f"], "state:_cons"].isna().all()
    rs = prod.predict(nd, kind="reses")
    assert rs.loc["d", "region:_cons"] > 0 and np.isnan(rs.loc["d", "state:_cons"])
    # residuals need the response; rstandard = residual / sigma for independent errors
    r = prod.predict(nd, kind="residuals")
    np.testing.assert_allclose(r.to_numpy(), nd["gsp"].to_numpy() - fit.to_numpy())
    np.testing.assert_allclose(prod.predict(nd, kind="rstandard").to_numpy(),
                               r.to_numpy() / np.sqrt(prod.sigma2))
    with pytest.raises(ValueError, match="gsp"):
        prod.predict(nd.drop(columns="gsp"), kind="residuals")
    # xb and stdp need no grouping variables
    assert prod.predict(nd.drop(columns=["region", "state"]), kind="stdp").notna().all()


def test_predict_new_data_random_slope_and_missing(pig_un):
    new = pd.DataFrame({"id": [1, 1, 1000, 3], "week": [10.0, 11.0, 10.0, np.nan]})
    fit = pig_un.predict(new, kind="fitted")
    b = pig_un.fe_params
    u = pig_un.random_effects["id"].loc[1]
    assert fit.iloc[0] == pytest.approx(b["_cons"] + u["_cons"] + (b["week"] + u["week"]) * 10)
    assert fit.iloc[1] == pytest.approx(b["_cons"] + u["_cons"] + (b["week"] + u["week"]) * 11)
    assert fit.iloc[2] == pytest.approx(b["_cons"] + b["week"] * 10)  # unseen pig: population curve
    assert np.isnan(fit.iloc[3])  # missing covariate
    assert fit.attrs["unseen"] == {"id": (2,)}


def test_predict_new_data_factor_fixed_effects():
    P = mx.load_dataset("productivity")
    res = mx.mixed("mixed gsp private i.region || state:", P)
    sub = P.iloc[[5, 300, 700]]
    np.testing.assert_allclose(res.predict(sub, kind="fitted").to_numpy(),
                               res.predict(kind="fitted").loc[sub.index].to_numpy(), rtol=1e-12)
    bad = sub.assign(region=[1, 2, 42])
    with pytest.raises(ValueError, match="fixed part"):
        res.predict(bad, kind="xb")


# ---------------------------------------------------------------------------
# estat
# ---------------------------------------------------------------------------
def test_icc_productivity_three_level(prod):
    vc = prod.variance_components["estimate"]
    vr, vs, ve = vc[("region", "var(_cons)")], vc[("state", "var(_cons)")], vc[("Residual", "var(Residual)")]
    icc = prod.estat_icc()
    assert list(icc.index) == ["region", "state|region"]
    tot = vr + vs + ve
    assert icc.loc["region", "icc"] == pytest.approx(vr / tot, rel=1e-12)
    assert icc.loc["state|region", "icc"] == pytest.approx((vr + vs) / tot, rel=1e-12)
    # delta method with the variance components' covariance
    k = prod.k_fe
    S = np.asarray(prod.cov_params())[k:, k:]
    v = np.array([vr, vs, ve])

    def f(x, j):
        return x[: j + 1].sum() / x.sum()

    for j, lab in enumerate(icc.index):
        g = np.array([(f(v + h, j) - f(v - h, j)) / (2 * h[i]) for i, h in enumerate(np.eye(3) * 1e-7)])
        assert icc.loc[lab, "std_err"] == pytest.approx(np.sqrt(g @ S @ g), rel=1e-5)
        lo, hi = icc.loc[lab, ["ci_low", "ci_high"]]
        fj = f(v, j)
        c, w = np.log(fj / (1 - fj)), 1.959963984540054 * icc.loc[lab, "std_err"] / (fj * (1 - fj))
        assert lo == pytest.approx(1 / (1 + np.exp(-(c - w))), rel=1e-8)
        assert hi == pytest.approx(1 / (1 + np.exp(-(c + w))), rel=1e-8)
    # the same ratios from the variance components Stata printed for this model (seed)
    vr_s, vs_s, ve_s = 0.0014506, 0.0062757, 0.0013461
    assert icc.loc["region", "icc"] == pytest.approx(vr_s / (vr_s + vs_s + ve_s), rel=1e-4)
    assert icc.loc["state|region", "icc"] == pytest.approx((vr_s + vs_s) / (vr_s + vs_s + ve_s), rel=1e-4)


def test_icc_refused_like_stata(pig_un):
    with pytest.raises(ValueError, match="random-intercept"):
        pig_un.estat_icc()


def test_icc_pig_random_intercept():
    res = fit("pig", "mixed weight week || id:")
    icc = res.estat_icc()
    assert list(icc.index) == ["id"]
    assert icc.loc["id", "icc"] == pytest.approx(14.81751 / (14.81751 + 4.383264), abs=1e-6)


def test_recovariance(pig_un):
    vc = pig_un.variance_components["estimate"]
    G = pig_un.estat_recovariance(level="id")
    assert list(G.index) == ["week", "_cons"] and list(G.columns) == ["week", "_cons"]
    assert G.loc["week", "week"] == pytest.approx(vc[("id", "var(week)")], rel=1e-10)
    assert G.loc["week", "_cons"] == pytest.approx(vc[("id", "cov(week,_cons)")], rel=1e-10)
    assert G.loc["_cons", "week"] == G.loc["week", "_cons"]
    R = pig_un.estat_recovariance(level="id", correlation=True)
    assert R.loc["week", "_cons"] == pytest.approx(
        vc[("id", "cov(week,_cons)")] / np.sqrt(vc[("id", "var(week)")] * vc[("id", "var(_cons)")]))
    assert np.allclose(np.diag(R), 1.0)
    assert list(pig_un.estat_recovariance()) == ["id"]
    with pytest.raises(KeyError):
        pig_un.estat_recovariance(level="school")
    blk = fit("blockdiag", "mixed y x1 || g: x1, covariance(unstructured) || g: x2, noconstant")
    Gb = blk.estat_recovariance("g")
    assert list(Gb.columns) == ["x1", "_cons", "x2"]
    assert Gb.loc["x2", "x1"] == 0 and Gb.loc["_cons", "x2"] == 0


def test_estat_sd_and_ic(pig_un):
    sd = pig_un.estat_sd()
    pd.testing.assert_frame_equal(sd, pig_un.sd_components)
    assert sd.loc[("id", "sd(week)"), "estimate"] == pytest.approx(
        np.sqrt(pig_un.variance_components.loc[("id", "var(week)"), "estimate"]))
    assert ("id", "corr(week,_cons)") in sd.index
    ic = pig_un.estat_ic()
    assert list(ic.columns) == ["N", "ll(null)", "ll(model)", "df", "AIC", "BIC"]
    row = ic.iloc[0]
    assert row["N"] == 432 and row["df"] == 6
    assert row["AIC"] == pytest.approx(pig_un.aic) and row["BIC"] == pytest.approx(pig_un.bic)
    assert row["AIC"] == pytest.approx(-2 * pig_un.llf + 12)
    assert pig_un.estat_ic(n=48).iloc[0]["BIC"] == pytest.approx(-2 * pig_un.llf + 6 * np.log(48))


def test_wcorrelation_nested_dense(prod):
    P = mx.load_dataset("productivity")
    vc = prod.variance_components["estimate"]
    vr, vs, ve = vc[("region", "var(_cons)")], vc[("state", "var(_cons)")], vc[("Residual", "var(Residual)")]
    w = prod.estat_wcorrelation(group=3)
    assert w.group == 3
    rows = P.index[P["region"] == 3]
    assert sorted(w.covariance.index) == sorted(rows)
    st = P.loc[w.covariance.index, "state"].to_numpy()
    n = len(st)
    V = vr * np.ones((n, n)) + vs * (st[:, None] == st[None, :]) + ve * np.eye(n)
    np.testing.assert_allclose(w.covariance.to_numpy(), V, rtol=1e-10)
    sd = np.sqrt(np.diag(V))
    np.testing.assert_allclose(w.correlation.to_numpy(), V / np.outer(sd, sd), rtol=1e-10)
    assert prod.estat_wcorrelation().group == 1
    with pytest.raises(KeyError):
        prod.estat_wcorrelation(group=99)


def test_wcorrelation_random_slope_dense(pig_un):
    pig = mx.load_dataset("pig")
    vc = pig_un.variance_components["estimate"]
    G = np.array([[vc[("id", "var(week)")], vc[("id", "cov(week,_cons)")]],
                  [vc[("id", "cov(week,_cons)")], vc[("id", "var(_cons)")]]])
    w = pig_un.estat_wcorrelation(group=5)
    Z = np.column_stack([pig.loc[w.covariance.index, "week"], np.ones(9)])
    V = Z @ G @ Z.T + vc[("Residual", "var(Residual)")] * np.eye(9)
    np.testing.assert_allclose(w.covariance.to_numpy(), V, rtol=1e-8)


# ---------------------------------------------------------------------------
# residual structures: a dense AR(1) test double on the ResidualStructure
# interface (so this runs whatever the state of _residual.py), and Stata's AR(2)
# ---------------------------------------------------------------------------
class _DenseAR1(ResidualStructure):
    """corr = phi^|t_i - t_j| within a panel; dense whitening (test double)."""

    title = "AR(1) test double"
    is_plain = False

    @property
    def n_params(self):
        return 1

    def start(self):
        return np.zeros(1)

    def bounds(self):
        return [(-0.99, 0.99)]

    def bind(self, design):
        self.design = design
        self.t = design.data[self.spec.time].to_numpy(dtype=float)
        codes = design.panel_codes
        self.panels = [np.flatnonzero(codes == g) for g in range(design.n_panels)]
        return self

    def correlation(self, rho, panel):
        t = self.t[self.panels[panel]]
        return float(rho[0]) ** np.abs(t[:, None] - t[None, :])

    def _chol(self, rho, panel):
        return np.linalg.cholesky(self.correlation(rho, panel))

    def whiten_rows(self, rho, M):
        out = np.empty_like(np.asarray(M, dtype=float))
        for g, rows in enumerate(self.panels):
            out[rows] = np.linalg.solve(self._chol(rho, g), M[rows])
        return out

    def crossproducts(self, rho):
        d = self.design
        Zw = self.whiten_rows(rho, d.Z)
        XYw = self.whiten_rows(rho, np.column_stack([d.Xw, d.yw]))
        codes, G = d.panel_codes, d.n_panels
        Wzz = grouped_crossprod(Zw, Zw, codes, G)
        Wzx = grouped_crossprod(Zw, XYw, codes, G)
        logdet = sum(2 * np.log(np.diag(self._chol(rho, g))).sum() for g in range(G))
        return Wzz, Wzx, XYw.T @ XYw, float(logdet)

    def names(self):
        return ["rho", "var(e)"]

    def kinds(self):
        return ["phi", "var"]

    def natural(self, rho, sigma2):
        return np.array([float(rho[0]), sigma2])

    def from_natural(self, nat):
        return np.array([float(nat[0])]), float(nat[1])


@pytest.fixture(scope="module")
def ar1_fake():
    mp = pytest.MonkeyPatch()
    mp.setitem(RESIDUAL_TYPES, "_dense_ar1_test", _DenseAR1)
    try:
        ov = mx.load_dataset("ovary")
        spec = mx.parse_stata("mixed follicles sin1 cos1 || mare:")
        spec = spec.with_options(residual=ResidualSpec(kind="_dense_ar1_test", time="time"))
        res = mx.MixedLMExt(spec, ov).fit()
    finally:
        mp.undo()
    return res


def _ar1_corr(res, ov):
    phi = res.params["Residual:rho"]
    t = ov["time"].to_numpy(dtype=float)
    same = ov["mare"].to_numpy()[:, None] == ov["mare"].to_numpy()[None, :]
    return np.where(same, phi ** np.abs(t[:, None] - t[None, :]), 0.0)


def test_residual_structure_blups_rstandard_wcorrelation(ar1_fake):
    res = ar1_fake
    ov = mx.load_dataset("ovary")  # sorted by mare, time: design order == data order
    assert 0.3 < res.params["Residual:rho"] < 0.95
    C = _ar1_corr(res, ov)
    beta, b, cond, comp, _ = dense_blups(res, C)
    np.testing.assert_allclose(stacked(res, "b"), b, rtol=1e-6, atol=1e-8)
    mc, mp = stacked(res, "cond"), stacked(res, "comp")
    np.testing.assert_allclose(np.diag(mc), np.diag(cond), rtol=1e-6)
    np.testing.assert_allclose(np.diag(mp), np.diag(comp), rtol=1e-6)
    # rstandard: C^{-1/2} r / sigma, panel by panel
    r = res.predict(kind="residuals").to_numpy()
    rs = res.predict(kind="rstandard").to_numpy()
    sigma = np.sqrt(res.sigma2)
    for m in ov["mare"].unique():
        rows = np.flatnonzero(ov["mare"].to_numpy() == m)
        L = np.linalg.cholesky(C[np.ix_(rows, rows)])
        np.testing.assert_allclose(rs[rows], np.linalg.solve(L, r[rows]) / sigma, rtol=1e-8, atol=1e-12)
    # V = Z G Z' + sigma2 C for mare 2
    w = res.estat_wcorrelation(group=2)
    rows = np.flatnonzero(ov["mare"].to_numpy() == 2)
    v_mare = res.params["mare:var(_cons)"]
    V = v_mare + res.sigma2 * C[np.ix_(rows, rows)]
    np.testing.assert_allclose(w.covariance.to_numpy(), V, rtol=1e-8)
    with pytest.raises(ValueError, match="residual"):
        res.estat_icc()
    with pytest.raises(ValueError, match="estimation sample"):
        res.predict(ov.head(5), kind="rstandard")


def _ar2_results():
    ov = mx.load_dataset("ovary")
    try:
        return mx.mixed("mixed follicles sin1 cos1 || mare:, residuals(ar 2, t(time))", ov)
    except NotImplementedError:
        pytest.skip("residuals(ar 2) is not implemented yet")


def _ar2_corr(phi1, phi2, lags):
    acf = np.zeros(int(lags.max()) + 1)
    acf[0] = 1.0
    if acf.size > 1:
        acf[1] = phi1 / (1 - phi2)
    for k in range(2, acf.size):
        acf[k] = phi1 * acf[k - 1] + phi2 * acf[k - 2]
    return acf[lags]


def test_wcorrelation_ar2_dense():
    res = _ar2_results()
    ov = mx.load_dataset("ovary")
    p = res.params
    w = res.estat_wcorrelation(group=3)
    t = ov.loc[w.covariance.index, "time"].to_numpy().astype(int)
    lags = np.abs(t[:, None] - t[None, :])
    V = p["mare:var(_cons)"] + p["Residual:var(e)"] * _ar2_corr(p["Residual:phi1"], p["Residual:phi2"], lags)
    np.testing.assert_allclose(w.covariance.to_numpy(), V, rtol=1e-6)
    # rstandard: |C^{-1/2} r|^2 = r'C^{-1}r, whatever square root the structure uses
    r = res.predict(kind="residuals")
    z = res.predict(kind="rstandard")
    rows = w.covariance.index
    C = _ar2_corr(p["Residual:phi1"], p["Residual:phi2"], lags)
    rr = r.loc[rows].to_numpy()
    assert (z.loc[rows] ** 2).sum() == pytest.approx(rr @ np.linalg.solve(C, rr) / res.sigma2, rel=1e-6)
    # BLUPs against dense GLS with R = sigma2 C
    mare = ov["mare"].to_numpy()
    tt = ov["time"].to_numpy().astype(int)
    lag = np.abs(tt[:, None] - tt[None, :])
    acf = _ar2_corr(p["Residual:phi1"], p["Residual:phi2"], lag)
    Cfull = np.where(mare[:, None] == mare[None, :], acf, 0.0)
    _, b, cond, _, _ = dense_blups(res, Cfull)
    np.testing.assert_allclose(stacked(res, "b"), b, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(np.diag(stacked(res, "cond")), np.diag(cond), rtol=1e-5)


def test_wcorrelation_ar1_unsorted_rows():
    """Rows not in time order: V follows the rows' own times and labels."""
    ov = mx.load_dataset("ovary").sample(frac=1.0, random_state=7)
    try:
        res = mx.mixed("mixed follicles sin1 cos1 || mare:, residuals(ar 1, t(time))", ov)
    except NotImplementedError:
        pytest.skip("residuals(ar 1) is not implemented yet")
    p = res.params
    w = res.estat_wcorrelation(group=4)
    assert set(w.covariance.index) == set(ov.index[ov["mare"] == 4])
    t = ov.loc[w.covariance.index, "time"].to_numpy(dtype=float)
    V = p["mare:var(_cons)"] + p["Residual:var(e)"] * p["Residual:phi1"] ** np.abs(t[:, None] - t[None, :])
    np.testing.assert_allclose(w.covariance.to_numpy(), V, rtol=1e-6)
    r = res.predict(kind="residuals").loc[w.covariance.index].to_numpy()
    z = res.predict(kind="rstandard").loc[w.covariance.index].to_numpy()
    C = p["Residual:phi1"] ** np.abs(t[:, None] - t[None, :])
    assert (z ** 2).sum() == pytest.approx(r @ np.linalg.solve(C, r) / res.sigma2, rel=1e-6)
