"""The residual kernels by ``residuals()`` type.

Adding a residual structure means one kernel class in a module of its kind
and one entry here.
"""
from __future__ import annotations

from .exchangeable import ExchangeableKernel
from .exponential import ExponentialKernel
from .independent import IndependentKernel
from .indexed import BandedKernel, UnstructuredKernel
from .kernel import Kernel
from .stationary import ARKernel, MAKernel, ToeplitzKernel

KERNELS: dict[str, type[Kernel]] = {
    "independent": IndependentKernel,
    "exchangeable": ExchangeableKernel,
    "ar": ARKernel,
    "ma": MAKernel,
    "toeplitz": ToeplitzKernel,
    "exponential": ExponentialKernel,
    "unstructured": UnstructuredKernel,
    "banded": BandedKernel,
}
