"""The analytic gradients equal finite differences of the likelihood they differentiate.

Seeded random designs of every kind the engines handle: nested levels with
every covariance structure, block-diagonal levels, frequency and sampling
weights at several levels, ``R.x`` factors, crossed terms (the folded and the
unfolded ``Kmat`` map and the sparse-product path without a map) and every
residual structure (whose parameters are differentiated through the
whitened cross-products); ML and REML; the profiled deviance in ``theta`` and
-2 log-likelihood in the estimation metric ``psi = (theta, log sigma2)``.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedlm_ext as mx
import mixedlm_ext.engines.crossed_kmat as crossed_kmat
from mixedlm_ext.structures.covariance import CovStruct, Exchangeable, Identity, Independent, Unstructured

REL_TOL = 1e-6  # |analytic - central difference| / max(1, |gradient|)


def _central(f, x, h=1e-5):
    g = np.zeros_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h * max(1.0, abs(x[i]))
        g[i] = (f(x + e) - f(x - e)) / (2.0 * e[i])
    return g


def _interior_point(ob, rng):
    """A random parameter vector away from the bounds."""
    th = ob.theta_start() + 0.3 * rng.normal(size=ob.n_theta)
    for i, (lo, hi) in enumerate(ob.theta_bounds()):
        if lo is not None and hi is not None and hi - lo < 3:  # a correlation-like parameter
            th[i] = lo + (hi - lo) * (0.3 + 0.4 * rng.random())
        elif lo is not None:
            th[i] = max(th[i], lo + 0.05 + 0.1 * rng.random())
    return th


def _check(ob, rng):
    th = _interior_point(ob, rng)
    dev, g = ob.value_and_gradient(th)
    assert dev == pytest.approx(ob.deviance(th), rel=1e-12)
    num = _central(ob.deviance, th)
    assert np.abs(g - num).max() <= REL_TOL * max(1.0, np.abs(num).max()), (g, num)
    psi = np.append(th, np.log(0.5 + rng.random()))
    f, gp = ob.estimation_value_and_gradient(psi)
    assert f == pytest.approx(ob.neg2ll_estimation(psi), rel=1e-12)
    num = _central(ob.neg2ll_estimation, psi)
    assert np.abs(gp - num).max() <= REL_TOL * max(1.0, np.abs(num).max()), (gp, num)


def _nested_frame(seed):
    rng = np.random.default_rng(seed)
    rows = [(a, a * 10 + b) for a in range(int(rng.integers(5, 9))) for b in range(int(rng.integers(1, 4)))
            for _ in range(int(rng.integers(1, 6)))]
    df = pd.DataFrame(rows, columns=["a", "b"])
    n = len(df)
    df["x"] = rng.normal(size=n)
    df["z"] = rng.normal(size=n)
    df["c"] = rng.integers(0, 3, n)
    df["w"] = rng.integers(1, 4, n)
    df["wa"] = df["a"] % 3 + 1.5
    df["y"] = 1 + df.x + rng.normal(size=df.a.max() + 1)[df.a] + rng.normal(size=n)
    return df.sample(frac=1.0, random_state=seed).reset_index(drop=True), rng


NESTED = [
    "mixed y x || a:",
    "mixed y x || a: x, cov(un)",
    "mixed y x || a: x z, cov(un) reml",
    "mixed y x || a: x z, cov(exch)",
    "mixed y x || a: x z, cov(ind) reml",
    "mixed y x || a: x z, cov(identity)",
    "mixed y x || a: || b:",
    "mixed y x || a: x || b: x z, cov(un) reml",
    "mixed y x || a: x, cov(un) || a: z, nocons || b: z",  # block-diagonal level
    "mixed y x || a: R.c",
    "mixed y x || _all: R.c || a:",
    "mixed y x [fw=w] || a: x",
    "mixed y x [pw=w] || a:, pweight(wa) || b:",
    "mixed y x, nocons || a:",
]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("command", NESTED)
def test_nested_gradient(command, seed):
    df, rng = _nested_frame(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ob = mx.MixedLMExt.from_stata(command, df).objective
    _check(ob, rng)


def _crossed_frame(seed):
    rng = np.random.default_rng(100 + seed)
    na, nb, n = int(rng.integers(5, 9)), int(rng.integers(3, 7)), int(rng.integers(50, 90))
    a, b = rng.integers(0, na, n), rng.integers(0, nb, n)
    df = pd.DataFrame({"a": a, "b": b, "c": rng.integers(0, 3, n), "x": rng.normal(size=n), "z": rng.normal(size=n)})
    df["y"] = 1 + df.x + rng.normal(size=na)[a] + rng.normal(size=nb)[b] + rng.normal(size=n)
    return df, rng


CROSSED = [
    "y ~ x + (1|a) + (1|b)",
    "y ~ x + (x|a) + (1|b)",
    "y ~ x + (1|a) + (x|b)",
    "y ~ x + (x + z|a) + (z|b)",  # other term with q > 1: unfolded map
    "y ~ x + (1|a) + (1|b) + (1|c)",
    "y ~ x + (1|a) + (0 + x|a) + (1|b)",
    "y ~ x + (1|a) + (x||b)",
]


@pytest.mark.parametrize("kmat", [True, False])
@pytest.mark.parametrize("reml", [False, True])
@pytest.mark.parametrize("formula", CROSSED)
def test_crossed_gradient(formula, reml, kmat, monkeypatch):
    if not kmat:  # the sparse-product path, used when the map would be too large
        monkeypatch.setattr(crossed_kmat, "_KMAT_MAX_NNZ", -1)
    df, rng = _crossed_frame(len(formula) + reml)
    ob = mx.MixedLMExt.from_lme4(formula, df, reml=reml).objective
    assert (ob.engine.kmat is not None) == kmat
    _check(ob, rng)


def _panel_frame(seed):
    rng = np.random.default_rng(200 + seed)
    rows = [(a, t) for a in range(8) for t in range(int(rng.integers(3, 7)))]
    df = pd.DataFrame(rows, columns=["a", "t"])
    n = len(df)
    df["x"] = rng.normal(size=n)
    df["h"] = df.a % 2
    df["tt"] = df.t + rng.random(n)
    df["y"] = 1 + df.x + rng.normal(size=8)[df.a] + rng.normal(size=n)
    return df, rng


RESIDUAL = [
    "mixed y x || a:, residuals(ar 1, t(t))",
    "mixed y x || a:, residuals(ar 2, t(t)) reml",
    "mixed y x || a:, residuals(ma 2, t(t))",
    "mixed y x || a:, residuals(toeplitz 2, t(t))",
    "mixed y x || a:, residuals(exponential, t(tt))",
    "mixed y x || a: x, residuals(banded 1, t(t))",
    "mixed y x || a: x, nocons residuals(unstructured, t(t))",
    "mixed y x || a: x, nocons residuals(exchangeable)",
    "mixed y x || a:, residuals(independent, by(h))",
    "mixed y x || a:, residuals(ar 1, t(t) by(h))",
]


@pytest.mark.parametrize("command", RESIDUAL)
def test_residual_gradient(command):
    df, rng = _panel_frame(len(command))
    ob = mx.MixedLMExt.from_stata(command, df).objective
    assert ob.residual.n_params > 0
    _check(ob, rng)


KERNEL = [
    "mixed y x || a:",
    "mixed y x || a:, reml",
    "mixed y x || a: x, cov(un)",
    "mixed y x || a: x, cov(un) reml",
    "mixed y x || a: x, cov(ind)",
    "mixed y x || a: x, cov(identity)",
    "mixed y x || a: x z, cov(exch)",  # q = 3: the engine
    "mixed y x, nocons || a: x",
]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("command", KERNEL)
def test_single_block_kernel_equals_engine(command, seed):
    """The closed forms for one small block give the engine's deviance and gradient."""
    df, rng = _nested_frame(seed)
    ob = mx.MixedLMExt.from_stata(command, df).objective
    assert (ob.kernel is not None) == ("exch" not in command)
    for _ in range(3):
        th = _interior_point(ob, rng)
        dev_engine = ob.profile(th).deviance  # the general engine
        assert ob.deviance(th) == pytest.approx(dev_engine, rel=1e-11)
        _, g = ob.value_and_gradient(th)
        num = _central(lambda t: ob.profile(t).deviance, th)
        assert np.abs(g - num).max() <= REL_TOL * max(1.0, np.abs(num).max())


