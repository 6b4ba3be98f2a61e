"""mixedlm_ext: Stata's ``mixed`` for Python, on statsmodels' model/results classes.

>>> import mixedlm_ext as mx
>>> pig = mx.load_dataset("pig")
>>> res = mx.mixed("mixed weight week || id:", pig)
>>> print(res.summary())  # doctest: +SKIP
"""
from .api import fit_statistics, lmer, mixed, sufficient_statistics
from .design.statistics import SufficientStatistics
from .structures.covariance import Exchangeable, Identity, Independent, Unstructured
from .datasets import list_datasets, load_dataset
from .model import MixedLMExt
from .spec.residuals import (AR, MA, Banded, ExchangeableResidual, Exponential, IndependentResidual, Toeplitz,
                              UnstructuredResidual)
from .results.results import LRTestResult, MixedLMExtResults, lrtest
from .spec.model import ModelSpec, REEquation, ResidualSpec
from .core.errors import (BoundaryWarning, ConvergenceWarning, FormulaSyntaxError, ModelSpecificationError,
                          StataSyntaxError)
from .syntax.stata import parse_stata

__version__ = "0.1.0"

__all__ = [
    "mixed", "lmer", "lrtest", "sufficient_statistics", "fit_statistics", "SufficientStatistics", "MixedLMExt", "MixedLMExtResults", "LRTestResult",
    "ModelSpec", "REEquation", "ResidualSpec", "parse_stata",
    "Identity", "Independent", "Exchangeable", "Unstructured",
    "AR", "MA", "Toeplitz", "Banded", "Exponential", "UnstructuredResidual", "ExchangeableResidual",
    "IndependentResidual",
    "load_dataset", "list_datasets", "MixedLMRegressor",
    "ModelSpecificationError", "StataSyntaxError", "ConvergenceWarning", "BoundaryWarning",
]


def __getattr__(name):
    # the scikit-learn estimator is imported on first use (scikit-learn costs ~0.1 s to import)
    if name == "MixedLMRegressor":
        from .sklearn.estimator import MixedLMRegressor

        return MixedLMRegressor
    raise AttributeError("module 'mixedlm_ext' has no attribute %r" % name)
