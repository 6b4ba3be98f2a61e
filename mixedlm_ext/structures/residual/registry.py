"""The residual kernels by ``residuals()`` type.

Adding a residual structure means one kernel class (with its ``kind``) in a
module of its kind, and its import and one entry here.
"""
from __future__ import annotations

from .exchangeable import ExchangeableKernel
from .exponential import ExponentialKernel
from .independent import IndependentKernel
from .indexed import BandedKernel, UnstructuredKernel
from .kernel import Kernel
from .stationary import ARKernel, MAKernel, ToeplitzKernel

KERNELS: dict[str, type[Kernel]] = {cls.kind: cls for cls in (
    IndependentKernel,
    ExchangeableKernel,
    ARKernel,
    MAKernel,
    ToeplitzKernel,
    ExponentialKernel,
    UnstructuredKernel,
    BandedKernel,
)}
