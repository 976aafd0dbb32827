"""PCA.partial_fit against scikit-learn's IncrementalPCA, and PCA on arrays read block by block."""

import re

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from numpy.testing import assert_allclose
from sklearn.datasets import make_low_rank_matrix
from sklearn.decomposition import PCA as SklearnPCA
from sklearn.decomposition import IncrementalPCA

from skvae import PCA
from skvae.decomposition import _incremental

# Agreement up to round-off, relative to the largest entry of the reference: both
# sides run an SVD of the same stacked matrix in the data's dtype (the same
# tolerances as tests/test_pca.py's comparison with scikit-learn's PCA).
TOL = {np.float64: dict(rtol=1e-7, atol=1e-9), np.float32: dict(rtol=1e-3, atol=1e-4)}
ATTRIBUTES = [
    "components_",
    "explained_variance_",
    "explained_variance_ratio_",
    "singular_values_",
    "mean_",
    "var_",
    "noise_variance_",
    "n_samples_seen_",
]


def assert_agree(actual, desired, dtype):
    if isinstance(actual, torch.Tensor):  # fitted on tensors: on their device
        actual = actual.cpu().numpy()
    desired = np.asarray(desired, dtype=np.float64)
    scale = max(np.abs(desired).max(initial=0.0), 1.0)
    tol = TOL[dtype]
    assert_allclose(np.asarray(actual), desired, rtol=tol["rtol"], atol=tol["atol"] * scale)


def data(n_samples=400, n_features=30, dtype=np.float64, seed=0):
    X = make_low_rank_matrix(n_samples, n_features, tail_strength=0.5, random_state=seed)
    return (X * 10 + np.linspace(-1, 1, n_features)).astype(dtype)


