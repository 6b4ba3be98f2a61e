"""The few distribution functions the package reports with (normal, t, chi2, F).

They call ``scipy.special`` directly: ``scipy.stats`` costs about 0.4 s to
import, more than a whole small fit, and a fit's output needs only these
tail areas and quantiles.  Each agrees with its ``scipy.stats``
counterpart (``tests/test_distributions.py``), a t with infinite degrees of
freedom being the normal.
"""
from __future__ import annotations

import numpy as np
from scipy import special


def norm_sf(x):
    """Upper tail ``P(Z > x)`` of the standard normal."""
    return special.ndtr(-np.asarray(x, dtype=float))


def norm_ppf(q):
    """Quantile of the standard normal."""
    return special.ndtri(np.asarray(q, dtype=float))


def t_sf(x, df):
    """Upper tail ``P(T > x)`` of Student's t with ``df`` degrees of freedom (``inf``: normal)."""
    return special.stdtr(np.asarray(df, dtype=float), -np.asarray(x, dtype=float))


def t_ppf(q, df):
    """Quantile of Student's t with ``df`` degrees of freedom (``inf``: normal)."""
    return special.stdtrit(np.asarray(df, dtype=float), np.asarray(q, dtype=float))


def chi2_sf(x, df):
    """Upper tail of the chi-squared distribution (NaN for ``df <= 0``, as ``scipy.stats``)."""
    df = np.asarray(df, dtype=float)
    return np.where(df > 0, special.chdtrc(np.where(df > 0, df, 1.0), np.asarray(x, dtype=float)), np.nan)[()]


def f_sf(x, df_num, df_denom):
    """Upper tail of the F distribution."""
    return special.fdtrc(np.asarray(df_num, dtype=float), np.asarray(df_denom, dtype=float),
                         np.asarray(x, dtype=float))
