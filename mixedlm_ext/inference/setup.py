"""After the optimum: the variance estimator (``vce()``) and the degrees of
freedom (``dfmethod()``) of a fit, with Stata's rules on what combines.

* Sampling weights imply ``vce(robust)`` clustered at the top level (or at
  ``vce(cluster var)``); ``vce(oim)`` is refused with them.
* ``vce(robust)``/``vce(cluster var)`` and sampling weights are ML only.
* ``dfmethod()`` is refused with weights and with robust standard errors;
  ``satterthwaite`` and ``kroger`` need REML.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Optional

import numpy as np

from ..core.threads import single_thread_blas
from .robust import check_nested, cluster_robust_fe, parse_vce, robust_covariance
from .smallsample import SmallSample, normalize_df_method, small_sample


@dataclass(frozen=True, eq=False)
class InferenceSetup:
    """The covariance of a fit's parameters and how it was obtained."""

    cov: np.ndarray  # (k, k) fixed effects, then variance components
    vce: str = "oim"  # "oim", "robust" or "cluster"
    cluster_label: Optional[str] = None
    n_clusters: Optional[int] = None
    small_sample: Optional[SmallSample] = None  # dfmethod()


def resolve_options(model, df_method=None, vce=None) -> tuple[Optional[str], str, Optional[str]]:
    """``(df method, vce kind, cluster variable)`` after Stata's rules (raises
    ``ValueError`` for the combinations Stata refuses)."""
    opts = model.spec.option_dict
    if df_method is None:
        df_method = opts.get("dfmethod")
    if vce is None:
        vce = opts.get("vce")
    method = normalize_df_method(df_method)
    kind, var = parse_vce(vce)
    d = model.design
    info = d.weights
    reml = model.objective.reml
    if info is not None and info.is_sampling:
        if vce is not None and kind == "oim":
            raise ValueError("vce(oim) is not allowed with sampling weights: pweights imply robust "
                             "standard errors")
        if kind == "oim":
            kind = "robust"
    if info is not None and info.is_precision and kind != "oim":
        raise NotImplementedError("vce(%s) with precision weights is not implemented" % kind)
    if kind != "oim" and reml:
        raise ValueError("vce(%s) is not allowed with REML (Stata refuses it); fit by ML" % kind)
    if method is not None:
        if info is not None:
            raise ValueError("dfmethod() is not allowed with weights")
        if kind != "oim":
            raise ValueError("dfmethod() may not be combined with vce(%s) (only vce(oim))" % kind)
        if method in ("satterthwaite", "kroger") and not reml:
            raise ValueError("dfmethod(%s) is only available with REML estimation (add reml)" % method)
    if method in ("repeated", "anova", "kroger") and not d.holds_rows:
        raise NotImplementedError("dfmethod(%s) needs the rows (it classifies or differentiates them); the "
                                  "model was fitted from sufficient statistics: dfmethod(residual) and "
                                  "dfmethod(satterthwaite) are available" % method)
    plain = model.objective.residual.is_plain
    if method == "kroger" and not plain:
        raise NotImplementedError("dfmethod(kroger) with a residuals() structure is not implemented "
                                  "(dfmethod(satterthwaite) is)")
    if kind != "oim":
        check_nested(model.objective, "vce(%s)" % kind)
    return method, kind, var


def configure_inference(model, params: np.ndarray, cov: np.ndarray, df_method=None,
                        vce=None) -> InferenceSetup:
    """Apply ``vce`` and ``df_method`` (arguments, else the command's options)."""
    method, kind, var = resolve_options(model, df_method, vce)
    cov = np.array(cov, dtype=float, copy=True)
    p = model.k_fe
    n_clusters = label = ss = None
    if kind != "oim":
        cov, n_clusters, label = robust_covariance(model, params, cov, var)
    if method is not None:
        phi = np.asarray(params[p:], dtype=float)
        ss = small_sample(model.objective, method, phi, cov[:p, :p], cov[p:, p:])
        cov[:p, :p] = ss.cov_fe
    return InferenceSetup(cov, kind, label, n_clusters, ss)


# ---------------------------------------------------------------------------
# the results side: t/F tests with the small-sample degrees of freedom
# ---------------------------------------------------------------------------
class FTestResult(tuple):
    """``(statistic, df_num, df_denom, pvalue)`` of an F test."""

    __slots__ = ()

    def __new__(cls, statistic, df_num, df_denom, pvalue):
        return tuple.__new__(cls, (statistic, df_num, df_denom, pvalue))

    statistic = property(lambda self: self[0])
    df_num = property(lambda self: self[1])
    df_denom = property(lambda self: self[2])
    pvalue = property(lambda self: self[3])

    def __repr__(self):
        return "FTestResult(statistic=%r, df_num=%r, df_denom=%r, pvalue=%r)" % tuple(self)


