"""Calls on which skvae.PCA once differed from sklearn.decomposition.PCA (issue 7).

Each must behave as scikit-learn's PCA does: the same result, or the same
exception class.
"""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from numpy.testing import assert_allclose
from sklearn import decomposition

from skvae import PCA


def both(call):
    """``call`` run on scikit-learn's PCA and on skvae's: (sklearn's result, skvae's)."""
    return call(decomposition.PCA), call(PCA)


def assert_same_fit(ref, ours, atol=1e-10):
    for name in ("explained_variance_", "explained_variance_ratio_", "singular_values_", "mean_"):
        assert_allclose(getattr(ours, name), getattr(ref, name), atol=atol, err_msg=name)
    assert_allclose(ours.components_, ref.components_, atol=atol)
    assert ours.n_components_ == ref.n_components_
    assert_allclose(ours.noise_variance_, ref.noise_variance_, atol=atol)


def test_arpack_with_one_component():
    X = np.random.default_rng(0).random((50, 5))
    ref, ours = both(lambda P: P(1, svd_solver="arpack", random_state=0).fit(X))
    assert_same_fit(ref, ours)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_input_with_one_component(fmt):
    X = sp.random(50, 5, density=0.5, format=fmt, random_state=0)
    ref, ours = both(lambda P: P(1, random_state=0).fit(X))
    assert_same_fit(ref, ours)


def test_sample_after_arpack_with_a_slightly_negative_noise_variance():
    X = np.random.default_rng(0).standard_normal((10, 10))
    ref, ours = both(lambda P: P(svd_solver="arpack", random_state=0).fit(X))
    assert_allclose(ours.noise_variance_, ref.noise_variance_, atol=1e-12)
    samples = ours.sample(2, random_state=0)
    assert samples.shape == (2, 10)
    assert np.isfinite(samples).all()


@pytest.mark.parametrize("solver", ["randomized", "full", "auto", "arpack"])
def test_one_sample_fits_as_in_sklearn(solver):
    X = np.array([[1.0, 2.0, 3.0]])
    n_components = 1 if solver != "arpack" else 0
    if solver == "arpack":
        # arpack needs 1 <= n_components < min(X.shape) = 1: both refuse.
        with pytest.raises(ValueError, match="must be between 1 and"):
            PCA(n_components, svd_solver=solver).fit(X)
        return
    # One sample: n_samples - 1 = 0 divides 0 by 0, with numpy's warning in both.
    with pytest.warns(RuntimeWarning, match="invalid value encountered"):
        ref = decomposition.PCA(n_components, svd_solver=solver).fit(X)
    with pytest.warns(RuntimeWarning, match="invalid value encountered"):
        ours = PCA(n_components, svd_solver=solver).fit(X)
    assert_same_fit(ref, ours)  # NaN variances where sklearn has NaN


def test_score_after_fitting_one_sample_raises_linalg_error():
    X = np.array([[1.0, 2.0, 3.0]])
    with pytest.warns(RuntimeWarning, match="invalid value encountered"):  # 0/0 in both
        ours = PCA().fit(X)
    with pytest.warns(RuntimeWarning, match="invalid value encountered"):
        ref = decomposition.PCA().fit(X)
    for model in (ours, ref):
        with pytest.raises(np.linalg.LinAlgError, match="[Ss]ingular"):
            model.score(np.ones((2, 3)))


@pytest.mark.parametrize("container", [np.asarray, torch.from_numpy])
def test_singular_covariance_raises_numpys_linalg_error(container):
    # Constant data: 0/0 explained variance ratios, with numpy's warning, as in sklearn.
    with pytest.warns(RuntimeWarning, match="invalid value"):
        pca = PCA(2).fit(np.ones((10, 4)))
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        pca.score(container(np.ones((3, 4))))
    with pytest.raises(np.linalg.LinAlgError):
        pca.get_precision()
    with pytest.raises(np.linalg.LinAlgError), pytest.warns(RuntimeWarning):
        decomposition.PCA(2).fit(np.ones((10, 4))).score(np.ones((3, 4)))


@pytest.mark.parametrize("container", [np.asarray, torch.from_numpy])
def test_inverse_transform_checks_the_number_of_components(container):
    rng = np.random.default_rng(0)
    X, Z = rng.random((40, 6)), rng.random((5, 3))
    with pytest.raises(ValueError):
        decomposition.PCA(2).fit(X).inverse_transform(Z)
    with pytest.raises(ValueError, match=r"X has 3 columns, but PCA has 2 components"):
        PCA(2).fit(X).inverse_transform(container(Z))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("container", [np.asarray, torch.from_numpy])
def test_inverse_transform_rejects_non_finite_input(container, bad):
    X = np.random.default_rng(0).random((40, 6))
    Z = np.array([[bad, 0.0]])
    ref = decomposition.PCA(2).fit(X)
    with pytest.raises(ValueError, match="Input X contains") as expected:
        ref.inverse_transform(Z)
    with pytest.raises(ValueError, match=str(expected.value).splitlines()[0][:24]):
        PCA(2).fit(X).inverse_transform(container(Z))


@pytest.mark.parametrize("container", [np.zeros, torch.zeros])
def test_no_features_is_refused_as_in_sklearn(container):
    with pytest.raises(ValueError, match=r"Found array with 0 feature\(s\) \(shape=\(23, 0\)\)"):
        decomposition.PCA("mle").fit(np.zeros((23, 0)))
    with pytest.raises(ValueError, match=r"Found array with 0 feature\(s\) \(shape=\(23, 0\)\)"):
        PCA("mle").fit(container((23, 0)))


