"""mixedlm_ext: Stata's ``mixed`` for Python, on statsmodels' model/results classes.

>>> import mixedlm_ext as mx
>>> pig = mx.load_dataset("pig")
>>> res = mx.mixed("mixed weight week || id:", pig)
>>> print(res.summary())  # doctest: +SKIP
"""
from .api import fit_statistics, lmer, mixed, sufficient_statistics, update
from .design.statistics import SufficientStatistics
from .structures.covariance import Exchangeable, Identity, Independent, Unstructured
from .datasets import list_datasets, load_dataset
from .model import MixedLMExt
from .spec.residuals import (AR, MA, Banded, ExchangeableResidual, Exponential, IndependentResidual, Toeplitz,
                              UnstructuredResidual)
from .results.estimates_table import estimates_table
from .results.results import LRTestResult, MixedLMExtResults, lrtest
from .inference.comparison import anova
from .spec.model import ModelSpec, REEquation, ResidualSpec
from .core.errors import (BoundaryWarning, ConvergenceWarning, FormulaSyntaxError, ModelSpecificationError,
                          StataSyntaxError)
from .syntax.stata import parse_stata
from .statsmodels_api import MixedLM, MixedLMParams, mixedlm

__version__ = "0.1.0"

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


def __getattr__(name):
    if name == "regression":  # statsmodels.api's path: sm.regression.mixed_linear_model.MixedLMParams
        from types import SimpleNamespace

        from . import statsmodels_api

        return SimpleNamespace(mixed_linear_model=statsmodels_api)
    # the scikit-learn estimator is imported on first use (scikit-learn costs ~0.1 s to import)
    if name == "MixedLMRegressor":
        from .sklearn.estimator import MixedLMRegressor

        return MixedLMRegressor
    raise AttributeError("module 'mixedlm_ext' has no attribute %r" % name)
