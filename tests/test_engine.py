"""The block-elimination engine equals the dense likelihood it stands for."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import dense_neg2ll

from mixedlm_ext.design.build import build_design
from mixedlm_ext.fit.em import conditional_moments
from mixedlm_ext.fit.objective import Objective
from mixedlm_ext.spec.model import ModelSpec, REEquation


def _random_nested(seed):
    rng = np.random.default_rng(seed)
    rows = []
    for a in range(rng.integers(3, 6)):
        for b in range(rng.integers(1, 4)):
            for _ in range(rng.integers(1, 6)):
                rows.append((a, b))
    df = pd.DataFrame(rows, columns=["a", "b"])
    n = len(df)
    df["x"] = rng.normal(size=n)
    df["z"] = rng.normal(size=n)
    df["y"] = 1 + df.x + rng.normal(size=n)
    return df.sample(frac=1.0, random_state=seed).reset_index(drop=True)  # unsorted input


def _dense_neg2ll(design, objective, phi, reml):
    """-2 log-likelihood from V = Z G Z' + sigma2 I built densely (beta at GLS)."""
    parts, res_nat = objective.split_natural(phi)
    sigma2 = float(res_nat[-1])
    n = design.n
    V = sigma2 * np.eye(n)
    i = 0
    for lvl in design.levels:
        for blk in lvl.blocks:
            G = blk.structure.cov_from_natural(parts[i])
            i += 1
            cols = [design.data[c].to_numpy(float) for c in blk.equation.columns]
            if blk.equation.constant:
                cols.append(np.ones(n))
            B = np.column_stack(cols)
            same = lvl.codes[:, None] == lvl.codes[None, :]
            V += same * (B @ G @ B.T)
    return dense_neg2ll(V, design.X, design.y, reml)


SPECS = [
    (REEquation(("a",)), REEquation(("a", "b"))),
    (REEquation(("a",), ("x",), True, "unstructured"), REEquation(("a", "b"))),
    (REEquation(("a",), ("z",), True, "independent"), REEquation(("a", "b"), ("x",), True, "unstructured")),
    (REEquation(("a",), ("x", "z"), True, "exchangeable"),),
    (REEquation(("a",), ("x",), True, "unstructured"), REEquation(("a",), ("z",), False, "identity")),
]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("k", range(len(SPECS)))
@pytest.mark.parametrize("reml", [False, True])
def test_engine_equals_dense(seed, k, reml):
    df = _random_nested(seed)
    spec = ModelSpec("y", "x", True, SPECS[k], reml=reml)
    d = build_design(spec, df)
    ob = Objective(d, reml=reml)
    rng = np.random.default_rng(seed + 10)
    theta = ob.theta_start() + 0.3 * rng.uniform(size=ob.n_theta)
    theta = np.clip(theta, [b[0] if b[0] is not None else -np.inf for b in ob.theta_bounds()],
                    [b[1] if b[1] is not None else np.inf for b in ob.theta_bounds()])
    prof = ob.profile(theta)
    phi = ob.natural_from_theta(theta, 1.7)
    assert np.isclose(ob.neg2ll_natural(phi), _dense_neg2ll(d, ob, phi, reml), rtol=1e-9)
    # profiled deviance is the minimum over sigma2
    phi_hat = ob.natural_from_theta(theta, prof.sigma2)
    assert np.isclose(prof.deviance, _dense_neg2ll(d, ob, phi_hat, reml), rtol=1e-9)


def test_conditional_moments_equal_dense_posterior():
    df = _random_nested(3)
    spec = ModelSpec("y", "x", True, (REEquation(("a",), ("x",), True, "unstructured"), REEquation(("a", "b"))))
    d = build_design(spec, df)
    ob = Objective(d)
    theta = ob.theta_start() * 0.8
    prof, u_hat, joint = conditional_moments(ob, theta)
    Lam = ob.lambda_from_theta(theta)
    # expand to one column block per group, finest level first (the engine's order)
    Zs, Ls, off = [], [], 0
    for lvl in d.levels[::-1]:
        q = lvl.q
        Zl = d.Z[:, off:off + q]
        ind = np.eye(lvl.n_groups)[lvl.codes]
        Zs.append((ind[:, :, None] * Zl[:, None, :]).reshape(d.n, -1))
        Ls.append(np.kron(np.eye(lvl.n_groups), Lam[off:off + q, off:off + q]))
        off += q
    Z = np.column_stack(Zs)
    from scipy.linalg import block_diag
    L = block_diag(*Ls)
    P = L.T @ Z.T @ Z @ L + np.eye(Z.shape[1])
    r = d.y - d.X @ prof.beta
    u_dense = np.linalg.solve(P, L.T @ Z.T @ r)
    Pinv = np.linalg.inv(P)
    G_fine = d.levels[-1].n_groups
    q_fine = d.levels[-1].q
    np.testing.assert_allclose(np.concatenate([u.ravel() for u in u_hat]), u_dense, rtol=1e-8, atol=1e-10)
    # conditional covariance of the finest level's groups
    for g in range(G_fine):
        sl = slice(g * q_fine, (g + 1) * q_fine)
        np.testing.assert_allclose(joint[0][g][:q_fine, :q_fine], Pinv[sl, sl], rtol=1e-8, atol=1e-12)
