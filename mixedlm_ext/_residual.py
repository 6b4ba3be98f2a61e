"""Residual (level-one) error structures within the lowest-level panels.

A structure describes ``R = sigma2 * C(rho)`` inside each panel, with
``sigma2`` profiled out of the likelihood by the objective.  Its interface:

* ``n_params``, ``start()``, ``bounds()`` -- the optimisation metric ``rho``;
* ``bind(design)`` -- validate against the data (``t()``, ``by()``...) and
  precompute what does not depend on ``rho``; returns the bound structure;
* ``crossproducts(rho)`` -- ``(Wzz, Wzx, Bxx, logdet_C)``: the design's
  cross-products after whitening by ``C^{-1/2}`` and ``log|C|`` summed over
  panels; structures whose ``is_constant`` is True return the design's own;
* ``natural(rho, sigma2)`` / ``from_natural(nat)`` -- reported metric
  (Stata's ``phi1``, ``var(e)``, ...), ``names()``, ``kinds()`` (CI scale);
* ``title`` -- the heading of the results table (``None`` for the plain
  ``var(Residual)`` row).

Adding a structure means writing one class and registering it in
:data:`RESIDUAL_TYPES`.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ._spec import ResidualSpec


class ResidualStructure:
    """Base class; also the plain independent homoskedastic residual."""

    title: Optional[str] = None
    is_constant = True

    def __init__(self, spec: ResidualSpec):
        self.spec = spec
        self.design = None

    @property
    def n_params(self) -> int:
        return 0

    def start(self) -> np.ndarray:
        return np.zeros(0)

    def bounds(self) -> list:
        return []

    def bind(self, design) -> "ResidualStructure":
        self.design = design
        return self

    def crossproducts(self, rho: np.ndarray):
        d = self.design
        return d.Wzz, d.Wzx, d.Bxx, 0.0

    def names(self) -> list[str]:
        return ["var(Residual)"]

    def kinds(self) -> list[str]:
        return ["var"]

    def natural(self, rho: np.ndarray, sigma2: float) -> np.ndarray:
        return np.array([sigma2])

    def from_natural(self, nat: np.ndarray) -> tuple[np.ndarray, float]:
        return np.zeros(0), float(nat[0])

    def correlation(self, rho: np.ndarray, panel: int) -> np.ndarray:
        """Dense ``C`` for one panel (tests, ``estat wcorrelation``)."""
        n = int(np.sum(self.design.panel_codes == panel))
        return np.eye(n)

    def whiten_rows(self, rho: np.ndarray, M: np.ndarray) -> np.ndarray:
        """``C^{-1/2} M`` panel by panel for a row-aligned matrix ``M``."""
        return M


RESIDUAL_TYPES: dict[str, type[ResidualStructure]] = {"independent": ResidualStructure}


def make_residual(spec: ResidualSpec) -> ResidualStructure:
    """The residual structure object for a :class:`ResidualSpec`."""
    kind = spec.kind
    if kind == "independent" and spec.by is None:
        return ResidualStructure(spec)
    try:
        cls = RESIDUAL_TYPES[kind if not (kind == "independent" and spec.by) else "independent_by"]
    except KeyError:
        raise NotImplementedError("residuals(%s) is not available yet" % kind) from None
    return cls(spec)
