"""The statsmodels-style model: :class:`MixedLMExt` (a ``LikelihoodModel``).

The model binds a :class:`~mixedlm_ext.spec.model.ModelSpec` to data once (the
design and the objective); :meth:`MixedLMExt.fit` optimises and returns a
new results object without touching the model.
"""
from __future__ import annotations

import sys
from typing import Optional

import numpy as np
import pandas as pd
from statsmodels.base.model import LikelihoodModel

from .core.errors import BoundaryWarning, warn_user
from .core.threads import single_thread_blas
from .design.build import build_design
from .design.types import Design
from .fit.derivatives import central_gradient, numerical_hessian
from .fit.objective import Objective
from .fit.optimizer import optimize
from .inference.vc import vc_covariance
from .spec.model import ModelSpec, ResidualSpec


def _with_residual(spec: ModelSpec, residual: Optional[ResidualSpec]) -> ModelSpec:
    if residual is None:
        return spec
    if not isinstance(residual, ResidualSpec):
        raise TypeError("residual must be a residual structure such as AR(1, time='t'), got %r" % (residual,))
    return spec.with_options(residual=residual)


class MixedLMExt(LikelihoodModel):
    """Linear mixed model with Stata ``mixed``'s structures.

    Parameters
    ----------
    spec : ModelSpec
        What to fit (built by a front-end: :meth:`from_stata`,
        :meth:`from_lme4`, :meth:`from_formula`).
    data : pandas.DataFrame

    Notes
    -----
    ``params`` of this model are the fixed effects followed by the
    variance-component parameters in Stata's reported metric (variances,
    covariances, residual-structure parameters), named ``level:parameter``.
    ``loglike(params)`` is the (restricted) log-likelihood at those values.
    """

    def __init__(self, spec: ModelSpec, data: pd.DataFrame, **kwargs):
        with single_thread_blas():
            design = build_design(spec, data)
        self.spec = spec
        self.design: Design = design
        self.objective = Objective(design, reml=spec.reml)
        self._user_data = data  # vce(cluster var) may name a column outside the model
        exog = pd.DataFrame(design.X, columns=design.fe_names, index=design.row_index)
        endog = pd.Series(design.y, index=design.row_index, name=spec.response)
        super().__init__(endog, exog, **kwargs)
        self.k_fe = design.p
        self.vc_labels = self.objective.natural_names()
        self.vc_names = ["%s:%s" % lp for lp in self.vc_labels]
        self.data.param_names = list(design.fe_names) + self.vc_names
        self.k_params = self.k_fe + len(self.vc_names)
        self.nobs = design.n
        if design.weights is not None and design.weights.is_frequency:
            self.nobs = int(round(design.weights.total))  # frequency weights: the expanded sample
        self.df_model = self.k_fe - int(design.has_constant)
        self.df_resid = self.nobs - self.k_fe

    # -- front-ends ------------------------------------------------------------
    @classmethod
    def from_stata(cls, command: str, data: pd.DataFrame) -> "MixedLMExt":
        """Model from a Stata ``mixed`` command string."""
        from .syntax.stata import parse_stata

        return cls(parse_stata(command), data)

    @classmethod
    def from_lme4(cls, formula: str, data: pd.DataFrame, *, reml: bool = True,
                  covariance: Optional[dict] = None, residual: Optional[ResidualSpec] = None) -> "MixedLMExt":
        """Model from an lme4-style formula (``"y ~ x + (x | g)"``).

        ``residual`` is a residual structure such as ``AR(2, time="time")``
        (panels are the groups of the finest random-effects term).
        """
        from .syntax.lme4 import parse_lme4

        spec = parse_lme4(formula, reml=reml, covariance=covariance)
        return cls(_with_residual(spec, residual), data)

    @classmethod
    def from_formula(cls, formula: str, data: pd.DataFrame, subset=None, drop_cols=None, *args,
                     groups=None, re_formula=None, vc_formula=None, reml: bool = True, **kwargs) -> "MixedLMExt":
        """statsmodels-style: ``from_formula(formula, data, groups=, re_formula=, vc_formula=)``.

        A formula containing ``(... | g)`` terms and no ``groups`` is read as
        an lme4-style formula.
        """
        if groups is None:
            if "|" in formula:
                return cls.from_lme4(formula, data, reml=reml, residual=kwargs.pop("residual", None))
            raise ValueError("from_formula needs groups= (or lme4-style '(... | g)' terms in the formula)")
        from .syntax.statsmodels import spec_from_statsmodels

        if not isinstance(groups, str):
            data = data.copy()
            data["_groups"] = np.asarray(groups)
            groups = "_groups"
        spec = spec_from_statsmodels(formula, groups, re_formula=re_formula, vc_formula=vc_formula, reml=reml)
        spec = _with_residual(spec, kwargs.pop("residual", None))
        if subset is not None:
            data = data.loc[subset]
        return cls(spec, data)

    # -- data ------------------------------------------------------------------
    def data_column(self, name: str) -> pd.Series:
        """Column ``name`` of the user's data on the estimation rows (in the design's
        row order), also when the model does not use it (``vce(cluster var)``).

        Raises ``KeyError`` when the data have no such column.
        """
        d = self.design
        if name in d.data.columns:
            return d.data[name]
        if name not in self._user_data.columns:
            raise KeyError(name)
        return self._user_data.loc[d.row_index, name].reset_index(drop=True)

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
    def fit(self, start_params=None, *, log: Optional[bool] = None, emlog: Optional[bool] = None,
            em_iterations: Optional[int] = None, emonly: Optional[bool] = None, maxiter: Optional[int] = None,
            level: Optional[float] = None, stream=None, df_method: Optional[str] = None, vce=None,
            **kwargs) -> "MixedLMExtResultsWrapper":  # noqa: F821
        """Fit by ML or REML (as the specification says) and return the results.

        Parameters
        ----------
        start_params : array, optional
            Starting values in the optimisation metric (``theta``).
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
        with single_thread_blas():
            return self._fit(start_params, log=log, emlog=emlog, em_iterations=em_iterations, emonly=emonly,
                             maxiter=maxiter, level=level, stream=stream, df_method=df_method, vce=vce)

    def _fit(self, start_params, *, log, emlog, em_iterations, emonly, maxiter, level, stream,
             df_method=None, vce=None):
        from .inference.setup import configure_inference, resolve_options
        from .results.results import MixedLMExtResults, MixedLMExtResultsWrapper

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
        prof = ob.profile(opt.theta, keep=True)
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
        res = MixedLMExtResults(self, params, setup, opt=opt, profile=prof, level=level)
        return MixedLMExtResultsWrapper(res)


