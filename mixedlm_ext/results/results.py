"""Results of a fit: a statsmodels ``LikelihoodModelResults`` with Stata's numbers."""
from __future__ import annotations

from functools import cached_property
from typing import NamedTuple, Optional

import numpy as np
import pandas as pd
import statsmodels.base.wrapper as wrap
from scipy import stats
from statsmodels.base.model import LikelihoodModelResults, LikelihoodResultsWrapper

from ..inference.setup import InferenceMixin, InferenceSetup  # vce(), dfmethod(): t/F tests, robust SEs
from ..fit.optimizer import near_bound
from ..inference.vc import to_sd_metric, vc_confint
from ..postestimation.mixin import PostestimationMixin


def is_singular_fit(objective, theta: np.ndarray, tol: float = 1e-4) -> bool:
    """Whether a random-effects covariance parameter is within ``tol`` of its bound."""
    k = objective.n_theta_re
    return bool(near_bound(np.asarray(theta)[:k], objective.theta_bounds()[:k], tol).any())


class LRTestResult(NamedTuple):
    """A likelihood-ratio test: statistic, degrees of freedom, p-value, kind, note."""

    statistic: float
    df: int
    pvalue: float
    kind: str  # "chibar2(01)" or "chi2(k)"
    note: str = ""


class WaldResult(NamedTuple):
    statistic: float
    df: int
    pvalue: float


