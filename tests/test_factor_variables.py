"""Stata factor-variable models against lme4 fits of the same models.

tests/reference/peers/factor_variables_lme4.json holds lme4 ML fits of each
model with lme4's coefficients renamed to Stata's names (the R call beside
each).  Compared with lme4's tight (bobyqa, rhoend=1e-10) refit: llf to
1e-6, coefficients and standard errors to 1e-5 relative, variance
components to 1e-4 relative.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedlm_ext as mx

PEERS = Path(__file__).parent / "reference" / "peers"
REF = json.loads((PEERS / "factor_variables_lme4.json").read_text())["models"]

# the entry's Stata command when it is not runnable as written (fvset)
COMMANDS = {"i13_region_nobase": "mixed gsp private emp 1.region 3.region || state:"}


def _data(name: str) -> pd.DataFrame:
    if name.startswith(("pig_re", "pig")):
        return mx.load_dataset("pig")
    if name.startswith("fast"):
        return pd.read_csv(PEERS / "data" / "sleepstudy_fast.csv")
    return mx.load_dataset("productivity")


def _close(a: float, b: float, rtol: float) -> bool:
    return abs(a - b) <= rtol * max(1.0, abs(b))


@pytest.fixture(scope="module")
def fits():
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, entry in REF.items():
            out[name] = mx.mixed(COMMANDS.get(name, entry["stata"]), _data(name))
    return out


@pytest.mark.parametrize("name", sorted(REF))
def test_matches_lme4(fits, name):
    ref, res = REF[name], fits[name]
    tight = ref["tight"]
    assert abs(res.llf - tight["llf"]) < 1e-6, (res.llf, tight["llf"])
    fe = res.fe_params
    assert list(fe.index) == list(tight["fe"]), "Stata's names in Stata's order"
    for k, v in tight["fe"].items():
        assert _close(fe[k], v, 1e-5), (k, fe[k], v)
        assert _close(res.bse_fe[k], tight["fe_se"][k], 1e-5), (k, res.bse_fe[k], tight["fe_se"][k])
    vc = res.params[res.k_fe:]
    for k, v in tight["re"].items():
        assert _close(vc[k], v, 1e-4), (k, vc[k], v)


@pytest.mark.parametrize("name", sorted(n for n in REF if "base" in REF[n]))
def test_base_levels_named_as_stata(fits, name):
    """The base cells Stata lists (value 0, '(base)') are the coefficient rows marked base."""
    rows = fits[name].coefficient_rows()
    assert [r.name for r in rows if r.status == "base"] == list(REF[name]["base"])
    estimated = [r.name for r in rows if r.status == "estimated"]
    assert estimated == list(fits[name].fe_params.index)


def test_reparameterisations_give_one_likelihood(fits):
    """i.region, ib3.region and ibn.region with noconstant are one model."""
    llf = [fits[n].llf for n in ("i_region", "ib3_region", "ibn_region_nocons")]
    assert max(llf) - min(llf) < 1e-7
    a, b = fits["i_region"].fe_params, fits["ibn_region_nocons"].fe_params
    levels = [a["_cons"]] + [a["_cons"] + a["%d.region" % k] for k in range(2, 10)]
    np.testing.assert_allclose(levels, [b["%d.region" % k] for k in range(1, 10)], atol=1e-6)


def _cells(n_a=3, n_b=2, seed=0, n=240):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"a": rng.integers(1, n_a + 1, n), "b": rng.integers(0, n_b, n), "x": rng.normal(size=n),
                       "g": rng.integers(0, 12, n)})
    u = rng.normal(size=12)
    df["y"] = (df.a * 0.5 + df.b * df.x + 0.3 * df.a * df.x + u[df.g] + rng.normal(size=n))
    return df


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("stata,patsy", [
    ("i.a##i.b", "C(a) * C(b)"),
    ("i.a#i.b", "C(a) * C(b)"),  # cell means around the base cell: the same model
    ("i.a##c.x", "C(a) * x"),
    ("i.a#c.x", "C(a):x"),  # a slope for every level, no common slope
    ("i.a##i.b##c.x", "C(a) * C(b) * x"),
    ("ib2.a b#c.x", "C(a) + C(b):x"),
])
def test_same_model_as_patsy_coding(stata, patsy, seed):
    """Stata's parameterisation spans the same columns as patsy's: the same likelihood and fitted values."""
    df = _cells(seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = mx.mixed("mixed y %s || g:" % stata, df)
        b = mx.lmer("y ~ %s + (1 | g)" % patsy, df, REML=False)
    assert a.k_fe == b.k_fe
    assert abs(a.llf - b.llf) < 1e-8
    np.testing.assert_allclose(a.predict(df.head(20)).to_numpy(), b.predict(df.head(20)).to_numpy(), atol=1e-6)


def test_interaction_names_and_unseen_levels():
    df = _cells()
    res = mx.mixed("mixed y i.a##c.x i.b || g:", df)
    assert list(res.fe_params.index) == ["2.a", "3.a", "x", "2.a#c.x", "3.a#c.x", "1.b", "_cons"]
    rows = res.coefficient_rows()
    assert [r.name for r in rows if r.status == "base"] == ["1b.a", "1b.a#co.x", "0b.b"]
    new = df.head(3).assign(a=[1, 2, 3])
    manual = res.fe_params["_cons"] + res.fe_params["x"] * new.x + res.fe_params["1.b"] * new.b
    manual = manual + np.array([0, 1, 0]) * (res.fe_params["2.a"] + res.fe_params["2.a#c.x"] * new.x)
    manual = manual + np.array([0, 0, 1]) * (res.fe_params["3.a"] + res.fe_params["3.a#c.x"] * new.x)
    np.testing.assert_allclose(res.predict(new, kind="xb").to_numpy(), manual.to_numpy(), rtol=1e-10)
    with pytest.raises(ValueError, match="level 7 of a was not in the estimation data"):
        res.predict(df.head(3).assign(a=7), kind="xb")


def test_base_choices():
    df = _cells(n_a=4)
    names = {}
    for tok in ("ib(last).a", "ib(#2).a", "ib(freq).a", "ibn.a", "i(2 4).a", "i(1 3).a"):
        res = mx.mixed("mixed y %s || g:" % tok, df)
        names[tok] = list(res.fe_params.index)
    assert names["ib(last).a"] == ["1.a", "2.a", "3.a", "_cons"]
    assert names["ib(#2).a"] == ["1.a", "3.a", "4.a", "_cons"]
    freq = df.a.value_counts().idxmax()
    assert "%d.a" % freq not in names["ib(freq).a"] and len(names["ib(freq).a"]) == 4
    # ibn with a constant: the last indicator is collinear and omitted, as Stata does
    assert names["ibn.a"] == ["1.a", "2.a", "3.a", "_cons"]
    assert names["i(2 4).a"] == ["2.a", "4.a", "_cons"]  # the base (1) is not selected
    assert names["i(1 3).a"] == ["3.a", "_cons"]
