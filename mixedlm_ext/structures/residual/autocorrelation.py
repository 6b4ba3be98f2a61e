"""AR and MA process algebra for the stationary residual kernels.

Durbin-Levinson maps between partial autocorrelations and AR coefficients,
and the autocorrelation functions of AR and MA processes.
"""
from __future__ import annotations

from typing import Optional

import numpy as np


def pacf_to_phi(a: np.ndarray) -> np.ndarray:
    """Durbin-Levinson: partial autocorrelations -> AR coefficients."""
    phi = np.zeros(0)
    for ak in np.asarray(a, dtype=float):
        phi = np.concatenate([phi - ak * phi[::-1], [ak]])
    return phi


def phi_to_pacf(phi: np.ndarray) -> Optional[np.ndarray]:
    """Step-down recursion: AR coefficients -> partial autocorrelations (None if not stationary)."""
    phi = np.asarray(phi, dtype=float).copy()
    p = phi.size
    a = np.zeros(p)
    for k in range(p, 0, -1):
        ak = phi[k - 1]
        if not np.isfinite(ak) or abs(ak) >= 1.0:
            return None
        a[k - 1] = ak
        prev = phi[: k - 1]
        phi = (prev + ak * prev[::-1]) / (1.0 - ak * ak)
    return a


def ar_acf(a: np.ndarray, max_lag: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Autocorrelations (lags ``0..max(max_lag, p)``), AR coefficients and the
    innovation-to-marginal variance ratio of the AR process with pacf ``a``."""
    a = np.asarray(a, dtype=float)
    p = a.size
    L = max(int(max_lag), p)
    rho = np.zeros(L + 1)
    rho[0] = 1.0
    phi = np.zeros(0)
    v = 1.0
    for k in range(1, p + 1):
        ak = a[k - 1]
        rho[k] = ak * v + (phi @ rho[k - 1:0:-1] if k > 1 else 0.0)
        phi = np.concatenate([phi - ak * phi[::-1], [ak]])
        v *= 1.0 - ak * ak
    if L > p:
        den = np.concatenate([[1.0], -phi])
        from scipy.signal import lfilter, lfiltic  # scipy.signal costs ~50 ms to import: only when used

        zi = lfiltic([1.0], den, rho[p:0:-1])
        rho[p + 1:] = lfilter([1.0], den, np.zeros(L - p), zi=zi)[0]
    return rho, phi, v


def ma_acf(theta: np.ndarray, max_lag: int) -> np.ndarray:
    """Autocorrelations (lags ``0..max_lag``) of the MA process ``e_t = u_t + sum theta_j u_{t-j}``."""
    full = np.concatenate([[1.0], np.asarray(theta, dtype=float)])
    q = full.size - 1
    L = max(int(max_lag), q)
    g = np.zeros(L + 1)
    for lag in range(q + 1):
        g[lag] = full[: q + 1 - lag] @ full[lag:]
    return g / g[0]
