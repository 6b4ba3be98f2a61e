"""What the options of a command set: model-wide and per-segment settings."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ...spec.model import ResidualSpec

__all__ = ["CommandSettings", "SegmentSettings"]


@dataclass
class CommandSettings:
    """Model-wide settings collected from the options of all segments."""

    reml: Optional[bool] = None
    residual: Optional[ResidualSpec] = None
    options: dict = field(default_factory=dict)
    weights: list = field(default_factory=list)  # WeightSpec, observation level first
    pwscale: Optional[str] = None


@dataclass
class SegmentSettings:
    """Settings that belong to the segment being parsed."""

    noconstant: bool = False
    covariance: Optional[str] = None
    weight: Optional[tuple[str, str]] = None  # ("fweight"|"pweight", var) of fweight()/pweight()
