"""Cluster-robust (sandwich) standard errors: ``vce(robust)``, ``vce(cluster var)``.

The log-likelihood of a nested model is a sum over the top-level groups
(clusters) ``c``: ``l = sum_c l_c``.  At the estimates, each cluster's score
``s_c = d l_c / d(beta, phi)`` (``phi``: variances, covariances and
``var(Residual)`` in the reported metric) is computed from the elimination
engine, which returns every cluster's share of the log-determinant and of
the Schur complement:

    l_c = -1/2 [ N_c log(2 pi sigma2) + logdet_c + r_c(beta)' B_c r_c(beta) / sigma2 ]

(``N_c`` the cluster's (weighted) number of observations).  The fixed-effect
score is analytic, ``s_beta,c = X_c' V_c^-1 (y_c - X_c beta)``; the
variance-parameter scores are central differences of ``l_c``.

Fixed effects (the formula tested against clubSandwich):

    Var_rob(beta) = M/(M-1) * (X'V^-1X)^-1 [sum_g u_g u_g'] (X'V^-1X)^-1,
    u_g = sum_{c in g} X_c' V_c^-1 (y_c - X_c beta_hat)

``g`` runs over the ``M`` clusters (top-level groups, or the values of the
``vce(cluster var)`` variable); without the factor ``M/(M-1)`` this is the
CR0 estimator, with it CR1 (Stata's small-sample factor for ``vce(robust)``).

Variance components: the same sandwich with the model-based covariance
``A = -H_phi^-1`` of the variance parameters (inverse observed information,
``beta`` profiled out) as bread and the *efficient* scores
``s_phi,c - H_phi,beta H_beta^-1 s_beta,c`` (the scores of the profile
likelihood) in the meat; the cross-covariances come from the same meat.  All
in the reported metric (the sandwich is invariant under reparameterisation
at the estimates).

With sampling weights the scores include the weights (pseudo-likelihood);
with frequency weights at the top level a cluster of weight ``f`` counts as
``f`` clusters.

:func:`cluster_robust_fe` also gives the bias-reduced CR2 estimator of Bell
and McCaffrey (2002) / Pustejovsky and Tipton (2018) with the fitted model
as working model (clubSandwich's default for lme4 fits): with ``Phi_c`` the
fitted covariance of cluster ``c``, ``Phi_c = D_c'D_c`` (Cholesky),
``G_c = Phi_c - X_c (X'V^-1X)^-1 X_c'`` and
``A_c = D_c' (D_c G_c D_c')^{-1/2} D_c``,

    Var_CR2(beta) = (X'V^-1X)^-1 [sum_c X_c'Phi_c^-1 A_c e_c e_c' A_c Phi_c^-1 X_c] (X'V^-1X)^-1.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd

from ..core.linalg import LOG2PI
from ..engines.nested import NestedEngine
from ..fit.derivatives import parameter_steps

__all__ = ["ClusterLikelihood", "cluster_codes_for", "robust_covariance", "cluster_robust_fe", "parse_vce"]


def parse_vce(vce) -> tuple[str, Optional[str]]:
    """``"oim"``, ``"robust"``, ``"cluster var"`` (or ``("cluster", var)``) -> ``(kind, var)``."""
    if vce is None:
        return "oim", None
    if isinstance(vce, (tuple, list)):
        kind, var = (vce[0], vce[1] if len(vce) > 1 else None)
    else:
        words = str(vce).split()
        if not words:
            return "oim", None
        kind, var = words[0], (words[1] if len(words) > 1 else None)
    kind = kind.lower()
    if kind in ("r", "ro", "rob", "robu", "robus", "robust"):
        return "robust", None
    if kind in ("cl", "clu", "clus", "clust", "cluste", "cluster"):
        if not var:
            raise ValueError("vce(cluster) needs a variable name")
        return "cluster", var
    if kind == "oim":
        return "oim", None
    raise ValueError("unknown vce %r (use oim, robust or cluster var)" % (vce,))


def check_nested(objective, what: str) -> None:
    d = objective.design
    if d.sparse_re or not d.levels or not d.levels[0].path:
        raise ValueError("%s needs a nested model whose top level is a grouping variable "
                         "(not _all or crossed effects)" % what)
    res = objective.residual
    if not res.is_plain:
        raise NotImplementedError("%s with a residuals() structure is not implemented" % what)
    if not objective.keeps_factors:
        raise NotImplementedError("%s with the per-group statistics kept on the workers is not implemented; "
                                  "fit with statistics_on='client'" % what)


class ClusterLikelihood:
    """Per-top-level-cluster log-likelihood contributions and scores of a fit."""

    def __init__(self, objective):
        check_nested(objective, "cluster-robust standard errors")
        self.ob = ob = objective
        d = ob.design
        self.C = d.levels[0].n_groups
        qs, parents, _ = d.engine_layout()
        lis = d.re_level_indices()
        clusters = [d.top_clusters(li) for li in lis]
        info = d.weights
        gw = None if info is None else [info.level_total[li] for li in lis]
        self.engine = NestedEngine(qs, parents, gw, clusters)
        self.Bc, self.Nc = d.cluster_crossproducts()
        # frequency weight of each cluster (counts as that many clusters)
        self.freq = (info.level[0].copy() if (info is not None and info.is_frequency)
                     else np.ones(self.C))

    def loglik(self, phi: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(l_c (C,), s_beta,c (C, p))`` at ``(beta, phi)``."""
        ob, d = self.ob, self.ob.design
        parts, res_nat = ob.split_natural(np.asarray(phi, dtype=float))
        rho, sigma2 = ob.residual.from_natural(res_nat)
        Lam = ob.lambda_from_factors([b.factor_from_natural(t, sigma2) for b, t in zip(ob.blocks, parts)])
        ZtZ, ZtXY, XYtXY, logdet_R = ob.crossproducts(rho)
        el = self.engine.eliminate(ZtZ, ZtXY, XYtXY, Lam, cluster_B=self.Bc)
        p = d.p
        beta_w = d.Rx @ (np.asarray(beta, dtype=float) - d.b_ols) if p else np.zeros(0)
        b = np.append(-beta_w, 1.0)
        r2 = np.einsum("i,cij,j->c", b, el.B_c, b)
        ll = -0.5 * (self.Nc * (LOG2PI + np.log(sigma2)) + el.logdet_c + r2 / sigma2)
        if p:
            gw = (el.B_c[:, :p, p] - np.einsum("cij,j->ci", el.B_c[:, :p, :p], beta_w)) / sigma2
            sb = gw @ d.Rx
        else:
            sb = np.zeros((self.C, 0))
        return ll, sb

    def scores(self, beta: np.ndarray, phi: np.ndarray, rel: float = 1e-4):
        """``(s_beta (C, p), s_phi (C, k), H_phi_beta (k, p))`` at the estimates."""
        phi = np.asarray(phi, dtype=float)
        kinds = self.ob.natural_kinds()
        h = parameter_steps(phi, kinds, rel)
        _, sb = self.loglik(phi, beta)
        k = phi.size
        sp = np.zeros((self.C, k))
        Hpb = np.zeros((k, sb.shape[1]))
        for m in range(k):
            e = np.zeros(k)
            e[m] = h[m]
            lp, sbp = self.loglik(phi + e, beta)
            lm, sbm = self.loglik(phi - e, beta)
            sp[:, m] = (lp - lm) / (2.0 * h[m])
            Hpb[m] = (sbp.sum(axis=0) - sbm.sum(axis=0)) / (2.0 * h[m])
        return sb, sp, Hpb


