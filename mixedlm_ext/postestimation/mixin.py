"""Postestimation on fitted results: BLUPs, predictions, estat commands.

:class:`PostestimationMixin` is a base class of ``MixedLMExtResults``; it
gives the results Stata's ``predict`` and ``estat`` after ``mixed``:

* :attr:`~PostestimationMixin.random_effects`,
  :attr:`~PostestimationMixin.random_effects_se` and
  :meth:`~PostestimationMixin.random_effects_cov` -- the BLUPs of every
  random-effects term and their conditional (lme4 ``condVar``) or
  comparative (prediction-error, Stata ``reses``) variances;
* :meth:`~PostestimationMixin.predict` -- ``xb``, ``stdp``, ``fitted``,
  ``residuals``, ``rstandard``, ``reffects``, ``reses``, on the estimation
  sample or on new data;
* ``estat_recovariance``, ``estat_icc``, ``estat_wcorrelation``,
  ``estat_sd``, ``estat_ic`` (``estat_group`` lives on the results class);
* plots (``plot_caterpillar``, ``plot_spaghetti``, ``plot_residuals``,
  ``plot_qq``), drawn by :mod:`.plots` with matplotlib imported only when a
  plot is asked for.

The methods delegate: the BLUPs come from :mod:`.blups`, the term layout
and the lookup of rows into the BLUP tables from :mod:`.terms`, the
predictions from :mod:`.predict`, the ``estat`` commands from :mod:`.estat`.
"""
from __future__ import annotations

from functools import cached_property
from typing import Optional

import numpy as np
import pandas as pd

from . import estat, plots
from .blups import LevelBLUP
from .estat import WCorrelation
from .estimates import Estimates
from ..scale.frames import frame_meta, is_dask_frame, map_frame
from .predict import check_kind, in_data_order, prediction_tables, predict_rows, relevel_index, unseen_table
from .terms import TermLayout


