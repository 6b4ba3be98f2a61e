"""Inference after the fit, as methods of the results: profiles, bootstrap,
simulation, margins, predictions with intervals.

:class:`InferenceMethodsMixin` is a base class of ``MixedLMExtResults``; each
method delegates to the module that does the work:
:mod:`mixedlm_ext.inference.profile` (profile likelihood),
:mod:`mixedlm_ext.inference.bootstrap` (simulation, parametric bootstrap),
:mod:`mixedlm_ext.inference.margins` (Stata's ``margins`` and contrasts),
:mod:`.prediction` (``get_prediction``).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd

from ..core.keywords import refuse_unknown_keywords
from ..inference.bootstrap import BootstrapResult, SimulationSource, parametric_bootstrap
from ..inference.margins import margins_table
from ..inference.profile import ProfileResult, profile_fit
from ..inference.simulate import replicate_seeds
from .prediction import PredictionResults, prediction


class InferenceMethodsMixin:
    """Profile likelihood, parametric bootstrap, simulation, margins, prediction intervals."""

    # -- profile likelihood ----------------------------------------------------------
    @refuse_unknown_keywords
    def profile_result(self, stddeviations: Optional[bool] = None, ml: bool = False) -> ProfileResult:
        """The :class:`~mixedlm_ext.inference.profile.ProfileResult` of every parameter
        (computed once per metric; see :meth:`profile`)."""
        sd = self._stddeviations(stddeviations)
        cache = self.__dict__.setdefault("_profile_cache", {})
        key = (sd, bool(ml))
        if key not in cache:
            cache[key] = profile_fit(self, stddeviations=sd, ml=ml)
        return cache[key]

    @refuse_unknown_keywords
    def profile(self, stddeviations: Optional[bool] = None, ml: bool = False, alphamax: float = 0.01,
                n_steps: int = 8) -> dict[str, pd.DataFrame]:
        """Profile traces of every parameter, lme4's ``profile()``.

        Parameters
        ----------
        stddeviations : bool, optional
            Variance components as SDs and correlations (default: as the
            model was specified, Stata's ``stddeviations``).
        ml : bool
            After a REML fit, profile the variance components on the ML
            deviance as lme4 does (default: on the restricted one; the fixed
            effects are always profiled on the ML deviance).
        alphamax : float
            The traces reach ``|zeta| = z(1 - alphamax/2)`` on each side.
        n_steps : int
            Points per side.

        Returns
        -------
        dict of DataFrame
            Parameter name -> columns ``zeta``, the parameter, and every other
            parameter at the constrained optimum.  ``plots.profile`` draws them.
        """
        return self.profile_result(stddeviations, ml).traces(alphamax, n_steps)

    @refuse_unknown_keywords
    def profile_conf_int(self, alpha: float = 0.05, stddeviations: Optional[bool] = None,
                         ml: bool = False) -> pd.DataFrame:
        """Profile-likelihood intervals with the estimate, a ``boundary`` label
        (``"lower"``, ``"upper"`` or ``"both"``: the interval ends at the edge of
        the parameter space) and the ``criterion`` profiled (ML or REML)."""
        return self.profile_result(stddeviations, ml).conf_int(100.0 * (1.0 - alpha))

    @refuse_unknown_keywords
    def plot_profile(self, stddeviations: Optional[bool] = None, level: Optional[float] = None, figsize=None):
        """Draw the profile traces (:func:`mixedlm_ext.postestimation.plots.profile`)."""
        from .plots import profile

        return profile(self.profile(stddeviations), level=self.level if level is None else level, figsize=figsize)

    def _stddeviations(self, stddeviations: Optional[bool]) -> bool:
        if stddeviations is None:
            return bool(self.model.spec.option_dict.get("stddeviations", False))
        return bool(stddeviations)

    # -- simulation and the parametric bootstrap --------------------------------------
    @refuse_unknown_keywords
    def simulation_source(self, conditional: bool = False) -> SimulationSource:
        """What :meth:`simulate` and :meth:`bootstrap` draw from: the fitted model
        (``conditional``: with the random effects fixed at their BLUPs)."""
        design = self.model.design
        if not design.holds_rows:
            raise NotImplementedError("simulate() and bootstrap() draw responses for the estimation rows; the "
                                      "model was fitted from sufficient statistics (out of core), without them")
        beta = np.asarray(self.fe_params, dtype=float)
        zb = None
        if conditional:
            fitted = self.predict(kind="fitted").to_numpy(dtype=float)  # the user's data order
            zb = np.empty(design.n)
            zb[np.argsort(design.row_pos, kind="stable")] = fitted
            zb -= design.X @ beta + (0.0 if design.offset is None else design.offset)  # the random part
        return SimulationSource(self.model.objective, np.asarray(self.opt.theta, float), beta,
                                float(self.fit_profile.sigma2), zb)

    @refuse_unknown_keywords
    def simulate(self, n: int = 1, seed=None, conditional: bool = False) -> pd.DataFrame:
        """New responses from the fitted model (lme4's ``simulate``).

        Parameters
        ----------
        n : int
            Number of responses.
        seed : int or numpy SeedSequence, optional
            Replicate ``i`` uses the ``i``-th stream spawned from it (the same
            responses :meth:`bootstrap` refits with that seed).
        conditional : bool
            Keep the random effects at their BLUPs (lme4's ``use.u=TRUE``);
            default: new random effects ``b ~ N(0, G)``.

        Returns
        -------
        DataFrame
            One column per response (``sim_1``, ...), the estimation rows in
            the data's order, indexed like the data.
        """
        design = self.model.design
        Y = self.simulation_source(conditional).responses(replicate_seeds(seed, n))
        if design.offset is not None:  # the draws are of y minus the offset (what the fit sees)
            Y = Y + design.offset[:, None]
        order = np.argsort(design.row_pos, kind="stable")
        return pd.DataFrame(Y[order], index=design.row_index[order],
                            columns=["sim_%d" % (i + 1) for i in range(int(n))])

    @refuse_unknown_keywords
    def bootstrap(self, n_boot: int = 1000, seed=None, n_jobs: int = 1, progress: Optional[bool] = None,
                  conditional: bool = False) -> BootstrapResult:
        """Parametric bootstrap: simulate from the fitted model, refit, keep every parameter.

        Parameters
        ----------
        n_boot : int
            Number of replicates.
        seed : int, optional
            Makes the draws reproducible, whatever ``n_jobs``.
        n_jobs : int
            Worker processes (joblib); the replicates are the same for any value.
        progress : bool, optional
            A tqdm progress bar (default: from 200 replicates, if tqdm is installed).
        conditional : bool
            Simulate with the random effects at their BLUPs (lme4's ``use.u=TRUE``).

        Returns
        -------
        BootstrapResult
            ``.draws`` (named as ``params``), ``.std_err``, ``.conf_int(method=...)``.
        """
        if self.vce != "oim" or self.is_pseudo:
            raise ValueError("the parametric bootstrap needs a likelihood fit (not robust or survey weights)")
        return parametric_bootstrap(self.simulation_source(conditional), list(self.model.param_names),
                                    n_boot=n_boot, seed=seed, n_jobs=n_jobs, progress=progress)

    # -- margins -------------------------------------------------------------------
    @refuse_unknown_keywords
    def margins(self, variables=None, at: Optional[dict] = None, dydx: Optional[str] = None,
                over: Optional[str] = None, level: Optional[float] = None) -> pd.DataFrame:
        """Stata's ``margins`` after ``mixed`` (the fixed portion, ``predict(xb)``).

        Parameters
        ----------
        variables : str or list of str, optional
            Factor variables: the average prediction with every row set to
            each level (``margins region``; several: every combination).
        at : dict, optional
            Covariates set to values, ``{"unemp": [4, 6, 8]}`` (``"mean"``,
            ``"median"`` allowed); several variables: every combination.
        dydx : str, optional
            Average marginal effect of a continuous variable (a factor: the
            change from its base level to each other level).
        over : str, optional
            Separately within the subgroups of this variable.
        level : float, optional
            Confidence level (default: the fit's).

        Returns
        -------
        DataFrame
            One row per margin (labelled ``var=value,...``), columns
            ``margin``, ``std_err``, ``z``, ``pvalue``, ``ci_low``,
            ``ci_high``; ``attrs["L"]`` holds the linear combinations of the
            fixed effects.
        """
        return self._margins(variables, at, dydx, over, level, None)

    @refuse_unknown_keywords
    def contrast(self, variables=None, at: Optional[dict] = None, dydx: Optional[str] = None,
                 over: Optional[str] = None, level: Optional[float] = None, kind: str = "pairwise") -> pd.DataFrame:
        """Differences of the :meth:`margins` (same arguments): every pair, later minus
        earlier (``kind="pairwise"``, Stata's ``margins ..., pwcompare``), or each
        margin minus the first (``kind="reference"``, Stata's ``r.`` contrasts)."""
        return self._margins(variables, at, dydx, over, level, kind)

    def _margins(self, variables, at, dydx, over, level, contrast) -> pd.DataFrame:
        if not self.model.design.holds_rows:
            raise NotImplementedError("margins average over the estimation rows; the model was fitted from "
                                      "sufficient statistics (out of core), without them")
        k = self.k_fe
        return margins_table(self.model.design, np.asarray(self.params, float)[:k],
                             np.asarray(self.cov_params())[:k, :k], self.model.data_column, variables, at, dydx,
                             over, self.level if level is None else level, contrast)

    # -- predictions with intervals ------------------------------------------------
    @refuse_unknown_keywords
    def get_prediction(self, data: Optional[pd.DataFrame] = None, random_effects: bool = False,
                       exog: Optional[pd.DataFrame] = None) -> PredictionResults:
        """Predictions with standard errors, confidence and prediction intervals
        (statsmodels' ``get_prediction(...).summary_frame(alpha=...)``).

        Parameters
        ----------
        data : DataFrame, optional
            New data (default: the estimation sample); ``exog`` is an alias.
        random_effects : bool
            ``False``: the population-level prediction ``x'b`` (Stata's ``xb``);
            ``True``: with the BLUPs of the rows' groups (Stata's ``fitted``),
            its standard error the prediction error of ``x'b + z'u`` (see
            :mod:`mixedlm_ext.postestimation.prediction`).

        Returns
        -------
        PredictionResults
            ``summary_frame(alpha)``: ``mean``, ``mean_se``, ``mean_ci_lower``,
            ``mean_ci_upper``, ``obs_ci_lower``, ``obs_ci_upper``.
        """
        if data is not None and exog is not None:
            raise TypeError("give data or exog, not both")
        return prediction(self._pe_estimates, self._pe_blups, data if data is not None else exog, random_effects)
