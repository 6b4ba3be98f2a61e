"""Fits on Dask DataFrames equal the in-memory fits of the same rows.

Every reference case, split into several partitions, on the synchronous
scheduler and on a ``LocalCluster`` with two worker processes (localhost
only): llf within 1e-8 relative of the in-memory fit, the same estimates
(fixed effects 1e-5, variance components and standard errors 1e-4
relative, the optimiser's tolerance) and the reference values (llf 1e-6).
Structures that have no per-panel sufficient statistics raise an error
naming the option.  The public statistics merge: three chunks add up to the
whole.  Predictions on Dask are Dask collections computed partition by
partition.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import REFERENCE_CASE_IDS, load_reference

import mixedlm_ext as mx
from mixedlm_ext import ModelSpecificationError

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

OUT_OF_CORE_RESIDUALS = ("independent", "exchangeable", "ar", "exponential")


def _quiet(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **kw)


def _rel(a, b, floor=1e-10):
    return abs(a - b) / max(abs(b), floor)


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes on localhost, one thread each."""
    lc = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, silence_logs=40)
    client = distributed.Client(lc, set_as_default=False)
    yield client
    client.close()
    lc.close()


def _scheduler(name, cluster):
    if name == "sync":
        return dask.config.set(scheduler="synchronous")
    return dask.config.set(scheduler=cluster.get)


@pytest.fixture(params=["sync", "cluster"])
def scheduler(request, cluster):
    with _scheduler(request.param, cluster if request.param == "cluster" else None):
        yield request.param


def _case_frame(case):
    return mx.load_dataset(case["data"].replace(".csv", ""))


def _assert_same_fit(r, r0):
    assert r.nobs == r0.nobs
    assert _rel(r.llf, r0.llf) < 1e-8
    k = r0.k_fe
    p, p0 = np.asarray(r.params), np.asarray(r0.params)
    assert list(r.params.index) == list(r0.params.index)
    assert np.allclose(p[:k], p0[:k], rtol=1e-5, atol=1e-8 * np.abs(p0[:k]).max())
    assert np.allclose(p[k:], p0[k:], rtol=1e-4, atol=1e-6 * np.abs(p0[k:]).max())
    se, se0 = np.asarray(r.bse), np.asarray(r0.bse)
    ok = np.isfinite(se0)
    assert np.array_equal(ok, np.isfinite(se))
    assert np.allclose(se[ok], se0[ok], rtol=1e-4)
    assert np.allclose(r.conf_int()[ok], r0.conf_int()[ok], rtol=1e-4, atol=1e-8)
    assert _rel(r.lrtest_linear.statistic, r0.lrtest_linear.statistic, 1e-8) < 1e-6
    if r0.wald_chi2 is not None:
        assert _rel(r.wald_chi2.statistic, r0.wald_chi2.statistic) < 1e-4


@pytest.mark.parametrize("case_id", REFERENCE_CASE_IDS)
def test_reference_case_on_partitions(case_id, scheduler):
    case = load_reference(case_id)
    df = _case_frame(case)
    ddf = dd.from_pandas(df, npartitions=3)
    kind = mx.parse_stata(case["stata"]).residual.kind
    if kind not in OUT_OF_CORE_RESIDUALS:
        with pytest.raises(ModelSpecificationError, match=r"residuals\(%s.*not available out of core" % kind):
            mx.mixed(case["stata"], ddf)
        return
    r = _quiet(mx.mixed, case["stata"], ddf)
    r0 = _quiet(mx.mixed, case["stata"], df)
    assert r.converged
    _assert_same_fit(r, r0)
    assert _rel(r.llf, case["llf"]) < 1e-6
    for name, table in r0.random_effects.items():  # BLUPs and their standard errors
        np.testing.assert_allclose(r.random_effects[name].to_numpy(), table.to_numpy(), rtol=1e-4,
                                   atol=1e-5 * np.abs(table.to_numpy()).max())
        se0 = r0.random_effects_se[name].to_numpy()
        np.testing.assert_allclose(r.random_effects_se[name].to_numpy(), se0, rtol=1e-4)


