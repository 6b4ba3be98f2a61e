"""core.distributions (scipy.special) against scipy.stats, over seeded random arguments."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mixedlm_ext.core import distributions as dist

RNG = np.random.default_rng(20261201)
X = np.concatenate([RNG.normal(0, 3, 200), [0.0, 1e-8, 8.5, -8.5]])
P = np.concatenate([RNG.uniform(0, 1, 200), [1e-10, 0.5, 0.975, 1 - 1e-10]])
DF = np.concatenate([RNG.uniform(0.5, 200, 200), [1.0, 2.0, np.inf, 1e6]])


def _close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-300)


def test_normal():
    _close(dist.norm_sf(X), stats.norm.sf(X))
    _close(dist.norm_ppf(P), stats.norm.ppf(P))


def test_t_including_infinite_df():
    _close(dist.t_sf(X, DF), stats.t.sf(X, DF))
    _close(dist.t_ppf(P, DF), stats.t.ppf(P, DF))


@pytest.mark.parametrize("df", [1, 2, 3, 7, 30])
def test_chi2(df):
    x = np.abs(X) ** 2
    _close(dist.chi2_sf(x, df), stats.chi2.sf(x, df))
    assert np.isnan(dist.chi2_sf(1.0, 0)) and np.isnan(stats.chi2.sf(1.0, 0))


def test_f():
    x = np.abs(X)
    d1, d2 = RNG.uniform(1, 20, x.size), RNG.uniform(1, 500, x.size)
    _close(dist.f_sf(x, d1, d2), stats.f.sf(x, d1, d2))
