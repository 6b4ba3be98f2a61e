"""Trust: peers' spellings mean what they mean there, no option is ignored,
degenerate models are refused or flagged.

Reference values: ``tests/reference/peers/trust_lme4.json`` (lme4 1.1-31;
the R calls are beside each value, ``trust_lme4.R`` made them).  Where lme4's
default optimizer stops short, the file's ``tight`` refit (bobyqa,
``rhoend = 1e-10``) is the reference.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedlm_ext as mx
from mixedlm_ext.core.errors import ConvergenceWarning

PEERS = Path(__file__).resolve().parent / "reference" / "peers"
TRUST = json.loads((PEERS / "trust_lme4.json").read_text())


def _best(entry: dict) -> dict:
    """The reference fit: lme4's default call, or its tight refit when that is higher."""
    tight = entry.get("tight")
    if tight and tight.get("llf", -np.inf) > entry["llf"]:
        return {**entry, **tight}
    return entry


def _quiet(f, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return f(*a, **k)


def _lme4_name(name: str) -> str:
    """Stata's crossed label (``_all:var(R.plate)``) as an lme4 fit names it (``plate:var(_cons)``)."""
    if name.startswith("_all:var(R."):
        return "%s:var(_cons)" % name[len("_all:var(R."):-1]
    return name


def _compare(res, ref, llf_rel=1e-6, fe_rel=1e-5, re_rel=1e-4):
    """Tolerances of tests/reference/README.md; a covariance relative to the
    product of its two standard deviations (it can be near zero)."""
    assert res.llf == pytest.approx(ref["llf"], rel=llf_rel)
    for name, value in ref["fe"].items():
        assert res.fe_params[name] == pytest.approx(value, rel=fe_rel, abs=1e-8), name
    for name, value in ref["re"].items():
        name = _lme4_name(name)
        tol = re_rel * abs(value)
        if ":cov(" in name:
            level, pair = name.split(":cov(")
            a, b = pair[:-1].split(",")
            tol = re_rel * np.sqrt(ref["re"]["%s:var(%s)" % (level, a)] * ref["re"]["%s:var(%s)" % (level, b)])
        assert res.params[name] == pytest.approx(value, abs=max(tol, 1e-7)), name


# -- 1. the optimum, including the boundary ------------------------------------------
def test_mix1_finds_the_small_interior_variance():
    """lme4's mix1 (tests/testthat/test-lmer.R): REML var = 0.000904, not 0."""
    d = pd.read_csv(PEERS / "data" / "mix1.csv")
    ref = _best(TRUST["mix1"]["REML"])
    res = _quiet(mx.lmer, "resp ~ 0 + C(var1) + C(var1):var2 + (1|var3)", d)
    assert res.llf == pytest.approx(ref["llf"], rel=1e-9)
    assert res.params["var3:var(_cons)"] == pytest.approx(ref["re"]["var3:var(_cons)"], rel=1e-3)
    assert res.converged and not res.singular
    ml = _quiet(mx.lmer, "resp ~ 0 + C(var1) + C(var1):var2 + (1|var3)", d, REML=False)
    ref_ml = _best(TRUST["mix1"]["ML"])
    assert ml.llf == pytest.approx(ref_ml["llf"], rel=1e-8)
    assert ml.singular == ref_ml["isSingular"] is True  # ML: the boundary really is the optimum
    assert ml.converged


# -- 2. peers' spellings ----------------------------------------------------------------
LMER_CASES = {
    "sleepstudy_un": ("reaction ~ days + (days|subject)", "sleepstudy"),
    "pig_ri": ("weight ~ week + (1|id)", "pig"),
    "penicillin_crossed": ("diameter ~ 1 + (1|plate) + (1|sample)", "penicillin"),
}


@pytest.mark.parametrize("method", ["ml", "reml"])
@pytest.mark.parametrize("case", sorted(LMER_CASES))
def test_lmer_REML_spelling(case, method):
    formula, data = LMER_CASES[case]
    ref = _best(TRUST["standard"]["%s_%s" % (case, method)])
    res = _quiet(mx.lmer, formula, mx.load_dataset(data), REML=(method == "reml"))
    assert res.method == method.upper()
    _compare(res, ref)
    same = _quiet(mx.lmer, formula, mx.load_dataset(data), reml=(method == "reml"))
    assert same.llf == res.llf


@pytest.mark.parametrize("key,formula,data", [
    ("pig_w_ri", "weight ~ week + (1|id)", "pig_w.csv"),
    ("sleepstudy_w_un", "reaction ~ days + (days|subject)", "sleepstudy_w.csv"),
])
@pytest.mark.parametrize("method", ["ml", "reml"])
def test_lmer_precision_weights(key, formula, data, method):
    """lme4's ``weights=``: residual variance sigma2 / w_i, log-likelihood with +0.5 sum(log w)."""
    ref = _best(TRUST["weights"]["%s_%s" % (key, method)])
    df = pd.read_csv(PEERS / "data" / data)
    res = _quiet(mx.lmer, formula, df, REML=(method == "reml"), weights="w")
    _compare(res, ref)
    arr = _quiet(mx.lmer, formula, df.drop(columns="w"), REML=(method == "reml"), weights=df["w"].to_numpy())
    assert arr.llf == pytest.approx(res.llf, rel=1e-12)
    ones = _quiet(mx.lmer, formula, df, REML=(method == "reml"), weights=np.ones(len(df)))
    plain = _quiet(mx.lmer, formula, df, REML=(method == "reml"))
    assert ones.llf == pytest.approx(plain.llf, rel=1e-10)


def test_statsmodels_fit_reml_spelling():
    pig = mx.load_dataset("pig")
    model = mx.MixedLMExt.from_formula("weight ~ week", pig, groups="id")
    ml = _quiet(model.fit, reml=False)
    assert ml.method == "ML" and ml.llf == pytest.approx(TRUST["standard"]["pig_ri_ml"]["llf"], rel=1e-8)
    reml = _quiet(model.fit)
    assert reml.method == "REML" and reml.llf == pytest.approx(TRUST["standard"]["pig_ri_reml"]["llf"], rel=1e-8)
    assert _quiet(model.fit, method="lbfgs").llf == reml.llf
    with pytest.raises(ValueError, match="method='powell' is not available"):
        model.fit(method="powell")


# -- no keyword silently dropped --------------------------------------------------------
def _entry_points():
    pig = mx.load_dataset("pig")
    model = mx.MixedLMExt.from_stata("mixed weight week || id:", pig)
    res = _quiet(model.fit)
    return [
        ("mixed()", lambda **k: mx.mixed("mixed weight week || id:", pig, **k), "emlog"),
        ("lmer()", lambda **k: mx.lmer("weight ~ week + (1|id)", pig, **k), "weights"),
        ("fit()", lambda **k: model.fit(**k), "maxiter"),
        ("from_formula()", lambda **k: mx.MixedLMExt.from_formula("weight ~ week", pig, groups="id", **k),
         "residual"),
        ("MixedLMExt()", lambda **k: mx.MixedLMExt(model.spec, pig, **k), None),
        ("MixedLMRegressor()", lambda **k: mx.MixedLMRegressor(**k), "formula"),
        ("predict()", lambda **k: res.predict(**k), None),
        ("summary()", lambda **k: res.summary(**k), None),
        ("estat_icc()", lambda **k: res.estat_icc(**k), None),
    ]


@pytest.mark.parametrize("index", range(9))
def test_no_keyword_is_silently_dropped(index):
    where, call, near = _entry_points()[index]
    with pytest.raises(TypeError, match="bogus_keyword"):
        call(bogus_keyword=1)
    if near is not None:  # a misspelling names the nearest valid keyword
        typo = near[:-2] + near[-1] + near[-2]
        with pytest.raises(TypeError, match="did you mean '%s'" % near):
            call(**{typo: 1})


# -- 3. degenerate models ---------------------------------------------------------------
def _degenerate(name):
    return pd.read_csv(PEERS / "data" / ("degenerate_%s.csv" % name))


@pytest.mark.parametrize("call,match", [
    (lambda: mx.lmer("y ~ x + (x|g)", _degenerate("one_group"), REML=False), "single group"),
    (lambda: mx.lmer("y ~ x + (1|g)", _degenerate("one_group"), REML=False), "single group"),
    (lambda: mx.lmer("y ~ x + (1|id)", _degenerate("crossed_unique"), REML=False), "one observation per"),
    (lambda: mx.lmer("y ~ x + (1|a) + (1|id)", _degenerate("crossed_unique"), REML=False), "one observation per"),
    (lambda: mx.lmer("y ~ x + (1|g)", _degenerate("y_const_within"), REML=False), "fit 'y' exactly"),
    (lambda: mx.lmer("y ~ 1 + (1|g)", _degenerate("y_const_within")), "fit 'y' exactly"),
])
def test_degenerate_models_lme4_refuses_too(call, match):
    """Where lme4 refuses (or its likelihood has no maximum), so do we, with a message."""
    with pytest.raises(mx.ModelSpecificationError, match=match):
        _quiet(call)


def test_crossed_factor_with_one_row_per_level():
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"a": rng.integers(0, 4, 40), "b": rng.integers(0, 5, 40), "x": rng.normal(size=40)})
    df["id"] = np.arange(40)
    df["y"] = df.x + rng.normal(size=40)
    with pytest.raises(mx.ModelSpecificationError, match="one observation per"):
        mx.lmer("y ~ x + (1|a) + (1|b) + (1|id)", df)


