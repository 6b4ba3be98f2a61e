"""Crossed random effects: mixedlm_ext vs lme4 (Rscript) and mixedlm (Rust), same CSV.

    python benchmarks/crossed_bench.py                 # all scenarios
    python benchmarks/crossed_bench.py crossed insteval --repeats 3 --no-r

Scenarios (data from ``benchmarks/simulate.py`` where the suite has them):

* ``crossed``        -- 100,000 rows, a (3,000) x b (1,000) crossed intercepts, ML
  (``mixed y x1 || _all: R.a || b:`` / ``y ~ x1 + (1|a) + (1|b)``);
* ``insteval``       -- InstEval-shaped, 73,421 rows, s (2,972) x d (1,128) x dept (14), ML;
* ``crossed_slopes`` -- 100,000 rows, a (3,000) with a random intercept and
  slope on x1 (unstructured) crossed with b (1,000), ML (simulated here).

Every fit runs in a fresh process: the first fit is *cold* (includes building
the design), the best of ``--repeats`` further fits is *warm*; peak RSS is the
process's ``ru_maxrss``.  lme4 runs through ``benchmarks/peer_r.R`` (its own
warm-up, best of repeats).  Results go to stdout as a Markdown table and to
``benchmarks/data/crossed_bench.json``.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
sys.path.insert(0, str(HERE))

SCENARIOS = {
    "crossed": dict(stata="mixed y x1 || _all: R.a || b:", lme4="y ~ x1 + (1|a) + (1|b)",
                    factors="a,b", reml=False),
    "insteval": dict(stata="mixed y x1 || _all: R.s || _all: R.d || dept:",
                     lme4="y ~ x1 + (1|s) + (1|d) + (1|dept)", factors="s,d,dept", reml=False),
    "crossed_slopes": dict(stata=None, lme4="y ~ x1 + (1 + x1|a) + (1|b)", factors="a,b", reml=False),
}


def crossed_slopes(seed: int = 20240111) -> pd.DataFrame:
    """100,000 rows, a (3,000 levels) x b (1,000 levels), random intercept and slope on a.

    (u0, u1)_a ~ N(0, [[1, .3 * .5], [.3 * .5, .25]]), u_b ~ N(0, .5^2), e ~ N(0, 1).
    """
    rng = np.random.default_rng(seed)
    n, n_a, n_b = 100_000, 3_000, 1_000
    a = rng.permutation(np.arange(n) % n_a) + 1
    b = rng.permutation(np.arange(n) % n_b) + 1
    x1 = rng.standard_normal(n)
    ua = rng.multivariate_normal([0.0, 0.0], [[1.0, 0.15], [0.15, 0.25]], n_a)
    ub = rng.normal(0.0, 0.5, n_b)
    y = 1.0 + 0.5 * x1 + ua[a - 1, 0] + ua[a - 1, 1] * x1 + ub[b - 1] + rng.standard_normal(n)
    return pd.DataFrame({"a": a, "b": b, "x1": x1, "y": y})


def data_file(name: str) -> Path:
    path = DATA / ("%s.csv" % name)
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    if name == "crossed_slopes":
        crossed_slopes().to_csv(path, index=False)
    else:
        import simulate

        simulate.write([name])
    return path


PY_FIT = r'''
import json, resource, sys, time, warnings
import pandas as pd
peer, path, stata, formula = sys.argv[1:5]
reml, repeats = sys.argv[5] == "1", int(sys.argv[6])
df = pd.read_csv(path)
t0 = time.perf_counter()
if peer == "mixedlm_ext":
    import mixedlm_ext as mx
    fit = (lambda: mx.mixed(stata + (" reml" if reml else ""), df)) if stata != "-" else \
          (lambda: mx.lmer(formula, df, reml=reml))
    ll = lambda r: r.llf
else:
    import mixedlm
    fit = lambda: mixedlm.lmer(formula, df, REML=reml)
    ll = lambda r: float(getattr(r.logLik(), "value", r.logLik()))
t_imp = time.perf_counter() - t0
warnings.simplefilter("ignore")
t0 = time.perf_counter(); res = fit(); cold = time.perf_counter() - t0
times = []
for _ in range(repeats):
    t0 = time.perf_counter(); res = fit(); times.append(time.perf_counter() - t0)
out = dict(import_s=t_imp, cold_s=cold, warm_s=min(times) if times else cold, loglik=ll(res),
           peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)
if peer == "mixedlm_ext":
    out["n_eval"] = int(res.opt.n_eval)
print("RESULT " + json.dumps(out))
'''


def run_python(peer: str, path: Path, sc: dict, repeats: int) -> dict:
    args = [sys.executable, "-c", PY_FIT, peer, str(path), sc["stata"] or "-", sc["lme4"],
            "1" if sc["reml"] else "0", str(repeats)]
    proc = subprocess.run(args, capture_output=True, text=True, cwd=str(HERE.parent))
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return dict(error=(proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["failed"])


def run_r(path: Path, sc: dict) -> dict:
    if shutil.which("Rscript") is None:
        return dict(error=["Rscript not found"])
    args = ["Rscript", str(HERE / "peer_r.R"), str(path), "lmer", "1" if sc["reml"] else "0",
            sc["factors"], sc["lme4"]]
    proc = subprocess.run(args, capture_output=True, text=True, input="fit\nfit\nfit\nquit\n")  # peer_r.R serves
    fits = [json.loads(line[4:]) for line in proc.stdout.splitlines() if line.startswith("FIT ")]
    fits = [f for f in fits if f.get("status") == "ok"]
    if fits:
        return dict(warm_s=min(f["fit_s"] for f in fits[1:] or fits), cold_s=fits[0]["fit_s"],
                    loglik=fits[-1]["loglik"], converged=fits[-1]["converged"])
    return dict(error=(proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["failed"])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenarios", nargs="*", default=list(SCENARIOS))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-r", action="store_true")
    p.add_argument("--no-mixedlm", action="store_true")
    a = p.parse_args(argv)
    results = {}
    for name in a.scenarios:
        sc = SCENARIOS[name]
        path = data_file(name)
        row = {"mixedlm_ext": run_python("mixedlm_ext", path, sc, a.repeats)}
        if not a.no_mixedlm:
            row["mixedlm"] = run_python("mixedlm", path, sc, a.repeats)
        if not a.no_r:
            row["lme4"] = run_r(path, sc)
        results[name] = row
        print(name, json.dumps(row), flush=True)
    out = DATA / "crossed_bench.json"
    old = json.loads(out.read_text()) if out.exists() else {}
    old.update(results)
    out.write_text(json.dumps(old, indent=1))
    print()
    print("| scenario | mixedlm_ext warm / cold (s) | evals | peak RSS (MB) | lme4 (s) "
          "| mixedlm warm / cold (s) | lme4 / ours | mixedlm / ours | llf ours - lme4 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, row in results.items():
        me, lm, rs = row["mixedlm_ext"], row.get("lme4", {}), row.get("mixedlm", {})
        if "error" in me:
            print("| %s | error: %s |" % (name, me["error"]))
            continue
        r_lme4 = "%.1fx" % (lm["warm_s"] / me["warm_s"]) if "warm_s" in lm else "-"
        r_rust = "%.1fx" % (rs["warm_s"] / me["warm_s"]) if "warm_s" in rs else "-"
        dll = "%.2g" % (me["loglik"] - lm["loglik"]) if "loglik" in lm else "-"
        print("| %s | %.2f / %.2f | %s | %.0f | %s | %s | %s | %s | %s |" % (
            name, me["warm_s"], me["cold_s"], me.get("n_eval", "-"), me["peak_rss_mb"],
            "%.2f" % lm["warm_s"] if "warm_s" in lm else lm.get("error", "-"),
            "%.2f / %.2f" % (rs["warm_s"], rs["cold_s"]) if "warm_s" in rs else rs.get("error", "-"),
            r_lme4, r_rust, dll))
    return 0


if __name__ == "__main__":
    sys.exit(main())
