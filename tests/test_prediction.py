"""get_prediction().summary_frame(): against a dense Henderson mixed-model-equations computation."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mixedlm_ext as mx


def henderson_cov(res) -> tuple[np.ndarray, np.ndarray, int]:
    """``sigma2 * C^-1`` of the dense mixed model equations in (beta, u), one grouping level."""
    d = res.model.design
    codes = d.levels[-1].codes
    G, q = codes.max() + 1, d.Z.shape[1]
    Z = np.zeros((d.n, G * q))
    for j in range(q):
        Z[np.arange(d.n), codes * q + j] = d.Z[:, j]
    s2 = res.fit_profile.sigma2
    lam = res.model.objective.lambda_from_theta(res.opt.theta)
    Ginv = np.kron(np.eye(G), np.linalg.inv(s2 * lam @ lam.T))
    M = np.block([[d.X.T @ d.X, d.X.T @ Z], [Z.T @ d.X, Z.T @ Z + s2 * Ginv]])
    return s2 * np.linalg.inv(M), s2 * lam @ lam.T, q


@pytest.mark.parametrize("cmd", ["mixed weight week || id:", "mixed weight week || id: week, covariance(unstructured)",
                                 "mixed weight week || id: week, reml"])
def test_prediction_intervals_against_henderson(cmd):
    pig = mx.load_dataset("pig")
    res = mx.mixed(cmd, pig)
    new = pd.DataFrame({"week": [1.0, 4.5, 9.0, 3.0], "id": [1, 7, 48, 1000]})
    C, Gq, q = henderson_cov(res)
    keys = res.model.design.levels[-1].keys["id"].to_numpy()
    p = res.k_fe
    frame = res.get_prediction(new, random_effects=True).summary_frame(alpha=0.1)
    pop = res.get_prediction(new).summary_frame(alpha=0.1)
    z = stats.norm.ppf(0.95)
    s2 = res.fit_profile.sigma2
    for i, row in new.iterrows():
        x = np.array([row["week"], 1.0])
        zr = x if q == 2 else np.array([1.0])
        if row["id"] in keys:
            g = int(np.flatnonzero(keys == row["id"])[0])
            a = np.zeros(C.shape[0])
            a[:p] = x
            a[p + g * q:p + (g + 1) * q] = zr
            assert frame.loc[i, "mean_se"] == pytest.approx(np.sqrt(a @ C @ a), rel=1e-6)
        else:  # a new pig: the population-level mean, its random effect unknown
            assert frame.loc[i, "mean"] == pytest.approx(pop.loc[i, "mean"])
            assert frame.loc[i, "mean_se"] == pytest.approx(np.sqrt(x @ C[:p, :p] @ x + zr @ Gq @ zr), rel=1e-6)
        se_obs = np.sqrt(frame.loc[i, "mean_se"] ** 2 + s2)
        assert frame.loc[i, "obs_ci_upper"] - frame.loc[i, "mean"] == pytest.approx(z * se_obs, rel=1e-10)
        # population level: x'V x for the mean; + z'Gz + sigma2 for a new observation
        assert pop.loc[i, "mean_se"] == pytest.approx(np.sqrt(x @ res.cov_fe.to_numpy() @ x), rel=1e-10)
        assert pop.loc[i, "obs_ci_lower"] == pytest.approx(
            pop.loc[i, "mean"] - z * np.sqrt(pop.loc[i, "mean_se"] ** 2 + zr @ Gq @ zr + s2), rel=1e-10)
    np.testing.assert_allclose(frame["mean"], res.predict(new, kind="fitted"))
    np.testing.assert_allclose(pop["mean_se"], res.predict(new, kind="stdp"))
    assert list(frame.columns) == ["mean", "mean_se", "mean_ci_lower", "mean_ci_upper", "obs_ci_lower",
                                   "obs_ci_upper"]


def test_prediction_on_estimation_sample_and_refusals():
    pig = mx.load_dataset("pig")
    res = mx.mixed("mixed weight week || id:", pig)
    pr = res.get_prediction(random_effects=True)
    np.testing.assert_allclose(pr.predicted_mean, res.predict(kind="fitted").to_numpy())
    assert pr.conf_int().shape == (len(pig), 2)
    prod = mx.mixed("mixed gsp private emp hwy water other unemp || region: || state:", mx.load_dataset("productivity"))
    with pytest.raises(NotImplementedError, match="one term"):
        prod.get_prediction(random_effects=True)
    assert np.isfinite(prod.get_prediction().summary_frame()["obs_ci_lower"]).all()
    with pytest.warns(UserWarning, match="independent residuals"):
        ar = mx.mixed("mixed weight week || id:, residuals(ar 1, t(week))", pig)
        assert ar.get_prediction().summary_frame()["obs_ci_lower"].isna().all()