def test_random_slope_on_a_constant_column():
    pig = mx.load_dataset("pig").assign(c=3.0)
    with pytest.raises(mx.ModelSpecificationError, match="'c' is constant within every group"):
        mx.mixed("mixed weight week || id: c", pig)
    within = pig.assign(c=pig["id"] % 5)  # constant within each pig
    with pytest.raises(mx.ModelSpecificationError, match="collinear with the random intercept"):
        mx.mixed("mixed weight week || id: c", within)
    _quiet(mx.mixed, "mixed weight week || id: c, noconstant", pig)  # no intercept: c is the intercept


def test_column_named_like_the_constant():
    pig = mx.load_dataset("pig").assign(_cons=1.0)
    with pytest.raises(mx.ModelSpecificationError, match="'_cons'.*name of the constant"):
        mx.mixed("mixed weight week _cons || id:", pig)
    _quiet(mx.mixed, "mixed weight week || id:", pig)  # an unused column is no clash


def test_exact_fit_on_a_large_design_warns_after_the_fit(monkeypatch):
    from mixedlm_ext.design import validate

    monkeypatch.setattr(validate.check_exact_fit, "__defaults__", (0,))  # skip the dense pre-check
    df = _degenerate("y_const_within")
    with pytest.warns(ConvergenceWarning, match="residual variance is estimated as zero"):
        res = mx.lmer("y ~ x + (1|g)", df, REML=False)
    assert not res.converged


