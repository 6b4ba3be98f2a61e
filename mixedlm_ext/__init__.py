"""mixedlm_ext: Stata's ``mixed`` for Python, on statsmodels' model/results classes.

>>> import mixedlm_ext as mx
>>> pig = mx.load_dataset("pig")
>>> res = mx.mixed("mixed weight week || id:", pig)
>>> print(res.summary())  # doctest: +SKIP
"""
from ._api import lmer, mixed
from ._covariance import Exchangeable, Identity, Independent, Unstructured
from ._datasets import list_datasets, load_dataset
from ._design import ModelSpecificationError
from ._model import MixedLMExt
from ._optimize import BoundaryWarning, ConvergenceWarning
from ._residual_specs import (AR, MA, Banded, ExchangeableResidual, Exponential, IndependentResidual, Toeplitz,
                              UnstructuredResidual)
from ._results import LRTestResult, MixedLMExtResults, lrtest
from ._spec import ModelSpec, REEquation, ResidualSpec
from ._stata_parser import StataSyntaxError, parse_stata

__version__ = "0.1.0"

__all__ = [
    "mixed", "lmer", "lrtest", "MixedLMExt", "MixedLMExtResults", "LRTestResult",
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
        from ._sklearn import MixedLMRegressor

        return MixedLMRegressor
    raise AttributeError("module 'mixedlm_ext' has no attribute %r" % name)
