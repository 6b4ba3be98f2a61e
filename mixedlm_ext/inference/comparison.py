"""Comparing fitted models: lme4's ``anova`` table and the parametric-bootstrap LR test.

* :func:`anova`: the models sorted by their number of parameters, with AIC,
  BIC, log-likelihood, deviance, and the LR statistic, its degrees of freedom
  and p-value of each model against the one before it (lme4's
  ``anova(m1, m2, ...)``).  REML fits are compared by their restricted
  likelihood only when every model is REML with the same fixed effects;
  otherwise the REML fits are refitted by ML first, with a note (lme4
  refits them too).  Stata's ``lrtest`` keeps refusing that comparison.
* :func:`bootstrap_lrtest`: the p-value of the LR statistic from its
  parametric-bootstrap distribution under the smaller model (simulate from
  it, refit both models, :mod:`.bootstrap`) -- exact up to Monte-Carlo error
  where the chi-bar-squared rule for a variance on the boundary is only an
  approximation.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pandas as pd

from ..core.distributions import chi2_sf
from ..core.errors import warn_user
from ..core.keywords import refuse_unknown_keywords
from .bootstrap import bootstrap_lr_pvalue

REFIT_NOTE = "refitting model(s) with ML (instead of REML): their fixed effects differ"


def _check_comparable(fits: Sequence) -> None:
    if len({r.nobs for r in fits}) > 1:
        raise ValueError("the models were fit on different samples (%s observations)"
                         % ", ".join(str(r.nobs) for r in fits))
    for r in fits:
        if r.vce != "oim" or r.is_pseudo:
            raise ValueError("likelihood comparisons are not valid after robust standard errors or sampling "
                             "weights (pseudo-likelihood)")


@refuse_unknown_keywords
def anova(*models, names: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """lme4-style comparison table of nested fits (see the module docstring).

    Parameters
    ----------
    *models : fitted results (two or more)
    names : list of str, optional
        Row labels (default ``model1``, ``model2``, ... in the order given).

    Returns
    -------
    DataFrame
        Indexed by model, sorted by the number of parameters, with columns
        ``npar``, ``AIC``, ``BIC``, ``llf``, ``deviance``, ``chi2``, ``df``,
        ``pvalue``; ``attrs["note"]`` says whether REML fits were refitted by ML.
    """
    if len(models) < 2:
        raise ValueError("anova() compares two or more fitted models")
    fits = list(models)
    names = list(names) if names is not None else ["model%d" % (i + 1) for i in range(len(fits))]
    if len(names) != len(fits):
        raise ValueError("names= must give one label per model (%d), got %d" % (len(fits), len(names)))
    _check_comparable(fits)
    same_fe = len({tuple(r.model.design.fe_names) for r in fits}) == 1
    note = ""
    if any(r.reml for r in fits) and not (all(r.reml for r in fits) and same_fe):
        fits = [r.model.fit(reml=False) if r.reml else r for r in fits]
        note = REFIT_NOTE
        warn_user(note)
    rows = []
    for name, r in zip(names, fits):
        rows.append({"model": name, "npar": len(r.params), "AIC": r.aic, "BIC": r.bic, "llf": r.llf,
                     "deviance": -2 * r.llf})
    out = pd.DataFrame(rows).sort_values("npar", kind="stable").set_index("model")
    chi2 = 2 * out["llf"].diff()
    df = out["npar"].diff()
    out["chi2"] = chi2.clip(lower=0)
    out["df"] = df
    out["pvalue"] = [chi2_sf(c, d) if d and d > 0 else np.nan for c, d in zip(out["chi2"], df)]
    out.attrs["note"] = note or ("restricted (REML) likelihoods" if fits[0].reml else "")
    return out


def bootstrap_lrtest(big, small, statistic: float, n_boot: int = 1000, seed=None, n_jobs: int = 1,
                     progress: Optional[bool] = None) -> tuple[float, np.ndarray]:
    """``(p, replicate statistics)`` of the LR test of ``small`` within ``big``
    by the parametric bootstrap under ``small``."""
    b, s = big, small
    return bootstrap_lr_pvalue(s.simulation_source(), b.model.objective, np.asarray(b.opt.theta, float),
                               statistic, n_boot, seed=seed, n_jobs=n_jobs, progress=progress)
