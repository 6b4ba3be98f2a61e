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

from typing import Callable

import numpy as np
from scipy import stats

from ..fit.optimizer import fd_hessian


def _steps(phi: np.ndarray, kinds: list[str], rel: float) -> np.ndarray:
    phi = np.asarray(phi, dtype=float)
    var_scale = np.array([abs(v) for v, k in zip(phi, kinds) if k == "var"] or [1.0])
    typical = float(np.exp(np.mean(np.log(np.maximum(var_scale, 1e-300)))))
    h = np.empty_like(phi)
    for i, (v, k) in enumerate(zip(phi, kinds)):
        if k == "var":
            h[i] = rel * max(abs(v), 1e-8 * typical)
        elif k == "cov":
            h[i] = rel * max(abs(v), 0.05 * typical)
        elif k == "est":  # estimation metric (theta, log sigma2): unbounded, O(1)
            h[i] = rel * max(abs(v), 0.05)
        else:  # correlations, AR/MA coefficients, rho: bounded, O(1)
            lim = 1.0 - abs(v) if k in ("corr", "phi", "theta", "rho") else 1.0
            h[i] = rel * max(min(abs(v), 1.0), 0.05) if lim > 10 * rel else rel * 0.1 * max(lim, 1e-6)
    return h


def numerical_hessian(f: Callable[[np.ndarray], float], x: np.ndarray, kinds: list[str],
                      rel: float = 3e-4, richardson: bool = False) -> np.ndarray:
    """Central-difference Hessian of ``f`` at ``x``, steps relative to each parameter.

    With steps of 3e-4 relative the truncation error is ~1e-7 relative, far
    below the tolerance of standard errors; ``richardson=True`` extrapolates
    from two step sizes (twice the evaluations).
    """
    x = np.asarray(x, dtype=float)
    f0 = f(x)
    h = _steps(x, kinds, rel)
    H1 = fd_hessian(f, x, h, f0)
    if not richardson:
        return H1
    H2 = fd_hessian(f, x, h / 2.0, f0)
    return (4.0 * H2 - H1) / 3.0


def vc_covariance(neg2ll: Callable[[np.ndarray], float], phi: np.ndarray, kinds: list[str]) -> np.ndarray:
    """Covariance of the variance components: ``inv(Hessian of -loglik)``."""
    if len(phi) == 0:
        return np.zeros((0, 0))
    # Richardson extrapolation: ill-conditioned information matrices (unstructured
    # residuals, condition ~1e4) need it; a single difference was 5% off there
    H = 0.5 * numerical_hessian(neg2ll, phi, kinds, richardson=True)
    H = 0.5 * (H + H.T)
    try:
        return np.linalg.inv(H)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(H)


def vc_confint(est: np.ndarray, se: np.ndarray, kinds: list[str], level: float = 95.0) -> np.ndarray:
    """Stata's confidence intervals for variance-component parameters."""
    z = stats.norm.ppf(0.5 + level / 200.0)
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
