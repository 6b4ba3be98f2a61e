"""statsmodels' results interface over a fit's estimates and their covariance.

:class:`ParameterResults` gives what a statsmodels results object offers
(``params``, ``bse``, ``tvalues``, ``pvalues`` labelled by the parameter
names, ``cov_params()``, ``conf_int()``, ``t_test``/``f_test``/
``wald_test``, ``save``/``load``) without statsmodels' base classes, whose
import (``statsmodels.base.model`` loads ``scipy.stats``) costs more than a
small fit.  The tests go through :meth:`ParameterResults.to_statsmodels`, a
statsmodels ``LikelihoodModelResults`` over the same estimates, built on
first use; any statsmodels tool that wants a statsmodels results object
takes that.
"""
from __future__ import annotations

import pickle
from functools import cached_property
from typing import Optional

import numpy as np
import pandas as pd

from ..core.distributions import norm_ppf, norm_sf, t_ppf, t_sf


class ParameterResults:
    """Estimates, their covariance and the tests statsmodels derives from them.

    Parameters
    ----------
    model : object
        The model; it has ``param_names`` (one per estimate).
    params : array
        The estimates.
    cov : array
        Their covariance matrix.
    scale : float
        statsmodels' ``scale`` (``cov_params() = normalized_cov_params * scale``).
    """

    use_t: bool = False

    def __init__(self, model, params, cov: np.ndarray, scale: float = 1.0):
        self.model = model
        self._estimates = np.asarray(params, dtype=float)
        self._cov = np.asarray(cov, dtype=float)
        self.scale = scale

    @property
    def _results(self) -> "ParameterResults":
        """The bare results (statsmodels' wrappers keep them here): this object."""
        return self

    @property
    def param_names(self) -> list:
        return list(self.model.param_names)

    def _labelled(self, values: np.ndarray, name: Optional[str] = None) -> pd.Series:
        return pd.Series(values, index=self.param_names, name=name)

    @cached_property
    def params(self) -> pd.Series:
        return self._labelled(self._estimates)

    @cached_property
    def normalized_cov_params(self) -> pd.DataFrame:
        names = self.param_names
        return pd.DataFrame(self._cov / self.scale, index=names, columns=names)

    def cov_params(self, r_matrix=None, column=None, scale=None, cov_p=None, other=None):
        """Covariance of the estimates (a labelled DataFrame); with arguments, statsmodels'
        ``cov_params`` of linear combinations or columns."""
        if r_matrix is None and column is None and scale is None and cov_p is None and other is None:
            names = self.param_names
            return pd.DataFrame(self._cov, index=names, columns=names)
        return self.to_statsmodels().cov_params(r_matrix=r_matrix, column=column, scale=scale, cov_p=cov_p,
                                                other=other)

    @cached_property
    def bse(self) -> pd.Series:
        with np.errstate(invalid="ignore"):
            return self._labelled(np.sqrt(np.diag(self._cov)))

    @cached_property
    def tvalues(self) -> pd.Series:
        with np.errstate(divide="ignore", invalid="ignore"):
            return self._labelled(self._estimates / self.bse.to_numpy())

    def _df_inference(self):
        return getattr(self, "df_resid_inference", getattr(self, "df_resid", np.inf))

    @cached_property
    def pvalues(self) -> pd.Series:
        """Two-sided p-values: normal, or t with the small-sample degrees of freedom (``use_t``)."""
        z = np.abs(self.tvalues.to_numpy())
        p = 2.0 * (t_sf(z, self._df_inference()) if self.use_t else norm_sf(z))
        return self._labelled(p)

    def wald_intervals(self, alpha: float = 0.05) -> np.ndarray:
        """``estimate -+ q * se`` for every parameter (normal, or t with ``use_t``), an array (k, 2)."""
        q = t_ppf(1.0 - alpha / 2.0, self._df_inference()) if self.use_t else norm_ppf(1.0 - alpha / 2.0)
        se = self.bse.to_numpy()
        return np.column_stack([self._estimates - q * se, self._estimates + q * se])

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        return pd.DataFrame(self.wald_intervals(alpha), index=self.param_names)

    # -- statsmodels' tests --------------------------------------------------------
    def to_statsmodels(self):
        """The estimates as a statsmodels ``LikelihoodModelResults`` (wrapped, labelled), for
        statsmodels' tools; its ``model.loglike`` is this model's.  Built at each call
        (statsmodels is imported at the first)."""
        from .statsmodels_link import statsmodels_results

        return statsmodels_results(self)

    def t_test(self, r_matrix, cov_p=None, use_t=None):
        """statsmodels' ``t_test`` of linear combinations (constraint strings over the parameter names)."""
        return self.to_statsmodels().t_test(r_matrix, cov_p=cov_p, use_t=use_t)

    def f_test(self, r_matrix, cov_p=None, invcov=None):
        """statsmodels' ``f_test``."""
        return self.wald_test(r_matrix, cov_p=cov_p, invcov=invcov, use_f=True, scalar=True)

    def wald_test(self, r_matrix, cov_p=None, invcov=None, use_f=None, df_constraints=None, scalar=True):
        """statsmodels' ``wald_test``."""
        return self.to_statsmodels().wald_test(r_matrix, cov_p=cov_p, invcov=invcov, use_f=use_f,
                                               df_constraints=df_constraints, scalar=scalar)

    def wald_test_terms(self, *args, **kwargs):
        """statsmodels' ``wald_test_terms``, through this object's :meth:`wald_test` (so that
        ``dfmethod()``'s F tests apply)."""
        from statsmodels.base.model import LikelihoodModelResults

        return LikelihoodModelResults.wald_test_terms(self, *args, **kwargs)

    def t_test_pairwise(self, *args, **kwargs):
        """statsmodels' ``t_test_pairwise``, through this object's :meth:`t_test`."""
        from statsmodels.base.model import LikelihoodModelResults

        return LikelihoodModelResults.t_test_pairwise(self, *args, **kwargs)

    # -- persistence -----------------------------------------------------------------
    def save(self, fname) -> None:
        """Pickle the results to ``fname`` (a path or a binary file handle), as statsmodels does."""
        if hasattr(fname, "write"):
            pickle.dump(self, fname)
            return
        with open(fname, "wb") as fh:
            pickle.dump(self, fh)

    @classmethod
    def load(cls, fname) -> "ParameterResults":
        """Results saved by :meth:`save` (never load pickles from an untrusted source)."""
        if hasattr(fname, "read"):
            return pickle.load(fname)
        with open(fname, "rb") as fh:
            return pickle.load(fh)