def cluster_codes_for(model, var: Optional[str]) -> tuple[Optional[np.ndarray], int, str]:
    """Super-cluster of each top-level group for ``vce(cluster var)``.

    Returns ``(group -> cluster codes or None, number of clusters, label)``;
    ``None`` means the top-level groups themselves.
    """
    d = model.design
    top = d.levels[0]
    if var is None:
        if top.n_groups < 2:
            raise ValueError("cluster-robust standard errors need at least 2 clusters; level %s has 1"
                             % top.label)
        return None, top.n_groups, top.label
    try:
        vals = model.data_column(var)
    except KeyError:
        raise ValueError("cluster variable '%s' not found" % var) from None
    if vals.isna().any():
        raise ValueError("cluster variable '%s' has missing values in the estimation sample" % var)
    codes = pd.factorize(vals, sort=True)[0]
    per_group = pd.Series(codes).groupby(top.codes).nunique()
    if (per_group > 1).any():
        raise ValueError("highest-level groups (%s) are not nested within %s" % (top.label, var))
    g2c = np.empty(top.n_groups, dtype=np.intp)
    g2c[top.codes] = codes
    if codes.max() < 1:
        raise ValueError("vce(cluster %s): cluster-robust standard errors need at least 2 clusters; "
                         "%s has 1 value in the estimation sample" % (var, var))
    return g2c, int(codes.max()) + 1, var


