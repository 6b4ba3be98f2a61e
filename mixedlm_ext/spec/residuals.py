"""Residual structures as small Python objects for the non-Stata front-ends.

Each function returns the same :class:`~mixedlm_ext.ResidualSpec` that the
Stata parser builds from ``residuals(...)``, so every front-end ends in the
same model specification::

    AR(2, time="time")                 # residuals(ar 2, t(time))
    Toeplitz(2, time="week")           # residuals(toeplitz 2, t(week))
    UnstructuredResidual(time="week")  # residuals(unstructured, t(week))
    IndependentResidual(by="region")   # residuals(independent, by(region))

(``Unstructured``/``Exchangeable``/``Independent`` are the random-effects
covariance structures, hence the ``...Residual`` names here.)
"""
from __future__ import annotations

from typing import Optional

from .model import ResidualSpec

__all__ = ["AR", "MA", "Toeplitz", "Banded", "Exponential", "UnstructuredResidual",
           "ExchangeableResidual", "IndependentResidual"]


def _order(order, kind: str, default: Optional[int]) -> Optional[int]:
    if order is None:
        return default
    if isinstance(order, bool) or int(order) != order or int(order) < 1:
        raise ValueError("the order of a %s residual structure must be a positive integer, got %r" % (kind, order))
    return int(order)


def _name(v, what: str) -> Optional[str]:
    if v is not None and not isinstance(v, str):
        raise TypeError("%s must be a column name (str), got %r" % (what, v))
    return v


def _spec(kind, order, time, by) -> ResidualSpec:
    return ResidualSpec(kind=kind, order=order, time=_name(time, "time"), by=_name(by, "by"))


def AR(order: int = 1, time: Optional[str] = None, by: Optional[str] = None) -> ResidualSpec:
    """Autoregressive AR(order) errors in ``time`` (integer; gaps allowed)."""
    return _spec("ar", _order(order, "AR", 1), time, by)


def MA(order: int = 1, time: Optional[str] = None, by: Optional[str] = None) -> ResidualSpec:
    """Moving-average MA(order) errors in ``time`` (integer)."""
    return _spec("ma", _order(order, "MA", 1), time, by)


def Toeplitz(order: Optional[int] = None, time: Optional[str] = None, by: Optional[str] = None) -> ResidualSpec:
    """Free correlation for each lag up to ``order`` (default: the largest panel minus one)."""
    return _spec("toeplitz", _order(order, "Toeplitz", None), time, by)


def Banded(order: Optional[int] = None, time: Optional[str] = None, by: Optional[str] = None) -> ResidualSpec:
    """Unstructured covariance with zero covariances beyond ``order`` time units (default: none)."""
    return _spec("banded", _order(order, "banded", None), time, by)


def Exponential(time: Optional[str] = None, by: Optional[str] = None) -> ResidualSpec:
    """``corr = rho^|t_i - t_j|`` with real-valued ``time``."""
    return _spec("exponential", None, time, by)


def UnstructuredResidual(time: Optional[str] = None, by: Optional[str] = None) -> ResidualSpec:
    """A free covariance matrix over the distinct values of ``time``."""
    return _spec("unstructured", None, time, by)


def ExchangeableResidual(by: Optional[str] = None) -> ResidualSpec:
    """A common variance and covariance within each panel."""
    return _spec("exchangeable", None, None, by)


def IndependentResidual(by: Optional[str] = None) -> ResidualSpec:
    """Independent errors; with ``by`` one variance per group (``var(e)`` by group)."""
    return _spec("independent", None, None, by)
