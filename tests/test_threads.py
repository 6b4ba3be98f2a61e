"""BLAS threading: fits on one thread, large dense factorisations on the threads BLAS had before."""
from mixedlm_ext.core.threads import PARALLEL_MIN_ORDER, blas_threads, dense_blas, single_thread_blas


def test_fits_run_blas_on_one_thread_and_large_factorisations_get_the_outer_threads_back():
    outer = blas_threads()
    with single_thread_blas():
        assert blas_threads() == 1
        with single_thread_blas():  # nested: still knows the threads outside the outermost block
            with dense_blas(PARALLEL_MIN_ORDER):
                assert blas_threads() == outer
            assert blas_threads() == 1
        with dense_blas(PARALLEL_MIN_ORDER - 1):  # small: stays on one thread
            assert blas_threads() == 1
    assert blas_threads() == outer


def test_outside_a_fit_dense_blas_changes_nothing():
    outer = blas_threads()
    with dense_blas(10 * PARALLEL_MIN_ORDER):
        assert blas_threads() == outer


def test_the_controller_sees_the_blas_of_numpy_and_scipy_whatever_the_import_order():
    """The first thing imported may be the thread module itself (before any scipy module)."""
    import subprocess
    import sys

    code = ("import mixedlm_ext.core.threads as t\n"
            "import scipy.linalg\n"
            "from threadpoolctl import threadpool_info\n"
            "seen = {i['filepath'] for i in t.BLAS_CONTROLLER.info() if i['user_api'] == 'blas'}\n"
            "loaded = {i['filepath'] for i in threadpool_info() if i['user_api'] == 'blas'}\n"
            "print(loaded <= seen and len(loaded) > 0)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