@pytest.mark.parametrize("container", [np.asarray, torch.from_numpy])
def test_randomized_on_denormal_float32(container):
    X = (np.random.default_rng(0).standard_normal((5, 11)) * 1e-40).astype(np.float32)
    # The total variance underflows float32: NaN ratios, with numpy's warning, in both.
    with pytest.warns(RuntimeWarning, match="invalid value"):
        ref = decomposition.PCA(5, svd_solver="randomized", random_state=0).fit(X)
    with pytest.warns(RuntimeWarning, match="invalid value"):
        ours = PCA(5, svd_solver="randomized", random_state=0).fit(container(X))
    assert_allclose(ours.explained_variance_ratio_, ref.explained_variance_ratio_)
    # Denormals carry few digits: compare the spectra relative to the largest value
    # (five centred samples have rank 4; the last singular value is round-off).
    scale = ref.singular_values_[0]
    assert_allclose(ours.singular_values_, ref.singular_values_, rtol=1e-2, atol=1e-2 * scale)
    assert np.isfinite(np.asarray(ours.components_)).all()


def test_whitening_does_not_change_the_sampled_model():
    rng = np.random.default_rng(0)
    # Variance 9 along the first axis, 1 along the second, 0.01 elsewhere.
    X = rng.standard_normal((2000, 4)) * np.array([3.0, 1.0, 0.1, 0.1])
    plain = PCA(2, random_state=0).fit(X)
    whitened = PCA(2, whiten=True, random_state=0).fit(X)
    for pca in (plain, whitened):
        draws = pca.sample(20000, random_state=0)
        # The first component's variance is about 9; whitening must not square it.
        along = (draws - pca.mean_) @ pca.components_[0]
        assert_allclose(along.var(), pca.explained_variance_[0], rtol=0.05)
    assert_allclose(whitened.sample(5, random_state=1), plain.sample(5, random_state=1), rtol=1e-10)


def test_whitened_covariance_keeps_sklearns_convention():
    # get_covariance and score keep scikit-learn's scaling under whitening, for parity.
    X = np.random.default_rng(0).standard_normal((100, 5)) * np.arange(1, 6)
    ref = decomposition.PCA(3, whiten=True).fit(X)
    ours = PCA(3, whiten=True).fit(X)
    assert_allclose(ours.get_covariance(), ref.get_covariance(), rtol=1e-8)
    assert_allclose(ours.score(X), ref.score(X), rtol=1e-8)


@pytest.mark.parametrize("copy", [False, True])
@pytest.mark.parametrize("solver", ["covariance_eigh", "full"])
def test_a_read_only_memmap_is_never_copied(solver, copy, tmp_path):
    import tracemalloc

    rng = np.random.default_rng(0)
    path = tmp_path / "X.npy"
    np.save(path, rng.standard_normal((4000, 50)))  # 1.6 MB
    X = np.load(path, mmap_mode="r")
    ref = decomposition.PCA(5, svd_solver=solver).fit(np.asarray(X))
    tracemalloc.start()
    try:
        pca = PCA(5, copy=copy, svd_solver=solver).fit(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert_allclose(pca.explained_variance_, ref.explained_variance_, rtol=1e-10)
    assert not X.flags.writeable  # the file is untouched
    # A memmap is read block by block (tests/test_pca_incremental.py): numpy
    # never holds a copy of X, whichever solver and copy.
    assert peak < X.nbytes / 4


def test_default_device_follows_the_input(monkeypatch):
    X = np.random.default_rng(0).standard_normal((30, 4))
    pca = PCA(2)
    assert pca.device is None
    assert PCA(2).fit(X).device_ == torch.device("cpu")
    T = torch.from_numpy(X)
    assert PCA(2).fit(T).device_ == T.device
    # With a GPU present, numpy input still stays on the CPU unless asked for.
    from skvae._utils.devices import resolve_input_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_input_device(None, X, "PCA") == torch.device("cpu")
    assert resolve_input_device("auto", X, "PCA") == torch.device("cuda")
    assert resolve_input_device(None, T, "PCA") == T.device


def test_finite_tensor_whose_sum_overflows_is_accepted():
    # The finiteness test sums the tensor first; an overflowing sum alone is no error.
    pca = PCA(2).fit(torch.randn(20, 3, generator=torch.Generator().manual_seed(0)))
    T = torch.full((4, 3), 3e38, dtype=torch.float32)
    assert torch.isinf(T.sum())
    assert pca.transform(T).shape == (4, 2)
    T[1, 1] = float("nan")
    with pytest.raises(ValueError, match="Input X contains NaN"):
        pca.transform(T)


def test_a_model_without_noise_says_why_it_cannot_score():
    # PCA(None) on 2 x 2 data keeps every component: no noise, a singular covariance.
    X = np.array([[1.0, 2.0], [3.0, 5.0]])
    pca = PCA(None).fit(X)
    with pytest.raises(np.linalg.LinAlgError, match=r"singular.*n_components < min\("):
        pca.score(X)


def test_data_beyond_float64_covariance_raise_as_in_sklearn():
    # Entries of 1e200 overflow the covariance: sklearn's solver fails, and so does skvae's,
    # instead of fitting a model whose scores are NaN and samples infinite.
    X = np.random.default_rng(0).standard_normal((50, 5)) * 1e200
    with pytest.warns(RuntimeWarning):  # overflow, then the invalid values it makes
        with pytest.raises(np.linalg.LinAlgError):
            decomposition.PCA(2).fit(X)
    with pytest.warns(RuntimeWarning, match="overflow"):
        with pytest.raises(np.linalg.LinAlgError):
            PCA(2).fit(X)
