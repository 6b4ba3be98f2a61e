"""Predictions with standard errors and intervals: ``res.get_prediction(data).summary_frame()``.

statsmodels' spelling (``predicted_mean``, ``se_mean``, ``summary_frame``
with ``mean``, ``mean_se``, ``mean_ci_lower/upper``, ``obs_ci_lower/upper``)
for two predictions of a row with fixed-effects row ``x`` and random-effects
row ``z``:

* without the random effects (population level, Stata's ``xb``): the mean
  is ``x'b_hat`` with variance ``x'V x``; a new observation (from a new
  group) adds ``z'G z + sigma2``;
* with the random effects (``random_effects=True``, Stata's ``fitted``):
  the mean is ``x'b_hat + z'u_hat``.  Its prediction-error variance against
  ``x'beta + z'u`` is ``a'V a + z'C z`` with ``a = x + d(z'u_hat)/d(beta)``
  (Henderson: the BLUP moves with ``beta_hat``) and ``C`` the conditional
  covariance of the random effects given the data; a new observation adds
  ``sigma2``.  A row of a group not in the estimation sample gets the
  population-level mean and ``x'V x + z'G z`` (its random effect is unknown).
  This needs the random effects of a row to come from one term (one
  grouping level); models with several terms are refused.

Intervals are normal, ``mean +- z(1 - alpha/2) se``.  Observation intervals
need independent residuals (no residual structure).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Optional

import numpy as np
import pandas as pd

from ..core.distributions import norm_ppf
from ..core.errors import warn_user
from ..core.keywords import refuse_unknown_keywords
from .blups import LevelBLUP, beta_sensitivity
from .estimates import Estimates
from .predict import PredictionRows


class PredictionResults:
    """Predicted means with standard errors for the mean and for a new observation."""

    def __init__(self, predicted_mean: np.ndarray, se_mean: np.ndarray, se_obs: np.ndarray, index: pd.Index):
        self.predicted_mean = np.asarray(predicted_mean, dtype=float)
        self.se_mean = np.asarray(se_mean, dtype=float)
        self.se_obs = np.asarray(se_obs, dtype=float)
        self.row_labels = index

    @property
    def var_pred_mean(self) -> np.ndarray:
        return self.se_mean ** 2

    @refuse_unknown_keywords
    def conf_int(self, obs: bool = False, alpha: float = 0.05) -> np.ndarray:
        """``(n, 2)`` intervals for the mean (``obs=True``: for a new observation)."""
        z = norm_ppf(1.0 - alpha / 2.0)
        se = self.se_obs if obs else self.se_mean
        return np.column_stack([self.predicted_mean - z * se, self.predicted_mean + z * se])

    @refuse_unknown_keywords
    def summary_frame(self, alpha: float = 0.05) -> pd.DataFrame:
        ci, oi = self.conf_int(alpha=alpha), self.conf_int(obs=True, alpha=alpha)
        return pd.DataFrame({"mean": self.predicted_mean, "mean_se": self.se_mean, "mean_ci_lower": ci[:, 0],
                             "mean_ci_upper": ci[:, 1], "obs_ci_lower": oi[:, 0], "obs_ci_upper": oi[:, 1]},
                            index=self.row_labels)


def _term_covariances(est: Estimates, blups: dict[int, LevelBLUP]) -> dict[str, np.ndarray]:
    """``G`` of each term's effects (one row's share): ``sigma2 * L L'`` of its block(s)."""
    out = {}
    for t in est.layout.terms:
        lam = blups[t.level_index].lam
        if t.expanded:
            blk, o = t.blocks[0]
            qe = blk.structure.q
            L = lam[o:o + qe, o:o + qe]
        else:
            cols = np.concatenate([np.arange(o, o + blk.q) for blk, o in t.blocks])
            L = lam[np.ix_(cols, cols)]
        out[t.key] = est.sigma2 * L @ L.T
    return out


def _quadratic(Z: np.ndarray, M: np.ndarray) -> np.ndarray:
    """Row-wise ``z' M z`` (``M`` one matrix or one per row)."""
    if M.ndim == 2:
        return np.einsum("ij,jk,ik->i", Z, M, Z)
    return np.einsum("ij,ijk,ik->i", Z, M, Z)


def _blup_beta_rows(est: Estimates, blups: dict[int, LevelBLUP], term_rows) -> np.ndarray:
    """``d(z'u_hat)/d(beta)`` per row, ``(n, p)``: the BLUP is linear in ``beta``."""
    ob, d = est.objective, est.design
    prof = ob.profile(est.theta, keep=True)
    D, _ = beta_sensitivity(lambda b: ob.engine.solve_u(prof.elim, b), d.p, d, est.cov_beta)
    level_of = {li: ei for ei, li in enumerate(d.re_level_indices())}
    n = next(iter(term_rows.values())).Z.shape[0]
    out = np.zeros((n, d.p))
    for k in range(d.p):
        tables = {}
        for t in est.layout.terms:
            blup = blups[t.level_index]
            du = D[level_of[t.level_index]] @ d.Rx[:, k]  # (G, q) per unit change of beta_k
            tables[t.key] = est.layout.table(t, replace(blup, b=du @ blup.lam.T), "b")[1]
        out[:, k] = est.layout.random_part(term_rows, tables, upto=len(d.levels))
    return out


def prediction(est: Estimates, blups: dict[int, LevelBLUP], data: Optional[pd.DataFrame],
               random_effects: bool = False) -> PredictionResults:
    """The :class:`PredictionResults` of the rows of ``data`` (default: the estimation sample)."""
    rows = PredictionRows.of(est.design, data)
    X = rows.fixed_design(est.design)
    V = est.cov_beta
    xb = rows.linear_predictor(est.design, est.beta)
    var_x = _quadratic(X, V)
    layout = est.layout
    term_rows = layout.rows(rows.frame, estimation=rows.estimation) if layout.terms else {}
    G = _term_covariances(est, blups)
    var_z = sum((_quadratic(r.Z, G[key]) for key, r in term_rows.items()), np.zeros(len(xb)))
    plain = est.design.spec.residual.is_plain
    weights = est.design.weights
    resid_var = est.sigma2 if plain and weights is None else np.nan
    if np.isnan(resid_var):
        warn_user("observation intervals need independent residuals without weights: obs_ci_* are NaN")
    if not random_effects or not layout.terms:
        mean, var_mean = xb, var_x
        var_obs = var_x + var_z + resid_var
        return PredictionResults(mean, np.sqrt(var_mean), np.sqrt(var_obs), rows.index)
    if len(layout.terms) > 1:
        raise NotImplementedError("prediction standard errors with the random effects need the random effects "
                                  "of a row to come from one term (this model has %d); use random_effects=False"
                                  % len(layout.terms))
    (t,) = layout.terms
    r = term_rows[t.key]
    seen = r.pos >= 0
    b = layout.tables(blups, "b")
    zb = layout.random_part(term_rows, b, upto=len(est.design.levels))
    cond = layout.table(t, blups[t.level_index], "cond")[1]
    A = X + _blup_beta_rows(est, blups, term_rows)
    var_seen = _quadratic(A[seen], V) + _quadratic(r.Z[seen], cond[r.pos[seen]])
    mean = xb + np.where(seen, zb, 0.0)
    var_mean = var_x + var_z  # unseen groups: the population-level prediction
    var_mean[seen] = var_seen
    return PredictionResults(mean, np.sqrt(var_mean), np.sqrt(var_mean + resid_var), rows.index)