def test_summary_and_estat_match(scheduler):
    prod = mx.load_dataset("productivity")
    cmd = "mixed gsp private emp hwy water other unemp || region: || state:"
    r = _quiet(mx.mixed, cmd, dd.from_pandas(prod, npartitions=4))
    r0 = _quiet(mx.mixed, cmd, prod)
    assert str(r.summary()) == str(r0.summary())
    pd.testing.assert_frame_equal(r.estat_group(), r0.estat_group())
    pd.testing.assert_frame_equal(r.estat_icc(), r0.estat_icc(), rtol=1e-5)
    pd.testing.assert_frame_equal(r.estat_sd(), r0.estat_sd(), rtol=1e-4)
    pd.testing.assert_frame_equal(r.estat_ic(), r0.estat_ic(), rtol=1e-9)
    for key, m in r0.estat_recovariance().items():
        pd.testing.assert_frame_equal(r.estat_recovariance()[key], m, rtol=1e-4)
    for key, m in r0.random_effects_cov("comparative").items():
        pd.testing.assert_frame_equal(r.random_effects_cov("comparative")[key], m, rtol=1e-4, atol=1e-10)
    small = _quiet(mx.mixed, "mixed gsp private emp hwy water other unemp || region:", dd.from_pandas(prod, 4))
    small0 = _quiet(mx.mixed, "mixed gsp private emp hwy water other unemp || region:", prod)
    assert _rel(mx.lrtest(r, small).statistic, mx.lrtest(r0, small0).statistic) < 1e-6
    w, w0 = r.wald_test("emp = hwy"), r0.wald_test("emp = hwy")
    assert _rel(float(np.squeeze(w.statistic)), float(np.squeeze(w0.statistic))) < 1e-4


@pytest.mark.parametrize("kind", ["xb", "stdp", "fitted", "residuals", "rstandard", "reffects", "reses"])
def test_predict_is_partition_wise(kind, cluster):
    pig = mx.load_dataset("pig")
    cmd = "mixed weight week || id: week, covariance(unstructured)"
    ddf = dd.from_pandas(pig, npartitions=4)
    with _scheduler("cluster", cluster):
        r = _quiet(mx.mixed, cmd, ddf)
        out = r.predict(ddf, kind=kind)
        assert isinstance(out, (dd.Series, dd.DataFrame))
        assert out.npartitions == ddf.npartitions
        got = out.compute()
    want = _quiet(mx.mixed, cmd, pig).predict(pig, kind=kind)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)


def test_fittedvalues_of_a_dask_fit_are_dask(scheduler):
    pig = mx.load_dataset("pig")
    ddf = dd.from_pandas(pig, npartitions=3)
    r = _quiet(mx.mixed, "mixed weight week || id:", ddf)
    fit = r.fittedvalues
    assert isinstance(fit, dd.Series)
    want = _quiet(mx.mixed, "mixed weight week || id:", pig).fittedvalues
    np.testing.assert_allclose(fit.compute().to_numpy(), want.to_numpy(), rtol=1e-7)


def test_lmer_and_from_formula_on_dask(scheduler):
    sleep = mx.load_dataset("sleepstudy")
    ddf = dd.from_pandas(sleep, npartitions=3)
    a = _quiet(mx.lmer, "reaction ~ days + (days | subject)", ddf)
    a0 = _quiet(mx.lmer, "reaction ~ days + (days | subject)", sleep)
    _assert_same_fit(a, a0)
    b = mx.MixedLMExt.from_formula("reaction ~ days", data=ddf, groups="subject", re_formula="~days").fit()
    b0 = mx.MixedLMExt.from_formula("reaction ~ days", data=sleep, groups="subject", re_formula="~days").fit()
    _assert_same_fit(b, b0)


def _weighted_productivity():
    d = mx.load_dataset("productivity")
    rng = np.random.default_rng(11)
    d["f1"] = rng.integers(1, 4, len(d))
    d["w2"] = d.state.map(dict(zip(d.state.unique(), rng.uniform(0.5, 2.0, d.state.nunique()))))
    d["p1"] = rng.uniform(0.5, 3.0, len(d))
    return d


@pytest.mark.parametrize("cmd", [
    "mixed gsp private emp hwy unemp [fw=f1] || region: || state:",
    "mixed gsp private emp hwy unemp [pw=p1] || region: || state:, pweight(w2)",
    "mixed gsp private emp hwy unemp || state: unemp, pweight(w2)",
])
def test_weights_on_partitions(cmd, scheduler):
    d = _weighted_productivity()
    r = _quiet(mx.mixed, cmd, dd.from_pandas(d, npartitions=4))
    r0 = _quiet(mx.mixed, cmd, d)
    _assert_same_fit(r, r0)
    assert r.vce == r0.vce and r.n_clusters == r0.n_clusters


