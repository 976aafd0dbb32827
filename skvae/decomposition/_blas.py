"""numpy's BLAS threads, and the reductions PCA's kernels spread over them.

numpy runs its sums on one core; these helpers split an array into row blocks,
one per thread numpy's BLAS may use, so that the finiteness test and column sums
of a large X use every core the user allowed.
"""

import functools
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp
from sklearn import get_config
from sklearn.utils.validation import assert_all_finite
from threadpoolctl import ThreadpoolController


@functools.cache
def _numpy_blas():
    """numpy's BLAS as a ThreadpoolController (loaded with numpy, so found at first use)."""
    return ThreadpoolController().select(user_api="blas")


def _blas_threads():
    """The number of threads numpy's BLAS may use now."""
    return max([lib.num_threads for lib in _numpy_blas().lib_controllers], default=1)


def map_row_blocks(fn, X, min_block_size=2**20):
    """``fn`` applied to consecutive row blocks of the array ``X``, side by side in threads.

    One block per thread numpy's BLAS is allowed; numpy releases the GIL, so the
    blocks really run in parallel. Reductions (sums) that numpy runs on one
    thread get every core this way. ``fn`` should not call BLAS itself: BLAS
    runs its own threads, and nothing here limits them. Returns the list of
    results in row order: one element when ``X`` is too small to split (blocks
    under ``min_block_size`` entries) or BLAS has one thread.
    """
    n_blocks = max(1, min(_blas_threads(), X.size // min_block_size, X.shape[0]))
    if n_blocks == 1:
        return [fn(X)]
    bounds = np.linspace(0, X.shape[0], n_blocks + 1).astype(int)
    blocks = [X[start:stop] for start, stop in zip(bounds[:-1], bounds[1:])]
    with ThreadPoolExecutor(n_blocks) as pool:
        return list(pool.map(fn, blocks))


def check_finite(X, estimator_name, total=None):
    """Raise scikit-learn's error when the float array or sparse matrix ``X`` holds NaN or inf.

    ``check_array``'s test: the sum of the entries is finite when every entry
    is, and the entry-by-entry search for the culprit runs only when it is not.
    ``total`` is that sum when the caller has it already; otherwise it is
    computed over row blocks in threads (numpy's sum runs on one core).
    Honours ``sklearn.set_config(assume_finite=True)``.
    """
    if get_config()["assume_finite"]:
        return
    if total is None:
        values = X.data if sp.issparse(X) else X
        with np.errstate(over="ignore", invalid="ignore"):
            total = sum(map_row_blocks(np.sum, values))
    if not np.isfinite(total):
        assert_all_finite(X, estimator_name=estimator_name, input_name="X")
