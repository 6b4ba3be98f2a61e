"""Simulation and the parametric bootstrap: bootMer agreement, the fast batched refits
against the full optimiser, reproducibility across n_jobs."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mixedlm_ext as mx
from mixedlm_ext.inference.replicates import SingleLevelBatch, refit_one
from mixedlm_ext.inference.simulate import design_for_response, replicate_seeds

PEERS = Path(__file__).parent / "reference" / "peers"
BOOT = json.loads((PEERS / "bootstrap_lme4.json").read_text())


@pytest.fixture(scope="module")
def pig():
    return mx.load_dataset("pig")


@pytest.fixture(scope="module")
def pig_ri(pig):
    return mx.mixed("mixed weight week || id:", pig)


@pytest.mark.parametrize("case,data,formula", [
    ("pig_ri_ml", "pig", "weight ~ week + (1|id)"),
    ("sleepstudy_ri_ml", "sleepstudy", "reaction ~ days + (1|subject)"),
])
def test_bootstrap_agrees_with_bootmer(case, data, formula):
    ref = BOOT[case]
    res = mx.lmer(formula, mx.load_dataset(data), REML=False)
    B = ref["nsim"]
    boot = res.bootstrap(n_boot=B, seed=20240601, progress=False)
    assert boot.n_failed == 0 and boot.converged.all()
    sd = boot.sd_draws()
    labels = ref["statistic_labels"]  # (Intercept), x, sigma, sd_(Intercept)|g, sd_Residual
    ours = {labels[0]: sd["_cons"], labels[1]: sd[res.model.design.fe_names[0]], labels[2]: sd.iloc[:, -1],
            labels[3]: sd.iloc[:, -2]}
    for lab, draws in ours.items():
        s_ref, s = ref["sd"][lab], float(draws.std(ddof=1))
        # SDs of two independent bootstraps of B replicates each: relative MC error sqrt(2 / (2(B-1)))
        assert abs(s - s_ref) / s_ref < 4.0 * np.sqrt(1.0 / (B - 1)), lab
        assert abs(float(draws.mean()) - ref["mean"][lab]) < 4.0 * s_ref * np.sqrt(2.0 / B), lab
        for q, key in ((0.025, "p2_5"), (0.975, "p97_5")):
            assert abs(float(draws.quantile(q)) - ref[key][lab]) < 6.0 * s_ref * np.sqrt(2.0 / B) * 2, (lab, key)
    # the fixed effects' bootstrap SEs estimate their standard errors
    fe = res.model.design.fe_names
    np.testing.assert_allclose(boot.std_err[fe].to_numpy(), res.bse[fe].to_numpy(), rtol=4.0 * np.sqrt(1.0 / (B - 1)))


def test_draws_do_not_depend_on_n_jobs(pig_ri):
    one = pig_ri.bootstrap(n_boot=230, seed=7, n_jobs=1, progress=False)
    two = pig_ri.bootstrap(n_boot=230, seed=7, n_jobs=2, progress=False)
    assert list(one.draws.columns) == list(pig_ri.params.index)
    assert np.array_equal(one.draws.to_numpy(), two.draws.to_numpy())
    # an unseeded run reports its seed, and that seed reproduces it
    free = pig_ri.bootstrap(n_boot=20, progress=False)
    again = pig_ri.bootstrap(n_boot=20, seed=free.seed, progress=False)
    assert np.array_equal(free.draws.to_numpy(), again.draws.to_numpy())
    other = pig_ri.bootstrap(n_boot=20, seed=8, progress=False)
    assert not np.allclose(other.draws.to_numpy(), one.draws.to_numpy()[:20])


MODELS = [
    ("mixed weight week || id:", "pig"),
    ("mixed weight week || id:, reml", "pig"),
    ("mixed weight week || id: week", "pig"),
    ("mixed weight week || id: week, covariance(unstructured) reml", "pig"),
    ("mixed reaction days || subject: days, covariance(unstructured)", "sleepstudy"),
    ("mixed weight week || id: week, covariance(exchangeable)", "pig"),
    ("mixed gsp private emp hwy water other unemp || region: || state:", "productivity"),
    ("mixed diameter || _all: R.plate || _all: R.sample", "penicillin"),
]


@pytest.mark.parametrize("cmd,data", MODELS)
def test_replicate_refits_reach_the_full_optimum(cmd, data):
    """Every replicate ends where the full optimiser (with its boundary checks) ends."""
    res = mx.mixed(cmd, mx.load_dataset(data))
    ob = res.model.objective
    boot = res.bootstrap(n_boot=12, seed=11, progress=False)
    Y = res.simulation_source().responses(replicate_seeds(11, 12))
    for i in range(12):
        d = design_for_response(ob.design, Y[:, i])
        full, conv, dev_full = refit_one(ob, d, res.opt.theta)
        assert conv
        np.testing.assert_allclose(boot.draws.iloc[i].to_numpy(), full, rtol=1e-4, atol=1e-6 * np.abs(full).max())
        # the replicate's design is the model's design with the new response, as if built from scratch
        frame = res.model.frame.astype({ob.design.spec.response: float})
        order = np.argsort(ob.design.row_pos)
        frame.loc[ob.design.row_index[order], ob.design.spec.response] = Y[order, i]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fresh = mx.MixedLMExt(res.model.spec, frame)
        assert fresh.objective.deviance(res.opt.theta) == pytest.approx(
            type(ob)(d, reml=ob.reml).deviance(res.opt.theta), rel=1e-10)
    assert (SingleLevelBatch.of(ob) is not None) == (cmd.count("||") == 1 and "exchangeable" not in cmd)


def test_precision_weighted_replicates_match_fresh_fits():
    data = pd.read_csv(PEERS / "data" / "sleepstudy_w.csv")
    res = mx.lmer("reaction ~ days + (days|subject)", data, REML=False, weights="w")
    boot = res.bootstrap(n_boot=3, seed=2, progress=False)
    Y = res.simulation_source().responses(replicate_seeds(2, 3))
    d = res.model.design
    order = np.argsort(d.row_pos)
    for i in range(3):
        frame = data.copy()
        frame.loc[d.row_index[order], "reaction"] = Y[order, i]
        fresh = mx.lmer("reaction ~ days + (days|subject)", frame, REML=False, weights="w")
        np.testing.assert_allclose(boot.draws.iloc[i].to_numpy(), fresh.params.to_numpy(), rtol=1e-4)


def test_bootstrap_intervals_by_definition(pig_ri):
    boot = pig_ri.bootstrap(n_boot=150, seed=3, progress=False)
    est = pig_ri.params
    pct = boot.conf_int(method="percentile", alpha=0.1)
    np.testing.assert_allclose(pct["lower"], boot.draws.quantile(0.05))
    np.testing.assert_allclose(pct["upper"], boot.draws.quantile(0.95))
    basic = boot.conf_int(method="basic", alpha=0.1)
    np.testing.assert_allclose(basic["lower"], 2 * est - boot.draws.quantile(0.95))
    norm = boot.conf_int(method="normal")
    z = stats.norm.ppf(0.975)
    np.testing.assert_allclose(norm["upper"], 2 * est - boot.draws.mean() + z * boot.draws.std(ddof=1))
    assert boot.std_err.index.equals(est.index)
    with pytest.raises(ValueError, match="percentile"):
        boot.conf_int(method="bca")


def test_simulate_moments_and_conditional(pig, pig_ri):
    sims = pig_ri.simulate(n=3000, seed=5)
    assert sims.shape == (len(pig), 3000) and sims.index.equals(pig.index)
    v_id, v_e = pig_ri.params["id:var(_cons)"], pig_ri.params["Residual:var(Residual)"]
    xb = pig_ri.predict(kind="xb")
    np.testing.assert_allclose(sims.mean(axis=1), xb, atol=4 * np.sqrt((v_id + v_e) / 3000))
    tol = 4 * (v_id + v_e) * np.sqrt(2 / 3000)
    assert sims.iloc[0].var() == pytest.approx(v_id + v_e, abs=tol)
    same_pig = pig.index[pig["id"] == pig["id"].iloc[0]]
    assert np.cov(sims.loc[same_pig[0]], sims.loc[same_pig[1]])[0, 1] == pytest.approx(v_id, abs=tol)
    other = pig.index[pig["id"] != pig["id"].iloc[0]][0]
    assert abs(np.cov(sims.loc[same_pig[0]], sims.loc[other])[0, 1]) < tol
    cond = pig_ri.simulate(n=3000, seed=5, conditional=True)
    np.testing.assert_allclose(cond.mean(axis=1), pig_ri.predict(kind="fitted"), atol=4 * np.sqrt(v_e / 3000))
    assert cond.iloc[0].var() == pytest.approx(v_e, rel=4 * np.sqrt(2 / 3000))
    # the bootstrap refits exactly these responses
    first = pig_ri.simulate(n=2, seed=9)
    boot = pig_ri.bootstrap(n_boot=2, seed=9, progress=False)
    again = mx.mixed("mixed weight week || id:", pig.assign(weight=first["sim_2"]))
    np.testing.assert_allclose(boot.draws.iloc[1].to_numpy(), again.params.to_numpy(), rtol=1e-5)


def test_progress_bar(pig_ri, capsys):
    pytest.importorskip("tqdm")
    pig_ri.bootstrap(n_boot=5, seed=1, progress=True)
    assert "5/5" in capsys.readouterr().err
    pig_ri.bootstrap(n_boot=5, seed=1, progress=False)
    assert capsys.readouterr().err == ""


def test_simulation_refuses_what_it_cannot_do(pig):
    res = mx.mixed("mixed weight week || id:, residuals(ar 1, t(week))", pig)
    with pytest.raises(NotImplementedError, match="residual structure"):
        res.simulate(seed=1)
    with pytest.raises(ValueError, match="n_boot"):
        mx.mixed("mixed weight week || id:", pig).bootstrap(n_boot=0)


def test_replicates_at_the_boundary_go_through_the_full_optimiser():
    """A group variance estimated at 0: many replicates estimate it as 0 too, where the batched Newton
    iterations cannot verify their stop; those are refitted with the boundary checks."""
    from mixedlm_ext.inference.replicates import interior_starts
    from mixedlm_ext.inference.simulate import response_crossproducts, working_response

    rng = np.random.default_rng(12)
    g = np.repeat(np.arange(30), 5)
    x = rng.normal(size=g.size)
    df = pd.DataFrame({"y": 1 + x + 0.2 * rng.normal(size=30)[g] + rng.normal(size=g.size), "x": x, "g": g})
    res = mx.mixed("mixed y x || g:", df)
    ob = res.model.objective
    boot = res.bootstrap(n_boot=40, seed=1, progress=False)
    Y = res.simulation_source().responses(replicate_seeds(1, 40))
    yw, _ = working_response(ob.design, Y)
    Zty = np.moveaxis(response_crossproducts(ob.design, yw), 2, 0)
    start = interior_starts(res.opt.theta, ob.theta_bounds())[1]  # the estimate is at 0: start inside
    _, ok = SingleLevelBatch.of(ob).newton(np.tile(start, (40, 1)), Zty, np.einsum("nb,nb->b", yw, yw))
    assert 5 <= (~ok).sum() < 40
    zero = 0
    for i in range(40):
        full, conv, _ = refit_one(ob, design_for_response(ob.design, Y[:, i]), res.opt.theta)
        assert conv
        np.testing.assert_allclose(boot.draws.iloc[i].to_numpy(), full, rtol=1e-4, atol=1e-7)
        zero += full[2] < 1e-6
    assert zero >= 5 and (boot.draws["g:var(_cons)"] < 1e-6).sum() == zero


def test_an_offset_is_part_of_every_prediction_and_simulation():
    """lme4's offset(): in get_prediction's mean, in simulated responses, and out of the
    random part that conditional simulation keeps."""
    pig = mx.load_dataset("pig")
    pig["o"] = 10.0 + 0.1 * pig["week"]
    res = mx.lmer("weight ~ week + offset(o) + (1|id)", pig)
    np.testing.assert_allclose(res.get_prediction().predicted_mean, res.predict(kind="xb").to_numpy(), rtol=1e-12)
    sd = float(np.sqrt(res.scale))
    for conditional in (False, True):
        sims = res.simulate(200, seed=3, conditional=conditional).to_numpy()
        assert abs(sims.mean() - pig["weight"].mean()) < 0.5 * sd
        bias = res.bootstrap(100, seed=4, conditional=conditional, progress=False).bias
        assert np.all(np.abs(bias.iloc[:2].to_numpy()) < 0.5 * res.bse.iloc[:2].to_numpy())
