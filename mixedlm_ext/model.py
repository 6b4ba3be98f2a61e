"""The statsmodels-style model: :class:`MixedLMExt`.

The model binds a :class:`~mixedlm_ext.spec.model.ModelSpec` to data once (the
design and the objective); :meth:`MixedLMExt.fit` optimises and returns a
new results object without touching the model.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from typing import Optional

import numpy as np
import pandas as pd

from .core.errors import BoundaryWarning, ConvergenceWarning, warn_user
from .core.keywords import check_keywords, unknown_keyword_error
from .core.threads import single_thread_blas
from .design.build import build_design
from .design.types import Design
from .fit.derivatives import central_gradient, numerical_hessian
from .fit.objective import Objective
from .fit.optimizer import optimize
from .inference.vc import vc_covariance
from .scale.frames import is_dask_frame
from .scale.shards import ShardedDesign, ShardedObjective
from .spec.model import ModelSpec, ResidualSpec, WeightSpec


def _check_residual_variance(objective: Objective, opt, sigma2: float):
    """A residual variance estimated as zero means the likelihood grew without
    bound (the random effects fit the data exactly): warn, and the fit has not
    converged.  Small designs are refused before fitting (design/validate.py)."""
    d = objective.design
    if not objective.residual.is_plain or d.n == 0:
        return opt
    typical = float(d.XYtXY[-1, -1] if d.XYtXY is not None else d.yw @ d.yw) / d.n  # OLS residual variance
    if typical > 0 and sigma2 <= 1e-10 * typical:
        warn_user("the residual variance is estimated as zero (%.3g): the random effects fit '%s' exactly and "
                  "the likelihood has no maximum; the estimates are not meaningful" % (sigma2, d.spec.response),
                  ConvergenceWarning)
        return replace(opt, converged=False, message="residual variance estimated as zero")
    return opt


FIT_KEYWORDS = ("start_params", "reml", "method", "log", "emlog", "em_iterations", "emonly", "maxiter", "level",
                "stream", "df_method", "vce")


def design_of(spec: ModelSpec, data, statistics_on: str = "auto") -> Design:
    """The design of ``spec`` on ``data``: built from the rows of a pandas DataFrame,
    from the sufficient statistics of a Dask DataFrame (partition by partition;
    ``statistics_on``: where the per-group statistics are kept, see
    :func:`mixedlm_ext.scale.statistics.dask_design`)."""
    if is_dask_frame(data):
        from .scale.statistics import dask_design

        return dask_design(spec, data, statistics_on)
    if statistics_on != "auto":
        raise TypeError("statistics_on= is for Dask DataFrames")
    return build_design(spec, data)


def objective_of(design: Design, reml: bool) -> Objective:
    """The objective of a design (a sharded design's evaluations map over its shards)."""
    if isinstance(design, ShardedDesign):
        return ShardedObjective(design, reml=reml)
    return Objective(design, reml=reml)


def _refuse_dask(data, what: str) -> None:
    if is_dask_frame(data):
        raise TypeError("%s with a Dask DataFrame: give a column name of the frame instead" % what)


def _with_precision_weights(spec: ModelSpec, data: pd.DataFrame, weights) -> tuple[ModelSpec, pd.DataFrame]:
    """``weights=`` (lme4's precision weights) as a column of the data."""
    if weights is None:
        return spec, data
    if isinstance(weights, str):
        var = weights
    else:
        _refuse_dask(data, "weights= as values")
        w = np.asarray(weights, dtype=float)
        if w.shape != (len(data),):
            raise ValueError("weights must be a column name or one value per row of data (%d), got shape %s"
                             % (len(data), w.shape))
        data = data.assign(_weights=w)
        var = "_weights"
    return spec.with_options(weights=(WeightSpec("precision", var),)), data


def categorical_columns(data: pd.DataFrame) -> list[str]:
    """Columns patsy codes as categorical without ``C()``: text, categories, booleans."""
    return [c for c in data.columns if not pd.api.types.is_numeric_dtype(data[c])
            or pd.api.types.is_bool_dtype(data[c])]


def _with_residual(spec: ModelSpec, residual: Optional[ResidualSpec]) -> ModelSpec:
    if residual is None:
        return spec
    if not isinstance(residual, ResidualSpec):
        raise TypeError("residual must be a residual structure such as AR(1, time='t'), got %r" % (residual,))
    return spec.with_options(residual=residual)


@dataclass(frozen=True)
class ModelNames:
    """statsmodels' ``model.data`` as far as this package fills it: the names."""

    param_names: list
    xnames: list
    ynames: str


class MixedLMExt:
    """Linear mixed model with Stata ``mixed``'s structures.

    Parameters
    ----------
    spec : ModelSpec
        What to fit (built by a front-end: :meth:`from_stata`,
        :meth:`from_lme4`, :meth:`from_formula`).
    data : pandas.DataFrame or dask.dataframe.DataFrame
        A Dask DataFrame is reduced partition by partition to the model's
        sufficient statistics (``docs/scale.md``).
    statistics_on : {"auto", "client", "workers"}
        Dask only: where the per-group statistics are kept (``"workers"``: in
        shards of whole top-level clusters, every evaluation a map over them).

    Notes
    -----
    ``params`` of this model are the fixed effects followed by the
    variance-component parameters in Stata's reported metric (variances,
    covariances, residual-structure parameters), named ``level:parameter``.
    ``loglike(params)`` is the (restricted) log-likelihood at those values.
    """

    def __init__(self, spec: ModelSpec, data: pd.DataFrame, *, design: Optional[Design] = None,
                 formula: Optional[str] = None, statistics_on: str = "auto", **kwargs):
        check_keywords(kwargs, ("formula", "statistics_on"), "MixedLMExt()")
        if design is None:
            with single_thread_blas():
                design = design_of(spec, data, statistics_on)
        elif design.spec.with_options(reml=spec.reml) != spec:
            raise ValueError("design= must be a design of the same model (it may differ in reml only)")
        self.spec = spec
        self.design: Design = design
        self.objective = objective_of(design, spec.reml)
        self.frame = data  # the user's data: vce(cluster var) may name a column outside the model
        self.formula = formula  # the model as the user wrote it (a Stata command, an lme4 formula)
        self.k_fe = design.p
        self.vc_labels = self.objective.natural_names()
        self.vc_names = ["%s:%s" % lp for lp in self.vc_labels]
        self.param_names = list(design.fe_names) + self.vc_names
        self.k_params = self.k_fe + len(self.vc_names)
        self.nobs = design.n
        if design.weights is not None and design.weights.is_frequency:
            self.nobs = int(round(design.weights.total))  # frequency weights: the expanded sample
        self.df_model = self.k_fe - int(design.has_constant)
        self.df_resid = self.nobs - self.k_fe

    # -- statsmodels' model attributes -----------------------------------------
    @property
    def data(self) -> ModelNames:
        return ModelNames(self.param_names, self.exog_names, self.endog_names)

    @property
    def endog(self) -> np.ndarray:
        """The response on the estimation rows (design order)."""
        return self.design.y

    @property
    def exog(self) -> np.ndarray:
        """The fixed-effects columns on the estimation rows (design order)."""
        return self.design.X

    @property
    def endog_names(self) -> str:
        return self.spec.response

    @property
    def exog_names(self) -> list:
        return list(self.design.fe_names)

    # -- front-ends ------------------------------------------------------------
    @classmethod
    def from_stata(cls, command: str, data: pd.DataFrame) -> "MixedLMExt":
        """Model from a Stata ``mixed`` command string."""
        from .syntax.stata import parse_stata

        return cls(parse_stata(command), data, formula=command.strip())

    @classmethod
    def from_lme4(cls, formula: str, data: pd.DataFrame, *, reml: bool = True,
                  covariance: Optional[dict] = None, residual: Optional[ResidualSpec] = None,
                  weights=None, statistics_on: str = "auto") -> "MixedLMExt":
        """Model from an lme4-style formula (``"y ~ x + (x | g)"``).

        ``residual`` is a residual structure such as ``AR(2, time="time")``
        (panels are the groups of the finest random-effects term);
        ``weights`` lme4's precision weights (a column name or one value per
        row): observation ``i`` has residual variance ``sigma2 / w_i``.
        """
        from .syntax.lme4 import parse_lme4

        spec = parse_lme4(formula, reml=reml, covariance=covariance)
        spec, data = _with_precision_weights(spec, data, weights)
        return cls(_with_residual(spec, residual), data, formula=formula, statistics_on=statistics_on)

    @classmethod
    def from_formula(cls, formula: str, data: pd.DataFrame, subset=None, drop_cols=None, *args,
                     groups=None, re_formula=None, vc_formula=None, reml: bool = True, **kwargs) -> "MixedLMExt":
        """statsmodels-style: ``from_formula(formula, data, groups=, re_formula=, vc_formula=)``.

        A formula containing ``(... | g)`` terms and no ``groups`` is read as
        an lme4-style formula.
        """
        check_keywords(kwargs, ("residual",), "from_formula()")
        if args or drop_cols is not None:
            raise TypeError("from_formula() takes no positional arguments after subset, and drop_cols is "
                            "not supported")
        if groups is None:
            if "|" in formula:
                return cls.from_lme4(formula, data, reml=reml, residual=kwargs.pop("residual", None))
            raise ValueError("from_formula needs groups= (or lme4-style '(... | g)' terms in the formula)")
        from .syntax.statsmodels import spec_from_statsmodels

        if not isinstance(groups, str):
            _refuse_dask(data, "groups= as values")
            data = data.copy()
            data["_groups"] = np.asarray(groups)
            groups = "_groups"
        spec = spec_from_statsmodels(formula, groups, re_formula=re_formula, vc_formula=vc_formula, reml=reml,
                                     categorical=categorical_columns(data))
        spec = _with_residual(spec, kwargs.pop("residual", None))
        if subset is not None:
            _refuse_dask(data, "subset=")
            data = data.loc[subset]
        return cls(spec, data, formula=formula)

    # -- data ------------------------------------------------------------------
    def data_column(self, name: str) -> pd.Series:
        """Column ``name`` of the user's data on the estimation rows (in the design's
        row order), also when the model does not use it (``vce(cluster var)``).

        Raises ``KeyError`` when the data have no such column.
        """
        d = self.design
        if not d.holds_rows:
            raise NotImplementedError("the rows of column '%s' are not available: the model was fitted from "
                                      "sufficient statistics (out of core); vce(cluster var) is available in "
                                      "memory, vce(robust) clusters at the top level out of core" % name)
        if name in d.data.columns:
            return d.data[name]
        if name not in self.frame.columns:
            raise KeyError(name)
        return self.frame.loc[d.row_index, name].reset_index(drop=True)

    # -- likelihood ------------------------------------------------------------
    def _split(self, params) -> tuple[np.ndarray, np.ndarray]:
        params = np.asarray(params, dtype=float)
        return params[: self.k_fe], params[self.k_fe:]

    def loglike(self, params) -> float:
        """(Restricted) log-likelihood at ``params`` (fixed effects, then variance components).

        Under REML the restricted likelihood does not depend on the fixed effects.
        """
        beta, phi = self._split(params)
        return -0.5 * self.objective.neg2ll_natural(phi, beta=beta)

    def score(self, params) -> np.ndarray:
        """Numerical gradient of :meth:`loglike`."""
        params = np.asarray(params, dtype=float)
        bounds = [(None, None)] * params.size
        return -central_gradient(lambda p: -self.loglike(p), params, bounds)

    def hessian(self, params) -> np.ndarray:
        """Numerical Hessian of :meth:`loglike` (central differences, Richardson)."""
        params = np.asarray(params, dtype=float)
        kinds = ["cov"] * self.k_fe + self.objective.natural_kinds()
        return -numerical_hessian(lambda p: -self.loglike(p), params, kinds)

    def information(self, params) -> np.ndarray:
        return -self.hessian(params)

    # -- fitting ---------------------------------------------------------------
    def fit(self, start_params=None, *, reml: Optional[bool] = None, method=None, log: Optional[bool] = None,
            emlog: Optional[bool] = None, em_iterations: Optional[int] = None, emonly: Optional[bool] = None,
            maxiter: Optional[int] = None, level: Optional[float] = None, stream=None,
            df_method: Optional[str] = None, vce=None, **kwargs) -> "MixedLMExtResults":  # noqa: F821
        """Fit by ML or REML and return the results (the model is not changed).

        Parameters
        ----------
        start_params : array, optional
            Starting values in the optimisation metric (``theta``).
        reml : bool, optional
            statsmodels' spelling: ``False`` fits by ML, ``True`` by REML,
            whatever the specification said (default: as specified).  The
            results then belong to a new model sharing this one's design.
        method : str, optional
            statsmodels' spelling of the optimiser.  The fit always runs EM,
            L-BFGS-B and Newton-Raphson; ``"lbfgs"`` is accepted, other
            names are refused.
        log : bool
            Print the iteration log in Stata's form (default: no log).
        emlog : bool
            Print the EM iterations too.
        em_iterations : int
            Number of EM iterations for starting values (Stata's ``emiterate``; default 20).
        emonly : bool
            Stop after the EM iterations.
        maxiter : int
            Maximum quasi-Newton iterations (Stata's ``iterate``).
        level : float
            Confidence level for intervals (default 95).
        df_method : str
            Stata's ``dfmethod()``: ``"residual"``, ``"repeated"``, ``"anova"``,
            ``"satterthwaite"`` or ``"kenward-roger"`` (``"kroger"``); the last
            two need REML.  t statistics with per-coefficient degrees of
            freedom, an F test for the model (see :mod:`mixedlm_ext.inference.smallsample`).
        vce : str
            ``"oim"`` (default), ``"robust"`` or ``"cluster var"``: sandwich
            standard errors clustered at the top level (or ``var``); ML only;
            automatic with sampling weights (see :mod:`mixedlm_ext.inference.robust`).
        """
        if kwargs:
            raise unknown_keyword_error(next(iter(kwargs)), FIT_KEYWORDS, "fit()")
        if method is not None and str(method).lower() not in ("lbfgs", "l-bfgs-b"):
            raise ValueError("method=%r is not available: the fit runs EM, L-BFGS-B and Newton-Raphson "
                             "(method='lbfgs' is accepted)" % (method,))
        options = dict(log=log, emlog=emlog, em_iterations=em_iterations, emonly=emonly, maxiter=maxiter,
                       level=level, stream=stream, df_method=df_method, vce=vce)
        if reml is not None and bool(reml) != self.objective.reml:
            other = MixedLMExt(self.spec.with_options(reml=bool(reml)), self.frame, design=self.design,
                               formula=self.formula)
            return other.fit(start_params, **options)
        if start_params is not None:
            start_params = np.asarray(start_params, dtype=float).ravel()
            if start_params.size != self.objective.n_theta:
                raise ValueError("start_params must have %d values (the optimisation parameters theta: %s), "
                                 "got %d" % (self.objective.n_theta, ", ".join(self.objective.theta_names()),
                                             start_params.size))
        with single_thread_blas():
            return self._fit(start_params, **options)

    def _fit(self, start_params, *, log, emlog, em_iterations, emonly, maxiter, level, stream,
             df_method=None, vce=None):
        from .inference.setup import configure_inference, resolve_options
        from .results.results import MixedLMExtResults

        resolve_options(self, df_method, vce)  # refuse what Stata refuses before optimising

        opts = self.spec.option_dict
        log = bool(opts.get("log", False)) if log is None else log
        emlog = bool(opts.get("emlog", False)) if emlog is None else emlog
        em_iterations = int(opts.get("emiterate", 20)) if em_iterations is None else em_iterations
        emonly = bool(opts.get("emonly", False)) if emonly is None else emonly
        maxiter = int(opts.get("iterate", 300)) if maxiter is None else maxiter
        level = float(opts.get("level", 95.0)) if level is None else level
        stream = stream or sys.stdout

        ob = self.objective
        opt = optimize(ob, start_params, log=log, maxiter=maxiter, stream=stream,
                       em_iterations=em_iterations, em_log=emlog, em_only=emonly)
        if log:
            stream.write("\nComputing standard errors ...\n")
        prof = ob.profile_from(opt.evaluation) if opt.evaluation is not None else ob.profile(opt.theta)
        opt = _check_residual_variance(ob, opt, prof.sigma2)
        phi = ob.natural_from_theta(opt.theta, prof.sigma2)
        kinds = ob.natural_kinds()
        cov_vc = vc_covariance(ob, opt.theta, prof.sigma2, phi, kinds, opt.at_bound,
                                  opt.hessian_psi, opt.psi_free)
        p = self.k_fe
        cov_fe = prof.sigma2 * np.linalg.inv(prof.xtvx) if p else np.zeros((0, 0))
        k = p + phi.size
        cov = np.zeros((k, k))
        cov[:p, :p] = cov_fe
        cov[p:, p:] = cov_vc
        params = np.concatenate([prof.beta, phi])
        if opt.at_bound is not None and opt.at_bound[: ob.n_theta_re].any():
            warn_user("a variance component is estimated at the boundary (zero); "
                      "its standard error is not meaningful", BoundaryWarning)
        setup = configure_inference(self, params, cov, df_method, vce)  # vce(robust), dfmethod()
        return MixedLMExtResults(self, params, setup, opt=opt, profile=prof, level=level)