def test_new_data_with_another_group_dtype():
    pig = mx.load_dataset("pig")
    res = _quiet(mx.mixed, "mixed weight week || id: week", pig)
    new = pig.head(5).assign(id=pig["id"].head(5).astype(str))
    with pytest.raises(ValueError, match="grouping variable 'id' of the new data holds text"):
        res.predict(new)
    assert np.isfinite(res.predict(pig.head(5)).to_numpy()).all()


@pytest.mark.parametrize("call,error,match", [
    (lambda pig: mx.lmer("weight ~ week + (1 id)", pig), mx.FormulaSyntaxError, r"needs '\|'"),
    (lambda pig: mx.mixed("mixed weight week || id:", pig, start_params=[1, 2, 3]), ValueError,
     "start_params must have 1 values"),
    (lambda pig: mx.mixed("mixed weight week || id:, vce(cluster c)", pig.assign(c=1)), ValueError,
     "at least 2 clusters"),
    (lambda pig: mx.mixed("mixed week id || id:", pig.set_axis(["id", "week", "week"], axis=1)),
     mx.ModelSpecificationError, "more than one column named 'week'"),
])
def test_clear_errors_instead_of_tracebacks(call, error, match):
    with pytest.raises(error, match=match):
        _quiet(call, mx.load_dataset("pig"))


def test_strings_in_a_numeric_column_of_new_data():
    pig = mx.load_dataset("pig")
    res = _quiet(mx.mixed, "mixed weight week || id:", pig)
    new = pig.head(3).assign(week=["1", "x", "3"])
    with pytest.raises(ValueError, match="variable 'week' of the new data is not numeric"):
        res.predict(new)


def test_nullable_boolean_with_missing_values():
    pig = mx.load_dataset("pig")
    flag = pd.array([True, False, pd.NA] * (len(pig) // 3), dtype="boolean")
    with pytest.warns(UserWarning, match="144 observations with missing values"):
        res = mx.mixed("mixed weight week b || id:", pig.assign(b=flag))
    plain = _quiet(mx.mixed, "mixed weight week b || id:", pig.assign(b=flag.astype(object)).dropna()
                   .assign(b=lambda d: d.b.astype(float)))
    assert res.llf == pytest.approx(plain.llf, rel=1e-12)


def test_patsy_Q_for_names_with_spaces():
    pig = mx.load_dataset("pig")
    res = _quiet(mx.lmer, "weight ~ Q('the week') + (1|id)", pig.rename(columns={"week": "the week"}))
    ref = _quiet(mx.lmer, "weight ~ week + (1|id)", pig)
    assert res.llf == pytest.approx(ref.llf, rel=1e-12)


@pytest.mark.parametrize("content,match", [(None, "no such file"), ("", "is empty"), ("a,b\n", "no data rows")])
def test_cli_bad_files(tmp_path, capsys, content, match):
    from mixedlm_ext.cli import main

    path = tmp_path / "data.csv"
    if content is not None:
        path.write_text(content)
    assert main(["mixed y x || g:", "--data", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and match in err