def test_precision_weights_on_partitions(scheduler):
    pig = mx.load_dataset("pig").assign(w=lambda f: 1.0 + (f.week % 3))
    r = _quiet(mx.lmer, "weight ~ week + (1 | id)", dd.from_pandas(pig, npartitions=3), weights="w")
    r0 = _quiet(mx.lmer, "weight ~ week + (1 | id)", pig, weights="w")
    _assert_same_fit(r, r0)


def test_missing_rows_dropped_and_counted(scheduler):
    pig = mx.load_dataset("pig")
    pig.loc[[3, 100, 250], "weight"] = np.nan
    pig.loc[[7], "week"] = np.nan
    cmd = "mixed weight week if week > 1 || id:"
    with pytest.warns(UserWarning, match="3 observations with missing values"):  # week NaN fails the if
        r = mx.mixed(cmd, dd.from_pandas(pig, npartitions=3))
    r0 = _quiet(mx.mixed, cmd, pig)
    assert r.model.design.n_dropped == r0.model.design.n_dropped == 3
    _assert_same_fit(r, r0)


def test_factor_levels_found_across_partitions(scheduler):
    prod = mx.load_dataset("productivity").sort_values("region")  # each partition holds a few regions
    cmd = "mixed gsp private emp i.region || state:"
    r = _quiet(mx.mixed, cmd, dd.from_pandas(prod, npartitions=5, sort=False))
    r0 = _quiet(mx.mixed, cmd, prod)
    _assert_same_fit(r, r0)
    collinear = prod.assign(emp2=2 * prod.emp)  # omitted for collinearity, decided from X'X
    r = _quiet(mx.mixed, "mixed gsp private emp emp2 || state:", dd.from_pandas(collinear, npartitions=3))
    assert r.model.design.omitted == ["emp2"]


def test_crossed_with_slopes_on_partitions(scheduler):
    case = load_reference("crossed/crossed_slopes_lme4")
    df = pd.DataFrame(case["data"])
    formula = "y ~ x + (x | a) + (1 | b)"
    r = _quiet(mx.lmer, formula, dd.from_pandas(df, npartitions=4), REML=False)
    r0 = _quiet(mx.lmer, formula, df, REML=False)
    _assert_same_fit(r, r0)


@pytest.mark.parametrize("data,cmd", [
    ("pig", "mixed weight week || id: week, covariance(unstructured) reml"),
    ("productivity", "mixed gsp private emp hwy water other unemp || region: || state: unemp"),
    ("productivity", "mixed gsp private emp hwy || region: || state:, noconstant residuals(exchangeable)"),
    ("ovary", "mixed follicles sin1 cos1 || mare:, residuals(ar 2, t(time))"),
    ("penicillin", "mixed diameter || _all: R.plate || _all: R.sample"),
    ("pastes", "mixed strength || batch: R.cask"),
])
def test_three_chunks_add_up_to_the_whole(data, cmd):
    df = mx.load_dataset(data)
    spec = mx.parse_stata(cmd)
    levels = None
    if "R.cask" in cmd:
        levels = {"cask": sorted(df.cask.unique())}
    groups = None
    if "R.plate" in cmd:
        levels, groups = {"plate": sorted(df.plate.unique()), "sample": sorted(df["sample"].unique())}, df[["plate", "sample"]]
    path = list(spec.random[-1].group) if spec.random[-1].group else None
    if path:  # whole panels per chunk (the AR statistics need them)
        key = df[path].astype(str).agg("|".join, axis=1)
        u = key.unique()
        chunks = [df[key.isin(g)] for g in np.array_split(u, 3)]
    else:
        chunks = [df.iloc[ix] for ix in np.array_split(np.arange(len(df)), 3)]
    whole = mx.sufficient_statistics(cmd, df, levels=levels, groups=groups)
    parts = [mx.sufficient_statistics(cmd, c, levels=levels, groups=groups) for c in chunks]
    merged = parts[0] + parts[1] + parts[2]
    assert merged.n == whole.n == sum(p.n for p in parts)
    assert sum(parts) .n == whole.n
    from mixedlm_ext.design.statistics_design import design_from_statistics

    a, b = design_from_statistics(merged), design_from_statistics(whole)
    for name in ("ZtZ", "ZtXY", "XYtXY", "cluster_XYtXY"):
        x, y = getattr(a, name), getattr(b, name)
        if y is not None:
            np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-10 * np.abs(y).max())
    ra, rb = _quiet(mx.fit_statistics, merged), _quiet(mx.fit_statistics, whole)
    assert _rel(ra.llf, rb.llf) < 1e-12
    assert _rel(rb.llf, _quiet(mx.mixed, cmd, df).llf) < 1e-8


