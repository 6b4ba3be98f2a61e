"""Cluster-robust standard errors: vce(robust), vce(cluster var), CR0/CR2.

* CR0 and CR2 fixed-effect SEs of the four REML models against clubSandwich
  (tests/reference/small_sample_lmertest.json);
* vce(robust) on an ML fit: fixed effects = CR0 * sqrt(M/(M-1)), and the whole
  sandwich (variance components included) against a brute-force computation
  from dense per-cluster normal log-densities;
* vce(cluster var) with clusters coarser than the top level; Stata's refusals.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import SMALL_SAMPLE_COMMANDS, load_reference

import mixedlm_ext as mx
from mixedlm_ext.inference.robust import ClusterLikelihood

REF = load_reference("small_sample_lmertest")
COMMANDS = SMALL_SAMPLE_COMMANDS


@pytest.mark.parametrize("case", list(COMMANDS))
def test_cr0_cr2_against_clubsandwich(case):
    cmd, ds = COMMANDS[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = mx.mixed(cmd, mx.load_dataset(ds))
    ref = REF[case]
    for kind in ("CR0", "CR2"):
        V = res.cluster_robust_cov(kind)
        for name, se in ref[kind.lower() + "_se"].items():
            assert abs(np.sqrt(V.loc[name, name]) / se - 1) < 1e-4, (kind, name)
    V1 = res.cluster_robust_cov("CR1")
    V0 = res.cluster_robust_cov("CR0")
    M = res.model.design.levels[0].n_groups
    assert np.allclose(V1.values, V0.values * M / (M - 1))


# ---------------------------------------------------------------------------
def _brute_cluster_loglik(data, beta, phi):
    """Per-pig log-density of weight ~ week + (week | id), unstructured, from dense V."""
    vw, vc, cwc, s2 = phi
    G = np.array([[vw, cwc], [cwc, vc]])
    out = []
    for _, g in data.groupby("id", sort=True):
        Z = np.column_stack([g.week.to_numpy(float), np.ones(len(g))])
        V = Z @ G @ Z.T + s2 * np.eye(len(g))
        r = g.weight.to_numpy(float) - (beta[0] * g.week.to_numpy(float) + beta[1])
        _, logdet = np.linalg.slogdet(V)
        out.append(-0.5 * (len(g) * np.log(2 * np.pi) + logdet + r @ np.linalg.solve(V, r)))
    return np.array(out)


@pytest.fixture(scope="module")
def pig_robust():
    pig = mx.load_dataset("pig")
    return pig, mx.mixed("mixed weight week || id: week, covariance(unstructured) vce(robust)", pig)


def test_cluster_loglik_decomposition(pig_robust):
    pig, res = pig_robust
    p = res.k_fe
    par = np.asarray(res.params)
    cl = ClusterLikelihood(res.model.objective)
    ll, sb = cl.loglik(par[p:], par[:p])
    assert np.isclose(ll.sum(), res.llf, rtol=1e-12, atol=0)
    assert np.allclose(ll, _brute_cluster_loglik(pig, par[:p], par[p:]), rtol=1e-10, atol=1e-9)
    assert np.allclose(sb.sum(axis=0), 0, atol=1e-6)


def test_vce_robust_against_brute_force(pig_robust):
    pig, res = pig_robust
    p = res.k_fe
    par = np.asarray(res.params)
    k = par.size
    # per-cluster scores of all parameters by central differences of the dense log-densities
    h = 1e-5 * np.maximum(np.abs(par), 0.1)
    S = np.zeros((48, k))
    for m in range(k):
        e = np.zeros(k)
        e[m] = h[m]
        S[:, m] = (_brute_cluster_loglik(pig, *np.split(par + e, [p]))
                   - _brute_cluster_loglik(pig, *np.split(par - e, [p]))) / (2 * h[m])
    # H_phi,beta by differencing the total beta score
    Hpb = np.zeros((k - p, p))
    for m in range(p, k):
        e = np.zeros(k)
        e[m] = h[m]
        sp = np.zeros(p)
        sm = np.zeros(p)
        for j in range(p):
            f = np.zeros(k)
            f[j] = h[j]
            sp[j] = (_brute_cluster_loglik(pig, *np.split(par + e + f, [p])).sum()
                     - _brute_cluster_loglik(pig, *np.split(par + e - f, [p])).sum()) / (2 * h[j])
            sm[j] = (_brute_cluster_loglik(pig, *np.split(par - e + f, [p])).sum()
                     - _brute_cluster_loglik(pig, *np.split(par - e - f, [p])).sum()) / (2 * h[j])
        Hpb[m - p] = (sp - sm) / (2 * h[m])
    oim = mx.mixed("mixed weight week || id: week, covariance(unstructured)", pig)
    bread = np.asarray(oim.cov_params())
    sb, sphi = S[:, :p], S[:, p:]
    S_eff = np.column_stack([sb, sphi + sb @ bread[:p, :p] @ Hpb.T])
    V = bread @ (S_eff.T @ S_eff) @ bread * 48 / 47
    assert np.allclose(np.sqrt(np.diag(V)), np.asarray(res.bse), rtol=2e-4)
    # fixed effects: exactly CR0 * sqrt(M/(M-1)) of the same fit
    V0 = res.cluster_robust_cov("CR0")
    assert np.allclose(res.bse_fe.values, np.sqrt(np.diag(V0.values) * 48 / 47), rtol=1e-10)
    assert np.allclose(res.params, oim.params)


def test_robust_output(pig_robust):
    _, res = pig_robust
    assert res.vce == "robust" and res.n_clusters == 48
    text = str(res.summary())
    assert "(Std. err. adjusted for 48 clusters in id)" in text
    assert "Robust" in text and "LR test" not in text
    with pytest.raises(ValueError, match="not valid after robust"):
        mx.lrtest(res, mx.mixed("mixed weight week || id:", mx.load_dataset("pig")))


def test_vce_cluster_coarser_variable():
    pig = mx.load_dataset("pig")
    pig["pen"] = (pig["id"] - 1) // 4  # 12 pens of 4 pigs (not in the model)
    res = mx.mixed("mixed weight week || id:, vce(cluster pen)", pig)
    assert res.n_clusters == 12 and res.cluster_label == "pen"
    assert "(Std. err. adjusted for 12 clusters in pen)" in str(res.summary())
    # fixed effects: brute-force sandwich with the pens as clusters
    par = np.asarray(res.params)
    beta, (v_u, s2) = par[:2], par[2:]
    X = np.column_stack([pig.week, np.ones(len(pig))]).astype(float)
    bread = np.zeros((2, 2))
    U = np.zeros((12, 2))
    for gid, g in pig.groupby("id"):
        idx = g.index.to_numpy()
        V = v_u * np.ones((len(idx), len(idx))) + s2 * np.eye(len(idx))
        Xi = X[idx]
        ViX = np.linalg.solve(V, Xi)
        bread += Xi.T @ ViX
        U[int(g.pen.iloc[0])] += ViX.T @ (pig.weight.to_numpy(float)[idx] - Xi @ beta)
    B = np.linalg.inv(bread)
    Vfe = B @ U.T @ U @ B * 12 / 11
    assert np.allclose(res.bse_fe.values, np.sqrt(np.diag(Vfe)), rtol=1e-6)
    # the same through fit(vce=...)
    r2 = mx.MixedLMExt.from_stata("mixed weight week || id:", pig).fit(vce="cluster pen")
    assert np.allclose(r2.bse, res.bse)
    assert np.allclose(res.cluster_robust_cov("CR1", cluster="pen").values, Vfe, rtol=1e-6)


def test_vce_cluster_not_nested():
    pig = mx.load_dataset("pig")
    pig["half"] = (pig["week"] > 4).astype(int)
    with pytest.raises(ValueError, match="not nested within half"):
        mx.mixed("mixed weight week || id:, vce(cluster half)", pig)


def test_three_level_robust_clusters_at_top():
    res = mx.mixed("mixed gsp private emp hwy water other unemp || region: || state:, vce(robust)",
                   mx.load_dataset("productivity"))
    assert res.n_clusters == 9 and res.cluster_label == "region"
    assert np.all(np.isfinite(np.asarray(res.bse)))
    V0 = res.cluster_robust_cov("CR0")
    assert np.allclose(res.bse_fe.values, np.sqrt(np.diag(V0.values) * 9 / 8), rtol=1e-10)
