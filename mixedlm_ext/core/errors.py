"""Every exception and warning the package raises, and :func:`warn_user`.

One module for all of them (as formulaic's ``errors``), so a user can catch
``mixedlm_ext.ModelSpecificationError`` whatever stage raised it.
"""
from __future__ import annotations

import os
import sys
import warnings

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ModelSpecificationError(ValueError):
    """The model cannot be built from this data (names the problem)."""


class StataSyntaxError(ValueError):
    """A Stata ``mixed`` command that cannot be parsed.

    The message names the offending token and the segment it occurs in.
    """


class FormulaSyntaxError(ValueError):
    """A model formula that cannot be parsed; the message quotes the term."""


class ResidualDataError(ValueError):
    """The data cannot carry the residual structure (re-raised as ModelSpecificationError)."""


class ConvergenceWarning(UserWarning):
    """The optimiser did not converge; the estimates may be unreliable."""


class BoundaryWarning(UserWarning):
    """A variance component was estimated on the boundary (zero)."""


class NoGroupsWarning(UserWarning):
    """``MixedLMRegressor.fit`` in array mode got no ``groups``: it fit a linear regression."""


def warn_user(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` with the stack level of the first caller outside this package."""
    level = 2  # 1 would be this function
    frame = sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)
