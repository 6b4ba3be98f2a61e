"""BLAS threading during fits.

The work of a fit is many tiny matrix operations (and tall-skinny products),
where OpenBLAS's threading costs far more than it saves, so fits run BLAS on
one thread.  The controller is created once, at import (about 3 ms).
"""
from __future__ import annotations

from threadpoolctl import ThreadpoolController

BLAS_CONTROLLER = ThreadpoolController()


def single_thread_blas():
    """Context manager: BLAS on one thread inside the ``with`` block."""
    return BLAS_CONTROLLER.limit(limits=1, user_api="blas")
