"""Host memory of the neural estimators' data path (see docs/memory.md).

Peaks are measured with tracemalloc, which sees numpy's allocations (the float32
training array is allocated by numpy for that reason) but not torch's; the
benchmark benchmarks/bench_memory.py measures the whole process's RSS.
"""

import copy
import gc
import pickle
import tracemalloc
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning

from skvae import AutoencoderTransformer, VAETransformer
from skvae.exceptions import PosteriorCollapseWarning
from skvae.neural._data import CHUNK_BYTES, INFERENCE_BYTES

ESTIMATORS = [AutoencoderTransformer, VAETransformer]
# Every row trains (no held-out split): these tests pin memory, not the stopping rule.
SMALL = dict(
    n_components=2,
    hidden_layer_sizes=(8,),
    max_iter=1,
    batch_size=256,
    early_stopping=False,
    device="cpu",
)
# 8000 MNIST-sized rows: 25 MB as float32, 50 MB as float64.
N, D = 8000, 784


def fit_briefly(est, X):
    """fit for max_iter <= 3 epochs, fewer than n_iter_no_change (10).

    The stopping rule cannot fire in so few epochs, so every fit ends with a
    ConvergenceWarning: "stopped after max_iter", or its subclass DivergenceWarning
    where the loss blows up (seen for the VAE on pixels up to 255 and for the
    autoencoder with the 40,000-wide layer). A VAE of so few steps may or may not
    have opened a latent unit: its collapse warning is beside these memory tests.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PosteriorCollapseWarning)
        with pytest.warns(ConvergenceWarning, match=r"stopped after max_iter=\d+ epochs|diverged"):
            return est.fit(X)


def traced_peak(fn):
    """fn() and the peak of the memory numpy (and Python) allocated while it ran, in bytes."""
    gc.collect()
    tracemalloc.start()
    try:
        result = fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return result, peak


@pytest.fixture(scope="module", autouse=True)
def imports_done():
    """Fit, transform and score once: torch imports modules (tens of MB) on first use."""
    X = np.random.default_rng(0).random((20, 3))
    for cls in ESTIMATORS:
        est = fit_briefly(cls(random_state=0, **SMALL), X)
        est.score(est.inverse_transform(est.transform(X)).clip(0, 1))


@pytest.fixture(scope="module")
def pixels():
    return np.random.default_rng(0).integers(0, 256, size=(N, D), dtype=np.uint8)


def write_memmap(path, X):
    mm = np.memmap(path, dtype=X.dtype, mode="w+", shape=X.shape)
    mm[:] = X
    mm.flush()
    del mm
    return np.memmap(path, dtype=X.dtype, mode="r", shape=X.shape)


# ----------------------------------------------------------------- in-memory input
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_uint8_input_makes_no_float64_copy(cls, pixels):
    # The float32 training array is 4 bytes a value; a float64 copy on the way
    # (the old path) would add 8 more and make the peak 3x that.
    float32_bytes = 4 * pixels.size
    _, peak = traced_peak(lambda: fit_briefly(cls(random_state=0, **SMALL), pixels))
    assert peak < 1.5 * float32_bytes


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_float64_input_peak_is_one_float32_copy_and_a_chunk(cls, pixels):
    X = pixels / 255.0
    float32_bytes = 4 * X.size
    _, peak = traced_peak(lambda: fit_briefly(cls(random_state=0, **SMALL), X))
    assert peak < float32_bytes + CHUNK_BYTES


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.bool_])
def test_integer_input_gives_float64_results_like_sklearn(cls, dtype):
    X = np.random.default_rng(0).integers(0, 2, size=(60, 5)).astype(dtype)
    est = fit_briefly(cls(random_state=0, **SMALL), X)
    Z = est.transform(X)
    assert Z.dtype == np.float64
    assert est.inverse_transform(Z).dtype == np.float64
    assert est.score_samples(X).dtype == np.float64
    assert est.sample(3, random_state=0).dtype == np.float64
    # The same values as float64 input: integers convert to float32 exactly.
    reference = fit_briefly(cls(random_state=0, **SMALL), X.astype(np.float64))
    np.testing.assert_array_equal(Z, reference.transform(X.astype(np.float64)))


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_float32_and_float64_scores_differ_by_one_float32_rounding(cls):
    # Both compute from the same float32 rows in float64; the float32 result is
    # that float64 value rounded once, within half an ulp: 2**-24 relative.
    X64 = np.random.default_rng(0).random((300, 6))
    X32 = X64.astype(np.float32)
    est = fit_briefly(cls(random_state=0, **SMALL), X32)
    s32, s64 = est.score_samples(X32), est.score_samples(X64)
    assert s32.dtype == np.float32 and s64.dtype == np.float64
    np.testing.assert_allclose(s32, s64, rtol=2**-24)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_scores_do_not_depend_on_the_inference_chunks(cls):
    # 9000 rows of 2 features span two inference chunks (8192 rows at most).
    X = np.random.default_rng(0).random((9000, 2))
    est = fit_briefly(cls(random_state=0, **SMALL), X[:500])
    whole = est.score_samples(X)
    pieces = np.concatenate([est.score_samples(X[i : i + 1000]) for i in range(0, 9000, 1000)])
    np.testing.assert_allclose(whole, pieces, rtol=1e-12)
    np.testing.assert_array_equal(
        est.transform(X), np.concatenate([est.transform(X[:4000]), est.transform(X[4000:])])
    )


# ------------------------------------------------------------------------- memmaps
@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_memmap_is_streamed_in_fit_transform_and_score(cls, dtype, pixels, tmp_path):
    X = pixels if dtype == np.uint8 else (pixels / 255.0).astype(dtype)
    mm = write_memmap(tmp_path / "X.dat", X)
    # The design holds one conversion chunk at most; any whole copy of X as
    # float32 (25 MB) or float64 (50 MB) is above that.
    assert 4 * X.size > CHUNK_BYTES
    est, peak = traced_peak(lambda: fit_briefly(cls(random_state=0, **SMALL), mm))
    assert peak < CHUNK_BYTES
    Z, peak = traced_peak(lambda: est.transform(mm))
    assert peak < CHUNK_BYTES and Z.shape == (N, 2)
    score, peak = traced_peak(lambda: est.score(mm))
    assert peak < CHUNK_BYTES and np.isfinite(score)


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_memmap_fit_is_the_in_memory_fit(cls, dtype, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(2000, 30)).astype(dtype)
    if dtype != np.uint8:
        X = X * rng.random(30).astype(dtype)  # values no float sum keeps exactly
    mm = write_memmap(tmp_path / "X.dat", X)
    params = {**SMALL, "max_iter": 3}
    in_memory = fit_briefly(cls(random_state=0, **params), X)
    streamed = fit_briefly(cls(random_state=0, **params), mm)
    Z, Z_mm = in_memory.transform(X), streamed.transform(mm)
    assert Z_mm.dtype == Z.dtype
    if dtype == np.float32:
        # A float32 memmap on the CPU is viewed by the in-memory path itself.
        np.testing.assert_array_equal(Z_mm, Z)
        assert streamed.score(mm) == in_memory.score(X)
        return
    # The same batches in the same order; only the column means that set the
    # network's offsets are summed in another order (float64 chunks rather than
    # torch's float32 reduction), a float32 rounding apart. Its effect after
    # training is to stay far below what another seed changes.
    other_seed = fit_briefly(cls(random_state=1, **params), X).transform(X)
    assert np.abs(Z_mm - Z).max() < 1e-3 * np.abs(other_seed - Z).max()
    np.testing.assert_allclose(streamed.score(mm), in_memory.score(X), rtol=1e-5)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_memmap_with_early_stopping_and_partial_fit(cls, tmp_path):
    X = np.random.default_rng(0).random((500, 6))
    mm = write_memmap(tmp_path / "X.dat", X)
    params = {**SMALL, "max_iter": 2, "early_stopping": True, "random_state": 0}
    streamed, in_memory = fit_briefly(cls(**params), mm), fit_briefly(cls(**params), X)
    assert len(streamed.validation_scores_) == 2
    np.testing.assert_allclose(streamed.validation_scores_, in_memory.validation_scores_, rtol=1e-4)
    streamed.partial_fit(mm)
    assert streamed.n_iter_ == 3


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_a_model_fitted_on_a_memmap_copies_and_pickles_without_copying_it(cls, pixels, tmp_path):
    mm = write_memmap(tmp_path / "X.dat", pixels / 255.0)
    est = fit_briefly(cls(random_state=0, **SMALL), mm)
    # The statistics read after fit come from the memmap: a copy shares it.
    copied, peak = traced_peak(lambda: copy.deepcopy(est))
    assert peak < CHUNK_BYTES
    assert copied.noise_variance_ == est.noise_variance_
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(restored.transform(mm[:100]), est.transform(mm[:100]))


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_bad_values_in_a_memmap_are_refused_before_training(cls, tmp_path):
    X = np.random.default_rng(0).random((300, 4))
    X[250, 1] = np.nan
    mm = write_memmap(tmp_path / "X.dat", X)
    est = cls(random_state=0, **SMALL)
    with pytest.raises(ValueError, match=r"Input X contains NaN or infinity; .* Impute"):
        est.fit(mm)
    assert not hasattr(est, "module_")
    X[250, 1] = 1e39
    mm = write_memmap(tmp_path / "Y.dat", X)
    with pytest.raises(ValueError, match=r"beyond the largest float32.*Scale X first"):
        est.fit(mm)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_memmap_of_the_wrong_shape_is_refused(cls, tmp_path):
    mm = write_memmap(tmp_path / "X.dat", np.zeros(10))
    with pytest.raises(ValueError, match=r"Expected a 2D array.*got shape \(10,\)"):
        cls(**SMALL).fit(mm)
    est = fit_briefly(cls(random_state=0, **SMALL), np.random.default_rng(0).random((50, 4)))
    mm = write_memmap(tmp_path / "Y.dat", np.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"X has 3 features, but .* is expecting 4 features"):
        est.transform(mm)


@pytest.mark.gpu
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_transform_of_a_memmap_never_puts_it_whole_on_the_gpu(cls, pixels, tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA: torch.cuda.max_memory_allocated")
    X = np.tile(pixels, (5, 1))  # 40000 rows: 125 MB as float32, about 5 inference chunks
    mm = write_memmap(tmp_path / "X.dat", X)
    est = fit_briefly(cls(random_state=0, **{**SMALL, "device": "cuda"}), mm[:1000])
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    assert est.transform(mm).shape == (len(X), 2)
    assert torch.cuda.max_memory_allocated() - base < 4 * X.size


class _WideEncoder(torch.nn.Module):
    """An encoder whose hidden layer is far wider than X, recording its batch sizes."""

    def __init__(self, width=40_000):
        super().__init__()
        self.wide = torch.nn.Linear(16, width)
        self.out = torch.nn.Linear(width, 8)
        self.batches = []

    def forward(self, x):
        self.batches.append(x.shape[0])
        return self.out(torch.relu(self.wide(x)))


@pytest.mark.parametrize("Est", [AutoencoderTransformer, VAETransformer])
def test_inference_chunks_are_sized_from_the_widest_layer(Est):
    # X is 16 wide, the encoder's hidden layer 40,000: chunks sized from X alone
    # would hold 2,500 times the activation budget.
    X = np.random.default_rng(0).random((1000, 16)).astype(np.float32)
    est = fit_briefly(Est(2, encoder=_WideEncoder, max_iter=1, batch_size=50, random_state=0), X)
    # The copy skvae trains (the heads it adds wrap it).
    encoder = next(m for m in est.module_.modules() if isinstance(m, _WideEncoder))
    encoder.batches.clear()
    est.transform(X)
    budget_rows = INFERENCE_BYTES // (4 * 40_000)
    assert encoder.batches and max(encoder.batches) <= budget_rows
    assert sum(encoder.batches) == len(X)