def test_chunks_with_different_levels_need_levels():
    prod = mx.load_dataset("productivity")
    cmd = "mixed gsp emp i.region || state:"
    a = mx.sufficient_statistics(cmd, prod[prod.region <= 5])
    b = mx.sufficient_statistics(cmd, prod[prod.region > 5])
    with pytest.raises(ValueError, match="levels="):
        a + b
    lv = {"region": sorted(prod.region.unique())}
    s = mx.sufficient_statistics(cmd, prod[prod.region <= 5], levels=lv) + \
        mx.sufficient_statistics(cmd, prod[prod.region > 5], levels=lv)
    assert _rel(_quiet(mx.fit_statistics, s).llf, _quiet(mx.mixed, cmd, prod).llf) < 1e-8


def test_statistics_do_not_grow_with_rows():
    pig = mx.load_dataset("pig")
    big = pd.concat([pig.assign(id=pig.id + 100 * k) for k in range(1)] * 20, ignore_index=True)
    s1 = mx.sufficient_statistics("mixed weight week || id: week", pig)
    s20 = mx.sufficient_statistics("mixed weight week || id: week", big)
    size = lambda s: sum(a.nbytes for a in s.panels.sums.values()) + sum(a.nbytes for a in s.clusters.sums.values())  # noqa: E731
    assert s20.n == 20 * s1.n and size(s20) == size(s1)


@pytest.mark.parametrize("cmd,match", [
    ("mixed follicles sin1 cos1 || mare:, residuals(ma 2, t(time))", r"residuals\(ma 2\).*out of core"),
    ("mixed follicles sin1 cos1 || mare:, residuals(toeplitz 2, t(time))", r"residuals\(toeplitz 2\).*out of core"),
    ("follicles ~ center(sin1) + (1 | mare)", r"center\(\).*out of core"),
])
def test_unsupported_out_of_core_raises_naming_the_option(cmd, match):
    ovary = mx.load_dataset("ovary")
    fit = mx.lmer if "~" in cmd else mx.mixed
    with pytest.raises(ModelSpecificationError, match=match):
        fit(cmd, dd.from_pandas(ovary, npartitions=2))


def test_ar_with_gaps(scheduler):
    """AR(1) and exponential residuals with gaps in t(): per-gap sums; AR(2) with gaps: refused."""
    ovary = mx.load_dataset("ovary")
    gappy = ovary[ovary.time != ovary.time.unique()[3]].reset_index(drop=True)
    for cmd in ("mixed follicles sin1 cos1 || mare:, residuals(ar 1, t(time))",
                "mixed follicles sin1 cos1 || mare:, residuals(exponential, t(time))"):
        _assert_same_fit(_quiet(mx.mixed, cmd, dd.from_pandas(gappy, 3)), _quiet(mx.mixed, cmd, gappy))
    with pytest.raises(ModelSpecificationError, match=r"ar 2.*without gaps"):
        mx.mixed("mixed follicles sin1 cos1 || mare:, residuals(ar 2, t(time))", dd.from_pandas(gappy, 2))


def test_row_level_options_refused_after_a_dask_fit():
    pig = mx.load_dataset("pig")
    ddf = dd.from_pandas(pig, npartitions=2)
    with dask.config.set(scheduler="synchronous"):
        r = _quiet(mx.mixed, "mixed weight week || id:, reml", ddf)
        with pytest.raises(NotImplementedError, match=r"dfmethod\(kroger\)"):
            mx.mixed("mixed weight week || id:, reml dfmethod(kroger)", ddf)
        with pytest.raises(NotImplementedError, match="CR2"):
            r.cluster_robust_cov("CR2")
        with pytest.raises(NotImplementedError, match="sufficient statistics"):
            mx.mixed("mixed weight week || id:", ddf, vce="cluster id")
        with pytest.raises(TypeError, match="column name"):
            mx.lmer("weight ~ week + (1 | id)", ddf, weights=np.ones(len(pig)))
        with pytest.raises(NotImplementedError, match="sufficient statistics"):
            r.bootstrap(n_boot=2)
        with pytest.raises(NotImplementedError, match="sufficient statistics"):
            r.margins()
        sat = _quiet(mx.mixed, "mixed weight week || id:, reml dfmethod(satterthwaite)", ddf)
        sat0 = _quiet(mx.mixed, "mixed weight week || id:, reml dfmethod(satterthwaite)", pig)
        np.testing.assert_allclose(sat.fe_df, sat0.fe_df, rtol=1e-4)


