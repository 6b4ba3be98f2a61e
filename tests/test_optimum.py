"""The fit reaches the optimum: never below a brute-force dense maximum.

Seeded random designs of several classes (nested with intercepts and
slopes, three levels, crossed with slopes in both term orders, singleton-
heavy groups with a slope, tiny true variances, exchangeable covariances
near zero), each by ML and REML.  The reference is the dense likelihood of
``tests/dense_optimum.py`` maximised from several starts, one of them the
package's own estimate (so a point that is not a local optimum is caught)
and others independent of it (so a better basin is caught).
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from dense_optimum import DenseModel, DenseTerm

import mixedlm_ext as mx

REL_TOL = 1e-6


def _groups(rng, n_groups, lo, hi):
    return np.repeat(np.arange(n_groups), rng.integers(lo, hi + 1, n_groups))


def _frame(rng, g, extra=None, var_ratio=0.5, slope_ratio=0.0):
    n = len(g)
    df = pd.DataFrame({"g": g})
    df["x"] = rng.normal(size=n)
    df["z"] = rng.normal(size=n)
    G = int(g.max()) + 1
    u = rng.normal(size=G) * np.sqrt(var_ratio)
    s = rng.normal(size=G) * np.sqrt(slope_ratio)
    df["y"] = 1.0 + 0.5 * df.x + u[g] + s[g] * df.x + rng.normal(size=n)
    if extra is not None:
        for k, v in extra.items():
            df[k] = v
    return df.sample(frac=1.0, random_state=int(rng.integers(1 << 30))).reset_index(drop=True)


def nested_ri(rng):
    g = _groups(rng, int(rng.integers(4, 16)), 1, 8)
    return _frame(rng, g, var_ratio=float(rng.choice([0.0, 0.05, 0.5, 2.0]))), "mixed y x || g:"


def nested_rs(rng):
    g = _groups(rng, int(rng.integers(5, 14)), 2, 8)
    cov = rng.choice(["unstructured", "independent"])
    df = _frame(rng, g, var_ratio=float(rng.choice([0.0, 0.3, 1.0])), slope_ratio=float(rng.choice([0.0, 0.1, 0.5])))
    return df, "mixed y x || g: x, covariance(%s)" % cov


def nested3(rng):
    g = _groups(rng, int(rng.integers(3, 7)), 2, 12)
    df = _frame(rng, g, var_ratio=float(rng.choice([0.0, 0.2, 1.0])))
    df["b"] = df["g"] * 10 + rng.integers(0, 3, len(df))  # b nested in g
    return df, "mixed y x || g: || b:"


def _crossed_frame(rng):
    na, nb = int(rng.integers(4, 10)), int(rng.integers(3, 8))
    n = int(rng.integers(40, 90))
    a, b = rng.integers(0, na, n), rng.integers(0, nb, n)
    df = pd.DataFrame({"a": a, "b": b, "x": rng.normal(size=n)})
    ua = rng.normal(size=na) * np.sqrt(rng.choice([0.0, 0.1, 1.0]))
    ub = rng.normal(size=nb) * np.sqrt(rng.choice([0.0, 0.1, 1.0]))
    sb = rng.normal(size=nb) * np.sqrt(rng.choice([0.0, 0.05, 0.5]))
    df["y"] = 1 + 0.3 * df.x + ua[a] + ub[b] + sb[b] * df.x + rng.normal(size=n)
    return df


def crossed_slope(rng):
    return _crossed_frame(rng), "y ~ x + (1|a) + (x|b)"


def crossed_slope_reversed(rng):
    return _crossed_frame(rng), "y ~ x + (x|b) + (1|a)"


def singletons(rng):
    G1, G2 = int(rng.integers(8, 20)), int(rng.integers(3, 7))
    g = np.concatenate([np.arange(G1), np.repeat(np.arange(G1, G1 + G2), rng.integers(2, 6, G2))])
    df = _frame(rng, g, var_ratio=float(rng.choice([0.0, 0.5])), slope_ratio=float(rng.choice([0.0, 0.3])))
    return df, "mixed y x || g: x, covariance(unstructured)"


def tiny_variance(rng):
    g = _groups(rng, int(rng.integers(3, 9)), 3, 10)
    return _frame(rng, g, var_ratio=float(rng.choice([1e-4, 1e-3, 5e-3, 2e-2]))), "mixed y x || g:"


def exchangeable_near_zero(rng):
    g = _groups(rng, int(rng.integers(6, 15)), 3, 8)
    df = _frame(rng, g, var_ratio=float(rng.choice([0.0, 0.01, 0.1])), slope_ratio=float(rng.choice([0.0, 0.01])))
    return df, "mixed y x z || g: x z, covariance(exchangeable)"


CLASSES = [nested_ri, nested_rs, nested3, crossed_slope, crossed_slope_reversed, singletons, tiny_variance,
           exchangeable_near_zero]
SEEDS = range(15)


def _fit(df, model, reml):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if "~" in model:
            return mx.lmer(model, df, reml=reml)
        last = model.rsplit("||", 1)[-1]
        return mx.mixed(model + (("" if "," in last else ",") + " reml" if reml else ""), df)


def _dense(res) -> tuple[DenseModel, list[np.ndarray]]:
    """The dense model of a fit, built from the raw columns, and the fit's own
    estimate in the dense parameterisation."""
    d = res.model.design
    df = d.data
    terms, ours = [], []
    parts, _ = res.model.objective.split_theta(res.opt.theta)
    for blk, th in zip(d.blocks, parts):
        eq = blk.equation
        path = blk.expand_by if blk.expand_by else eq.group
        codes = pd.MultiIndex.from_frame(df[list(path)]).factorize()[0] if len(path) > 1 \
            else pd.factorize(df[path[0]])[0]
        cols = [df[c].to_numpy(float) for c in eq.columns] + ([np.ones(len(df))] if eq.constant else [])
        term = DenseTerm(np.asarray(codes), np.column_stack(cols), blk.structure.name)
        t = np.array(th, dtype=float)
        if term.structure == "exchangeable" and term.q > 1:
            lo = -1.0 / (term.q - 1)
            f = np.clip((t[1] - lo) / (1 - lo), 1e-12, 1 - 1e-12)
            t = np.array([t[0], np.log(f / (1 - f))])
        terms.append(term)
        ours.append(t)
    return DenseModel(d.y, d.X, terms, res.reml), ours


@pytest.mark.parametrize("reml", [False, True], ids=["ML", "REML"])
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("make", CLASSES, ids=[c.__name__ for c in CLASSES])
def test_never_below_dense_optimum(make, seed, reml):
    rng = np.random.default_rng([seed, CLASSES.index(make), int(reml)])
    df, model = make(rng)
    res = _fit(df, model, reml)
    dense, ours = _dense(res)
    own = np.concatenate(ours)
    assert -0.5 * dense.deviance(own) == pytest.approx(res.llf, rel=1e-9, abs=1e-9)  # same likelihood
    k = own.size
    starts = [own, np.ones(k), np.full(k, 0.1), rng.normal(size=k)]
    best, _ = dense.maximise(starts)
    assert res.llf >= best - REL_TOL * abs(best) - 1e-9, \
        "fit ended at llf %.10g, the dense optimum is %.10g (%s, %s)" % (res.llf, best, model, res.method)


@pytest.mark.parametrize("seed", range(10))
def test_crossed_term_order_does_not_change_the_fit(seed):
    rng = np.random.default_rng([seed, 99])
    df = _crossed_frame(rng)
    for reml in (False, True):
        a = _fit(df, "y ~ x + (1|a) + (x|b)", reml)
        b = _fit(df, "y ~ x + (x|b) + (1|a)", reml)
        assert a.llf == pytest.approx(b.llf, rel=1e-9, abs=1e-9)