def _constraint_matrix(results, r_matrix):
    """``(L, q)`` from a matrix, a vector, or constraint strings over the parameter names."""
    names = list(results.model.param_names)
    if isinstance(r_matrix, str) or (isinstance(r_matrix, (list, tuple)) and r_matrix
                                     and all(isinstance(x, str) for x in r_matrix)):
        import patsy

        lc = patsy.DesignInfo(names).linear_constraint(r_matrix)
        return np.asarray(lc.coefs, dtype=float), np.asarray(lc.constants, dtype=float).ravel()
    if isinstance(r_matrix, tuple) and len(r_matrix) == 2:
        L = np.atleast_2d(np.asarray(r_matrix[0], dtype=float))
        return L, np.asarray(r_matrix[1], dtype=float).ravel() * np.ones(L.shape[0])
    L = np.atleast_2d(np.asarray(r_matrix, dtype=float))
    return L, np.zeros(L.shape[0])


class InferenceMixin:
    """Results methods for ``vce()`` and ``dfmethod()`` (mixed into the results class)."""

    def _init_inference(self, setup: InferenceSetup) -> None:
        """Set ``vce``, ``cluster_label``, ``n_clusters``, ``small_sample`` and
        ``df_method`` (and the t degrees of freedom) from ``setup``; called once by
        the results' constructor."""
        self.vce = setup.vce
        self.cluster_label = setup.cluster_label
        self.n_clusters = setup.n_clusters
        self.small_sample = setup.small_sample
        self.df_method = None if setup.small_sample is None else setup.small_sample.method
        if setup.small_sample is not None:
            self.use_t = True
            k_vc = len(self.params) - self.k_fe
            self.df_resid_inference = np.concatenate([setup.small_sample.df, np.full(k_vc, np.inf)])

    @property
    def is_pseudo(self) -> bool:
        """Sampling weights: the log-likelihood is a pseudo-likelihood."""
        w = self.model.design.weights
        return w is not None and w.is_sampling

    @property
    def fe_df(self):
        """Degrees of freedom of each fixed effect (``dfmethod()``), or None."""
        import pandas as pd

        if self.small_sample is None:
            return None
        return pd.Series(self.small_sample.df, index=self.model.design.fe_names, name="df")

    @cached_property
    def ftest_model(self) -> Optional[FTestResult]:
        """F test that all fixed effects except the constant are zero (with ``dfmethod()``)."""
        from ..core.distributions import f_sf

        if self.small_sample is None:
            return None
        names = list(self.model.design.fe_names)
        idx = [i for i, n in enumerate(names) if n != "_cons"]
        if not idx:
            return None
        L = np.eye(len(names))[idx]
        F, q, df2 = self.small_sample.f_test(L, np.asarray(self.params)[: self.k_fe])
        return FTestResult(float(F), int(q), float(df2), float(f_sf(F, q, df2)))

    def t_test(self, r_matrix, cov_p=None, use_t=None):
        """t tests of linear combinations; with ``dfmethod()`` each row gets its
        own degrees of freedom (rows involving variance components: normal)."""
        from statsmodels.stats.contrast import ContrastResults

        if self.small_sample is None or use_t is False or cov_p is not None:
            return super().t_test(r_matrix, cov_p=cov_p, use_t=use_t)
        L, q = _constraint_matrix(self, r_matrix)
        p = self.k_fe
        params = np.asarray(self.params)
        cov = np.asarray(self.cov_params())
        effect = L @ params
        sd = np.sqrt(np.einsum("ij,jk,ik->i", L, cov, L))
        t = (effect - q) / sd
        df = np.array([np.inf if np.any(row[p:] != 0) else self.small_sample.contrast_df(row[:p])
                       for row in L])
        return ContrastResults(effect=effect, t=t, sd=sd, df_denom=df)

    def wald_test(self, r_matrix, cov_p=None, invcov=None, use_f=None, df_constraints=None, scalar=True):
        """Wald test; with ``dfmethod()`` (and fixed effects only) an F test with the
        method's denominator degrees of freedom (Kenward-Roger: scaled F)."""
        from statsmodels.stats.contrast import ContrastResults

        if self.small_sample is None or use_f is False or cov_p is not None or invcov is not None:
            return super().wald_test(r_matrix, cov_p=cov_p, invcov=invcov, use_f=use_f,
                                     df_constraints=df_constraints, scalar=scalar)
        L, q = _constraint_matrix(self, r_matrix)
        p = self.k_fe
        if np.any(L[:, p:] != 0):
            return super().wald_test(r_matrix, use_f=False, scalar=scalar)
        F, dfn, dfd = self.small_sample.f_test(L[:, :p], np.asarray(self.params)[:p], q)
        return ContrastResults(F=F, df_num=dfn, df_denom=dfd)

    def cluster_robust_cov(self, type: str = "CR0", cluster: Optional[str] = None):
        """Cluster-robust covariance of the fixed effects (CR0, CR1 or CR2; see
        :mod:`.robust` for the formulas), for any fit, REML included."""
        with single_thread_blas():
            return cluster_robust_fe(self, type=type, cluster=cluster)
