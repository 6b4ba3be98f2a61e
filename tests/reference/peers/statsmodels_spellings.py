"""statsmodels MixedLM reference fits, recorded under statsmodels' own names.

Writes statsmodels_spellings.json next to this file.  Also runs
statsmodels_spellings_lme4.R (Rscript) and embeds lme4's fits of the same models
for cross-checking.  Run from the repository root:

    python tests/reference/peers/statsmodels_spellings.py
"""
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import scipy
import statsmodels
import statsmodels.formula.api as smf

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))

dietox = pd.read_csv(os.path.join(HERE, "data", "dietox.csv"))
pastes = pd.read_csv(os.path.join(ROOT, "mixedlm_ext", "datasets", "pastes.csv"))
sleep = pd.read_csv(os.path.join(ROOT, "mixedlm_ext", "datasets", "sleepstudy.csv"))

DATA = {
    "dietox": 'dietox = pd.read_csv("tests/reference/peers/data/dietox.csv")  # first CSV column is the row index',
    "pastes": 'pastes = pd.read_csv("mixedlm_ext/datasets/pastes.csv")',
    "sleep": 'sleep = pd.read_csv("mixedlm_ext/datasets/sleepstudy.csv")',
}


def fl(x):
    x = float(x)
    if np.isnan(x):
        return None
    if np.isinf(x):
        return "Inf" if x > 0 else "-Inf"
    return x


def series(s):
    return {str(k): fl(v) for k, v in s.items()}


def optimizers_tried(call, w):
    """MixedLM.fit(method=None) tries ["bfgs", "lbfgs", "cg"] in turn until one
    converges, warning "Retrying MixedLM optimization with X" before each retry;
    the last entry of the list returned is the optimizer whose result is reported."""
    first = "lbfgs" if 'method="lbfgs"' in call else "bfgs"
    tried = [first]
    for x in w:
        m = str(x.message)
        if m.startswith("Retrying MixedLM optimization with "):
            tried.append(m.rsplit(" ", 1)[1])
    return tried


def record(call, envir, lme4_key):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        r = eval(call, globals(), envir)
    cov_re = r.cov_re
    re = r.random_effects
    keys = list(re.keys())
    try:
        bse_re = series(r.bse_re)
    except Exception as e:  # pragma: no cover - recorded, not fatal
        bse_re = {"error": repr(e)}
    try:
        bse = series(r.bse)
    except Exception as e:  # pragma: no cover
        bse = {"error": repr(e)}
    return {
        "python_call": call,
        "method": "REML" if r.reml else "ML",
        "optimizers_tried": optimizers_tried(call, w),
        "n": int(r.nobs),
        "converged": bool(r.converged),
        "warnings": [f"{x.category.__name__}: {x.message}" for x in w],
        "llf": fl(r.llf),
        "params": series(r.params),
        "fe_params": series(r.fe_params),
        "bse_fe": series(r.bse_fe),
        "bse_re": bse_re,
        "bse": bse,
        "cov_re": {
            "rownames": [str(x) for x in cov_re.index],
            "colnames": [str(x) for x in cov_re.columns],
            "values": [[fl(v) for v in row] for row in np.asarray(cov_re)],
        },
        "vcomp": [fl(v) for v in np.atleast_1d(r.vcomp)],
        "scale": fl(r.scale),
        "random_effects_key_type": type(keys[0]).__name__ if keys else None,
        "random_effects": {str(k): series(v) for k, v in re.items()},
        "lme4_entry": lme4_key,
    }


FITS = [
    # name, call, data object, lme4 entry
    ("dietox_ri_reml", 'smf.mixedlm("Weight ~ Time", dietox, groups=dietox["Pig"]).fit()', "dietox_ri_reml"),
    ("dietox_ri_ml", 'smf.mixedlm("Weight ~ Time", dietox, groups=dietox["Pig"]).fit(reml=False)', "dietox_ri_ml"),
    ("dietox_rs_reml", 'smf.mixedlm("Weight ~ Time", dietox, groups=dietox["Pig"], re_formula="~Time").fit()', "dietox_rs_reml"),
    ("dietox_rs_ml", 'smf.mixedlm("Weight ~ Time", dietox, groups=dietox["Pig"], re_formula="~Time").fit(reml=False)', "dietox_rs_ml"),
    ("dietox_rs_reml_lbfgs", 'smf.mixedlm("Weight ~ Time", dietox, groups=dietox["Pig"], re_formula="~Time").fit(method="lbfgs")', "dietox_rs_reml"),
    ("dietox_rs_ml_lbfgs", 'smf.mixedlm("Weight ~ Time", dietox, groups=dietox["Pig"], re_formula="~Time").fit(reml=False, method="lbfgs")', "dietox_rs_ml"),
    ("pastes_vc_C_reml", 'smf.mixedlm("strength ~ 1", pastes, groups="batch", re_formula="1", vc_formula={"cask": "0 + C(cask)"}).fit()', "pastes_vc_reml"),
    ("pastes_vc_C_ml", 'smf.mixedlm("strength ~ 1", pastes, groups="batch", re_formula="1", vc_formula={"cask": "0 + C(cask)"}).fit(reml=False)', "pastes_vc_ml"),
    ("pastes_vc_str_reml", 'smf.mixedlm("strength ~ 1", pastes, groups="batch", re_formula="1", vc_formula={"cask": "0 + cask"}).fit()', "pastes_vc_reml"),
    ("pastes_vc_str_ml", 'smf.mixedlm("strength ~ 1", pastes, groups="batch", re_formula="1", vc_formula={"cask": "0 + cask"}).fit(reml=False)', "pastes_vc_ml"),
    ("sleepstudy_rs_reml", 'smf.mixedlm("reaction ~ days", sleep, groups="subject", re_formula="~days").fit()', "sleepstudy_rs_reml"),
    ("sleepstudy_rs_ml", 'smf.mixedlm("reaction ~ days", sleep, groups="subject", re_formula="~days").fit(reml=False)', "sleepstudy_rs_ml"),
]


