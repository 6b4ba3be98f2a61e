"""scikit-learn estimator ``MixedLMRegressor`` (issue 5)."""
from __future__ import annotations

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, GroupKFold, KFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

import mixedlm_ext as mx
from mixedlm_ext import MixedLMRegressor
from mixedlm_ext.core.errors import NoGroupsWarning

# check_estimator calls fit(X, y) without groups: with no_groups="linear" the
# estimator fits the linear regression (no random effects) silently.  One check
# cannot pass: its data have 30 columns for 15 rows, so the repeated rows fit
# exactly (zero residual variance: warned) and the weighted REML fit has no
# residual degrees of freedom (refused with a clear error).
EXPECTED_FAILED_CHECKS: dict[str, str] = {
    "check_sample_weight_equivalence_on_dense_data":
        "30 columns for 15 rows: an exact fit (warned) and REML without residual degrees of freedom (refused)",
}


@pytest.fixture(scope="module")
def sleep():
    return mx.load_dataset("sleepstudy")


@pytest.fixture
def routing():
    with sklearn.config_context(enable_metadata_routing=True):
        yield


def _pipe(re_columns, pandas_output=False, **kw):
    ct = ColumnTransformer([("num", StandardScaler(), ["days"])])
    pipe = make_pipeline(ct, MixedLMRegressor(re_columns=re_columns, **kw))
    return pipe.set_output(transform="pandas") if pandas_output else pipe


