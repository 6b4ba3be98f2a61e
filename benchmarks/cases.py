"""Benchmark cases: one model per case, written once for every peer.

A *scenario* (``ri``, ``small``, ...) holds one or more *cases*; each case is
one fit on one CSV file of ``benchmarks/data/`` (see ``simulate.py``), spelled
for each peer:

* ``stata``       -- the command given to ``mixedlm_ext.mixed(command, df)``
* ``statsmodels`` -- keyword arguments of ``MixedLM.from_formula`` plus
  ``reml``; or ``None`` with ``statsmodels_skip`` saying why
* ``mixedlm``     -- lme4-syntax formula for the Rust peer ``mixedlm.lmer``;
  or ``None`` with ``mixedlm_skip``
* ``r``           -- arguments of ``peer_r.R`` (engine ``lmer`` or ``lme``)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Case:
    scenario: str
    name: str
    data: str  # file stem in benchmarks/data
    description: str
    reml: bool
    stata: str
    r: dict
    statsmodels: Optional[dict] = None
    statsmodels_skip: str = ""
    mixedlm: Optional[str] = None
    mixedlm_skip: str = ""
    slow_python: bool = False  # statsmodels expected to take minutes

    @property
    def r_peer(self) -> str:
        return "lme4" if self.r["engine"] == "lmer" else "nlme"


CASES = [
    Case(
        scenario="ri", name="ri", data="ri",
        description="random intercept, 100,000 rows, 2,000 groups, 3 covariates, ML",
        reml=False,
        stata="mixed y x1 x2 x3 || g:",
        statsmodels=dict(formula="y ~ x1 + x2 + x3", groups="g"),
        mixedlm="y ~ x1 + x2 + x3 + (1|g)",
        r=dict(engine="lmer", factors="g", formula="y ~ x1 + x2 + x3 + (1|g)"),
    ),
    Case(
        scenario="rs", name="rs", data="rs",
        description="random intercept + slope on x1 (unstructured), 100,000 rows, 2,000 groups, REML",
        reml=True,
        stata="mixed y x1 || g: x1, covariance(unstructured) reml",
        statsmodels=dict(formula="y ~ x1", groups="g", re_formula="~x1"),
        mixedlm="y ~ x1 + (1 + x1|g)",
        r=dict(engine="lmer", factors="g", formula="y ~ x1 + (1 + x1|g)"),
    ),
    Case(
        scenario="nested3", name="nested3", data="nested3",
        description="three-level random intercepts, 1,000,000 rows (1,000 a x 50 b x 20), ML",
        reml=False,
        stata="mixed y x1 || a: || b:",
        statsmodels=dict(formula="y ~ x1", groups="a", re_formula="1", vc_formula={"b": "0 + C(b)"}),
        mixedlm="y ~ x1 + (1|a) + (1|a:b)",
        r=dict(engine="lmer", factors="a,b", formula="y ~ x1 + (1|a) + (1|a:b)"),
        slow_python=True,
    ),
    Case(
        scenario="nested3_slopes", name="nested3_slopes", data="nested3_slopes",
        description="three levels, independent random intercepts + slopes on x1 at both levels, "
                    "200,000 rows (200 a x 50 b x 20), ML",
        reml=False,
        stata="mixed y x1 || a: x1 || b: x1",
        statsmodels=dict(formula="y ~ x1", groups="a", re_formula="0",
                         vc_formula={"a_cons": "1", "a_x1": "0 + x1",
                                     "b_cons": "0 + C(b)", "b_x1": "0 + C(b):x1"}),
        mixedlm="y ~ x1 + (1|a) + (0 + x1|a) + (1|a:b) + (0 + x1|a:b)",
        r=dict(engine="lmer", factors="a,b", formula="y ~ x1 + (1|a) + (0 + x1|a) + (1|a:b) + (0 + x1|a:b)"),
        slow_python=True,
    ),
    Case(
        scenario="ar1", name="ar1", data="ar1",
        description="random intercept + AR(1) residuals in t within 5,000 panels of 20, ML",
        reml=False,
        stata="mixed y x1 || g:, residuals(ar 1, t(t))",
        statsmodels_skip="cannot express (MixedLM has no residual correlation structures)",
        mixedlm_skip="cannot express (no residual correlation structures; lme4 clone)",
        r=dict(engine="lme", factors="g", formula="y ~ x1", random="~1|g", correlation="ar1:t|g"),
    ),
    Case(
        scenario="crossed", name="crossed", data="crossed",
        description="crossed random intercepts a (3,000 levels) x b (1,000 levels), 100,000 rows, ML",
        reml=False,
        stata="mixed y x1 || _all: R.a || b:",
        statsmodels_skip="cannot express efficiently (crossed effects need one all-data group with "
                         "4,000 dense variance-component columns)",
        mixedlm="y ~ x1 + (1|a) + (1|b)",
        r=dict(engine="lmer", factors="a,b", formula="y ~ x1 + (1|a) + (1|b)"),
    ),
    Case(
        scenario="crossed_large", name="crossed_large", data="crossed_large",
        description="crossed random intercepts at scale, a (10,000 levels) x b (3,000 levels), 330,000 rows, ML",
        reml=False,
        stata="mixed y x1 || _all: R.a || b:",
        statsmodels_skip="cannot express efficiently (crossed effects need one all-data group with "
                         "13,000 dense variance-component columns)",
        mixedlm="y ~ x1 + (1|a) + (1|b)",
        r=dict(engine="lmer", factors="a,b", formula="y ~ x1 + (1|a) + (1|b)"),
    ),
    Case(
        scenario="insteval", name="insteval", data="insteval",
        description="InstEval-shaped crossed s (2,972) x d (1,128) x dept (14), 73,421 rows, ML",
        reml=False,
        stata="mixed y x1 || _all: R.s || _all: R.d || dept:",
        statsmodels_skip="cannot express efficiently (crossed effects need one all-data group with "
                         "4,114 dense variance-component columns)",
        mixedlm="y ~ x1 + (1|s) + (1|d) + (1|dept)",
        r=dict(engine="lmer", factors="s,d,dept", formula="y ~ x1 + (1|s) + (1|d) + (1|dept)"),
    ),
    Case(
        scenario="small", name="sleepstudy", data="sleepstudy",
        description="sleepstudy: reaction ~ days + (days|subject), REML (180 rows)",
        reml=True,
        stata="mixed reaction days || subject: days, covariance(unstructured) reml",
        statsmodels=dict(formula="reaction ~ days", groups="subject", re_formula="~days"),
        mixedlm="reaction ~ days + (days|subject)",
        r=dict(engine="lmer", factors="subject", formula="reaction ~ days + (days|subject)"),
    ),
    Case(
        scenario="small", name="pig", data="pig",
        description="pig: weight ~ week + (1|id), ML (432 rows)",
        reml=False,
        stata="mixed weight week || id:",
        statsmodels=dict(formula="weight ~ week", groups="id"),
        mixedlm="weight ~ week + (1|id)",
        r=dict(engine="lmer", factors="id", formula="weight ~ week + (1|id)"),
    ),
]

CASE_BY_NAME = {c.name: c for c in CASES}
SCENARIOS = list(dict.fromkeys(c.scenario for c in CASES))


def cases_for(scenarios=None):
    """Cases of the given scenario names (or case names); all by default."""
    if not scenarios:
        return list(CASES)
    out = []
    for s in scenarios:
        found = [c for c in CASES if c.scenario == s or c.name == s]
        if not found:
            raise KeyError("unknown scenario %r (known: %s)" % (s, ", ".join(SCENARIOS)))
        out.extend(c for c in found if c not in out)
    return out


# Targets for mixedlm_ext, per scenario: a list of checks, each one of
#   ("faster_than", peer)           warm min <= the peer's warm min, under default threading and single-threaded
#   ("ratio", peer, x)              the peer's warm min / mixedlm_ext's >= x (default threading)
#   ("max_warm_s", s)               mixedlm_ext's warm min below s seconds (every case of the scenario)
#   ("fresh_vs", peer)              a fresh process (import, read CSV, fit, summary) no slower than the peer's
#   ("baseline_ratio", x)           the baseline revision's warm min / mixedlm_ext's >= x
#   ("max_rss_mb", mb)              peak memory of the mixedlm_ext process
# (the done-criteria; issue 12), plus the earlier lme4/nlme ratios.
TARGETS = {
    "ri": [("faster_than", "mixedlm"), ("ratio", "lme4", 10)],
    "rs": [("faster_than", "mixedlm"), ("ratio", "lme4", 10)],
    "nested3": [("faster_than", "mixedlm"), ("ratio", "lme4", 30), ("max_rss_mb", 1024)],
    "nested3_slopes": [("faster_than", "mixedlm"), ("ratio", "lme4", 10)],
    "ar1": [("ratio", "nlme", 20)],
    "crossed": [("faster_than", "mixedlm"), ("ratio", "lme4", 4)],
    "crossed_large": [("faster_than", "mixedlm"), ("baseline_ratio", 3)],
    "insteval": [("faster_than", "mixedlm"), ("max_warm_s", 1.0), ("ratio", "lme4", 20)],
    "small": [("faster_than", "mixedlm"), ("max_warm_s", 0.003), ("fresh_vs", "mixedlm")],
}

# scenarios where the baseline revision (what the speed work started from) is run as a peer
BASELINE_SCENARIOS = ("crossed_large",)
