"""Results of a fit: Stata's numbers behind statsmodels' results interface
(:class:`~mixedlm_ext.results.parameters.ParameterResults`)."""
from __future__ import annotations

from functools import cached_property
from typing import NamedTuple, Optional

import numpy as np
import pandas as pd

from ..core.distributions import chi2_sf
from ..core.keywords import check_keywords, refuse_unknown_keywords
from ..design.names import coefficient_rows
from ..inference.comparison import bootstrap_lrtest
from ..inference.setup import InferenceMixin, InferenceSetup  # vce(), dfmethod(): t/F tests, robust SEs
from ..fit.optimizer import near_bound
from ..inference.vc import to_sd_metric, vc_confint
from ..postestimation.inference_methods import InferenceMethodsMixin
from ..postestimation.mixin import PostestimationMixin
from .parameters import ParameterResults


def is_singular_fit(objective, theta: np.ndarray, tol: float = 1e-4) -> bool:
    """Whether a random-effects covariance parameter is within ``tol`` of its bound."""
    k = objective.n_theta_re
    return bool(near_bound(np.asarray(theta)[:k], objective.theta_bounds()[:k], tol).any())


SUMMARY_OPTIONS = ("noretable", "nofetable", "nolrtest", "nogroup", "noheader", "baselevels", "allbaselevels",
                   "noomitted", "vsquish")


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


class MixedLMExtResults(InferenceMixin, InferenceMethodsMixin, PostestimationMixin, ParameterResults):
    """Results of :meth:`MixedLMExt.fit`.

    ``params`` are the fixed effects then the variance components (reported
    metric); ``cov_params()`` is the full matrix (the two blocks are
    uncorrelated, as in Stata's ``e(V)``).
    """

    def __init__(self, model, params, inference: InferenceSetup, *, opt, profile, level: float = 95.0):
        # statsmodels' spelling: scale is the residual variance (cov_params() = normalized_cov_params * scale)
        scale = profile.sigma2 if profile.sigma2 > 0 else 1.0
        super().__init__(model, params, inference.cov, scale=scale)
        self.opt = opt
        self.fit_profile = profile  # the objective's profile at the estimate
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

    def coefficient_rows(self) -> list:
        """Every row Stata's coefficient table can show, in order: the estimated
        coefficients, the base cells of factor variables (``1b.region``, shown
        with ``baselevels``) and the columns omitted for collinearity, each a
        :class:`~mixedlm_ext.design.names.CoefficientRow`."""
        part = self.model.design.fixed
        return coefficient_rows(part.design_info.column_names, part.frame, part.omitted)

    @refuse_unknown_keywords
    def conf_int(self, alpha: float = 0.05, method: str = "wald", stddeviations: Optional[bool] = None):
        """Confidence intervals.

        ``method="wald"`` (default): normal for fixed effects, Stata's
        transformed intervals (log scale for variances, ...) for variance
        components.  ``method="profile"``: profile-likelihood intervals, a
        DataFrame with columns ``0``, ``1`` and ``boundary`` (variance
        components as SDs/correlations with ``stddeviations``; see
        :meth:`profile_conf_int`).
        """
        if method == "profile":
            return self.profile_conf_int(alpha, stddeviations)[["lower", "upper", "boundary"]].set_axis(
                [0, 1, "boundary"], axis=1)
        if method != "wald":
            raise ValueError("method must be 'wald' or 'profile', got %r" % (method,))
        ci = self.wald_intervals(alpha)
        est = np.asarray(self.params)[self.k_fe:]
        se = np.asarray(self.bse)[self.k_fe:]
        ci[self.k_fe:] = vc_confint(est, se, self.model.objective.natural_kinds(), 100 * (1 - alpha))
        return pd.DataFrame(ci, index=self.param_names)

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
        return WaldResult(stat, len(idx), float(chi2_sf(stat, len(idx))))

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
            p = 0.5 * chi2_sf(stat, 1) if stat > 0 else 1.0
            return LRTestResult(stat, 1, float(p), "chibar2(01)")
        return LRTestResult(stat, df, float(chi2_sf(stat, df)), "chi2(%d)" % df,
                            "LR test is conservative and provided only for reference.")

    # -- groups ----------------------------------------------------------------------
    def estat_group(self) -> pd.DataFrame:
        """Per level: number of groups and min/avg/max observations per group.

        A level ``_all`` (crossed effects) is one group holding every row,
        followed by one row per crossed factor (its levels and the
        observations per level)."""
        rows = {}
        data = self.model.design.data
        for lvl in self.model.design.levels:
            sizes = {lvl.label if lvl.path else "_all": lvl.sizes()}
            if not lvl.path:
                for blk in lvl.blocks:
                    if blk.expand_by:
                        counts = data.groupby(list(blk.expand_by), sort=True, observed=True).size()
                        sizes.setdefault(":".join(blk.expand_by), counts.to_numpy())
            for label, s in sizes.items():
                rows[label] = {"n_groups": len(s), "min": int(s.min()), "avg": float(s.mean()), "max": int(s.max())}
        df = pd.DataFrame.from_dict(rows, orient="index", columns=["n_groups", "min", "avg", "max"])
        df.index.name = "level"
        return df

    # -- output ----------------------------------------------------------------------
    def summary(self, style: str = "stata", stddeviations: Optional[bool] = None, level: Optional[float] = None,
                **opts):
        """The fit's output (print it; ``as_latex()``, ``as_html()``, ``tables`` export it).

        ``style="stata"`` (default): Stata's ``mixed`` layout, with its display
        options (``stddeviations``, ``level``, ``noretable``, ``nofetable``,
        ``nolrtest``, ``nogroup``, ``noheader``, ``baselevels``,
        ``allbaselevels``, ``noomitted``, ``vsquish``).  ``style="lme4"``:
        lme4's ``summary()`` (REML criterion or AIC table, scaled residuals,
        random effects with Variance/Std.Dev./Corr, fixed effects with t
        values, correlation of fixed effects).
        """
        from .lme4_style import Lme4Summary
        from .summary import StataSummary

        if style == "lme4":
            check_keywords(opts, (), "summary(style='lme4')")
            return Lme4Summary(self, self.model.formula or self.model.spec.response)
        if style != "stata":
            raise ValueError("style must be 'stata' or 'lme4', got %r" % (style,))
        check_keywords(opts, SUMMARY_OPTIONS, "summary()")
        o = self.model.spec.option_dict
        if stddeviations is None:
            stddeviations = bool(o.get("stddeviations", False))
        for key in SUMMARY_OPTIONS:
            opts.setdefault(key, bool(o.get(key, False)))
        return StataSummary(self, stddeviations=stddeviations, level=level or self.level, **opts)

    def ranef(self) -> dict:
        """lme4's ``ranef()``: grouping name (``subject``, ``cask:batch``) -> BLUPs,
        ``(Intercept)`` first (see :mod:`~mixedlm_ext.results.lme4_style`)."""
        from .lme4_style import ranef

        return ranef(self)

    def fixef(self) -> pd.Series:
        """lme4's ``fixef()``: the fixed effects with ``(Intercept)`` first."""
        from .lme4_style import fixef

        return fixef(self)

    def VarCorr(self):  # noqa: N802 (lme4's name)
        """lme4's ``VarCorr()``: covariance matrices per grouping, ``sigma``, ``frame``."""
        from .lme4_style import varcorr

        return varcorr(self)

    def is_singular(self, tol: float = 1e-4) -> bool:
        """lme4's ``isSingular``: some random-effects covariance matrix is singular
        (a variance at zero, a correlation at +-1), i.e. a covariance parameter
        within ``tol`` of its bound.  ``singular`` holds the default."""
        return is_singular_fit(self.model.objective, self.opt.theta, tol)

    def __repr__(self) -> str:
        return "<MixedLMExtResults: %s, llf=%.6g, %d obs>" % (self.method, self.llf, self.nobs)