def robust_covariance(model, params: np.ndarray, cov_model: np.ndarray, var: Optional[str] = None):
    """Sandwich covariance of all parameters (see the module docstring).

    Returns ``(cov, n_clusters, label)``.
    """
    cl = ClusterLikelihood(model.objective)
    p = model.k_fe
    params = np.asarray(params, dtype=float)
    beta, phi = params[:p], params[p:]
    sb, sp, Hpb = cl.scores(beta, phi)
    cov_fe = cov_model[:p, :p]
    # efficient (profile) scores of the variance parameters: H_beta = -inv(cov_fe)
    sp_eff = sp + sb @ cov_fe @ Hpb.T if p else sp
    S = np.column_stack([sb, sp_eff])
    g2c, M, label = cluster_codes_for(model, var)
    meat, M_eff = cluster_meat(S, cl.freq, g2c, M)
    bad = ~np.isfinite(np.diag(cov_model))
    bread = np.where(np.isfinite(cov_model), cov_model, 0.0)
    bread[p:, :p] = 0.0
    bread[:p, p:] = 0.0
    cov = bread @ meat @ bread * (M_eff / (M_eff - 1.0))
    cov[bad, :] = np.nan
    cov[:, bad] = np.nan
    return cov, (int(round(M_eff)) if g2c is None else M), label


def cluster_meat(S: np.ndarray, freq: np.ndarray, g2c: Optional[np.ndarray], M: int) -> tuple[np.ndarray, float]:
    """The sandwich's meat ``sum_c s_c s_c'`` from per-top-level-cluster scores ``S``
    (summed into the clusters ``g2c`` when given; a frequency-weighted cluster
    counts ``freq`` times) and the number of clusters it stands for."""
    if g2c is None:
        S1 = S / freq[:, None]
        return (S1 * freq[:, None]).T @ S1, float(freq.sum())
    U = np.zeros((M, S.shape[1]))
    np.add.at(U, g2c, S)
    return U.T @ U, float(M)


def cluster_robust_fe(results, type: str = "CR0", cluster: Optional[str] = None) -> pd.DataFrame:
    """Cluster-robust covariance of the fixed effects of a fit (ML or REML).

    Parameters
    ----------
    results : fit results
    type : ``"CR0"``, ``"CR1"`` (CR0 times ``M/(M-1)``, Stata's ``vce(robust)``)
        or ``"CR2"`` (bias-reduced; unweighted fits with independent residuals)
    cluster : variable with the clusters (default: the top-level groups);
        the top-level groups must be nested within it.
    """
    model = results.model
    p = model.k_fe
    params = np.asarray(results.params, dtype=float)
    beta = params[:p]
    ob = model.objective
    cov_fe = ob.vcov_beta_natural(params[p:])
    kind = type.upper()
    g2c, M, _ = cluster_codes_for(model, cluster)
    if kind in ("CR0", "CR1"):
        cl = ClusterLikelihood(ob)
        _, sb = cl.loglik(params[p:], beta)
        meat, M = cluster_meat(sb, cl.freq, g2c, M)
        V = cov_fe @ meat @ cov_fe
        if kind == "CR1":
            V = V * (M / (M - 1.0))
    elif kind == "CR2":
        if not model.design.holds_rows:
            raise NotImplementedError("CR2 needs the rows of every cluster; the model was fitted from "
                                      "sufficient statistics (CR0 and CR1 are available)")
        V = _cr2(model, params, cov_fe, g2c)
    else:
        raise ValueError("type must be CR0, CR1 or CR2, got %r" % (type,))
    names = list(model.design.fe_names)
    return pd.DataFrame(V, index=names, columns=names)


def _cr2(model, params, cov_fe, g2c) -> np.ndarray:
    from .smallsample import MarginalBlocks

    d = model.design
    if d.weights is not None:
        raise NotImplementedError("CR2 is not implemented for weighted fits")
    check_nested(model.objective, "CR2")
    p = model.k_fe
    rows_cluster = None if g2c is None else g2c[d.levels[0].codes]
    mb = MarginalBlocks(model.objective, params[p:], cluster_codes=rows_cluster)
    X, y = d.X, d.y
    e_all = y - X @ params[:p]
    meat = np.zeros((p, p))
    for rows, Vm in mb.batches():
        Phi = mb.V(Vm)  # (k, m, m)
        Xb = X[rows]
        e = e_all[rows]
        Dt = np.linalg.cholesky(Phi)  # Phi = Dt Dt' ; D = Dt' upper
        G = Phi - Xb @ cov_fe @ np.swapaxes(Xb, 1, 2)
        Bm = np.swapaxes(Dt, 1, 2) @ G @ Dt  # D G D'
        Bm = 0.5 * (Bm + np.swapaxes(Bm, 1, 2))
        w, Q = np.linalg.eigh(Bm)
        w = np.where(w > 1e-12 * w.max(axis=1, keepdims=True), w, np.inf)
        Bmh = (Q / np.sqrt(w)[:, None, :]) @ np.swapaxes(Q, 1, 2)
        A = Dt @ Bmh @ np.swapaxes(Dt, 1, 2)
        Ae = np.einsum("kij,kj->ki", A, e)
        u = np.einsum("kmi,km->ki", Xb, np.linalg.solve(Phi, Ae[:, :, None])[:, :, 0])
        meat += u.T @ u
    return cov_fe @ meat @ cov_fe