# ---------------------------------------------------------------------------
def test_check_estimator_without_warnings():
    """Every check passes and none warns (warnings are errors here); the array-API check is
    skipped by scikit-learn itself unless SCIPY_ARRAY_API=1 (reported, not warned)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        results = check_estimator(MixedLMRegressor(no_groups="linear"), expected_failed_checks=EXPECTED_FAILED_CHECKS,
                                  on_skip=None)
    status = {r["check_name"]: r["status"] for r in results}
    assert [k for k, v in status.items() if v == "failed"] == []
    assert [k for k, v in status.items() if v == "xfail"] == list(EXPECTED_FAILED_CHECKS)
    assert {k for k, v in status.items() if v == "skipped"} <= {"check_array_api_input"}
    assert sum(v == "passed" for v in status.values()) >= 50


def test_check_estimator_default_only_warns_about_groups():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        check_estimator(MixedLMRegressor(), expected_failed_checks=EXPECTED_FAILED_CHECKS, on_skip=None)
    assert {w.category for w in seen} <= {NoGroupsWarning, mx.ConvergenceWarning}


def test_init_only_stores_parameters():
    est = MixedLMRegressor(re_columns="bogus", covariance="nonsense", reml="x", fit_options=3)
    assert est.get_params()["covariance"] == "nonsense"  # nothing validated before fit


@pytest.mark.parametrize("params,match", [
    ({"covariance": "nonsense"}, "covariance"),
    ({"reml": "x"}, "reml"),
    ({"fit_options": 3}, "fit_options"),
    ({"fit_options": {"nope": 1}}, "fit option"),
    ({"re_columns": ["days"]}, "by name but X has no column names"),
    ({"re_columns": [5]}, "out of range"),
    ({"re_columns": [0, 0]}, "listed twice"),
])
def test_invalid_parameters_raise_in_fit(params, match):
    X, y, g = np.arange(20.0).reshape(10, 2), np.arange(10.0) ** 1.5, np.repeat([0, 1], 5)
    with pytest.raises(ValueError, match=match):
        MixedLMRegressor(**params).fit(X, y, groups=g)


# ---------------------------------------------------------------------------
def _hand_groupkfold_scores(d):
    """Each GroupKFold split fit with mx.lmer on hand-standardised days; population R^2."""
    out = []
    for tr, te in GroupKFold(5).split(d, d["reaction"], d["subject"]):
        a, b = d.iloc[tr].copy(), d.iloc[te].copy()
        m, s = a["days"].mean(), a["days"].std(ddof=0)
        a["z"], b["z"] = (a["days"] - m) / s, (b["days"] - m) / s
        fe = mx.lmer("reaction ~ z + (z | subject)", a).fe_params
        out.append(r2_score(b["reaction"], fe["_cons"] + fe["z"] * b["z"]))
    return np.array(out)


@pytest.mark.parametrize("pandas_output,re_columns", [(False, [0]), (True, ["days"])])
def test_pipeline_groupkfold_matches_hand_fits(sleep, routing, pandas_output, re_columns):
    X, y, g = sleep[["days"]], sleep["reaction"], sleep["subject"]
    pipe = _pipe(re_columns, pandas_output)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # unseen groups: warning-free
        cv = cross_validate(pipe, X, y, cv=GroupKFold(5), params={"groups": g}, return_estimator=True)
    np.testing.assert_allclose(cv["test_score"], _hand_groupkfold_scores(sleep), rtol=0, atol=1e-10)
    est = cv["estimator"][0][-1]
    assert est.n_groups_ in (14, 15)  # 18 subjects, 3 or 4 held out
    assert est.random_effects_["subject"].shape[1] == 2  # random intercept and slope
    if pandas_output:
        assert list(est.feature_names_in_) == ["num__days"]
        assert est.fe_names_ == ["num__days", "_cons"]


def test_cross_validate_without_routing_warns(sleep):
    X, y, g = sleep[["days"]], sleep["reaction"], sleep["subject"]
    with pytest.warns(NoGroupsWarning):
        cross_validate(MixedLMRegressor(), X, y, groups=g, cv=GroupKFold(3))


def test_gridsearch_picks_random_slope(sleep, routing):
    X, y, g = sleep[["days"]], sleep["reaction"], sleep["subject"]
    grid = [
        {"mixedlmregressor__re_columns": [None], "mixedlmregressor__reml": [True, False]},
        {"mixedlmregressor__re_columns": [[0]], "mixedlmregressor__reml": [True, False],
         "mixedlmregressor__covariance": ["independent", "unstructured"]},
    ]
    cv = KFold(5, shuffle=True, random_state=0)  # subjects seen in training: BLUPs matter
    gs = GridSearchCV(_pipe(None), grid, cv=cv).fit(X, y, groups=g)
    res = pd.DataFrame(gs.cv_results_)
    slope = res["param_mixedlmregressor__re_columns"].map(lambda v: v is not None)
    assert gs.best_params_["mixedlmregressor__re_columns"] == [0]
    assert res.loc[slope, "mean_test_score"].min() > res.loc[~slope, "mean_test_score"].max() + 0.05
    # the search's score of a candidate equals the same fits done by hand
    est = MixedLMRegressor(re_columns=None)
    hand = [make_pipeline(ColumnTransformer([("num", StandardScaler(), ["days"])]), clone(est))
            .fit(X.iloc[tr], y.iloc[tr], groups=g.iloc[tr])
            .score(X.iloc[te], y.iloc[te], groups=g.iloc[te]) for tr, te in cv.split(X)]
    row = res[(~slope) & (res["param_mixedlmregressor__reml"] == True)].iloc[0]  # noqa: E712
    np.testing.assert_allclose([row["split%d_test_score" % k] for k in range(5)], hand, atol=1e-12)
    assert "subject" in gs.best_estimator_[-1].random_effects_


# ---------------------------------------------------------------------------
def test_seen_and_unseen_group_predictions(sleep, reference_case):
    X, y, g = sleep[["days"]], sleep["reaction"], sleep["subject"]
    est = MixedLMRegressor(re_columns=["days"]).fit(X, y, groups=g)
    # BLUPs equal lme4's (REML, unstructured)
    ref = reference_case("blups_lme4")["sleepstudy_un_reml"]["blups"]["subject"]
    blups = est.random_effects_["subject"]
    assert [str(k) for k in blups.index] == ref["groups"]
    np.testing.assert_allclose(blups["_cons"], ref["blup"]["(Intercept)"], atol=1e-3)
    np.testing.assert_allclose(blups["days"], ref["blup"]["days"], atol=1e-4)

    days = sleep["days"].to_numpy(float)
    fixed = est.intercept_ + est.coef_[0] * days
    b = blups.loc[g.to_numpy()]
    seen = fixed + b["_cons"].to_numpy() + b["days"].to_numpy() * days
    np.testing.assert_allclose(est.predict(X, groups=g), seen, rtol=1e-12)
    np.testing.assert_allclose(est.predict(X), fixed, rtol=1e-12)  # no groups: population level
    mixed_groups = g.to_numpy().copy()
    mixed_groups[::3] = -1  # an unseen subject
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pred = est.predict(X, groups=mixed_groups)
    np.testing.assert_allclose(pred[::3], fixed[::3], rtol=1e-12)
    keep = np.ones(len(pred), bool)
    keep[::3] = False
    np.testing.assert_allclose(pred[keep], seen[keep], rtol=1e-12)
    assert est.score(X, y, groups=g) > 0.8 > 0.3 > est.score(X, y)

    # formula mode: same model, grouping columns in X
    f = MixedLMRegressor(formula="reaction ~ days + (days | subject)").fit(sleep[["days", "subject"]], y)
    np.testing.assert_allclose(f.predict(sleep), seen, rtol=1e-9)
    new = pd.DataFrame({"days": [0.0, 5.0], "subject": [308, 10_000]})
    np.testing.assert_allclose(f.predict(new), est.predict(new[["days"]], groups=new["subject"]), rtol=1e-9)
    np.testing.assert_allclose(f.coef_, est.coef_)
    assert f.intercept_ == pytest.approx(est.intercept_)
    assert list(f.feature_names_in_) == ["days", "subject"]


def test_nested_formula_predictions(reference_case):
    P = mx.load_dataset("productivity")
    f = MixedLMRegressor(formula="gsp ~ private + emp + hwy + water + other + unemp"
                         " + (1 | region) + (1 | region:state)", reml=False).fit(P)
    ref = reference_case("blups_lme4")["productivity_3l_ml"]["blups"]
    np.testing.assert_allclose(f.random_effects_["region"]["_cons"], ref["region"]["blup"]["(Intercept)"],
                               atol=1e-6)
    np.testing.assert_allclose(f.random_effects_["region:state"]["_cons"],
                               ref["region:state"]["blup"]["(Intercept)"], atol=1e-6)
    # seen rows: fixed + region BLUP + state BLUP; a new state of a seen region: fixed + region BLUP
    fixed = f.predict(P.assign(region=-1, state=-1))
    r = f.random_effects_["region"]["_cons"].loc[P["region"]].to_numpy()
    s = f.random_effects_["region:state"]["_cons"].loc[list(zip(P["region"], P["state"]))].to_numpy()
    np.testing.assert_allclose(f.predict(P), fixed + r + s, rtol=1e-12)
    np.testing.assert_allclose(f.predict(P.assign(state=-1)), fixed + r, rtol=1e-12)



@pytest.mark.parametrize("name,formula,reml", [
    ("penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", False),  # crossed
    ("pastes", "strength ~ 1 + (1 | batch/cask)", True),  # nested
    ("pig", "weight ~ week + (week | id)", False),
])
def test_predictions_match_results_predict(name, formula, reml):
    """The estimator's own BLUP prediction equals the results' ``predict(kind="fitted")``."""
    data = mx.load_dataset(name)
    est = MixedLMRegressor(formula=formula, reml=reml).fit(data)
    if not hasattr(est.results_._results, "random_effects"):
        pytest.skip("results have no postestimation predict yet")
    new = data.sample(frac=1.0, random_state=0)
    last = est.results_._results.model.design.levels[-1].path
    if last:  # a third of the rows in groups not seen in training
        new.loc[new.index[::3], last[-1]] = -1 if pd.api.types.is_numeric_dtype(new[last[-1]]) else "new"
    expected = est.results_.predict(new, kind="fitted").to_numpy()
    np.testing.assert_allclose(est.predict(new), expected, rtol=1e-10, atol=1e-10)


def test_no_groups_fits_linear_regression(sleep):
    X = np.column_stack([sleep["days"], np.sin(sleep["days"])])
    y = sleep["reaction"].to_numpy()
    with pytest.warns(NoGroupsWarning):
        est = MixedLMRegressor().fit(X, y)
    A = np.column_stack([X, np.ones(len(y))])
    coef = np.linalg.lstsq(A, y, rcond=None)[0]
    np.testing.assert_allclose(est.coef_, coef[:2], rtol=1e-9)
    assert est.intercept_ == pytest.approx(coef[2], rel=1e-9)
    assert est.n_groups_ == 0 and est.random_effects_ == {}


def test_collinear_column_gets_zero_coefficient(sleep):
    X = np.column_stack([sleep["days"], 2 * sleep["days"]])
    est = MixedLMRegressor().fit(X, sleep["reaction"], groups=sleep["subject"])
    assert est.coef_[1] == 0.0 and est.coef_[0] == pytest.approx(10.467286, rel=1e-6)


def test_pickle_clone_params(sleep):
    X, y, g = sleep[["days"]], sleep["reaction"], sleep["subject"]
    est = MixedLMRegressor(re_columns=[0], covariance="independent", reml=False,
                           fit_options={"maxiter": 200}).fit(X, y, groups=g)
    est2 = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(est2.predict(X, groups=g), est.predict(X, groups=g))
    np.testing.assert_array_equal(est2.coef_, est.coef_)
    assert est2.get_params() == est.get_params()
    assert "Independent" in str(est2.results_.summary())
    c = clone(est)
    assert not hasattr(c, "results_") and c.get_params() == est.get_params()
    c.set_params(covariance="unstructured", reml=True)
    assert c.fit(X, y, groups=g).results_.reml

    f = MixedLMRegressor(formula="reaction ~ days + (1 | subject)").fit(sleep)
    f2 = pickle.loads(pickle.dumps(f))
    np.testing.assert_array_equal(f2.predict(sleep), f.predict(sleep))


@pytest.mark.parametrize("residual", [{"kind": "ar", "order": 1, "time": 0},
                                      {"kind": "ar", "order": 1, "time": "days"}])
def test_array_mode_residual_structure_matches_mixed(sleep, residual):
    try:
        ref = mx.mixed("mixed reaction days || subject: days, residuals(ar 1, t(days))", sleep)
    except NotImplementedError:
        pytest.skip("residuals(ar 1) not available")
    est = MixedLMRegressor(re_columns=["days"], covariance="independent", residual=residual, reml=False)
    est.fit(sleep[["days"]], sleep["reaction"], groups=sleep["subject"])
    np.testing.assert_allclose(est.results_.params.to_numpy(), ref.params.to_numpy(), rtol=1e-8)
    assert est.results_.model.spec.residual.time == "days"


# -- sample weights and nested groups --------------------------------------------------------
def test_sample_weight_is_lme4_precision_weights():
    """fit(..., sample_weight=w) is lmer(..., weights=w): lme4's weighted REML fit of sleepstudy."""
    import json
    from pathlib import Path
    peers = Path(__file__).parent / "reference" / "peers"
    ref = json.loads((peers / "trust_lme4.json").read_text())["weights"]["sleepstudy_w_un_reml"]
    d = pd.read_csv(peers / "data" / "sleepstudy_w.csv")
    est = MixedLMRegressor(re_columns=["days"]).fit(d[["days"]], d.reaction, groups=d.subject, sample_weight=d.w)
    tight = ref.get("tight", ref)
    assert abs(est.results_.llf - tight["llf"]) < 1e-6
    direct = mx.lmer("reaction ~ days + (days | subject)", d, weights="w")
    np.testing.assert_allclose(est.predict(d[["days"]], groups=d.subject), direct.predict(d), rtol=1e-7)
    form = MixedLMRegressor(formula="reaction ~ days + (days | subject)").fit(d, sample_weight=d.w)
    assert abs(form.results_.llf - direct.llf) < 1e-9


