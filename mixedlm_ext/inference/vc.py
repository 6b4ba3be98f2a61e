"""Standard errors and confidence intervals, Stata's way.

* Fixed effects: ``Var(beta) = (X'V^-1 X)^-1`` at the estimates.
* Variance components: inverse observed information in the reported metric
  (variances, covariances, residual-structure parameters), from a
  central-difference Hessian of the log-likelihood (``beta`` profiled) with
  Richardson extrapolation and steps relative to each parameter.  At the
  optimum this equals the delta method from Stata's estimation metric.
* Confidence intervals: variances (and SDs) on the log scale, correlations on
  the atanh scale, exponential ``rho`` on the logit scale, covariances and
  AR/MA coefficients symmetric.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..core.distributions import norm_ppf
from ..fit.derivatives import jacobian, numerical_hessian
from ..fit.objective import Objective


def vc_confint(est: np.ndarray, se: np.ndarray, kinds: list[str], level: float = 95.0) -> np.ndarray:
    """Stata's confidence intervals for variance-component parameters."""
    z = norm_ppf(0.5 + level / 200.0)
    out = np.full((len(est), 2), np.nan)
    for i, (v, s, k) in enumerate(zip(est, se, kinds)):
        if not np.isfinite(s):
            continue
        if k in ("var", "sd"):
            if v > 0:
                w = z * s / v
                out[i] = [v * np.exp(-w), v * np.exp(w)]
        elif k == "corr":
            if abs(v) < 1:
                c, w = np.arctanh(v), z * s / (1 - v * v)
                out[i] = [np.tanh(c - w), np.tanh(c + w)]
        elif k == "rho":  # exponential: logit scale
            if 0 < v < 1:
                c, w = np.log(v / (1 - v)), z * s / (v * (1 - v))
                out[i] = [1 / (1 + np.exp(-(c - w))), 1 / (1 + np.exp(-(c + w)))]
        else:  # cov, phi, theta: symmetric
            out[i] = [v - z * s, v + z * s]
    return out


def to_sd_metric(names: list[tuple[str, str]], est: np.ndarray, cov: np.ndarray, kinds: list[str]):
    """Reparameterise variances/covariances as SDs/correlations (delta method).

    Returns ``(names, est, cov, kinds)`` in the new metric.  Covariances are
    turned into correlations using the two variances named in their label
    within the same level; other parameters pass unchanged.
    """
    est = np.asarray(est, dtype=float)
    k = len(est)
    J = np.eye(k)
    new_est = est.copy()
    new_names, new_kinds = list(names), list(kinds)
    lookup = {nm: i for i, nm in enumerate(names)}
    for i, ((lvl, par), kind) in enumerate(zip(names, kinds)):
        if kind == "var" and par.startswith("var("):
            v = max(est[i], 0.0)
            new_est[i] = np.sqrt(v)
            J[i, :] = 0.0
            J[i, i] = 0.5 / np.sqrt(v) if v > 0 else 0.0
            new_names[i] = (lvl, "sd(" + par[4:])
            new_kinds[i] = "sd"
    for i, ((lvl, par), kind) in enumerate(zip(names, kinds)):
        if kind == "cov" and par.startswith("cov("):
            inner = par[4:-1]
            parts = inner.split(",") if "," in inner else None
            if parts is not None and len(parts) == 2:
                a, b = (lvl, "var(%s)" % parts[0]), (lvl, "var(%s)" % parts[1])
            else:  # exchangeable: cov(a b) with var(a b)
                a = b = (lvl, "var(%s)" % inner)
            if a not in lookup or b not in lookup:
                continue
            ia, ib = lookup[a], lookup[b]
            va, vb = est[ia], est[ib]
            if va <= 0 or vb <= 0:
                continue
            r = est[i] / np.sqrt(va * vb)
            new_est[i] = r
            J[i, :] = 0.0
            J[i, i] = 1.0 / np.sqrt(va * vb)
            J[i, ia] += -0.5 * r / va
            J[i, ib] += -0.5 * r / vb
            new_names[i] = (lvl, "corr(" + inner + ")")
            new_kinds[i] = "corr"
    return new_names, new_est, J @ cov @ J.T, new_kinds


def vc_covariance(ob: Objective, theta: np.ndarray, sigma2: float, phi: np.ndarray,
                     kinds: list[str], at_bound: Optional[np.ndarray],
                     hessian: Optional[np.ndarray] = None, psi_free: Optional[np.ndarray] = None) -> np.ndarray:
    """Covariance of the variance components in the reported metric.

    Stata's way: the inverse Hessian of the log-likelihood in the estimation
    metric ``psi = (theta, log sigma2)`` (beta profiled), carried to the
    reported metric by the delta method, ``J H^-1 J'`` with ``J = dphi/dpsi``.
    At the optimum this is the inverse observed information in the reported
    metric, but the estimation metric stays well conditioned where reported
    covariance matrices are nearly singular (finite differences taken directly
    in variances and covariances were 5% off on an unstructured residual).
    Parameters at a bound (a variance estimated as zero) are held fixed and
    the reported parameters that depend only on them get no standard error.
    """
    psi = np.append(np.asarray(theta, dtype=float), np.log(sigma2))
    free = np.ones(psi.size, dtype=bool)
    if psi_free is not None:
        free = np.asarray(psi_free, dtype=bool).copy()
    elif at_bound is not None:
        free[: at_bound.size] = ~np.asarray(at_bound, dtype=bool)
    var_scale = max([abs(v) for v, k in zip(phi, kinds) if k == "var"] or [1.0])
    zero = np.array([k in ("var", "cov") and abs(v) <= 1e-10 * var_scale for v, k in zip(phi, kinds)])

    def f(z):
        full = psi.copy()
        full[free] = z
        return ob.neg2ll_estimation(full)

    def g(z):
        full = psi.copy()
        full[free] = z
        return ob.natural_from_estimation(full)

    z0 = psi[free]
    if hessian is not None and hessian.shape == (z0.size, z0.size):
        H = 0.5 * hessian  # the optimizer's last Newton-Raphson Hessian at this point
    else:
        # stable to ~1e-5 across steps 1e-2 .. 1e-4 in this metric: one central difference
        H = 0.5 * numerical_hessian(f, z0, ["est"] * z0.size, rel=1e-3)
    H = 0.5 * (H + H.T)
    try:
        Hinv = np.linalg.inv(H)
    except np.linalg.LinAlgError:
        Hinv = np.linalg.pinv(H)
    J = jacobian(g, z0)
    out = J @ Hinv @ J.T
    if zero.any():
        out[zero, :] = np.nan
        out[:, zero] = np.nan
    return out