class PostestimationMixin:
    """Stata's ``predict`` and ``estat`` after ``mixed``.

    Every method works on the fitted results; the wrapper returned by
    :func:`mixedlm_ext.mixed` forwards them.
    """

    # -- what postestimation works from ----------------------------------------------
    @cached_property
    def _pe_estimates(self) -> Estimates:
        k = self.k_fe
        design = self.model.design
        return Estimates(design, self.model.objective, TermLayout.of(design),
                         np.asarray(self.opt.theta, dtype=float), np.asarray(self.params, dtype=float)[:k],
                         np.asarray(self.cov_params())[:k, :k], self.fit_profile.sigma2)

    @cached_property
    def _pe_blups(self) -> dict[int, LevelBLUP]:
        """``level_index -> LevelBLUP`` for every design level with random effects."""
        return self._pe_estimates.blups()

    def _pe_tables(self, which: str) -> dict:
        """``term key -> (index, values)`` of every term (BLUPs or covariances)."""
        layout = self._pe_estimates.layout
        return {t.key: layout.table(t, self._pe_blups[t.level_index], which) for t in layout.terms}

    # -- random effects ------------------------------------------------------------
    @cached_property
    def random_effects(self) -> dict:
        """BLUPs of the random effects, one DataFrame per term.

        Returns
        -------
        dict of str -> pandas.DataFrame
            Keys, coarsest level first: the level name (``"id"``, ``"region"``,
            ``"state"``) for its ordinary random effects; for a factor block
            ``R.x`` the key ``"R.x"`` (``"level:R.x"`` below ``_all``); for a
            crossed term the name of its grouping (``"plate"``).  Each frame
            is indexed by group: by the level's variable, or, for nested
            levels, by the full group path (a MultiIndex ``(region, state)``).
            Factor and crossed terms are in long format: one row per factor
            level (per group and factor level below ``_all``).  Columns are
            the effect names as Stata prints them (``week``, ``_cons``,
            ``R.x``).

        Notes
        -----
        These are the empirical BLUPs ``b_hat = G Z' V^{-1} (y - X beta_hat)``
        at the estimates (Stata ``predict, reffects``; lme4 ``ranef``).
        """
        effects = {t.key: t.effects for t in self._pe_estimates.layout.terms}
        return {key: pd.DataFrame(vals, index=index, columns=list(effects[key]))
                for key, (index, vals) in self._pe_tables("b").items()}

    @cached_property
    def random_effects_se(self) -> dict:
        """Conditional standard deviations of the BLUPs (lme4's ``condVar``).

        Same layout as :attr:`random_effects`: the square roots of the
        diagonal of ``sigma2 * Lambda P^{-1} Lambda'``, the covariance of the
        random effects given the data with the fixed effects treated as
        known.  For Stata's ``reses`` (which also carry the uncertainty of
        ``beta_hat``) see :meth:`random_effects_cov` with
        ``kind="comparative"`` or ``predict(kind="reses")``.
        """
        effects = {t.key: t.effects for t in self._pe_estimates.layout.terms}
        out = {}
        for key, (index, vals) in self._pe_tables("cond").items():
            sd = np.sqrt(np.clip(np.diagonal(vals, axis1=1, axis2=2), 0.0, None))
            out[key] = pd.DataFrame(sd, index=index, columns=list(effects[key]))
        return out

    def random_effects_cov(self, kind: str = "conditional") -> dict:
        """Per-group covariance matrices of the BLUPs.

        Parameters
        ----------
        kind : {"conditional", "comparative"}
            ``"conditional"``: ``Var(b | y)`` at the estimates with ``beta``
            known -- lme4's ``ranef(condVar=TRUE)``, the basis of
            :attr:`random_effects_se`.  ``"comparative"``: the
            prediction-error variance ``Var(b_hat - b)``, which adds the
            uncertainty of the estimated fixed effects (Henderson); its
            diagonal's square root is Stata's ``reses``.  The comparative
            variance is never smaller than the conditional one.

        Returns
        -------
        dict of str -> pandas.DataFrame
            Same keys as :attr:`random_effects`; each frame has one ``k x k``
            block per group: rows indexed by (group..., ``effect``), columns
            the effect names.
        """
        if kind not in ("conditional", "comparative"):
            raise ValueError("kind must be 'conditional' or 'comparative', got %r" % (kind,))
        effects = {t.key: list(t.effects) for t in self._pe_estimates.layout.terms}
        out = {}
        for key, (index, vals) in self._pe_tables("cond" if kind == "conditional" else "comp").items():
            eff = effects[key]
            tuples = [(g if isinstance(g, tuple) else (g,)) + (e,) for g in index for e in eff]
            rows = pd.MultiIndex.from_tuples(tuples, names=list(index.names) + ["effect"])
            out[key] = pd.DataFrame(vals.reshape(-1, len(eff)), index=rows, columns=eff)
        return out

    # -- predict --------------------------------------------------------------------
    def predict(self, data: Optional[pd.DataFrame] = None, kind: str = "fitted",
                relevel: Optional[str] = None, exog=None, *, newdata: Optional[pd.DataFrame] = None,
                re_form=None, **kwargs):
        """Stata's ``predict`` after ``mixed``.

        Parameters
        ----------
        data : pandas.DataFrame, optional
            New data holding the model's variables (the response only for
            ``residuals``/``rstandard``; grouping variables only for the kinds
            that use random effects).  Default: the estimation sample.
        kind : str, default "fitted"
            * ``"xb"`` -- the fixed part ``X beta_hat``;
            * ``"stdp"`` -- its standard error ``sqrt(diag(X Var(beta_hat) X'))``;
            * ``"fitted"`` -- ``xb + Z b_hat`` (Stata ``fitted``); with
              ``relevel`` only the random effects from the top level down to
              that level;
            * ``"residuals"`` -- ``y - fitted`` (``relevel`` as for ``fitted``);
            * ``"rstandard"`` -- the residuals whitened by the estimated
              residual correlation ``C`` (``C^{-1/2} r``, panel by panel) and
              divided by ``sigma``; for independent residuals ``r / sigma``;
            * ``"reffects"`` -- the BLUPs that apply to each row, one column
              per random effect (``"id:week"``, ``"id:_cons"``; for factor and
              crossed terms the BLUP of the row's own factor level);
              ``relevel`` keeps only that level's columns;
            * ``"reses"`` -- their standard errors: the square root of the
              comparative (prediction-error) variance, as Stata's ``reses``.
        relevel : str, optional
            A level name (``"region"``); see ``kind``.
        exog, newdata : pandas.DataFrame, optional
            Aliases of ``data`` (statsmodels' and lme4's names).
        re_form : optional
            lme4's ``re.form``: ``None`` (default) uses every random effect;
            an NA-like value (``np.nan``, ``pd.NA``, ``"NA"``, ``"~0"``, ``0``)
            none, as ``kind="xb"``; a formula of random-effects terms of the
            model (``"~(1 | subject)"``) only those terms.  For ``fitted``
            and ``residuals``.

        Returns
        -------
        pandas.Series or pandas.DataFrame
            A Series (``reffects``/``reses``: a DataFrame), indexed by the
            row labels of ``data``, in its order; for the estimation sample
            by the labels of the data given to the fit (rows dropped for
            missing values or by ``if`` are absent), in index order for an
            integer index (the original order for a default index), so
            ``df["fit"] = res.predict()`` aligns.

            On new data, rows whose group (or factor level) was not in the
            estimation sample have no BLUP: ``fitted`` gives them the
            population-level prediction at that level (the fixed part plus
            the BLUPs of the known higher levels of a nested model),
            ``reffects``/``reses`` give ``NaN``.  The result's
            ``attrs["unseen"]`` maps each random-effects term to the tuple
            of row labels whose group was not seen (an empty tuple when all
            were); :meth:`unseen_groups` gives the same as a boolean table.
        """
        data = next((d for d in (data, exog, newdata) if d is not None), None)
        check_kind(kind, kwargs)
        est = self._pe_estimates
        if data is None and not est.design.holds_rows:  # fitted from statistics: the data given to the fit
            data = self.model.frame
            if data is None:
                raise ValueError("the model was fitted from sufficient statistics: give the data to predict for")
        tables = prediction_tables(est.layout, {} if kind in ("xb", "stdp") else self._pe_blups, kind)
        if is_dask_frame(data):  # partition by partition, on the workers
            relevel_index(est.design, relevel)
            meta = predict_rows(frame_meta(data), est, tables, kind, relevel, re_form)
            return map_frame(data, predict_rows, est, tables, kind, relevel, re_form, meta=meta)
        return predict_rows(data, est, tables, kind, relevel, re_form)

    def unseen_groups(self, data: pd.DataFrame) -> pd.DataFrame:
        """Which rows of ``data`` belong to groups not in the estimation sample.

        Parameters
        ----------
        data : pandas.DataFrame

        Returns
        -------
        pandas.DataFrame of bool
            Indexed like ``data``, one column per random-effects term (keys
            of :attr:`random_effects`): True where the row's group (or
            factor level) has no BLUP, so :meth:`predict` uses the
            population-level value (0) for that term.
        """
        return unseen_table(self._pe_estimates.layout, data)

    @property
    def fittedvalues(self) -> pd.Series:
        """Fitted values ``X beta_hat + Z b_hat`` on the estimation sample, in data order
        (a fit from a Dask DataFrame: a Dask Series over its rows)."""
        if not self.model.design.holds_rows:
            return self.predict(kind="fitted")
        return self._in_data_order(self.predict(kind="fitted").to_numpy(), "fitted")

    @property
    def resid(self) -> pd.Series:
        """Residuals ``y - fitted`` on the estimation sample, in data order
        (a fit from a Dask DataFrame: a Dask Series over its rows)."""
        if not self.model.design.holds_rows:
            return self.predict(kind="residuals")
        return self._in_data_order(self.predict(kind="residuals").to_numpy(), "residuals")

    def _in_data_order(self, values_in_predict_order: np.ndarray, name: str) -> pd.Series:
        return in_data_order(self.model.design, values_in_predict_order, self.predict(kind="xb").index, name)

    # -- estat --------------------------------------------------------------------------
    def estat_recovariance(self, level: Optional[str] = None, correlation: bool = False):
        """Estimated covariance (or correlation) matrix of the random effects.

        Stata's ``estat recovariance [, level() correlation]``.

        Parameters
        ----------
        level : str, optional
            A key of :attr:`random_effects` (a level name such as ``"id"``,
            or a factor/crossed term).  Default: every term.
        correlation : bool
            Report the correlation matrix instead.

        Returns
        -------
        pandas.DataFrame, or dict of str -> DataFrame when ``level`` is None
            Rows and columns are the effect names.  A factor block ``R.x``
            shows its per-level covariance (one effect); a level with several
            equations is block diagonal.
        """
        return estat.recovariance(self._pe_estimates, level, correlation)

    def estat_icc(self, level: Optional[float] = None) -> pd.DataFrame:
        """Intraclass correlations (Stata's ``estat icc``).

        For each level ``l`` (coarsest first), the correlation of two
        observations in the same level-``l`` group:
        ``(sum of the intercept variances from the top level down to l) /
        (sum of all intercept variances + residual variance)``.  The
        standard error is from the delta method with the covariance of the
        variance components (``cov_params()``); the confidence interval is
        built on the logit scale.

        Parameters
        ----------
        level : float, optional
            Confidence level in percent (default: the fit's, 95).

        Returns
        -------
        pandas.DataFrame
            Indexed by Stata's labels (``region``, ``state|region``), columns
            ``icc``, ``std_err``, ``ci_low``, ``ci_high``.

        Raises
        ------
        ValueError
            As Stata: for models with random coefficients (slopes, ``R.x``
            factors, crossed effects) or with a residual structure other than
            independent homoskedastic errors.
        """
        k = self.k_fe
        vc = np.asarray(self.params, dtype=float)[k:]
        vc_cov = np.asarray(self.cov_params())[k:, k:]
        return estat.icc(self._pe_estimates, vc, vc_cov, self.level if level is None else level)

    def estat_wcorrelation(self, group=None) -> WCorrelation:
        """Model-implied covariance and correlation within one top-level cluster.

        Stata's ``estat wcorrelation``: ``V = Z G Z' + R`` for the rows of one
        group of the coarsest level, random effects of every level and the
        residual structure together (``R = sigma2 * C``, with ``C`` from the
        residual structure panel by panel).

        Parameters
        ----------
        group : scalar or tuple, optional
            Value of the top level's grouping variable (a tuple for a
            multi-variable path).  Default: the first group.  Ignored for a
            model whose top level is ``_all`` (crossed effects): the cluster
            is then the whole sample.

        Returns
        -------
        WCorrelation
            ``covariance`` and ``correlation`` DataFrames indexed (rows and
            columns) by the cluster's row labels in the data given to the
            fit (rows in estimation order: sorted by group, and by time
            within a panel as in the data), and ``group``.
        """
        est = self._pe_estimates
        if not est.design.holds_rows:  # fitted from statistics: the cluster's rows from the fitted frame
            if self.model.frame is None:
                raise NotImplementedError("estat wcorrelation needs the rows of the cluster; the model was fitted "
                                          "from sufficient statistics alone")
            return estat.frame_wcorrelation(est, self.model.frame, group)
        return estat.wcorrelation(est, group)

    def estat_sd(self, level: Optional[float] = None) -> pd.DataFrame:
        """Variance components as standard deviations and correlations (``estat sd``).

        Parameters
        ----------
        level : float, optional
            Confidence level in percent (default: the fit's).

        Returns
        -------
        pandas.DataFrame
            Indexed by (level, parameter) with ``sd(...)``/``corr(...)``
            labels; columns ``estimate``, ``std_err`` (delta method),
            ``ci_low``, ``ci_high`` (log scale for SDs, atanh for
            correlations).
        """
        return self.variance_component_table(sd=True, level=level)

    def estat_ic(self, n: Optional[int] = None) -> pd.DataFrame:
        """Akaike's and Schwarz's information criteria (``estat ic``).

        Parameters
        ----------
        n : int, optional
            Sample size used in BIC (Stata's ``n()``); default the number of
            observations.

        Returns
        -------
        pandas.DataFrame
            One row with ``N``, ``ll(null)`` (not defined: NaN), ``ll(model)``,
            ``df`` (fixed effects plus variance components), ``AIC``, ``BIC``.
            Under REML ``ll(model)`` is the restricted log-likelihood.
        """
        return estat.information_criteria(int(self.nobs if n is None else n), len(np.asarray(self.params)),
                                          float(self.llf))

    # -- plots ------------------------------------------------------------------------------
    def plot_caterpillar(self, level: Optional[str] = None, alpha: float = 0.05, se: str = "conditional",
                         figsize=None):
        """Caterpillar plot: sorted BLUPs with intervals, one panel per effect.

        Parameters
        ----------
        level : str, optional
            A key of :attr:`random_effects`; default every term.
        alpha : float
            Intervals are ``b_hat +- z(1 - alpha/2) * se``.
        se : {"conditional", "comparative"}
            Which standard errors (see :meth:`random_effects_cov`).

        Returns
        -------
        matplotlib.figure.Figure
        """
        return plots.caterpillar(self, level=level, alpha=alpha, se=se, figsize=figsize)

    def plot_spaghetti(self, time: str, response: Optional[str] = None, groups=None, fitted: bool = False,
                       data: Optional[pd.DataFrame] = None, group: Optional[str] = None, figsize=None):
        """Growth curves: the response over time, one connected line per group.

        Like Stata's ``twoway scatter weight week if id<=10, connect(L)``:
        ``res.plot_spaghetti("week", groups=range(1, 11))``.

        Parameters
        ----------
        time : str
            Variable on the x axis.
        response : str, optional
            Variable on the y axis (default: the model's response).
        groups : iterable, optional
            Values of the grouping variable to draw (default: all).
        fitted : bool
            Also draw each group's fitted curve (``predict(kind="fitted")``).
        data : DataFrame, optional
            Data to draw (default: the estimation sample); needed when
            ``time`` is not a model variable.
        group : str, optional
            Grouping variable (default: the finest level's).

        Returns
        -------
        matplotlib.figure.Figure
        """
        return plots.spaghetti(self, time, response=response, groups=groups, fitted=fitted, data=data,
                               group=group, figsize=figsize)

    def plot_residuals(self, figsize=None):
        """Residuals against fitted values (both including the BLUPs).

        Returns
        -------
        matplotlib.figure.Figure
        """
        return plots.residuals_vs_fitted(self, figsize=figsize)

    def plot_qq(self, figsize=None):
        """Normal quantile plot of the standardized residuals (``rstandard``).

        Returns
        -------
        matplotlib.figure.Figure
        """
        return plots.qq(self, figsize=figsize)