@refuse_unknown_keywords
def lrtest(big, small, method: str = "chi2", n_boot: int = 1000, seed=None, n_jobs: int = 1,
           progress: Optional[bool] = None) -> LRTestResult:
    """Likelihood-ratio test of nested models (Stata's ``lrtest big small``).

    The degrees of freedom are the difference in the number of parameters;
    the note warns that a null hypothesis on the boundary of the parameter
    space (a variance of zero) makes the test conservative.
    ``method="bootstrap"``: the p-value from ``n_boot`` parametric-bootstrap
    replicates under the smaller model instead (see
    :func:`mixedlm_ext.inference.comparison.bootstrap_lrtest`).
    """
    if method not in ("chi2", "bootstrap"):
        raise ValueError("method must be 'chi2' or 'bootstrap', got %r" % (method,))
    b, s = big, small
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
    p = float(chi2_sf(stat, df)) if df > 0 else np.nan
    note = ("The reported degrees of freedom assumes the null hypothesis is not on the boundary of the "
            "parameter space. If this is not true, then the reported test is conservative.")
    if method == "bootstrap":
        p, lr = bootstrap_lrtest(b, s, stat, n_boot=n_boot, seed=seed, n_jobs=n_jobs, progress=progress)
        return LRTestResult(stat, df, p, "bootstrap", "Parametric bootstrap under the smaller model: %d of %d "
                            "replicates refitted." % (lr.size, n_boot))
    return LRTestResult(stat, df, p, "chi2(%d)" % df, note)
