"""BLAS threading during fits.

The work of a fit is many tiny matrix operations (and tall-skinny products),
where OpenBLAS's threading costs far more than it saves, so fits run BLAS on
one thread (:func:`single_thread_blas`).  The exception is a large dense
factorisation (the crossed engine's filled block of a big second factor),
which gets back the threads BLAS had outside the fit (:func:`dense_blas`).
The controller is created once, at import (about 3 ms).
"""
from __future__ import annotations

from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from typing import Iterator, Optional

import numpy  # noqa: F401  (numpy and scipy each bring a BLAS library: both are loaded before
import scipy.linalg  # noqa: F401  the controller takes stock of the libraries, once)
from threadpoolctl import ThreadpoolController

BLAS_CONTROLLER = ThreadpoolController()
PARALLEL_MIN_ORDER = 500  # dense factorisations from this order on use the threads BLAS had before the fit

# BLAS threads outside the outermost single_thread_blas() block of this context (None: not in one)
_OUTER_THREADS: ContextVar[Optional[int]] = ContextVar("mixedlm_ext_outer_blas_threads", default=None)


def blas_threads() -> int:
    """BLAS threads now (the largest over the loaded BLAS libraries; 1 without one)."""
    return max((lib.num_threads for lib in BLAS_CONTROLLER.select(user_api="blas").lib_controllers), default=1)


@contextmanager
def single_thread_blas() -> Iterator[None]:
    """Context manager: BLAS on one thread inside the ``with`` block."""
    outer = _OUTER_THREADS.get()
    token = _OUTER_THREADS.set(outer if outer is not None else blas_threads())
    try:
        with BLAS_CONTROLLER.limit(limits=1, user_api="blas"):
            yield
    finally:
        _OUTER_THREADS.reset(token)


def dense_blas(order: int):
    """Context manager for a dense factorisation of ``order``: inside a fit and from
    :data:`PARALLEL_MIN_ORDER` on, BLAS on the threads it had outside the fit; else nothing."""
    outer = _OUTER_THREADS.get()
    if outer is None or outer <= 1 or order < PARALLEL_MIN_ORDER:
        return nullcontext()
    return BLAS_CONTROLLER.limit(limits=outer, user_api="blas")
