"""Stata's margins after mixed against a hand-computed delta method and emmeans."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mixedlm_ext as mx

PEERS = Path(__file__).parent / "reference" / "peers"
REF = json.loads((PEERS / "margins_emmeans.json").read_text())
RTOL = 1e-6


@pytest.fixture(scope="module")
def prod():
    return mx.mixed("mixed gsp private emp hwy water other unemp i.region || state:", mx.load_dataset("productivity"))


@pytest.fixture(scope="module")
def sleepf():
    data = pd.read_csv(PEERS / "data" / "sleepstudy_fast.csv")
    return mx.lmer("reaction ~ C(fast)*days + (1|subject)", data, REML=False)


CASES = [
    ("productivity", "margins_region", dict(variables="region")),
    ("productivity", "margins_at_unemp", dict(at={"unemp": [4, 6, 8]})),
    ("sleepstudy_fast", "margins_fast", dict(variables="fast")),
    ("sleepstudy_fast", "margins_at_days", dict(at={"days": [0, 3, 6, 9]})),
    ("sleepstudy_fast", "margins_fast_at_days", dict(variables="fast", at={"days": [0, 3, 6, 9]})),
    ("sleepstudy_fast", "ame_days", dict(dydx="days")),
    ("sleepstudy_fast", "ame_days_by_fast", dict(variables="fast", dydx="days")),
]


def our_name(lme4_name: str, fe_names) -> str:
    """lme4's column name -> ours (the interaction column is found by its variables)."""
    if lme4_name == "(Intercept)":
        return "_cons"
    if ":" in lme4_name:
        parts = [re.sub(r"factor\((\w+)\)\w+", r"\1", p) for p in lme4_name.split(":")]
        return next(n for n in fe_names if all(p in n for p in parts) and n.count("fast") and "days" in n
                    and n not in ("days",))
    return re.sub(r"^factor\((\w+)\)(\w+)$", r"\2.\1", lme4_name)


@pytest.mark.parametrize("model,entry,kwargs", CASES)
def test_margins_match_delta_method_and_emmeans(model, entry, kwargs, prod, sleepf):
    res = prod if model == "productivity" else sleepf
    tab = res.margins(**kwargs)
    assert list(tab.columns) == ["margin", "std_err", "z", "pvalue", "ci_low", "ci_high"]
    ref = REF[model][entry]
    for source in ("stata_style", "emmeans"):
        rows = list(ref[source]["results"].values())
        assert len(rows) == len(tab)
        want = np.array([[r["estimate"], r["se"], r["ci_lower"], r["ci_upper"]] for r in rows])
        got = tab[["margin", "std_err", "ci_low", "ci_high"]].to_numpy()
        np.testing.assert_allclose(got, want, rtol=RTOL, err_msg="%s %s" % (entry, source))
        np.testing.assert_allclose(tab["z"], [r["z"] for r in rows], rtol=RTOL)
        np.testing.assert_allclose(tab["pvalue"], [r["p"] for r in rows], rtol=1e-4, atol=1e-300)
    # the definition, exactly: the reference's linear combinations applied to our estimates
    Lref = ref["stata_style"]["L"]
    fe = list(res.model.design.fe_names)
    L = np.zeros((len(tab), len(fe)))
    for j, col in enumerate(Lref["colnames"]):
        L[:, fe.index(our_name(col, fe))] = np.asarray(Lref["values"], float)[:, j]
    beta, V = res.fe_params.to_numpy(), res.cov_fe.to_numpy()
    np.testing.assert_allclose(tab["margin"], L @ beta, rtol=1e-12)
    np.testing.assert_allclose(tab["std_err"], np.sqrt(np.diag(L @ V @ L.T)), rtol=1e-9)
    np.testing.assert_allclose(tab.attrs["L"].to_numpy(), L, atol=1e-9)


def test_margins_over_subgroups_by_hand(prod):
    tab = prod.margins(at={"unemp": 4}, over="region")
    d = prod.model.design
    X = d.X.copy()
    X[:, d.fe_names.index("unemp")] = 4.0
    region = d.data["region"].to_numpy()
    for lab, r in zip(tab.index, sorted(set(region))):
        assert lab == "unemp=4,region=%d" % r
        l = X[region == r].mean(axis=0)
        assert tab.loc[lab, "margin"] == pytest.approx(l @ prod.fe_params.to_numpy(), rel=1e-12)
        assert tab.loc[lab, "std_err"] == pytest.approx(np.sqrt(l @ prod.cov_fe.to_numpy() @ l), rel=1e-9)


def test_contrasts_are_differences_of_margins(prod, sleepf):
    m = prod.margins("region")
    pw = prod.contrast("region")
    assert len(pw) == 9 * 8 // 2 and pw.index[0] == "region=2 vs region=1"
    L = m.attrs["L"].to_numpy()
    d = L[3] - L[1]
    row = pw.loc["region=4 vs region=2"]
    assert row["margin"] == pytest.approx(m["margin"].iloc[3] - m["margin"].iloc[1], rel=1e-10)
    assert row["std_err"] == pytest.approx(np.sqrt(d @ prod.cov_fe.to_numpy() @ d), rel=1e-10)
    assert row["pvalue"] == pytest.approx(2 * stats.norm.sf(abs(row["z"])))
    ref = prod.contrast("region", kind="reference")
    assert list(ref.index) == ["region=%d vs region=1" % k for k in range(2, 10)]
    # the coefficient of 2.region is the contrast of region 2 with the base
    assert ref["margin"].iloc[0] == pytest.approx(prod.fe_params["2.region"], rel=1e-10)
    assert ref["std_err"].iloc[0] == pytest.approx(prod.bse_fe["2.region"], rel=1e-8)
    # dydx of a factor: the change from its base level, the same as the reference contrast
    np.testing.assert_allclose(sleepf.margins(dydx="fast").to_numpy(), sleepf.contrast("fast").to_numpy())


def test_margins_refuse_bad_requests(prod):
    with pytest.raises(ValueError, match="not in the fixed part"):
        prod.margins("state")
    with pytest.raises(ValueError, match="continuous"):
        prod.margins("unemp")
    with pytest.raises(ValueError, match="pairwise"):
        prod.contrast("region", kind="helmert")
    assert prod.margins().index.tolist() == ["_cons"]  # the average prediction
    assert prod.margins()["margin"].iloc[0] == pytest.approx(prod.predict(kind="xb").mean(), rel=1e-12)


@pytest.mark.parametrize("entry,kwargs", [(e, k) for m, e, k in CASES if m == "sleepstudy_fast"])
def test_margins_after_stata_factor_variables(entry, kwargs):
    """``i.fast##c.days`` (Stata's names, ``1.fast#c.days``): the same margins."""
    data = pd.read_csv(PEERS / "data" / "sleepstudy_fast.csv")
    res = mx.mixed("mixed reaction i.fast##c.days || subject:", data)
    assert "1.fast#c.days" in res.params.index
    tab = res.margins(**kwargs)
    rows = list(REF["sleepstudy_fast"][entry]["stata_style"]["results"].values())
    np.testing.assert_allclose(tab[["margin", "std_err"]].to_numpy(), [[r["estimate"], r["se"]] for r in rows],
                               rtol=RTOL)
