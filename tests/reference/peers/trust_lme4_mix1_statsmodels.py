"""statsmodels MixedLM fits of lme4's `mix1` test model (called by trust_lme4.R).

Reads data/mix1.csv (written by trust_lme4.R) and prints a JSON object on stdout.
Run from anywhere: python trust_lme4_mix1_statsmodels.py
"""
import json
import os
import warnings

import numpy as np
import pandas as pd
import statsmodels
import statsmodels.formula.api as smf

HERE = os.path.dirname(os.path.abspath(__file__))


def fit(reml):
    d = pd.read_csv(os.path.join(HERE, "data", "mix1.csv"))
    call = ('smf.mixedlm("resp ~ 0 + C(var1) + C(var1):var2", d, groups="var3")'
            '.fit(reml=%s)' % reml)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        r = smf.mixedlm("resp ~ 0 + C(var1) + C(var1):var2", d, groups="var3").fit(reml=reml)
    return {
        "python_call": call,
        "data": 'd = pd.read_csv("tests/reference/peers/data/mix1.csv")',
        "method": "REML" if reml else "ML",
        "llf": float(r.llf),
        "fe_params": {k: float(v) for k, v in r.fe_params.items()},
        "cov_re": float(np.asarray(r.cov_re)[0, 0]),
        "scale": float(r.scale),
        "converged": bool(r.converged),
        "warnings": [str(x.message) for x in w],
    }


if __name__ == "__main__":
    out = {"statsmodels": statsmodels.__version__,
           "REML": fit(True), "ML": fit(False)}
    print(json.dumps(out))