class MixedLMExtResults(InferenceMixin, PostestimationMixin, LikelihoodModelResults):
    """Results of :meth:`MixedLMExt.fit`.

    ``params`` are the fixed effects then the variance components (reported
    metric); ``cov_params()`` is the full matrix (the two blocks are
    uncorrelated, as in Stata's ``e(V)``).
    """

    def __init__(self, model, params, inference: InferenceSetup, *, opt, profile, level: float = 95.0):
        super().__init__(model, params, normalized_cov_params=inference.cov, scale=1.0)
        self.opt = opt
        self.profile = profile
        self.level = level
        self.converged = bool(opt.converged)
        self.singular = is_singular_fit(model.objective, opt.theta)
        self.n_iterations = opt.n_iter
        self.reml = model.objective.reml
        self.method = "REML" if self.reml else "ML"
        self.llf_value = -0.5 * opt.deviance
        self.sigma2 = profile.sigma2
        self.k_fe = model.k_fe
        self.nobs = model.nobs
        self.use_t = False
        self.df_resid = model.df_resid
        self.df_model = model.df_model
        self._init_inference(inference)

    # -- scalars -----------------------------------------------------------------
    @cached_property
    def llf(self) -> float:
        return self.llf_value

    @property
    def df_modelwc(self) -> int:
        return len(self.params)

    @cached_property
    def aic(self) -> float:
        return -2.0 * self.llf + 2.0 * len(self.params)

    @cached_property
    def bic(self) -> float:
        return -2.0 * self.llf + np.log(self.nobs) * len(self.params)

    # -- fixed effects -----------------------------------------------------------
    @cached_property
    def fe_params(self) -> pd.Series:
        return pd.Series(np.asarray(self.params)[: self.k_fe], index=self.model.design.fe_names, name="coef")

    @cached_property
    def bse_fe(self) -> pd.Series:
        return pd.Series(np.asarray(self.bse)[: self.k_fe], index=self.model.design.fe_names, name="std_err")

    @cached_property
    def cov_fe(self) -> pd.DataFrame:
        c = np.asarray(self.cov_params())[: self.k_fe, : self.k_fe]
        names = self.model.design.fe_names
        return pd.DataFrame(c, index=names, columns=names)

    def conf_int(self, alpha: float = 0.05):
        """Confidence intervals: normal for fixed effects, Stata's transformed
        intervals (log scale for variances, ...) for variance components."""
        ci = np.array(super().conf_int(alpha=alpha), dtype=float)
        est = np.asarray(self.params)[self.k_fe:]
        se = np.asarray(self.bse)[self.k_fe:]
        ci[self.k_fe:] = vc_confint(est, se, self.model.objective.natural_kinds(), 100 * (1 - alpha))
        return ci

    @cached_property
    def wald_chi2(self) -> Optional[WaldResult]:
        """Wald test that all fixed effects except the constant are zero."""
        names = self.model.design.fe_names
        idx = [i for i, n in enumerate(names) if n != "_cons"]
        if not idx:
            return None
        b = np.asarray(self.params)[idx]
        V = np.asarray(self.cov_params())[np.ix_(idx, idx)]
        stat = float(b @ np.linalg.solve(V, b))
        return WaldResult(stat, len(idx), float(stats.chi2.sf(stat, len(idx))))

    # -- variance components -----------------------------------------------------
    def variance_component_table(self, sd: bool = False, level: Optional[float] = None) -> pd.DataFrame:
        """Variance components with standard errors and confidence intervals, indexed
        by (level, parameter); ``sd=True``: standard deviations and correlations;
        ``level``: confidence level (default: the fit's)."""
        ob = self.model.objective
        names = ob.natural_names()
        kinds = ob.natural_kinds()
        est = np.asarray(self.params)[self.k_fe:]
        cov = np.asarray(self.cov_params())[self.k_fe:, self.k_fe:]
        if sd:
            names, est, cov, kinds = to_sd_metric(names, est, cov, kinds)
        with np.errstate(invalid="ignore"):
            se = np.sqrt(np.diag(cov))
        ci = vc_confint(est, se, kinds, self.level if level is None else level)
        idx = pd.MultiIndex.from_tuples(names, names=["level", "parameter"])
        return pd.DataFrame({"estimate": est, "std_err": se, "ci_low": ci[:, 0], "ci_high": ci[:, 1]}, index=idx)

    # postestimation (estat sd) still calls it by its former name; drop once it calls the public one

    @cached_property
    def variance_components(self) -> pd.DataFrame:
        """Variance components in Stata's metric, indexed by (level, parameter)."""
        return self.variance_component_table(sd=False)

    @cached_property
    def sd_components(self) -> pd.DataFrame:
        """The same in the standard-deviation / correlation metric (``stddeviations``)."""
        return self.variance_component_table(sd=True)

    # -- tests ---------------------------------------------------------------------
    @cached_property
    def llf_linear(self) -> float:
        """Log-likelihood of the linear regression (REML: its restricted one)."""
        d = self.model.design
        n, p = d.n, d.p
        if d.weights is not None:  # weighted regression (yw carries sqrt(weights))
            n = d.weights.total
        rss = float(d.XYtXY[p, p])  # yw'yw: the OLS residual sum of squares
        if self.reml:
            # Stata's restricted log-likelihood of the regression, evaluated with
            # log|X'V^-1 X| = log|X'X / s2| (s2 = RSS/(n-p)), as in the reference values
            s2 = rss / (n - p)
            logdet = 2.0 * np.log(np.abs(np.diag(d.Rx))).sum() - p * np.log(s2) if p else 0.0
            return -0.5 * ((n - p) * (1.0 + np.log(2.0 * np.pi * s2)) + logdet + self.model.objective.weight_constant)
        return -0.5 * (n * (1.0 + np.log(2.0 * np.pi * rss / n)) + self.model.objective.weight_constant)

    @cached_property
    def lrtest_linear(self) -> LRTestResult:
        """LR test against the linear model (Stata's ``LR test vs. linear model``)."""
        ob = self.model.objective
        df = ob.n_natural - 1
        stat = 2.0 * (self.llf - self.llf_linear)
        stat = stat if stat > 1e-8 * max(1.0, abs(self.llf)) else 0.0
        independent = ob.residual.n_params == 0
        if df == 1 and independent:
            p = 0.5 * stats.chi2.sf(stat, 1) if stat > 0 else 1.0
            return LRTestResult(stat, 1, float(p), "chibar2(01)")
        return LRTestResult(stat, df, float(stats.chi2.sf(stat, df)), "chi2(%d)" % df,
                            "LR test is conservative and provided only for reference.")

    # -- groups ----------------------------------------------------------------------
    def estat_group(self) -> pd.DataFrame:
        """Per level: number of groups and min/avg/max observations per group."""
        rows = {}
        for lvl in self.model.design.levels:
            if not lvl.path:
                continue
            s = lvl.sizes()
            rows[lvl.label] = {"n_groups": lvl.n_groups, "min": int(s.min()), "avg": float(s.mean()), "max": int(s.max())}
        df = pd.DataFrame.from_dict(rows, orient="index", columns=["n_groups", "min", "avg", "max"])
        df.index.name = "level"
        return df

    # -- output ----------------------------------------------------------------------
    def summary(self, stddeviations: Optional[bool] = None, level: Optional[float] = None, **opts):
        """Stata-style output (print it)."""
        from .summary import StataSummary

        o = self.model.spec.option_dict
        if stddeviations is None:
            stddeviations = bool(o.get("stddeviations", False))
        for key in ("noretable", "nofetable", "nolrtest", "nogroup", "noheader"):
            opts.setdefault(key, bool(o.get(key, False)))
        return StataSummary(self, stddeviations=stddeviations, level=level or self.level, **opts)

    def is_singular(self, tol: float = 1e-4) -> bool:
        """lme4's ``isSingular``: some random-effects covariance matrix is singular
        (a variance at zero, a correlation at +-1), i.e. a covariance parameter
        within ``tol`` of its bound.  ``singular`` holds the default."""
        return is_singular_fit(self.model.objective, self.opt.theta, tol)

    def __repr__(self) -> str:
        return "<MixedLMExtResults: %s, llf=%.6g, %d obs>" % (self.method, self.llf, self.nobs)


