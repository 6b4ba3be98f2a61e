"""Deterministic simulated datasets for the mixedlm_ext benchmark suite.

Every scenario has one function here that builds a :class:`pandas.DataFrame`
from a fixed numpy seed (``numpy.random.default_rng``), so the files are
byte-for-byte reproducible on any machine with the same numpy.  ``write()``
stores them as CSV in ``benchmarks/data/`` (gitignored) where every peer --
mixedlm_ext, statsmodels, mixedlm and R's lme4 / nlme -- reads the *same* file.

Usage::

    python benchmarks/simulate.py            # write every missing file
    python benchmarks/simulate.py --force    # rewrite all files
    python benchmarks/simulate.py ri ar1     # only these scenarios
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
DATA_DIR = HERE / "data"
SHARED_DATA = Path(os.environ.get("MIXEDLM_SHARED_DATA", "/work/shared/data"))
REPO_DATA = HERE.parent / "mixedlm_ext" / "datasets"  # fallback copy of the small sets


# --------------------------------------------------------------------------
# scenarios
# --------------------------------------------------------------------------
def ri(seed: int = 20240101) -> pd.DataFrame:
    """Random intercept: 100,000 rows, 2,000 groups of 50, covariates x1..x3.

    y = 1 + 0.5 x1 - 0.3 x2 + 0.2 x3 + u_g + e,  u_g ~ N(0, 1), e ~ N(0, 2^2).
    Model: y ~ x1 + x2 + x3 + (1|g), ML.
    """
    rng = np.random.default_rng(seed)
    n_groups, per = 2_000, 50
    n = n_groups * per
    g = np.repeat(np.arange(1, n_groups + 1), per)
    x = rng.standard_normal((n, 3))
    u = rng.normal(0.0, 1.0, n_groups)
    e = rng.normal(0.0, 2.0, n)
    y = 1.0 + x @ np.array([0.5, -0.3, 0.2]) + u[g - 1] + e
    return pd.DataFrame({"g": g, "x1": x[:, 0], "x2": x[:, 1], "x3": x[:, 2], "y": y})


def rs(seed: int = 20240102) -> pd.DataFrame:
    """Random intercept and slope on x1: 100,000 rows, 2,000 groups of 50.

    (u0, u1) ~ N(0, [[1, .3*.5], [.3*.5, .5^2]]) (sd 1 and 0.5, corr 0.3), e ~ N(0, 1).
    Model: y ~ x1 + (1 + x1 | g), unstructured, REML.
    """
    rng = np.random.default_rng(seed)
    n_groups, per = 2_000, 50
    n = n_groups * per
    g = np.repeat(np.arange(1, n_groups + 1), per)
    x1 = rng.standard_normal(n)
    sd = np.array([1.0, 0.5])
    corr = np.array([[1.0, 0.3], [0.3, 1.0]])
    cov = corr * np.outer(sd, sd)
    u = rng.multivariate_normal(np.zeros(2), cov, size=n_groups)
    e = rng.normal(0.0, 1.0, n)
    y = 2.0 + 0.7 * x1 + u[g - 1, 0] + u[g - 1, 1] * x1 + e
    return pd.DataFrame({"g": g, "x1": x1, "y": y})


def nested3(seed: int = 20240103) -> pd.DataFrame:
    """Three-level random intercepts: 1,000 a x 50 b within a x 20 rows = 1,000,000 rows.

    ``b`` codes 1..50 repeat within every ``a`` (it is *not* unique on its own:
    the level-2 group is the pair (a, b)).
    y = 1 + 0.5 x1 + u_a + u_ab + e, sd(u_a) = 1, sd(u_ab) = 0.7, sd(e) = 1.
    Model: y ~ x1 + (1|a) + (1|a:b), ML.
    """
    rng = np.random.default_rng(seed)
    n_a, n_b, per = 1_000, 50, 20
    n = n_a * n_b * per
    a = np.repeat(np.arange(1, n_a + 1), n_b * per)
    b = np.tile(np.repeat(np.arange(1, n_b + 1), per), n_a)
    ab = (a - 1) * n_b + (b - 1)
    x1 = rng.standard_normal(n)
    u_a = rng.normal(0.0, 1.0, n_a)
    u_ab = rng.normal(0.0, 0.7, n_a * n_b)
    e = rng.normal(0.0, 1.0, n)
    y = 1.0 + 0.5 * x1 + u_a[a - 1] + u_ab[ab] + e
    return pd.DataFrame({"a": a, "b": b, "x1": x1, "y": y})


def nested3_slopes(seed: int = 20240104) -> pd.DataFrame:
    """Three levels with random intercepts and slopes on x1 at both levels.

    200 a x 50 b within a x 20 rows = 200,000 rows; ``b`` codes 1..50 repeat
    within every ``a``.  Independent covariance at each level:
    sd(a: _cons, x1) = (1, 0.5), sd(a:b: _cons, x1) = (0.7, 0.3), sd(e) = 1.
    Model: y ~ x1 + (1|a) + (0+x1|a) + (1|a:b) + (0+x1|a:b), ML.
    """
    rng = np.random.default_rng(seed)
    n_a, n_b, per = 200, 50, 20
    n = n_a * n_b * per
    a = np.repeat(np.arange(1, n_a + 1), n_b * per)
    b = np.tile(np.repeat(np.arange(1, n_b + 1), per), n_a)
    ab = (a - 1) * n_b + (b - 1)
    x1 = rng.standard_normal(n)
    a0 = rng.normal(0.0, 1.0, n_a)
    a1 = rng.normal(0.0, 0.5, n_a)
    b0 = rng.normal(0.0, 0.7, n_a * n_b)
    b1 = rng.normal(0.0, 0.3, n_a * n_b)
    e = rng.normal(0.0, 1.0, n)
    y = 1.0 + 0.5 * x1 + a0[a - 1] + a1[a - 1] * x1 + b0[ab] + b1[ab] * x1 + e
    return pd.DataFrame({"a": a, "b": b, "x1": x1, "y": y})


def ar1(seed: int = 20240105) -> pd.DataFrame:
    """Random intercept + stationary AR(1) residuals within panels.

    5,000 panels g of 20 occasions t = 1..20 (100,000 rows); rho = 0.6,
    marginal sd(e) = 1, sd(u_g) = 1.
    Model: y ~ x1 + (1|g), residuals AR(1) in t within g, ML.
    """
    rng = np.random.default_rng(seed)
    n_groups, per, rho = 5_000, 20, 0.6
    n = n_groups * per
    g = np.repeat(np.arange(1, n_groups + 1), per)
    t = np.tile(np.arange(1, per + 1), n_groups)
    x1 = rng.standard_normal(n)
    u = rng.normal(0.0, 1.0, n_groups)
    innov = rng.standard_normal((n_groups, per))
    e = np.empty((n_groups, per))
    e[:, 0] = innov[:, 0]
    s = np.sqrt(1.0 - rho * rho)
    for j in range(1, per):
        e[:, j] = rho * e[:, j - 1] + s * innov[:, j]
    y = 1.0 + 0.5 * x1 + u[g - 1] + e.ravel()
    return pd.DataFrame({"g": g, "t": t, "x1": x1, "y": y})


def _crossed_intercepts(seed: int, n: int, n_a: int, n_b: int) -> pd.DataFrame:
    """``y = 1 + 0.5 x1 + u_a + u_b + e`` with balanced level counts and random pairing;
    sd(u_a) = 1, sd(u_b) = 0.5, sd(e) = 1."""
    rng = np.random.default_rng(seed)
    a = rng.permutation(np.arange(n) % n_a) + 1
    b = rng.permutation(np.arange(n) % n_b) + 1
    x1 = rng.standard_normal(n)
    u_a = rng.normal(0.0, 1.0, n_a)
    u_b = rng.normal(0.0, 0.5, n_b)
    e = rng.normal(0.0, 1.0, n)
    y = 1.0 + 0.5 * x1 + u_a[a - 1] + u_b[b - 1] + e
    return pd.DataFrame({"a": a, "b": b, "x1": x1, "y": y})


def crossed(seed: int = 20240106) -> pd.DataFrame:
    """Crossed random intercepts: 100,000 rows, a (3,000 levels) x b (1,000 levels).

    Every level of a appears in 33 or 34 rows and every level of b in 100 rows
    (balanced counts, random pairing).  sd(u_a) = 1, sd(u_b) = 0.5, sd(e) = 1.
    Model: y ~ x1 + (1|a) + (1|b), ML.
    """
    return _crossed_intercepts(seed, 100_000, 3_000, 1_000)


def crossed_large(seed: int = 20240108) -> pd.DataFrame:
    """Crossed random intercepts at scale: 330,000 rows, a (10,000 levels) x b (3,000 levels).

    Every level of a appears in 33 rows and every level of b in 110 rows
    (balanced counts, random pairing, as in :func:`crossed`), so the second
    factor's block of the factor fills in (about 70 % of the 3,000 x 3,000
    pairs of b levels share a level of a).  sd(u_a) = 1, sd(u_b) = 0.5, sd(e) = 1.
    Model: y ~ x1 + (1|a) + (1|b), ML.
    """
    return _crossed_intercepts(seed, 330_000, 10_000, 3_000)


def insteval(seed: int = 20240107) -> pd.DataFrame:
    """InstEval-shaped: 73,421 ratings, students s (2,972), lecturers d (1,128), dept (14).

    Like lme4's InstEval: each student gives ~25 ratings (gamma-distributed
    counts), lecturer popularity is skewed (log-normal weights), every
    lecturer belongs to one of 14 departments of unequal size, and students
    mostly rate lecturers of their own department (85 % of a student's
    ratings come from the home department, the rest from any department), so
    s and d are crossed but clustered, as in the real data.  x1 is a 0/1
    indicator (InstEval's ``service``).
    y = 3.2 - 0.1 x1 + u_s + u_d + u_dept + e with sds 0.33, 0.52, 0.08, 1.18
    (close to the lme4 fit of InstEval).
    Model: y ~ x1 + (1|s) + (1|d) + (1|dept), ML.
    """
    rng = np.random.default_rng(seed)
    n, n_s, n_d, n_dept = 73_421, 2_972, 1_128, 14
    # departments of unequal size; every lecturer in exactly one
    w_dept = rng.gamma(3.0, 1.0, n_dept)
    dept_of_d = np.concatenate([np.arange(n_dept), rng.choice(n_dept, n_d - n_dept, p=w_dept / w_dept.sum())])
    dept_of_d = rng.permutation(dept_of_d)
    w_d = rng.lognormal(0.0, 1.0, n_d)  # lecturer popularity
    # students: home department by department size, rating counts gamma-distributed
    size_dept = np.bincount(dept_of_d, minlength=n_dept).astype(float)
    home = rng.choice(n_dept, n_s, p=size_dept / size_dept.sum())
    w_s = rng.gamma(2.0, 1.0, n_s)
    s = np.concatenate([np.arange(n_s), rng.choice(n_s, n - n_s, p=w_s / w_s.sum())])
    s = rng.permutation(s)
    d = rng.choice(n_d, n, p=w_d / w_d.sum())  # the 15 % drawn from any department
    at_home = rng.random(n) < 0.85
    for k in range(n_dept):
        rows = np.flatnonzero(at_home & (home[s] == k))
        lect = np.flatnonzero(dept_of_d == k)
        d[rows] = rng.choice(lect, rows.size, p=w_d[lect] / w_d[lect].sum())
    # every lecturer rated at least once
    missing = np.setdiff1d(np.arange(n_d), d)
    d[rng.choice(n, missing.size, replace=False)] = missing
    dept = dept_of_d[d]
    x1 = (rng.random(n) < 0.4).astype(np.int64)
    u_s = rng.normal(0.0, 0.33, n_s)
    u_d = rng.normal(0.0, 0.52, n_d)
    u_dept = rng.normal(0.0, 0.08, n_dept)
    e = rng.normal(0.0, 1.18, n)
    y = 3.2 - 0.1 * x1 + u_s[s] + u_d[d] + u_dept[dept] + e
    return pd.DataFrame({"s": s + 1, "d": d + 1, "dept": dept + 1, "x1": x1, "y": y})


def _small_copy(name: str) -> pd.DataFrame:
    for base in (SHARED_DATA, REPO_DATA):
        path = base / ("%s.csv" % name)
        if path.exists():
            return pd.read_csv(path)
    raise FileNotFoundError("%s.csv not found in %s or %s" % (name, SHARED_DATA, REPO_DATA))


def sleepstudy() -> pd.DataFrame:
    """lme4's sleepstudy (180 rows): reaction ~ days + (days|subject), REML."""
    return _small_copy("sleepstudy")


def pig() -> pd.DataFrame:
    """Stata's pig (432 rows): weight ~ week + (1|id), ML."""
    return _small_copy("pig")


# scenario name -> list of (file stem, builder)
SCENARIO_FILES = {
    "ri": [("ri", ri)],
    "rs": [("rs", rs)],
    "nested3": [("nested3", nested3)],
    "nested3_slopes": [("nested3_slopes", nested3_slopes)],
    "ar1": [("ar1", ar1)],
    "crossed": [("crossed", crossed)],
    "crossed_large": [("crossed_large", crossed_large)],
    "insteval": [("insteval", insteval)],
    "small": [("sleepstudy", sleepstudy), ("pig", pig)],
}
SCENARIOS = list(SCENARIO_FILES)


def data_path(stem: str) -> Path:
    return DATA_DIR / ("%s.csv" % stem)


def write(names=None, force: bool = False, verbose: bool = True) -> list[Path]:
    """Write the CSV files of the given scenarios (all by default); return their paths."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    out = []
    for name in names or SCENARIOS:
        if name not in SCENARIO_FILES:
            raise KeyError("unknown scenario %r (known: %s)" % (name, ", ".join(SCENARIOS)))
        for stem, builder in SCENARIO_FILES[name]:
            path = data_path(stem)
            if force or not path.exists():
                if builder in (sleepstudy, pig):
                    src = None
                    for base in (SHARED_DATA, REPO_DATA):
                        if (base / path.name).exists():
                            src = base / path.name
                            break
                    if src is None:
                        raise FileNotFoundError(path.name)
                    shutil.copyfile(src, path)
                else:
                    df = builder()
                    tmp = path.with_suffix(".csv.tmp")
                    df.to_csv(tmp, index=False, float_format="%.10g")
                    os.replace(tmp, path)
                if verbose:
                    print("wrote %s" % path, file=sys.stderr)
            out.append(path)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenarios", nargs="*", help="scenarios to write (default: all): %s" % ", ".join(SCENARIOS))
    p.add_argument("--force", action="store_true", help="rewrite existing files")
    args = p.parse_args(argv)
    write(args.scenarios or None, force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