def test_sample_weight_zero_drops_the_row(sleep):
    w = np.ones(len(sleep))
    w[:10] = 0.0
    a = MixedLMRegressor(re_columns=["days"]).fit(sleep[["days"]], sleep.reaction, groups=sleep.subject,
                                                  sample_weight=w)
    b = MixedLMRegressor(re_columns=["days"]).fit(sleep[["days"]].iloc[10:], sleep.reaction.iloc[10:],
                                                  groups=sleep.subject.iloc[10:])
    assert abs(a.results_.llf - b.results_.llf) < 1e-9
    with pytest.raises(ValueError, match="non-negative"):
        MixedLMRegressor().fit(sleep[["days"]], sleep.reaction, groups=sleep.subject, sample_weight=-w)


def test_sample_weight_routed(sleep, routing):
    w = 1.0 / (1.0 + sleep.days.to_numpy() / 3.0)
    cv = cross_validate(MixedLMRegressor(re_columns=["days"]), sleep[["days"]], sleep.reaction, cv=GroupKFold(3),
                        params={"groups": sleep.subject, "sample_weight": w}, return_estimator=True,
                        return_indices=True)
    train = cv["indices"]["train"][0]
    by_hand = MixedLMRegressor(re_columns=["days"]).fit(sleep[["days"]].iloc[train], sleep.reaction.iloc[train],
                                                        groups=sleep.subject.iloc[train], sample_weight=w[train])
    assert abs(cv["estimator"][0].results_.llf - by_hand.results_.llf) < 1e-9


