from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from skvae._utils.arrays import output_like, to_tensor
from skvae._utils.devices import resolve_device
from skvae.decomposition._blas import map_row_blocks


def test_auto_resolves_to_an_available_device():
    device = resolve_device("auto")
    if torch.cuda.is_available():
        assert device.type == "cuda"
    else:
        assert device.type in ("mps", "cpu")


def test_cpu_is_always_available():
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present")
def test_missing_cuda_is_an_error_not_a_fallback():
    with pytest.raises(ValueError, match=r"device='cuda'.*no CUDA device.*device='auto'"):
        resolve_device("cuda", "PCA")


@pytest.mark.parametrize("bad", ["gpu", 3, None, "tpu"])
def test_unknown_device_names_the_choices(bad):
    with pytest.raises(ValueError, match=r"The 'device' parameter of PCA must be one of"):
        resolve_device(bad, "PCA")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpy_round_trip_keeps_dtype(dtype):
    X = np.arange(6, dtype=dtype).reshape(2, 3)
    T = to_tensor(X, "cpu")
    assert T.dtype == torch.float32
    out = output_like(T, X, dtype)
    assert isinstance(out, np.ndarray) and out.dtype == dtype
    np.testing.assert_array_equal(out, X)


def test_tensor_in_tensor_out():
    X = torch.arange(6, dtype=torch.float64).reshape(2, 3)
    out = output_like(to_tensor(X, "cpu"), X, np.float64)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    assert out.device == X.device


def _blas_threads():
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_map_row_blocks_covers_every_row_in_order():
    X = np.arange(42.0).reshape(21, 2)
    with threadpool_limits(limits=2, user_api="blas"):
        parts = map_row_blocks(np.copy, X, min_block_size=4)
    assert len(parts) == 2
    np.testing.assert_array_equal(np.concatenate(parts), X)


def test_map_row_blocks_keeps_small_arrays_and_single_threaded_blas_whole():
    X = np.ones((100, 3))
    with threadpool_limits(limits=2, user_api="blas"):
        assert len(map_row_blocks(np.sum, X)) == 1  # 300 entries: not worth a thread
    with threadpool_limits(limits=1, user_api="blas"):
        assert len(map_row_blocks(np.sum, X, min_block_size=1)) == 1


def test_pca_from_many_threads_leaves_blas_threads_alone():
    # No process-wide side effect: a fit running in other threads never changes the
    # BLAS thread count the caller sees, before, during or after.
    from skvae import PCA

    X = np.random.default_rng(0).standard_normal((3000, 40))
    before = _blas_threads()
    seen = []

    def fit(_):
        seen.append(_blas_threads())
        return PCA(5, svd_solver="covariance_eigh").fit(X).explained_variance_

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(fit, range(8)))
    assert _blas_threads() == before
    assert all(threads == before for threads in seen)
    for result in results:
        np.testing.assert_array_equal(result, results[0])