@pytest.mark.parametrize("data,cmd", [
    ("productivity", "mixed gsp private emp hwy water other unemp || region: || state: unemp"),
    ("pig", "mixed weight week || id: week, covariance(unstructured) reml"),
    ("sleepstudy", "mixed reaction days || subject: days, covariance(unstructured)"),
])
def test_statistics_kept_on_the_workers(data, cmd, scheduler):
    """Shards of whole clusters on the workers, every evaluation a map over them: the same fit."""
    df = mx.load_dataset(data)
    r = _quiet(mx.mixed, cmd, dd.from_pandas(df, npartitions=4), statistics_on="workers")
    assert r.model.design.ZtZ is None and len(r.model.design.shards) >= 2
    r0 = _quiet(mx.mixed, cmd, df)
    _assert_same_fit(r, r0)
    for name, table in r0.random_effects.items():
        np.testing.assert_allclose(r.random_effects[name].to_numpy(), table.to_numpy(), rtol=1e-4,
                                   atol=1e-5 * np.abs(table.to_numpy()).max())
        np.testing.assert_allclose(r.random_effects_se[name].to_numpy(), r0.random_effects_se[name].to_numpy(),
                                   rtol=1e-4)
    np.testing.assert_allclose(r.predict(dd.from_pandas(df, npartitions=2)).compute().to_numpy(),
                               r0.predict(df).to_numpy(), rtol=1e-5)


def test_frequency_weights_kept_on_the_workers(scheduler):
    d = _weighted_productivity()
    cmd = "mixed gsp private emp hwy unemp [fw=f1] || region: || state:"
    r = _quiet(mx.mixed, cmd, dd.from_pandas(d, npartitions=4), statistics_on="workers")
    _assert_same_fit(r, _quiet(mx.mixed, cmd, d))


def test_auto_keeps_large_statistics_on_the_workers(monkeypatch):
    from mixedlm_ext.scale import shards

    pig = mx.load_dataset("pig")
    monkeypatch.setattr("mixedlm_ext.scale.statistics.MAX_CLIENT_ELEMENTS", 100)
    with dask.config.set(scheduler="synchronous"):
        r = _quiet(mx.mixed, "mixed weight week || id:", dd.from_pandas(pig, npartitions=3))
    assert isinstance(r.model.design, shards.ShardedDesign)
    assert _rel(r.llf, _quiet(mx.mixed, "mixed weight week || id:", pig).llf) < 1e-8


@pytest.mark.parametrize("data,cmd,match", [
    ("penicillin", "mixed diameter || _all: R.plate || _all: R.sample", "crossed"),
    ("ovary", "mixed follicles sin1 cos1 || mare:, residuals(ar 1, t(time))", "residuals"),
])
def test_statistics_on_workers_refused_by_name(data, cmd, match):
    with dask.config.set(scheduler="synchronous"):
        with pytest.raises(ModelSpecificationError, match="statistics_on='workers'.*%s" % match):
            mx.mixed(cmd, dd.from_pandas(mx.load_dataset(data), npartitions=2), statistics_on="workers")


@pytest.mark.parametrize("data,cmd,group", [
    ("productivity", "mixed gsp private emp hwy || region: || state:", 3),
    ("productivity", "mixed gsp private emp hwy || state:, residuals(independent, by(region))", 5),
    ("ovary", "mixed follicles sin1 cos1 || mare:, residuals(ar 2, t(time))", 2),
    ("ovary", "mixed follicles sin1 cos1 || mare:, noconstant residuals(exchangeable)", None),
    ("pastes", "mixed strength || batch: R.cask", None),
])
def test_wcorrelation_from_the_cluster_rows(data, cmd, group, scheduler):
    df = mx.load_dataset(data)
    a = _quiet(mx.mixed, cmd, dd.from_pandas(df, npartitions=3)).estat_wcorrelation(group)
    b = _quiet(mx.mixed, cmd, df).estat_wcorrelation(group)
    assert list(a.covariance.index) == list(b.covariance.index) and a.group == b.group
    np.testing.assert_allclose(a.covariance.to_numpy(), b.covariance.to_numpy(), rtol=1e-4,
                               atol=1e-6 * np.abs(b.covariance.to_numpy()).max())