def run_lme4():
    script = os.path.join(HERE, "statsmodels_spellings_lme4.R")
    txt = subprocess.run(["Rscript", script], check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return json.loads(txt)


def main():
    envir = {"dietox": dietox, "pastes": pastes, "sleep": sleep, "smf": smf}
    lme4 = run_lme4()
    out = {
        "how": (
            "statsmodels MixedLM fits (produced by tests/reference/peers/statsmodels_spellings.py), "
            "each with the exact python_call (import statsmodels.formula.api as smf; data loaded as in "
            "'data'). Recorded under statsmodels' own names: params (the full parameter vector as "
            "statsmodels labels it: fixed effects, then cov_re lower triangle scaled by 1/scale -- "
            "'Group Var', 'Group x Time Cov', ... -- then variance components 'cask Var', all in "
            "statsmodels' 'profile' metric, i.e. relative to scale), fe_params, bse_fe, bse_re, "
            "cov_re (absolute scale: rownames/colnames/values), vcomp (absolute), scale (residual "
            "variance), bse (result.bse, all parameters, labelled like params; bse_re raises in "
            "statsmodels for models with vc_formula and the error text is recorded instead), llf (REML fits: restricted llf with lme4's constant), random_effects (dict "
            "group -> series keyed exactly as statsmodels keys them; JSON keys are str(key), "
            "random_effects_key_type gives the Python type), converged, the optimizer used "
            "(optimizer = result.method) and warnings emitted. 'lme4' holds the lme4 fits of the same "
            "models (from statsmodels_spellings_lme4.R; fields as in trust_lme4.json, including 'tight', "
            "a bobyqa refit with rhoend=1e-10) and "
            "'comparison' the statsmodels-minus-lme4 differences (against lme4's 'tight' refit)."
        ),
        "versions": {"python": sys.version.split()[0], "statsmodels": statsmodels.__version__,
                     "numpy": np.__version__, "pandas": pd.__version__, "scipy": scipy.__version__,
                     "R": lme4["versions"]["R"], "lme4": lme4["versions"]["lme4"]},
        "data": DATA,
        "fits": {},
    }
    for name, call, lkey in FITS:
        out["fits"][name] = record(call, envir, lkey)
    out["lme4"] = lme4
    comp = {}
    for name, rec in out["fits"].items():
        l = lme4[rec["lme4_entry"]]["tight"]  # lme4's tight optimum
        re_l = l["re"]
        c = {"llf_statsmodels": rec["llf"], "llf_lme4": l["llf"],
             "llf_diff": rec["llf"] - l["llf"],
             "scale_statsmodels": rec["scale"], "sigma2_lme4": l["sigma2"],
             "scale_rel_diff": rec["scale"] / l["sigma2"] - 1}
        cv = rec["cov_re"]["values"]
        if name.startswith("pastes"):
            c["var_batch_statsmodels"] = cv[0][0]
            c["var_batch_lme4"] = re_l["batch:var(_cons)"]
            c["var_cask_statsmodels"] = rec["vcomp"][0]
            c["var_cask_lme4"] = re_l["cask:var(_cons)"]
        elif len(cv) == 2:
            lev, slope = ("Pig", "Time") if name.startswith("dietox") else ("subject", "days")
            c["cov_re_statsmodels"] = cv
            c["cov_re_lme4"] = [[re_l[f"{lev}:var(_cons)"], re_l[f"{lev}:cov({slope},_cons)"]],
                                [re_l[f"{lev}:cov({slope},_cons)"], re_l[f"{lev}:var({slope})"]]]
        else:
            lev = "Pig"
            c["var_re_statsmodels"] = cv[0][0]
            c["var_re_lme4"] = re_l[f"{lev}:var(_cons)"]
        comp[name] = c
    out["comparison"] = comp
    # the two vc_formula spellings of pastes: same numbers?
    sp = {}
    for meth in ("reml", "ml"):
        a, b = out["fits"][f"pastes_vc_C_{meth}"], out["fits"][f"pastes_vc_str_{meth}"]
        sp[meth] = {
            "params_identical": a["params"] == b["params"],
            "llf_identical": a["llf"] == b["llf"],
            "scale_identical": a["scale"] == b["scale"],
            "vcomp_identical": a["vcomp"] == b["vcomp"],
            "random_effects_values_identical": [list(v.values()) for v in a["random_effects"].values()]
            == [list(v.values()) for v in b["random_effects"].values()],
            "random_effects_index_C": list(next(iter(a["random_effects"].values())).keys()),
            "random_effects_index_str": list(next(iter(b["random_effects"].values())).keys()),
        }
    out["pastes_vc_spellings"] = {
        "note": ('vc_formula={"cask": "0 + C(cask)"} and {"cask": "0 + cask"} (cask a string column, '
                 "which patsy codes as categorical) give the same design; only the names of the "
                 "random-effect entries differ (cask[C(cask)[a]] vs cask[cask[a]])."),
        **sp,
    }
    f = os.path.join(HERE, "statsmodels_spellings.json")
    with open(f, "w") as fh:
        json.dump(out, fh, indent=1)
        fh.write("\n")
    print("wrote", f)


if __name__ == "__main__":
    main()
