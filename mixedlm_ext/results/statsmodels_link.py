"""A fit as statsmodels' own classes see it, built on demand.

:func:`statsmodels_results` returns a ``LikelihoodResultsWrapper`` around a
``LikelihoodModelResults`` with the fit's estimates, covariance, ``scale``
and degrees of freedom, whose model (:class:`StatsmodelsModel`, a
``LikelihoodModel``) has the design's response and fixed-effects columns and
forwards ``loglike``/``score``/``hessian`` to this package's model.  statsmodels
is imported here only, on the first call.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.base.model import LikelihoodModel, LikelihoodModelResults, LikelihoodResultsWrapper


class StatsmodelsModel(LikelihoodModel):
    """statsmodels' ``LikelihoodModel`` over a :class:`~mixedlm_ext.model.MixedLMExt`."""

    def __init__(self, model):
        d = model.design
        exog = pd.DataFrame(model.exog, columns=model.exog_names, index=d.row_index)
        endog = pd.Series(model.endog, index=d.row_index, name=model.endog_names)
        super().__init__(endog, exog, **({} if d.holds_rows else {"hasconst": False}))
        self.mixed_model = model
        self.data.param_names = list(model.param_names)
        self.k_params = len(model.param_names)
        self.nobs, self.df_model, self.df_resid = model.nobs, model.df_model, model.df_resid

    def loglike(self, params) -> float:
        return self.mixed_model.loglike(params)

    def score(self, params) -> np.ndarray:
        return self.mixed_model.score(params)

    def hessian(self, params) -> np.ndarray:
        return self.mixed_model.hessian(params)


def statsmodels_results(res) -> LikelihoodResultsWrapper:
    """``res`` (a :class:`~mixedlm_ext.results.parameters.ParameterResults`) as statsmodels results."""
    sm = LikelihoodModelResults(StatsmodelsModel(res.model), np.asarray(res.params, dtype=float),
                                normalized_cov_params=np.asarray(res.normalized_cov_params), scale=res.scale)
    sm.use_t = bool(res.use_t)
    sm.df_resid = getattr(res, "df_resid", np.inf)
    if hasattr(res, "df_resid_inference"):
        sm.df_resid_inference = res.df_resid_inference
    sm.nobs = res.nobs
    return LikelihoodResultsWrapper(sm)