def test_nested_groups_in_array_mode():
    """groups with two columns (coarsest first) are Stata's || region: || state:."""
    d = mx.load_dataset("productivity")
    X = d[["private", "emp"]]
    est = MixedLMRegressor().fit(X, d.gsp, groups=d[["region", "state"]])
    ref = mx.mixed("mixed gsp private emp || region: || state:, reml", d)
    assert abs(est.results_.llf - ref.llf) < 1e-8
    np.testing.assert_allclose(est.results_.params.to_numpy(), ref.params.to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(est.predict(X, groups=d[["region", "state"]].to_numpy()), ref.predict(d),
                               rtol=1e-8)
    slopes = MixedLMRegressor(re_columns=["emp"]).fit(X, d.gsp, groups=d[["region", "state"]])
    ref2 = mx.mixed("mixed gsp private emp || region: || state: emp, cov(un) reml", d)
    assert abs(slopes.results_.llf - ref2.llf) < 1e-6
    with pytest.raises(ValueError, match="grouping level"):
        est.predict(X, groups=d.region)


def test_no_groups_options(sleep):
    X, y = sleep[["days"]], sleep.reaction
    with pytest.warns(NoGroupsWarning):
        MixedLMRegressor().fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MixedLMRegressor(no_groups="linear").fit(X, y)
    with pytest.raises(ValueError, match="got no groups"):
        MixedLMRegressor(no_groups="raise").fit(X, y)
    with pytest.raises(ValueError, match="no_groups must be"):
        MixedLMRegressor(no_groups="maybe").fit(X, y)