def batches(X, size):
    return [X[i : i + size] for i in range(0, X.shape[0], size)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_components", [None, 1, 5, 29])
@pytest.mark.parametrize("container", ["numpy", "tensor"])
def test_partial_fit_agrees_with_incremental_pca(dtype, n_components, container):
    X = data(dtype=dtype)
    ours, ref = PCA(n_components), IncrementalPCA(n_components)
    for batch in batches(X, 60):
        ref.partial_fit(batch)
        ours.partial_fit(torch.from_numpy(batch) if container == "tensor" else batch)
    for name in ATTRIBUTES:
        assert_agree(getattr(ours, name), getattr(ref, name), dtype)
    assert ours.n_components_ == ref.n_components_
    assert ours.n_samples_ == ours.n_samples_seen_ == X.shape[0]
    # The fitted state follows the first batch: tensors after tensors, numpy after numpy.
    expected_type = torch.Tensor if container == "tensor" else np.ndarray
    for name in ATTRIBUTES[:-2]:
        attribute = getattr(ours, name)
        assert isinstance(attribute, expected_type), name
        assert np.asarray(attribute).dtype == dtype, name
    assert_agree(ours.transform(X), ref.transform(X), dtype)


def test_partial_fit_that_discards_nothing_is_pca_on_all_rows():
    # With every component kept, the merge of Ross et al. loses nothing: the
    # result is the exact PCA of all rows, whatever the batches.
    X = data()
    ours = PCA()
    for batch in batches(X, 70):
        ours.partial_fit(batch)
    ref = SklearnPCA(svd_solver="full").fit(X)
    for name in ["components_", "explained_variance_", "singular_values_", "mean_"]:
        assert_agree(getattr(ours, name), getattr(ref, name), np.float64)
    assert_agree(ours.explained_variance_ratio_, ref.explained_variance_ratio_, np.float64)


def test_partial_fit_on_rank_k_data_is_pca_up_to_round_off():
    # Data of rank 5 lose nothing to truncation at 5 components.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 5)) @ rng.standard_normal((5, 20)) + 3.0
    ours = PCA(5)
    for batch in batches(X, 50):
        ours.partial_fit(batch)
    ref = SklearnPCA(5, svd_solver="full").fit(X)
    for name in ["components_", "explained_variance_", "explained_variance_ratio_", "mean_"]:
        assert_agree(getattr(ours, name), getattr(ref, name), np.float64)


def test_one_partial_fit_call_gives_pcas_probabilistic_model():
    X = data()
    ours = PCA(5).partial_fit(X)
    ref = SklearnPCA(5, svd_solver="full").fit(X)
    assert_agree(ours.noise_variance_, ref.noise_variance_, np.float64)
    assert_agree(ours.score_samples(X), ref.score_samples(X), np.float64)
    assert ours.score(X) == pytest.approx(ref.score(X), rel=1e-9)
    draws = ours.sample(20_000, random_state=0)
    # The sample covariance of 20,000 draws is within a few standard errors
    # (|cov| * sqrt(2 / n), about 1%) of the model covariance.
    assert_allclose(np.cov(draws.T), ours.get_covariance(), atol=0.05 * ref.explained_variance_[0])


def test_score_and_sample_after_streamed_batches_float32():
    X = data(dtype=np.float32)
    ours = PCA(5)
    for batch in batches(X, 100):
        ours.partial_fit(batch)
    assert ours.sample(3, random_state=0).dtype == np.float32
    assert ours.score_samples(X).dtype == np.float32
    assert np.isfinite(ours.score(X))
    out = ours.transform(torch.from_numpy(X))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32


def test_fit_resets_and_partial_fit_continues_from_fit():
    X = data()
    first, second = X[:200], X[200:]
    continued = PCA().fit(first).partial_fit(second)
    streamed = PCA().partial_fit(first).partial_fit(second)
    for name in ATTRIBUTES:
        assert_agree(getattr(continued, name), getattr(streamed, name), np.float64)
    refit = PCA().partial_fit(first).fit(second)
    fresh = PCA().fit(second)
    for name in ATTRIBUTES:
        assert_agree(getattr(refit, name), getattr(fresh, name), np.float64)
    assert refit.n_samples_seen_ == 200


@pytest.mark.parametrize("solver", ["full", "covariance_eigh", "randomized", "arpack"])
def test_fit_records_the_moments_partial_fit_needs(solver):
    X = data()
    pca = PCA(5, svd_solver=solver, random_state=0).fit(X)
    assert pca.n_samples_seen_ == X.shape[0]
    assert_agree(pca.var_, X.var(axis=0), np.float64)
    sparse = PCA(5, svd_solver="arpack", random_state=0).fit(sp.csr_matrix(X))
    assert_agree(sparse.var_, X.var(axis=0), np.float64)


def test_partial_fit_errors_read_like_incremental_pca():
    X = data(n_samples=40, n_features=6)
    # IncrementalPCA's own words, with the class name.
    match = (
        "n_components=7 invalid for n_features=6, need more rows than columns for PCA processing"
    )
    with pytest.raises(ValueError, match=match):
        PCA(7).partial_fit(X)
    match = (
        "n_components=5 must be less or equal to the batch number of samples 4 for the "
        "first partial_fit call."
    )
    with pytest.raises(ValueError, match=match):
        PCA(5).partial_fit(X[:4])
    with pytest.raises(ValueError, match="Number of components has changed from 6 to 3"):
        PCA().partial_fit(X).set_params(n_components=3).partial_fit(X)
    match = (
        "PCA.partial_fit does not support sparse input. Either convert data to dense "
        "or use PCA.fit to do so in batches."
    )
    with pytest.raises(TypeError, match=re.escape(match)):
        PCA(2).partial_fit(sp.csr_matrix(X))
    for bad in [0.9, "mle"]:
        with pytest.raises(ValueError, match=re.escape(f"n_components={bad!r}")):
            PCA(bad).partial_fit(X)
    with pytest.raises(ValueError, match="X has 5 features, but PCA is expecting 6"):
        PCA(2).partial_fit(X).partial_fit(X[:, :5])


# Arrays read block by block.


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 2**10 entries, so that small test arrays span many blocks."""
    monkeypatch.setattr(_incremental, "BLOCK_ENTRIES", 2**10)


class Rows:
    """An array-like that slices (as an h5py dataset does) and records the largest read."""

    def __init__(self, array):
        self.array, self.largest = array, 0
        self.shape, self.dtype = array.shape, array.dtype

    def __getitem__(self, index):
        block = self.array[index]
        self.largest = max(self.largest, block.shape[0])
        return block


@pytest.fixture
def memmap(tmp_path):
    def make(X):
        path = tmp_path / "X.dat"
        mm = np.memmap(path, dtype=X.dtype, mode="w+", shape=X.shape)
        mm[:] = X
        mm.flush()
        return np.memmap(path, dtype=X.dtype, mode="r", shape=X.shape)

    return make


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("solver", ["auto", "full", "covariance_eigh"])
@pytest.mark.parametrize("n_components", [3, 0.9, "mle"])
def test_memmap_fit_is_exact_pca(small_blocks, memmap, dtype, solver, n_components):
    X = data(dtype=dtype)
    ours = PCA(n_components, svd_solver=solver).fit(memmap(X))
    ref = SklearnPCA(n_components, svd_solver="full").fit(X)
    assert ours.n_components_ == ref.n_components_
    for name in ["components_", "explained_variance_", "explained_variance_ratio_", "mean_"]:
        assert_agree(getattr(ours, name), getattr(ref, name), dtype)
        assert getattr(ours, name).dtype == dtype
    assert_agree(ours.noise_variance_, ref.noise_variance_, dtype)
    assert_agree(ours.singular_values_, ref.singular_values_, dtype)


@pytest.mark.parametrize("solver", ["randomized", "arpack"])
def test_memmap_fit_with_a_truncated_solver_is_incremental_pca(small_blocks, memmap, solver):
    X = data()
    ours = PCA(4, svd_solver=solver, random_state=0).fit(memmap(X))
    rows = _incremental.block_rows(X.shape[1], at_least=4)
    ref = IncrementalPCA(4)
    for start, stop in _incremental.row_blocks(X.shape[0], rows):
        ref.partial_fit(X[start:stop])
    for name in ["components_", "explained_variance_", "singular_values_", "mean_"]:
        assert_agree(getattr(ours, name), getattr(ref, name), np.float64)
    # The ratio and noise use the exact total variance, as PCA's truncated solvers do.
    total = X.var(axis=0, ddof=1).sum()
    assert_agree(ours.explained_variance_ratio_, ref.explained_variance_ / total, np.float64)


def test_memmap_transform_and_score_equal_in_memory(small_blocks, memmap):
    X = data(dtype=np.float32)
    pca = PCA(5, whiten=True).fit(X)
    mm = memmap(X)
    assert_agree(pca.transform(mm), pca.transform(X), np.float32)
    assert_agree(pca.score_samples(mm), pca.score_samples(X), np.float32)
    assert pca.score(mm) == pytest.approx(pca.score(X), rel=1e-5)
    assert_agree(PCA(5).fit_transform(mm), PCA(5).fit_transform(X), np.float32)


def test_uint8_memmap_is_converted_block_by_block(small_blocks, memmap):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (300, 16), dtype=np.uint8)
    ours = PCA(4).fit(memmap(X))
    ref = SklearnPCA(4).fit(X)
    assert ours.components_.dtype == np.float64
    assert_agree(ours.components_, ref.components_, np.float64)
    assert_agree(ours.transform(memmap(X)), ref.transform(X), np.float64)


def test_sliceable_input_is_never_read_whole(small_blocks):
    X = data()
    rows = Rows(X)
    pca = PCA(3).fit(rows)
    Y = pca.transform(rows)
    ll = pca.score_samples(rows)
    assert rows.largest <= _incremental.block_rows(X.shape[1]) * 1.5 < X.shape[0]
    assert_agree(Y, SklearnPCA(3).fit(X).transform(X), np.float64)
    assert_agree(ll, SklearnPCA(3).fit(X).score_samples(X), np.float64)


def test_memmap_fit_checks_every_block(small_blocks, memmap):
    X = data()
    bad = X.copy()
    bad[-1, 0] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        PCA(3).fit(memmap(bad))
    with pytest.raises(ValueError, match="X has 29 features, but PCA is expecting 30"):
        PCA(3).fit(X).transform(memmap(X[:, 1:].copy()))


def test_memmap_partial_fit_then_continue(small_blocks, memmap):
    X = data()
    pca = PCA(4).fit(memmap(X[:200].copy()))
    pca.partial_fit(memmap(X[200:].copy()))
    assert pca.n_samples_seen_ == X.shape[0]


@pytest.mark.gpu
def test_streaming_and_partial_fit_on_an_accelerator_agree_with_the_cpu(small_blocks, memmap):
    from skvae._utils.devices import accelerators

    device = accelerators()[0]
    X = data(dtype=np.float32)
    mm = memmap(X)
    on_cpu, on_device = PCA(5).fit(mm), PCA(5, device=device).fit(mm)
    assert on_device.device_.type == device
    assert_agree(on_device.components_, on_cpu.components_, np.float32)
    # numpy input bound for the accelerator goes there in chunks.
    assert_agree(on_device.transform(X), on_cpu.transform(X), np.float32)
    assert_agree(on_device.transform(mm), on_cpu.transform(X), np.float32)
    ours, ref = PCA(5), IncrementalPCA(5)
    for batch in batches(X, 100):
        ours.partial_fit(torch.from_numpy(batch).to(device))
        ref.partial_fit(batch)
    assert ours.device_.type == device
    assert ours.components_.device.type == device  # the state of tensors stays there
    assert_agree(ours.components_, ref.components_, np.float32)
    Y = ours.transform(torch.from_numpy(X).to(device))
    assert Y.device.type == device