@pytest.mark.parametrize("unknown", [False, True])
def test_category_columns_as_factor_variables(unknown):
    prod = mx.load_dataset("productivity")
    prod["rc"] = pd.Categorical(prod.region.map(lambda r: "r%d" % r))
    cmd = "mixed gsp private emp i.rc || state:"
    ddf = dd.from_pandas(prod.sort_values("region"), npartitions=4, sort=False)
    if unknown:  # partitions with their own categories, unknown to the meta
        ddf = ddf.assign(rc=ddf.rc.cat.as_unknown())
    with dask.config.set(scheduler="synchronous"):
        r = _quiet(mx.mixed, cmd, ddf)
    _assert_same_fit(r, _quiet(mx.mixed, cmd, prod))


@pytest.mark.parametrize("cmd", [
    "mixed gsp private i.region##c.emp || state:",
    "mixed gsp private ib3.region c.emp#c.emp || state: c.unemp#c.unemp",
    "mixed gsp i(1 3 5).region emp || region: || state:",
])
def test_factor_variable_syntax_on_partitions(cmd, scheduler):
    prod = mx.load_dataset("productivity")
    r = _quiet(mx.mixed, cmd, dd.from_pandas(prod, npartitions=4))
    r0 = _quiet(mx.mixed, cmd, prod)
    _assert_same_fit(r, r0)
    labels = lambda res: [line.split("|")[0] for line in str(res.summary()).splitlines()]  # noqa: E731
    assert labels(r) == labels(r0)  # the same rows (base levels, omitted columns); numbers as checked above


def test_offset_and_re_form_on_partitions(scheduler):
    sleep = mx.load_dataset("sleepstudy").assign(o=lambda f: 0.1 * f.days)
    formula = "reaction ~ days + offset(o) + (days | subject)"
    ddf = dd.from_pandas(sleep, npartitions=3)
    r, r0 = _quiet(mx.lmer, formula, ddf), _quiet(mx.lmer, formula, sleep)
    _assert_same_fit(r, r0)
    for re_form in (None, "~0", "~(days | subject)"):
        got = r.predict(ddf, re_form=re_form).compute().to_numpy()
        np.testing.assert_allclose(got, r0.predict(sleep, re_form=re_form).to_numpy(), rtol=1e-6)


@pytest.mark.parametrize("cmd,match", [
    ("mixed gsp ib(freq).region emp || state:", r"ib\(freq\)"),
    ("mixed gsp emp in 1/500 || state:", r"in 1/500"),
])
def test_position_and_frequency_options_refused_out_of_core(cmd, match):
    with pytest.raises(ModelSpecificationError, match=match):
        mx.mixed(cmd, dd.from_pandas(mx.load_dataset("productivity"), npartitions=2))


def test_profile_intervals_from_statistics():
    """Profile-likelihood intervals need only the objective: the same from statistics."""
    pig = mx.load_dataset("pig")
    cmd = "mixed weight week || id:"
    with dask.config.set(scheduler="synchronous"):
        r = _quiet(mx.mixed, cmd, dd.from_pandas(pig, npartitions=3))
        got = r.conf_int(method="profile")
    want = _quiet(mx.mixed, cmd, pig).conf_int(method="profile")
    np.testing.assert_allclose(got.select_dtypes("number").to_numpy(), want.select_dtypes("number").to_numpy(),
                               rtol=1e-4)


def test_a_sharded_gradient_eliminates_each_shard_once(monkeypatch):
    """The gradient's second map reuses the elimination the first left on the shard
    (in-process shards; a shard shipped to a task anew eliminates again)."""
    import dask

    from mixedlm_ext.engines.nested import NestedEngine

    df = mx.load_dataset("productivity")
    with dask.config.set(scheduler="synchronous"):
        m = _quiet(mx.MixedLMExt.from_stata, "mixed gsp private emp || region: || state:", df)
        mw = _quiet(mx.MixedLMExt, m.spec, dd.from_pandas(df, npartitions=4), statistics_on="workers")
        ob = mw.objective
        theta = ob.initial_theta()
        calls = []
        original = NestedEngine.eliminate
        monkeypatch.setattr(NestedEngine, "eliminate", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
        v, g = ob.value_and_gradient(theta)
        assert len(calls) == len(mw.design.shards)
        v0, g0 = m.objective.value_and_gradient(theta)
    assert v == pytest.approx(v0, rel=1e-10)
    np.testing.assert_allclose(g, g0, rtol=1e-7, atol=1e-9)
