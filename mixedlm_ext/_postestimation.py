"""Postestimation on fitted results: BLUPs, predictions, estat commands.

:class:`PostestimationMixin` is a base class of ``MixedLMExtResults``.
"""
from __future__ import annotations


class PostestimationMixin:
    """Stata's ``predict`` and ``estat`` after ``mixed``."""