@pytest.mark.parametrize("structure", [Identity(3), Independent(3), Exchangeable(3), Exchangeable(4),
                                       Unstructured(3)])
def test_factor_jacobian(structure):
    rng = np.random.default_rng(structure.q)
    th = structure.theta_start() + 0.2 * rng.random(structure.n_theta)
    generic = CovStruct.factor_jacobian(structure, th)  # central differences of relative_factor
    assert np.allclose(structure.factor_jacobian(th), generic, atol=1e-8)


@pytest.mark.parametrize("command", [c for c in KERNEL if "exch" not in c])
def test_single_block_kernel_em_step(command, monkeypatch):
    """The kernel's EM step is the engine's."""
    from mixedlm_ext.fit import em

    df, rng = _nested_frame(3)
    ob = mx.MixedLMExt.from_stata(command, df).objective
    th = _interior_point(ob, rng)
    fast = em.em_step(ob, th)
    monkeypatch.setattr(ob, "kernel", None)
    assert np.allclose(fast, em.em_step(ob, th), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("command", [c for c in KERNEL if "exch" not in c] + ["mixed y x || a: z, cov(exch)"])
def test_single_block_kernel_hessian(command, seed):
    """The kernel's closed-form Hessian in psi = (theta, log sigma2) equals central
    differences of the analytic gradient."""
    df, rng = _nested_frame(seed)
    ob = mx.MixedLMExt.from_stata(command, df).objective
    psi = np.append(_interior_point(ob, rng), np.log(0.5 + rng.random()))
    f, g, H = ob.estimation_hessian(psi)
    f0, g0 = ob.estimation_value_and_gradient(psi)
    assert f == pytest.approx(f0, rel=1e-12) and np.allclose(g, g0, rtol=1e-10, atol=1e-10)
    num = np.column_stack([(ob.estimation_value_and_gradient(psi + e)[1] - ob.estimation_value_and_gradient(psi - e)[1])
                           / (2 * e.max()) for e in np.eye(psi.size) * 1e-5])
    assert np.abs(H - num).max() <= 1e-5 * max(1.0, np.abs(num).max()), (H, num)


def test_value_hessian_of_a_large_crossed_block():
    """With a large dense crossed block the Hessian comes from values (logdet and r2
    differenced separately); it equals central differences of the analytic gradient."""
    from mixedlm_ext.fit.optimizer import psi_hessian

    rng = np.random.default_rng(7)
    n, na, nb = 2500, 400, 220
    a, b = rng.integers(0, na, n), rng.integers(0, nb, n)
    df = pd.DataFrame({"a": a, "b": b, "x": rng.normal(size=n)})
    df["y"] = 1 + df.x + rng.normal(size=na)[a] + 0.5 * rng.normal(size=nb)[b] + rng.normal(size=n)
    ob = mx.MixedLMExt.from_lme4("y ~ x + (1|a) + (1|b)", df, reml=False).objective
    assert ob.value_hessian
    psi = np.array([0.9, 0.45, 0.1])
    calls = []
    f, g, H = ob.estimation_hessian_values(psi, np.ones(2, dtype=bool), evaluate=lambda t: calls.append(1)
                                           or ob.evaluate(t))
    f0, g0 = ob.estimation_value_and_gradient(psi)
    assert f == pytest.approx(f0, rel=1e-12)
    assert np.abs(g - g0).max() <= 1e-5 * np.abs(g0).max()  # O(h^2) central differences
    num = np.column_stack([(ob.estimation_value_and_gradient(psi + e)[1] - ob.estimation_value_and_gradient(psi - e)[1])
                           / (2 * e.max()) for e in np.eye(3) * 1e-5])
    assert np.abs(H - num).max() <= 1e-5 * np.abs(num).max()
    assert len(calls) == 7
    # far from the optimum: cross terms one-sided (one evaluation fewer per pair), the rest unchanged
    calls.clear()
    f1, g1, H1 = ob.estimation_hessian_values(psi, np.ones(2, dtype=bool), central=False,
                                              evaluate=lambda t: calls.append(1) or ob.evaluate(t))
    assert len(calls) == 6 and f1 == f and np.array_equal(g1, g)
    assert np.allclose(np.diag(H1), np.diag(H), rtol=1e-12)
    assert np.abs(H1 - num).max() <= 1e-2 * np.abs(num).max()


@pytest.mark.parametrize("command, data", [
    ("mixed weight week || id: week, covariance(unstructured)", "pig"),  # the closed-form kernel
    ("mixed gsp private emp || region: || state:", "productivity"),  # gradient differences
])
def test_newton_computes_one_accurate_hessian_per_iteration_off_the_value_path(monkeypatch, command, data):
    """Only Hessians from values have a cheaper steering form; every other Newton
    iteration computes one Hessian, of full accuracy."""
    import mixedlm_ext.fit.optimizer as opt

    calls = []
    original = opt.psi_hessian

    def counting(*args, **kwargs):
        out = original(*args, **kwargs)
        calls.append(out[3])  # the Hessian has full accuracy
        return out

    monkeypatch.setattr(opt, "psi_hessian", counting)
    ob = mx.MixedLMExt.from_stata(command, mx.load_dataset(data)).objective
    assert not ob.value_hessian
    nr = opt.newton_estimation(ob, ob.initial_theta(), ob.theta_bounds(), max_iter=30)
    assert len(calls) == nr.n_iter >= 2 and all(calls)