class MixedLMExtResultsWrapper(LikelihoodResultsWrapper):
    # fittedvalues/resid are returned labelled, in the user's data order: no re-wrapping
    _attrs = {k: v for k, v in LikelihoodResultsWrapper._attrs.items() if k not in ("fittedvalues", "resid")}
    _wrap_attrs = {k: v for k, v in wrap.union_dicts(LikelihoodResultsWrapper._wrap_attrs, _attrs).items()
                   if k not in ("fittedvalues", "resid")}
    _methods = dict(LikelihoodResultsWrapper._wrap_methods)
    _wrap_methods = wrap.union_dicts(LikelihoodResultsWrapper._wrap_methods, _methods)


wrap.populate_wrapper(MixedLMExtResultsWrapper, MixedLMExtResults)


def lrtest(big, small) -> LRTestResult:
    """Likelihood-ratio test of nested models (Stata's ``lrtest big small``).

    The degrees of freedom are the difference in the number of parameters;
    the note warns that a null hypothesis on the boundary of the parameter
    space (a variance of zero) makes the test conservative.
    """
    b = getattr(big, "_results", big)
    s = getattr(small, "_results", small)
    if b.reml != s.reml:
        raise ValueError("cannot compare an ML fit with a REML fit")
    if b.nobs != s.nobs:
        raise ValueError("the models were fit on different samples (%d vs %d observations)" % (b.nobs, s.nobs))
    if b.reml and list(b.model.design.fe_names) != list(s.model.design.fe_names):
        raise ValueError("REML fits with different fixed effects cannot be compared by an LR test")
    for r in (b, s):
        if r.vce != "oim" or r.is_pseudo:
            raise ValueError("LR tests are not valid after robust standard errors or sampling weights "
                             "(pseudo-likelihood)")
    kb, ks = len(b.params), len(s.params)
    if kb < ks:
        b, s, kb, ks = s, b, ks, kb
    df = kb - ks
    stat = max(2.0 * (b.llf - s.llf), 0.0)
    p = float(stats.chi2.sf(stat, df)) if df > 0 else np.nan
    note = ("The reported degrees of freedom assumes the null hypothesis is not on the boundary of the "
            "parameter space. If this is not true, then the reported test is conservative.")
    return LRTestResult(stat, df, p, "chi2(%d)" % df, note)
