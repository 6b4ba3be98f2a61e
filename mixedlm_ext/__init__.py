"""mixedlm_ext: Stata's ``mixed`` for Python, on statsmodels' model/results classes.

>>> import mixedlm_ext as mx
>>> pig = mx.load_dataset("pig")
>>> res = mx.mixed("mixed weight week || id:", pig)
>>> print(res.summary())  # doctest: +SKIP

Importing the package loads nothing heavy: every public name below is
imported from its module on first use (PEP 562), so ``import mixedlm_ext``
costs milliseconds and statsmodels, scipy and pandas load with the first
model.
"""
from __future__ import annotations

import importlib

from .core.errors import (BoundaryWarning, ConvergenceWarning, FormulaSyntaxError, ModelSpecificationError,
                          StataSyntaxError)

__version__ = "0.1.0"

# public name -> module (relative to the package) that defines it
_LAZY = {
    "mixed": ".api", "lmer": ".api", "update": ".api",
    "sufficient_statistics": ".api", "fit_statistics": ".api", "SufficientStatistics": ".design.statistics",
    "MixedLMExt": ".model",
    "MixedLMExtResults": ".results.results", "LRTestResult": ".results.results", "lrtest": ".results.results",
    "estimates_table": ".results.estimates_table", "anova": ".inference.comparison",
    "ModelSpec": ".spec.model", "REEquation": ".spec.model", "ResidualSpec": ".spec.model",
    "parse_stata": ".syntax.stata",
    "Identity": ".structures.covariance", "Independent": ".structures.covariance",
    "Exchangeable": ".structures.covariance", "Unstructured": ".structures.covariance",
    "AR": ".spec.residuals", "MA": ".spec.residuals", "Toeplitz": ".spec.residuals", "Banded": ".spec.residuals",
    "Exponential": ".spec.residuals", "UnstructuredResidual": ".spec.residuals",
    "ExchangeableResidual": ".spec.residuals", "IndependentResidual": ".spec.residuals",
    "load_dataset": ".datasets", "list_datasets": ".datasets",
    "MixedLM": ".statsmodels_api", "MixedLMParams": ".statsmodels_api", "mixedlm": ".statsmodels_api",
    "MixedLMRegressor": ".sklearn.estimator",
}

__all__ = [
    "mixed", "lmer", "update", "lrtest", "anova", "estimates_table", "MixedLM", "MixedLMParams", "mixedlm",
    "MixedLMExt", "MixedLMExtResults", "LRTestResult", "sufficient_statistics", "fit_statistics",
    "SufficientStatistics",
    "ModelSpec", "REEquation", "ResidualSpec", "parse_stata",
    "Identity", "Independent", "Exchangeable", "Unstructured",
    "AR", "MA", "Toeplitz", "Banded", "Exponential", "UnstructuredResidual", "ExchangeableResidual",
    "IndependentResidual",
    "load_dataset", "list_datasets", "MixedLMRegressor",
    "ModelSpecificationError", "StataSyntaxError", "ConvergenceWarning", "BoundaryWarning",
]


def __getattr__(name: str):
    if name == "regression":  # statsmodels.api's path: sm.regression.mixed_linear_model.MixedLMParams
        from types import SimpleNamespace

        from . import statsmodels_api

        return SimpleNamespace(mixed_linear_model=statsmodels_api)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError("module 'mixedlm_ext' has no attribute %r" % name)
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
