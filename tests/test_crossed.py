"""Crossed random effects: the blocked sparse engine (``_crossed.py``).

* the sparse engine equals the dense likelihood on small random crossed
  designs (random slopes on either factor, Stata's and lme4's spellings, ML
  and REML, both ways of forming the Schur complement);
* conditional modes and conditional variances equal the dense posterior;
* penicillin (Stata reference) and a simulated crossed design with random
  slopes (lme4 reference, ``tests/reference/crossed/crossed_slopes_lme4.json``)
  match;
* large designs keep ``Z`` sparse and never form ``n x Q`` dense matrices.

Run ``python tests/test_crossed.py --make-reference`` (needs R with lme4 and
jsonlite) to regenerate the lme4 reference; the tests never call R.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from conftest import dense_neg2ll
from scipy.sparse.linalg import spsolve

import mixedlm_ext as mx
from mixedlm_ext.engines import crossed_kmat as _crossed
from mixedlm_ext.design import random as design_random
from mixedlm_ext.engines.crossed import CrossedEngine
from mixedlm_ext.postestimation.blups import crossed_level_blups, nested_level_blups
from mixedlm_ext.design.build import build_design
from mixedlm_ext.fit.objective import Objective
from mixedlm_ext.spec.model import ModelSpec, REEquation

REF_PATH = Path(__file__).resolve().parent / "reference" / "crossed" / "crossed_slopes_lme4.json"


# ---------------------------------------------------------------------------
# random crossed designs and the dense likelihood they stand for
# ---------------------------------------------------------------------------
def _random_crossed(seed, n=None):
    rng = np.random.default_rng(seed)
    n = n or int(rng.integers(60, 140))
    na, nb, nc = int(rng.integers(5, 12)), int(rng.integers(3, 8)), int(rng.integers(2, 4))
    df = pd.DataFrame({
        "a": rng.integers(0, na, n), "b": rng.integers(0, nb, n), "c": rng.integers(0, nc, n),
        "x": rng.normal(size=n), "z": rng.normal(size=n),
    })
    ua, ub = rng.normal(size=na), rng.normal(size=nb)
    df["y"] = 1 + df.x + ua[df.a] + ub[df.b] * (1 + df.x) + rng.normal(size=n)
    return df


def _dense_V(design, objective, phi):
    """``V = sum over levels of same-group * (Z_l G_l Z_l') + sigma2 I`` from dense ``Z``."""
    parts, res_nat = objective.split_natural(phi)
    sigma2 = float(res_nat[-1])
    Z = design.Z.toarray() if sp.issparse(design.Z) else np.asarray(design.Z)
    V = sigma2 * np.eye(design.n)
    off_level, off = {}, 0
    for li in range(len(design.levels) - 1, -1, -1):
        off_level[li] = off
        off += design.levels[li].q
    i = 0
    for li, lvl in enumerate(design.levels):
        mats = []
        for blk in lvl.blocks:
            cov = blk.structure.cov_from_natural(parts[i])
            mats.append(np.kron(np.eye(blk.n_expand), cov))
            i += 1
        if not mats:
            continue
        from scipy.linalg import block_diag

        G = block_diag(*mats)
        o = off_level[li]
        Zl = Z[:, o:o + lvl.q]
        same = lvl.codes[:, None] == lvl.codes[None, :]
        V += same * (Zl @ G @ Zl.T)
    return V


def _dense_neg2ll(design, objective, phi, reml):
    return dense_neg2ll(_dense_V(design, objective, phi), design.X, design.y, reml)


def _all(factor, cov="identity"):
    return REEquation((), (), False, cov, factor, "_all")


SPECS = {
    # lme4 spellings (crossed groupings -> one _all level, blocks expanded by their grouping)
    "(1|a)+(1|b)": (REEquation(("a",)), REEquation(("b",))),
    "(x|a)+(1|b)": (REEquation(("a",), ("x",), True, "unstructured"), REEquation(("b",))),
    "(1|a)+(x|b)": (REEquation(("a",)), REEquation(("b",), ("x",), True, "unstructured")),
    "(x||a)+(z|b)": (REEquation(("a",), ("x",), True, "independent"),
                     REEquation(("b",), ("z",), True, "unstructured")),
    "(1|a)+(1|b)+(1|c)": (REEquation(("a",)), REEquation(("b",)), REEquation(("c",))),
    "(1|a)+(0+x|a)+(1|b)": (REEquation(("a",)), REEquation(("a",), ("x",), False), REEquation(("b",))),
    # Stata spellings
    "_all:R.a||_all:R.b": (_all("a"), _all("b")),
    "_all:R.a||b:": (_all("a"), REEquation(("b",))),
    "_all:R.a||b:x,unstr": (_all("a"), REEquation(("b",), ("x",), True, "unstructured")),
    "_all:R.a||_all:R.c||b:x": (_all("a"), _all("c"), REEquation(("b",), ("x",), True, "independent")),
    "_all:R.a": (_all("a"),),
}


def _theta(ob, seed):
    rng = np.random.default_rng(seed + 100)
    theta = ob.theta_start() + 0.4 * rng.uniform(-1, 1, size=ob.n_theta)
    lo = [b[0] if b[0] is not None else -np.inf for b in ob.theta_bounds()]
    hi = [b[1] if b[1] is not None else np.inf for b in ob.theta_bounds()]
    return np.clip(theta, np.array(lo) + 0.05, hi)


def _objective(key, seed, reml=False, fixed="x"):
    df = _random_crossed(seed)
    spec = ModelSpec("y", fixed, True, SPECS[key], reml=reml)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = build_design(spec, df)
    return d, Objective(d, reml=reml)


@pytest.fixture(params=["kmat", "product"])
def schur_mode(request, monkeypatch):
    """Both ways of forming the Schur complement: the precomputed linear map and
    the per-evaluation sparse product."""
    if request.param == "kmat":
        monkeypatch.setattr(_crossed, "_KMAT_MAX_NNZ", 10 ** 12)
    else:
        monkeypatch.setattr(_crossed, "_KMAT_MAX_NNZ", -1)
    return request.param


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("key", list(SPECS))
@pytest.mark.parametrize("reml", [False, True])
def test_sparse_equals_dense(key, seed, reml, schur_mode):
    d, ob = _objective(key, seed, reml)
    assert d.sparse_re and isinstance(ob.engine, CrossedEngine)
    assert (ob.engine.kmat is not None) == (schur_mode == "kmat" and ob.engine.Q2 > 0)
    theta = _theta(ob, seed)
    prof = ob.profile(theta)
    phi = ob.natural_from_theta(theta, 1.3)
    dense = _dense_neg2ll(d, ob, phi, reml)
    assert ob.neg2ll_natural(phi) == pytest.approx(dense, rel=1e-10)
    # the profiled deviance is the likelihood at the profiled sigma2
    phi_hat = ob.natural_from_theta(theta, prof.sigma2)
    assert prof.deviance == pytest.approx(_dense_neg2ll(d, ob, phi_hat, reml), rel=1e-10)


@pytest.mark.parametrize("key", ["(x|a)+(1|b)", "_all:R.a||b:x,unstr", "(1|a)+(1|b)+(1|c)"])
def test_sparse_equals_nested_engine_on_dense_crossproducts(key):
    """Same ``log|P|`` and Schur complement as the nested engine run on the dense
    per-panel cross-products (the previous path for crossed designs)."""
    from mixedlm_ext.engines.nested import NestedEngine
    from mixedlm_ext.core.linalg import grouped_crossprod

    d, ob = _objective(key, 4)
    theta = _theta(ob, 4)
    Z = np.asarray(d.Z)
    fine = [lvl for lvl in d.levels[::-1] if lvl.q > 0][0]
    XY = np.column_stack([d.Xw, d.yw])
    Wzz = grouped_crossprod(Z, Z, fine.codes, fine.n_groups)
    Wzx = grouped_crossprod(Z, XY, fine.codes, fine.n_groups)
    qs, parents, _ = d.engine_layout()
    ref = NestedEngine(qs, parents).eliminate(Wzz, Wzx, d.XYtXY, ob.lambda_from_theta(theta))
    prof = ob.profile(theta)
    assert prof.elim.logdet == pytest.approx(ref.logdet, rel=1e-11, abs=1e-10)
    np.testing.assert_allclose(prof.elim.B, ref.B, rtol=1e-10, atol=1e-10 * np.abs(ref.B).max())
    # a dense design-order Lambda is accepted too
    el = ob.engine.eliminate(None, None, d.XYtXY, ob.lambda_from_theta(theta))
    assert el.logdet == pytest.approx(ref.logdet, rel=1e-11, abs=1e-10)


def _dense_posterior(d, ob, theta, beta):
    """Dense ``P``, ``u_hat`` in the nested engine's level layout (design column order)."""
    Lam = ob.lambda_from_theta(theta)
    Z = np.asarray(d.Z)
    Zs, Ls, off = [], [], 0
    for lvl in d.levels[::-1]:
        q = lvl.q
        if q == 0:
            continue
        Zl = Z[:, off:off + q]
        ind = np.eye(lvl.n_groups)[lvl.codes]
        Zs.append((ind[:, :, None] * Zl[:, None, :]).reshape(d.n, -1))
        Ls.append(np.kron(np.eye(lvl.n_groups), Lam[off:off + q, off:off + q]))
        off += q
    from scipy.linalg import block_diag

    Zf, Lf = np.column_stack(Zs), block_diag(*Ls)
    P = Lf.T @ Zf.T @ Zf @ Lf + np.eye(Zf.shape[1])
    r = d.y - d.X @ beta
    return P, np.linalg.solve(P, Lf.T @ Zf.T @ r)


@pytest.mark.parametrize("key", ["(x|a)+(1|b)", "(1|a)+(x|b)", "_all:R.a||b:x,unstr", "(1|a)+(1|b)+(1|c)",
                                 "_all:R.a"])
def test_conditional_modes_and_variances(key, schur_mode):
    from mixedlm_ext.fit.em import conditional_moments

    d, ob = _objective(key, 5)
    theta = _theta(ob, 5)
    prof = ob.profile(theta, keep=True)
    P, u_dense = _dense_posterior(d, ob, theta, prof.beta)
    us = ob.engine.solve_u(prof.elim, prof.beta_w)
    np.testing.assert_allclose(np.concatenate([u.ravel() for u in us]), u_dense, rtol=1e-8, atol=1e-10)
    # per-term conditional covariances (units of sigma2) equal the diagonal blocks of P^-1
    Pinv = np.linalg.inv(P)
    eng = ob.engine
    for t, cv in zip(eng.terms, eng.conditional_variances(prof.elim)):
        for g in range(t.G):
            idx = t.pos[g]
            np.testing.assert_allclose(cv[g], Pinv[np.ix_(idx, idx)], rtol=1e-8, atol=1e-12)
    # the nested-layout view serves conditional_moments (postestimation)
    _, u_hat, joint = conditional_moments(ob, theta)
    np.testing.assert_allclose(np.concatenate([u.ravel() for u in u_hat]), u_dense, rtol=1e-8, atol=1e-10)
    q0, G0 = d.levels[-1].q, d.levels[-1].n_groups
    for g in range(G0):
        sl = slice(g * q0, (g + 1) * q0)
        np.testing.assert_allclose(joint[0][g][:q0, :q0], Pinv[sl, sl], rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("cmd", ["mixed diameter || _all: R.plate || sample:",
                                 "mixed diameter || _all: R.plate || _all: R.sample, reml"])
def test_postestimation_with_sparse_Z(cmd, monkeypatch):
    """Designs too large for a dense ``Z`` keep it sparse; BLUPs and their
    conditional/comparative variances are unchanged."""
    pen = mx.load_dataset("penicillin")
    dense = mx.mixed(cmd, pen)
    monkeypatch.setattr(design_random, "DENSE_Z_MAX_ELEMS", 0)
    sparse = mx.mixed(cmd, pen)
    assert sp.issparse(sparse.model.design.Z) and not sp.issparse(dense.model.design.Z)
    assert sparse.llf == pytest.approx(dense.llf, rel=1e-12)
    for key, frame in dense.random_effects.items():
        np.testing.assert_allclose(sparse.random_effects[key].to_numpy(), frame.to_numpy(),
                                   rtol=1e-9, atol=1e-12)
    for kind in ("conditional", "comparative"):
        a, b = dense.random_effects_cov(kind), sparse.random_effects_cov(kind)
        for key in a:
            np.testing.assert_allclose(b[key].to_numpy(), a[key].to_numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sparse.predict(kind="fitted").to_numpy(),
                               dense.predict(kind="fitted").to_numpy(), rtol=1e-10)


@pytest.mark.parametrize("formula,stata", [
    ("diameter ~ 1 + (1|plate) + (1|sample)", None),
    (None, "mixed diameter || _all: R.plate || sample:"),
    (None, "mixed diameter || _all: R.plate || _all: R.sample, reml"),
])
def test_level_blups_equal_postestimation(formula, stata):
    """``crossed_level_blups`` (no dense nested-layout factor) gives the BLUPs and
    the reported diagonal blocks of their conditional and comparative
    covariances exactly as the postestimation code does through the dense view."""
    pen = mx.load_dataset("penicillin")
    res = mx.lmer(formula, pen, reml=False) if formula else mx.mixed(stata, pen)
    ref, mine = _blups_both_ways(res)
    assert set(mine) == set(ref)
    d = res.model.design
    for li, lb in ref.items():
        mb = mine[li]
        assert mb.col_offset == lb.col_offset
        np.testing.assert_allclose(mb.lam, lb.lam, atol=1e-14)
        np.testing.assert_allclose(mb.b, lb.b, rtol=1e-9, atol=1e-12)
        mask = mb.cond != 0  # the blocks postestimation reports
        assert mask.sum() >= sum(blk.n_expand * blk.structure.q ** 2 for blk in d.levels[li].blocks)
        np.testing.assert_allclose(mb.cond[mask], lb.cond[mask], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(mb.comp[mask], lb.comp[mask], rtol=1e-9, atol=1e-12)


def _blups_both_ways(res):
    """BLUPs through the dense nested-layout view and through the crossed engine's factor."""
    ob, theta, cov_fe = res.model.objective, res.opt.theta, res.cov_fe.to_numpy()
    return nested_level_blups(ob, theta, cov_fe), crossed_level_blups(ob, theta, cov_fe)


def test_level_blups_random_slopes():
    d, ob = _objective("_all:R.a||b:x,unstr", 6)
    res = mx.MixedLMExt(ob.design.spec, _random_crossed(6)).fit()
    ref, mine = _blups_both_ways(res)
    for li, lb in ref.items():
        mask = mine[li].cond != 0
        np.testing.assert_allclose(mine[li].b, lb.b, rtol=1e-8, atol=1e-11)
        np.testing.assert_allclose(mine[li].cond[mask], lb.cond[mask], rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(mine[li].comp[mask], lb.comp[mask], rtol=1e-8, atol=1e-12)


def test_not_positive_definite_is_infinite():
    d, ob = _objective("(x|a)+(1|b)", 0)
    theta = ob.theta_start()
    theta[:] = 1e200
    with np.errstate(all="ignore"):
        assert ob.deviance(theta) == np.inf


# ---------------------------------------------------------------------------
# spellings agree, references match
# ---------------------------------------------------------------------------
def test_stata_and_lme4_spellings_agree():
    df = _random_crossed(7, n=300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r1 = mx.mixed("mixed y x || _all: R.a || b:", df)
        r2 = mx.mixed("mixed y x || _all: R.a || _all: R.b", df)
        r3 = mx.lmer("y ~ x + (1|a) + (1|b)", df, reml=False)
    assert r1.llf == pytest.approx(r3.llf, rel=1e-9)
    assert r2.llf == pytest.approx(r3.llf, rel=1e-9)
    np.testing.assert_allclose(r1.params.to_numpy(), r3.params.to_numpy(), rtol=1e-4)


def _penicillin_case(name):
    return json.loads((Path(__file__).resolve().parent / "reference" / ("%s.json" % name)).read_text())


@pytest.mark.parametrize("name", ["penicillin_crossed_ml", "penicillin_crossed_reml"])
@pytest.mark.parametrize("front", ["stata", "stata_nested", "lme4"])
def test_penicillin_reference(name, front):
    case = _penicillin_case(name)
    pen = mx.load_dataset("penicillin")
    reml = case["method"] == "REML"
    if front == "stata":
        res = mx.mixed(case["stata"], pen)
    elif front == "stata_nested":  # || _all: R.plate || sample: is the same model
        res = mx.mixed("mixed diameter || _all: R.plate || sample:" + (", reml" if reml else ""), pen)
    else:
        res = mx.lmer("diameter ~ 1 + (1|plate) + (1|sample)", pen, reml=reml)
    assert isinstance(res.model.objective.engine, CrossedEngine)
    assert res.llf == pytest.approx(case["llf"], rel=1e-6)
    assert res.fe_params["_cons"] == pytest.approx(case["fe"]["_cons"], rel=1e-5)
    assert res.bse["_cons"] == pytest.approx(case["fe_se"]["_cons"], rel=1e-4)
    vc = res.variance_components["estimate"].to_numpy()
    ref = np.array(list(case["re"].values()))
    np.testing.assert_allclose(vc, ref, rtol=1e-4)
    if front == "stata":
        se = res.variance_components["std_err"].to_numpy()
        np.testing.assert_allclose(se, np.array(list(case["re_se"].values())), rtol=1e-3)


_SLOPES_A = {"a:var(x)": ("a", "x", None), "a:var(_cons)": ("a", "(Intercept)", None),
             "a:cov(x,_cons)": ("a", "(Intercept)", "x"), "b:var(_cons)": ("b", "(Intercept)", None)}
LME4_MODELS = {
    "slopes_a_ml": ("y ~ x + (x|a) + (1|b)", False, _SLOPES_A),
    "slopes_a_reml": ("y ~ x + (x|a) + (1|b)", True, _SLOPES_A),
    "slopes_b_ml": ("y ~ x + (1|a) + (x||b)", False,
                    {"a:var(_cons)": ("a", "(Intercept)", None), "b:var(x)": ("b.1", "x", None),
                     "b:var(_cons)": ("b", "(Intercept)", None)}),
}


@pytest.fixture(scope="module")
def lme4_ref():
    return json.loads(REF_PATH.read_text())


@pytest.mark.parametrize("key", list(LME4_MODELS))
def test_lme4_crossed_slopes(key, lme4_ref):
    formula, reml, names = LME4_MODELS[key]
    ref = lme4_ref["fits"][key]
    df = pd.DataFrame(lme4_ref["data"])
    res = mx.lmer(formula, df, reml=reml)
    assert isinstance(res.model.objective.engine, CrossedEngine)
    assert res.llf == pytest.approx(ref["llf"], rel=1e-6)
    assert res.fe_params["x"] == pytest.approx(ref["fe"]["x"], rel=1e-5)
    assert res.fe_params["_cons"] == pytest.approx(ref["fe"]["(Intercept)"], rel=1e-5)
    assert res.bse["x"] == pytest.approx(ref["fe_se"]["x"], rel=1e-4)
    assert res.bse["_cons"] == pytest.approx(ref["fe_se"]["(Intercept)"], rel=1e-4)
    vc = {(v["grp"], v["var1"], v["var2"]): v["vcov"] for v in ref["varcorr"]}
    for ours, key_r in names.items():
        assert res.params[ours] == pytest.approx(vc[key_r], rel=1e-4), ours
    assert res.params["Residual:var(Residual)"] == pytest.approx(vc[("Residual", None, None)], rel=1e-4)
    # conditional modes (BLUPs) of every term
    re = res.random_effects
    for grp, cols in ref["ranef"].items():
        levels = [int(v) for v in ref["ranef_levels"][grp]]
        for col, vals in cols.items():
            ours_col = "_cons" if col == "(Intercept)" else col
            mine = re[grp].loc[levels, ours_col].to_numpy()
            np.testing.assert_allclose(mine, vals, rtol=1e-4, atol=1e-4 * np.abs(vals).max())


# ---------------------------------------------------------------------------
# scale: sparse Z, no dense n x Q
# ---------------------------------------------------------------------------
def _big_crossed(n=30_000, na=1_200, nb=400, seed=3):
    rng = np.random.default_rng(seed)
    a = rng.permutation(np.arange(n) % na)
    b = rng.permutation(np.arange(n) % nb)
    x = rng.standard_normal(n)
    y = 1 + 0.5 * x + rng.normal(0, 1, na)[a] + rng.normal(0, 0.5, nb)[b] + rng.standard_normal(n)
    return pd.DataFrame({"a": a, "b": b, "x": x, "y": y})


def test_large_design_stays_sparse():
    df = _big_crossed()
    m = mx.MixedLMExt.from_stata("mixed y x || _all: R.a || b:", df)
    d = m.design
    assert sp.issparse(d.Z) and d.Z.nnz == 2 * d.n
    assert d.ZtZ is None
    eng = m.objective.engine
    assert isinstance(eng, CrossedEngine)
    assert [t.G for t in eng.terms] == [1200, 400] and eng.Q2 == 400
    res = m.fit()
    assert res.opt.converged
    # same fit through the lme4 spelling
    res2 = mx.lmer("y ~ x + (1|a) + (1|b)", df, reml=False)
    assert res2.llf == pytest.approx(res.llf, rel=1e-10)
    # conditional modes through the engine's back substitution equal a sparse direct solve
    theta = res.opt.theta
    prof = m.objective.profile(theta, keep=True)
    us = eng.solve_u(prof.elim, prof.beta_w)
    la, lb = theta[0], theta[1]
    rows = np.arange(d.n)
    Zf = sp.hstack([sp.csr_matrix((np.full(d.n, lb), (rows, d.data["b"].to_numpy())), shape=(d.n, 400)),
                    sp.csr_matrix((np.full(d.n, la), (rows, d.data["a"].to_numpy())), shape=(d.n, 1200))])
    P = (Zf.T @ Zf + sp.eye(1600)).tocsc()
    u = spsolve(P, Zf.T @ (d.y - d.X @ prof.beta))
    np.testing.assert_allclose(np.concatenate([us[0].ravel(), us[1].ravel()]), u, rtol=1e-8, atol=1e-10)
    # BLUPs and their conditional variances without any dense nested-layout factor
    blups = crossed_level_blups(res.model.objective, theta, res.cov_fe.to_numpy())  # level 0: _all (R.a), 1: b
    np.testing.assert_allclose(blups[1].b[:, 0], us[0][:, 0] * theta[1], rtol=1e-10)
    np.testing.assert_allclose(blups[0].b[0], us[1][0] * theta[0], rtol=1e-10)
    Pinv = np.linalg.inv(P.toarray())
    np.testing.assert_allclose(blups[1].cond[:, 0, 0], res.sigma2 * theta[1] ** 2 * np.diag(Pinv)[:400],
                               rtol=1e-8)
    np.testing.assert_allclose(np.diagonal(blups[0].cond[0]), res.sigma2 * theta[0] ** 2 * np.diag(Pinv)[400:],
                               rtol=1e-8)
    assert np.all(blups[1].comp >= blups[1].cond)


def test_sparse_expand_matches_dense():
    from mixedlm_ext.design.random import dense_expand as _expand

    rng = np.random.default_rng(0)
    base = rng.normal(size=(50, 2))
    codes = rng.integers(0, 7, 50)
    np.testing.assert_array_equal(design_random.sparse_expand(base, codes, 7).toarray(), _expand(base, codes, 7))


# ---------------------------------------------------------------------------
# regenerating the lme4 reference (needs R; never run by the tests)
# ---------------------------------------------------------------------------
R_SCRIPT = r'''
suppressPackageStartupMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[[1]])
d$a <- factor(d$a); d$b <- factor(d$b)
fits <- list(
  slopes_a_ml = list(f = y ~ x + (x | a) + (1 | b), reml = FALSE),
  slopes_a_reml = list(f = y ~ x + (x | a) + (1 | b), reml = TRUE),
  slopes_b_ml = list(f = y ~ x + (1 | a) + (x || b), reml = FALSE)
)
res <- list()
for (nm in names(fits)) {
  ft <- fits[[nm]]
  m <- lmer(ft$f, d, REML = ft$reml, control = lmerControl(optimizer = "bobyqa",
            optCtrl = list(maxfun = 1e5), check.conv.grad = .makeCC("warning", tol = 1e-6)))
  vc <- as.data.frame(VarCorr(m))
  fe <- fixef(m); se <- sqrt(diag(as.matrix(vcov(m))))
  re <- ranef(m)
  res[[nm]] <- list(
    call = paste0("lmer(", deparse(ft$f), ", d, REML = ", ft$reml, ")"),
    llf = as.numeric(logLik(m)),
    fe = as.list(fe), fe_se = as.list(se),
    varcorr = lapply(seq_len(nrow(vc)), function(i) list(grp = vc$grp[i], var1 = vc$var1[i],
                                                         var2 = vc$var2[i], vcov = vc$vcov[i])),
    theta = getME(m, "theta"),
    ranef = lapply(re, function(z) lapply(as.list(z), function(col) col)),
    ranef_levels = lapply(re, rownames)
  )
}
cat(jsonlite::toJSON(list(fits = res, R = paste(R.version$major, R.version$minor, sep = "."),
                          lme4 = as.character(packageVersion("lme4"))), auto_unbox = TRUE, digits = NA))
'''


def simulate_slopes(seed=20240601):
    """800 rows; a (40 levels) and b (25 levels) crossed and unbalanced; random
    intercepts and slopes on x for both factors."""
    rng = np.random.default_rng(seed)
    n_a, n_b, n = 40, 25, 800
    a = np.concatenate([np.arange(n_a), rng.choice(n_a, n - n_a, p=rng.dirichlet(np.full(n_a, 3.0)))])
    b = np.concatenate([np.arange(n_b), rng.choice(n_b, n - n_b, p=rng.dirichlet(np.full(n_b, 3.0)))])
    a, b = rng.permutation(a), rng.permutation(b)
    x = rng.normal(size=n).round(4)
    ua = rng.multivariate_normal([0, 0], [[1.0, 0.3], [0.3, 0.4]], n_a)
    ub = np.column_stack([rng.normal(0, 0.7, n_b), rng.normal(0, 0.5, n_b)])
    y = 2 + 0.5 * x + ua[a, 0] + ua[a, 1] * x + ub[b, 0] + ub[b, 1] * x + rng.normal(size=n)
    return pd.DataFrame({"a": a + 1, "b": b + 1, "x": x, "y": y.round(6)})


def make_reference() -> dict:
    import os
    import subprocess
    import tempfile

    df = simulate_slopes()
    with tempfile.TemporaryDirectory() as tmp:
        csv, script = os.path.join(tmp, "d.csv"), os.path.join(tmp, "fit.R")
        df.to_csv(csv, index=False)
        Path(script).write_text(R_SCRIPT)
        out = subprocess.run(["Rscript", script, csv], capture_output=True, text=True, check=True).stdout
    ref = {"id": "crossed_slopes_lme4",
           "description": "simulated crossed design with random slopes (800 rows, a: 40 levels, "
                          "b: 25 levels); lme4 fits: logLik, fixef, sqrt(diag(vcov)), "
                          "as.data.frame(VarCorr), ranef "
                          "(made by tests/test_crossed.py --make-reference)",
           "r_script": R_SCRIPT, **json.loads(out),
           "data": {c: df[c].tolist() for c in df.columns}}
    REF_PATH.parent.mkdir(parents=True, exist_ok=True)
    REF_PATH.write_text(json.dumps(ref, indent=1))
    return ref


if __name__ == "__main__":
    import sys

    if "--make-reference" in sys.argv:
        print({k: v["llf"] for k, v in make_reference()["fits"].items()})


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_standard_errors_of_a_large_crossed_block_match_a_hessian_at_the_optimum(seed):
    """The Newton stage from values steers with cheaper Hessians far from the optimum; the
    variance components' covariance it returns is that of a central Hessian at the optimum."""
    from mixedlm_ext.inference.vc import vc_covariance

    rng = np.random.default_rng(seed)
    n, na, nb = 2500, 400, 220
    a, b = rng.integers(0, na, n), rng.integers(0, nb, n)
    df = pd.DataFrame({"a": a, "b": b, "x": rng.normal(size=n)})
    df["y"] = 1 + df.x + rng.normal(size=na)[a] + 0.5 * rng.normal(size=nb)[b] + rng.normal(size=n)
    model = mx.MixedLMExt.from_lme4("y ~ x + (1|a) + (1|b)", df, reml=False)
    assert model.objective.value_hessian
    res = model.fit()
    ob, k = model.objective, model.k_fe
    ref = vc_covariance(ob, res.opt.theta, res.sigma2, np.asarray(res.params)[k:], ob.natural_kinds(),
                        res.opt.at_bound)
    cov = np.asarray(res.cov_params())[k:, k:]
    assert np.abs(cov - ref).max() <= 1e-4 * np.abs(ref).max()
