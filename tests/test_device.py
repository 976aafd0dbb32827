import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from skvae._device import (
    map_row_blocks,
    output_like,
    resolve_device,
    to_tensor,
)


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


def test_map_row_blocks_covers_every_row_in_order_on_single_threaded_blas():
    X = np.arange(42.0).reshape(21, 2)
    with threadpool_limits(limits=2, user_api="blas"):
        blocks = lambda B: (B.copy(), _blas_threads())  # noqa: E731
        parts = map_row_blocks(blocks, X, min_block_size=4, blas=True)
        after = _blas_threads()
    assert len(parts) == 2
    np.testing.assert_array_equal(np.concatenate([block for block, _ in parts]), X)
    # Each block ran with BLAS held to one thread, and the limit is lifted afterwards.
    assert all(threads == [1] * len(threads) for _, threads in parts)
    assert after == [2] * len(after)


def test_map_row_blocks_keeps_small_arrays_and_single_threaded_blas_whole():
    X = np.ones((100, 3))
    with threadpool_limits(limits=2, user_api="blas"):
        assert len(map_row_blocks(np.sum, X)) == 1  # 300 entries: not worth a thread
    with threadpool_limits(limits=1, user_api="blas"):
        assert len(map_row_blocks(np.sum, X, min_block_size=1)) == 1


@pytest.mark.skipif(max(_blas_threads()) < 2, reason="BLAS runs one thread here")
def test_map_row_blocks_from_many_threads_restores_blas_threads():
    # The BLAS limit is process-wide: overlapping calls must not leave it at 1.
    X = np.random.default_rng(0).standard_normal((64, 3))
    before = _blas_threads()

    def gram(B):
        time.sleep(0.005)  # long enough for the calls to overlap
        return B.T @ B

    with ThreadPoolExecutor(8) as pool:
        call = lambda _: map_row_blocks(gram, X, min_block_size=8, blas=True)  # noqa: E731
        results = list(pool.map(call, range(48)))
    assert _blas_threads() == before
    assert any(len(blocks) > 1 for blocks in results)  # some calls did split
    for blocks in results:
        np.testing.assert_allclose(sum(blocks), X.T @ X)
