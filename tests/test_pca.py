import pickle
import re

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from numpy.testing import assert_allclose
from scipy import linalg
from sklearn import config_context, decomposition
from sklearn.datasets import load_iris, make_low_rank_matrix
from threadpoolctl import threadpool_limits

from skvae import PCA
from skvae._utils.devices import accelerators
from skvae._utils.validation import InvalidParameterError
from skvae.decomposition._linalg import (
    _assess_dimension,
    _column_sum_of_squares,
    _infer_dimension,
)
from skvae.decomposition._solvers import _lu_normalize, _lu_permuted_l


@pytest.fixture(autouse=True, scope="module")
def one_cpu_thread():
    # The matrices here are tiny: a second OpenMP thread only adds synchronisation,
    # which is slow when other jobs share the cores.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


SOLVERS = ["full", "covariance_eigh", "arpack", "randomized", "auto"]
# Agreement with scikit-learn, relative to the largest entry of the reference:
# both libraries run LAPACK in the data's dtype, so only round-off separates them.
TOL = {np.float64: dict(rtol=1e-7, atol=1e-9), np.float32: dict(rtol=1e-3, atol=1e-4)}
IRIS = load_iris().data


def assert_agree(actual, desired, dtype, scale=None, **override):
    desired = np.asarray(desired, dtype=np.float64)
    tol = {**TOL[dtype], **override}
    scale = np.abs(desired).max(initial=0.0) if scale is None else scale
    assert_allclose(np.asarray(actual), desired, rtol=tol["rtol"], atol=tol["atol"] * max(scale, 1))


def make_data(shape, rank_deficient, dtype, seed=0):
    n_samples, n_features = shape
    n_test = 10
    if rank_deficient:
        rng = np.random.default_rng(seed)
        rank = min(shape) // 2
        X = rng.standard_normal((n_samples + n_test, rank)) @ rng.standard_normal(
            (rank, n_features)
        )
    else:
        X = make_low_rank_matrix(
            n_samples + n_test, n_features, tail_strength=0.5, random_state=seed
        )
        X = X * 10 + np.linspace(-1, 1, n_features)  # unit-ish scale, a non-zero mean
    X = X.astype(dtype)
    return X[:n_samples], X[n_samples:]


def solver_kwargs(solver, shape):
    if solver == "randomized":
        # As in scikit-learn's solver equivalence test: many power iterations
        # make the randomized result exact to round-off.
        return dict(n_components=10, iterated_power=50)
    if solver == "arpack":
        return dict(n_components=min(shape) - 1)
    return dict(n_components=None)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("whiten", [False, True])
@pytest.mark.parametrize("rank_deficient", [False, True])
@pytest.mark.parametrize("shape", [(100, 30), (30, 100)], ids=["tall", "wide"])
@pytest.mark.parametrize("solver", SOLVERS)
def test_agrees_with_sklearn(solver, shape, rank_deficient, whiten, dtype):
    X, X_test = make_data(shape, rank_deficient, dtype)
    kwargs = dict(svd_solver=solver, whiten=whiten, random_state=0, **solver_kwargs(solver, shape))
    ref = decomposition.PCA(**kwargs)
    ours = PCA(device="cpu", **kwargs)
    Z_ref, Z = ref.fit_transform(X), ours.fit_transform(X)

    assert ours._fit_svd_solver == ref._fit_svd_solver
    assert ours.n_components_ == ref.n_components_
    assert ours.n_samples_ == ref.n_samples_ and ours.n_features_in_ == ref.n_features_in_
    for name in ["mean_", "explained_variance_", "singular_values_", "explained_variance_ratio_"]:
        assert getattr(ours, name).dtype == dtype
    for name in ["mean_", "explained_variance_", "explained_variance_ratio_"]:
        assert_agree(getattr(ours, name), getattr(ref, name), dtype)
    # Singular values of numerically null directions are the square roots of
    # round-off (covariance_eigh): compare their squares.
    assert_agree(ours.singular_values_**2, ref.singular_values_**2, dtype)
    ev = ref.explained_variance_
    assert_agree(ours.noise_variance_, ref.noise_variance_, dtype, scale=ev[0])

    # Directions with (numerically) zero variance are arbitrary; compare the others.
    stable = ev > (1e-5 if dtype == np.float32 else 1e-10) * ev[0]
    assert stable.sum() > 1
    assert ours.components_.dtype == dtype
    assert_agree(ours.components_[stable], ref.components_[stable], dtype)
    # Whitening divides each output by its standard deviation; undo it so that
    # every column is compared at the scale of the data.
    unwhiten = np.sqrt(ev[stable]) if whiten else 1.0
    assert Z.dtype == dtype
    assert_agree(Z[:, stable] * unwhiten, Z_ref[:, stable] * unwhiten, dtype)
    T_ref, T = ref.transform(X_test), ours.transform(X_test)
    assert T.dtype == dtype
    assert_agree(T[:, stable] * unwhiten, T_ref[:, stable] * unwhiten, dtype)
    assert_agree(ours.transform(X)[:, stable] * unwhiten, Z_ref[:, stable] * unwhiten, dtype)
    T_ref[:, ~stable] = 0
    assert_agree(ours.inverse_transform(T_ref), ref.inverse_transform(T_ref), dtype)
    assert_agree(ours.get_covariance(), ref.get_covariance(), dtype)

    # The precision and the likelihood are only defined when the covariance is
    # well conditioned (sklearn inverts a singular matrix otherwise).
    sigma2 = ref.noise_variance_
    if sigma2 > 1e-3 * ev[0] or (sigma2 == 0 and ev[-1] > 1e-3 * ev[0]):
        assert_agree(ours.get_precision(), ref.get_precision(), dtype)
        assert_agree(ours.score_samples(X_test), ref.score_samples(X_test), dtype)
        assert_agree(ours.score(X), ref.score(X), dtype)


@pytest.mark.parametrize("n_components", [1, 3, 0.5, 0.95, 0.999, "mle", None])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_n_components_semantics_match_sklearn(n_components, dtype):
    X = make_data((200, 12), False, dtype)[0]
    ref = decomposition.PCA(n_components, svd_solver="full").fit(X)
    ours = PCA(n_components, svd_solver="full", device="cpu").fit(X)
    assert ours.n_components_ == ref.n_components_
    assert_agree(ours.explained_variance_ratio_, ref.explained_variance_ratio_, dtype)
    assert_agree(ours.noise_variance_, ref.noise_variance_, dtype)


@pytest.mark.parametrize(
    "n_samples, n_features, n_components, expected",
    [
        (10, 50, 5, "full"),
        (1000, 50, 50, "covariance_eigh"),
        (1000, 500, 400, "full"),
        (1000, 500, 10, "randomized"),
        (1000, 500, 0.5, "full"),
        (600, 100, "mle", "full"),
    ],
)
def test_auto_policy_matches_sklearn(n_samples, n_features, n_components, expected):
    X = np.random.RandomState(0).uniform(size=(n_samples, n_features))
    ours = PCA(n_components, device="cpu", random_state=0).fit(X)
    assert ours._fit_svd_solver == expected


@pytest.mark.parametrize("solver, n_components_", [("full", 4), ("arpack", 3), ("randomized", 4)])
@pytest.mark.parametrize("data", [IRIS, IRIS.T])
def test_n_components_none(data, solver, n_components_):
    assert PCA(svd_solver=solver).fit(data).n_components_ == n_components_


def test_sign_convention_largest_entry_positive():
    X = make_data((50, 8), False, np.float64)[0]
    for solver in ["full", "covariance_eigh", "arpack", "randomized"]:
        W = PCA(5, svd_solver=solver, random_state=0).fit(X).components_
        rows = np.arange(W.shape[0])
        assert (W[rows, np.abs(W).argmax(axis=1)] > 0).all()


def test_mle_helpers_match_sklearn():
    from sklearn.decomposition._pca import _assess_dimension as sk_assess
    from sklearn.decomposition._pca import _infer_dimension as sk_infer

    rng = np.random.RandomState(0)
    spectrum = np.sort(rng.gamma(1.0, size=15))[::-1]
    for rank in range(1, 15):
        assert_allclose(_assess_dimension(spectrum, rank, 50), sk_assess(spectrum, rank, 50))
    assert _infer_dimension(spectrum, 50) == sk_infer(spectrum, 50)
    with pytest.raises(ValueError, match="the tested rank should be in"):
        _assess_dimension(spectrum, 15, 50)


def test_lu_normalizer_matches_scipy_permute_l():
    Y = np.random.RandomState(0).randn(40, 7)
    PL = linalg.lu(Y, permute_l=True)[0]
    assert_allclose(_lu_normalize(torch.from_numpy(Y)).numpy(), PL, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("shape", [(300, 7), (7, 7), (5, 15)], ids=["tall", "square", "wide"])
@pytest.mark.parametrize("rank", [None, 2], ids=["full_rank", "rank_2"])
def test_lu_normalizers_match_scipy_permute_l(shape, order, dtype, rank):
    rng = np.random.default_rng(0)
    Y = rng.standard_normal(shape)
    if rank is not None:  # a singular U: LAPACK reports it, L stays valid
        Y = Y[:, :rank] @ rng.standard_normal((rank, shape[1]))
    Y = np.asarray(Y, dtype=dtype, order=order)
    PL = linalg.lu(Y, permute_l=True, check_finite=False)[0]
    # The same LAPACK factorisation: only the assembly of P L differs.
    np.testing.assert_array_equal(_lu_permuted_l(Y.copy(order=order)), PL)
    if rank is None:
        # torch's LAPACK rounds differently (past the rank, its pivots pick round-off).
        tol = dict(rtol=0, atol=100 * np.finfo(dtype).eps * np.abs(PL).max())
        T = torch.from_numpy(Y.copy(order=order))
        assert_allclose(_lu_normalize(T).numpy(), PL, **tol)


def test_column_sum_of_squares_keeps_float32_data_to_float32_accuracy():
    # Many rows, a large mean: a float32 accumulation down each column drifts.
    rng = np.random.default_rng(0)
    X = (rng.standard_normal((300_000, 3)) + [0.0, 5.0, 100.0]).astype(np.float32)
    exact = np.einsum("ij,ij->j", X.astype(np.float64), X.astype(np.float64))
    naive = np.einsum("ij,ij->j", X, X)  # float32 throughout
    # Sums of 16 positive float32 terms round by at most 16 units in the last place.
    bound = 16 * np.finfo(np.float32).eps
    assert np.abs(naive / exact - 1).max() > bound  # the test can tell the two apart
    assert_allclose(_column_sum_of_squares(X), exact, rtol=bound)
    assert_allclose(_column_sum_of_squares(X.astype(np.float64)), exact, rtol=1e-13)
    assert_allclose(_column_sum_of_squares(np.asfortranarray(X)), exact, rtol=bound)
    assert_allclose(_column_sum_of_squares(torch.from_numpy(X)), exact, rtol=bound)


@pytest.mark.parametrize("normalizer", ["auto", "QR", "LU", "none"])
@pytest.mark.parametrize("iterated_power", [1, 3, "auto"])
def test_randomized_is_as_accurate_as_sklearn(normalizer, iterated_power):
    X = make_data((300, 60), False, np.float64)[0]
    exact = decomposition.PCA(5, svd_solver="full").fit(X).explained_variance_
    kwargs = dict(
        n_components=5,
        svd_solver="randomized",
        power_iteration_normalizer=normalizer,
        iterated_power=iterated_power,
    )

    def mean_error(cls):
        # averaged over seeds: one seed may draw a lucky or unlucky test matrix
        fits = [cls(random_state=seed, **kwargs).fit(X) for seed in range(4)]
        return np.mean([np.abs(f.explained_variance_ / exact - 1).max() for f in fits])

    assert mean_error(PCA) <= 2 * mean_error(decomposition.PCA) + 1e-10


@pytest.mark.parametrize("container", ["numpy", "tensor"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_randomized_gives_sklearns_numbers_for_the_same_seed(container, dtype):
    # Components far down a slowly decaying spectrum, with sklearn's default power
    # iterations: they are not converged, so only the same test matrix (numpy's
    # RandomState from random_state) gives the same numbers.
    X = make_low_rank_matrix(400, 120, effective_rank=30, tail_strength=0.8, random_state=0)
    X = X.astype(dtype)
    kwargs = dict(n_components=50, svd_solver="randomized", random_state=3)
    ref = decomposition.PCA(**kwargs).fit(X)
    ours = PCA(**kwargs).fit(torch.from_numpy(X) if container == "tensor" else X)
    tol = 1e-9 if dtype == np.float64 else 2e-3
    for name in ["components_", "explained_variance_", "singular_values_"]:
        assert_allclose(np.asarray(getattr(ours, name)), getattr(ref, name), atol=tol, err_msg=name)


def test_randomized_is_seeded_and_leaves_global_rngs_alone():
    X = make_data((80, 40), False, np.float32)[0]
    torch_state, np_state = torch.random.get_rng_state(), np.random.get_state()  # noqa: NPY002
    kwargs = dict(n_components=3, svd_solver="randomized", iterated_power=1)
    a = PCA(random_state=7, **kwargs).fit_transform(X)
    b = PCA(random_state=7, **kwargs).fit_transform(X)
    PCA(n_components=3, svd_solver="arpack").fit(X)
    PCA(n_components=3).fit(X).sample(5)
    np.testing.assert_array_equal(a, b)
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], np_state[1])  # noqa: NPY002


@pytest.mark.parametrize("shape", [(60, 20), (20, 60)], ids=["tall", "wide"])
@pytest.mark.parametrize("solver", SOLVERS)
def test_fit_and_fit_transform_fit_the_same_model(solver, shape):
    # fit skips the left singular vectors that only fit_transform uses.
    X = make_data(shape, False, np.float64)[0]
    kwargs = dict(n_components=5, svd_solver=solver, random_state=0)
    fitted, fit_transformed = PCA(**kwargs).fit(X), PCA(**kwargs)
    fit_transformed.fit_transform(X)
    for name in ["components_", "explained_variance_", "singular_values_", "noise_variance_"]:
        np.testing.assert_array_equal(getattr(fitted, name), getattr(fit_transformed, name))


@pytest.mark.parametrize("solver", SOLVERS)
def test_fit_transform_equals_fit_then_transform(solver):
    X = make_data((60, 20), False, np.float64)[0]
    # fit_transform returns U S; it equals X V^T once the randomized SVD has converged.
    pca = PCA(5, svd_solver=solver, random_state=0, iterated_power=30)
    assert_allclose(pca.fit_transform(X), pca.transform(X), atol=1e-10)


@pytest.mark.parametrize("whiten", [False, True])
def test_inverse_transform_undoes_transform(whiten):
    X = make_data((50, 10), False, np.float64)[0]
    pca = PCA(whiten=whiten).fit(X)
    assert_allclose(pca.inverse_transform(pca.transform(X)), X, atol=1e-10)
    if whiten:
        assert_allclose(np.cov(pca.transform(X), rowvar=False), np.eye(10), atol=1e-8)


def test_copy_false_centres_in_place():
    X = make_data((50, 10), False, np.float64)[0]
    X_orig = X.copy()
    Z = PCA(3, copy=False, svd_solver="full").fit_transform(X)
    assert_allclose(X, X_orig - X_orig.mean(axis=0))
    assert_allclose(Z, PCA(3, svd_solver="full").fit_transform(X_orig))


# --- probabilistic model: covariance, precision, score, sample ---------------------------


@pytest.mark.parametrize("whiten", [False, True])
@pytest.mark.parametrize("n_components", [0, 3, 10])
def test_precision_inverts_covariance(n_components, whiten):
    X = make_data((100, 10), False, np.float64)[0]
    pca = PCA(n_components, whiten=whiten).fit(X)
    assert_allclose(pca.get_covariance() @ pca.get_precision(), np.eye(10), atol=1e-8)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sample_moments_and_score(dtype):
    rng = np.random.RandomState(0)
    X = (rng.randn(400, 3) @ rng.randn(3, 6) + rng.randn(400, 6) * 0.3 + 5).astype(dtype)
    pca = PCA(3).fit(X)
    S = pca.sample(20_000, random_state=0)
    assert S.shape == (20_000, 6) and S.dtype == dtype
    assert_allclose(S.mean(axis=0), pca.mean_, atol=0.05)
    cov = pca.get_covariance()
    assert_allclose(np.cov(S, rowvar=False), cov, atol=0.05 * np.abs(cov).max())
    # Samples are as likely under the model as the data it was fitted to.
    assert pca.score(S) == pytest.approx(pca.score(X), rel=0.02)
    np.testing.assert_array_equal(pca.sample(4, random_state=3), pca.sample(4, random_state=3))
    assert not np.array_equal(pca.sample(4, random_state=3), pca.sample(4, random_state=4))


def test_sample_rejects_bad_n_samples():
    pca = PCA(2).fit(IRIS)
    for bad in [0, -1, 2.5, True]:
        with pytest.raises(ValueError, match="n_samples must be an int >= 1"):
            pca.sample(bad)


def test_score_prefers_the_right_dimension():
    # From scikit-learn: data of rank 1 plus noise is best explained by 1 component.
    rng = np.random.RandomState(0)
    X = rng.randn(500, 10) * 0.1
    X[:, :1] += rng.randn(500, 1) * 3
    X_test = rng.randn(500, 10) * 0.1
    X_test[:, :1] += rng.randn(500, 1) * 3
    scores = [PCA(k).fit(X).score(X_test) for k in range(5)]
    assert np.argmax(scores) == 1


# --- containers: tensors, pandas, sparse, pickling ---------------------------------------

FITTED_ARRAYS = [
    "components_",
    "mean_",
    "explained_variance_",
    "explained_variance_ratio_",
    "singular_values_",
    "var_",
    "noise_variance_",
]


@pytest.mark.parametrize("tdtype", [torch.float32, torch.float64])
def test_tensor_in_tensor_out(tdtype):
    X = make_data((40, 8), False, np.float64)[0]
    T = torch.from_numpy(X).to(tdtype)
    pca = PCA(3, whiten=True).fit(T)
    # Fitted on a tensor, the fitted arrays are tensors of its dtype on its device.
    for name in FITTED_ARRAYS:
        attribute = getattr(pca, name)
        assert isinstance(attribute, torch.Tensor), name
        assert attribute.dtype == tdtype and attribute.device == T.device, name
    ref = PCA(3, whiten=True).fit(X.astype(np.float64 if tdtype == torch.float64 else np.float32))
    for method in ["transform", "score_samples"]:
        out = getattr(pca, method)(T)
        assert isinstance(out, torch.Tensor) and out.dtype == tdtype and out.device == T.device
        assert_allclose(out.numpy(), getattr(ref, method)(X), rtol=1e-4, atol=1e-4)
    Z = pca.fit_transform(T)
    assert isinstance(Z, torch.Tensor) and Z.dtype == tdtype
    back = pca.inverse_transform(Z)
    assert isinstance(back, torch.Tensor) and back.dtype == tdtype
    assert_allclose(back.numpy(), ref.inverse_transform(ref.transform(X)), atol=1e-4)
    # numpy and lists come back as numpy.
    assert isinstance(pca.transform(X), np.ndarray)
    assert isinstance(pca.transform(X.tolist()), np.ndarray)
    assert isinstance(pca.inverse_transform(Z.numpy()), np.ndarray)


def test_tensor_input_is_validated():
    pca = PCA(2).fit(torch.randn(20, 4))
    assert pca.n_features_in_ == 4
    with pytest.raises(ValueError, match="X has 3 features, but PCA is expecting 4"):
        pca.transform(torch.randn(5, 3))
    for bad in (float("nan"), float("inf")):
        ref = decomposition.PCA(2).fit(np.ones((3, 4)) + np.eye(3, 4))
        match = _sklearn_error(ref.transform, np.full((2, 4), bad, dtype=np.float32))
        with pytest.raises(ValueError, match=match):
            pca.transform(torch.full((2, 4), bad))
    with pytest.raises(ValueError, match="Expected a 2D tensor"):
        pca.transform(torch.randn(4))


def _sklearn_error(method, *args):
    with pytest.raises(ValueError) as error:
        method(*args)
    return re.escape(str(error.value))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_finite_input_gets_sklearns_error(bad, sparse, dtype):
    X = np.random.default_rng(0).standard_normal((60, 5)).astype(dtype)
    X[:, 2] = 0  # a column the components ignore: a NaN there must be found all the same
    solver = "arpack" if sparse else "auto"
    pca, ref = PCA(2, svd_solver=solver).fit(X), decomposition.PCA(2, svd_solver=solver).fit(X)
    Xbad = X.copy()
    Xbad[7, 2] = bad
    if sparse:
        X, Xbad = sp.csr_matrix(X), sp.csr_matrix(Xbad)
    calls = [("transform", Xbad)]
    if not sparse:  # neither library takes sparse input in these two
        calls += [("score_samples", Xbad), ("inverse_transform", Xbad[:, 1:3])]
    for method, arg in calls:
        with pytest.raises(ValueError, match=_sklearn_error(getattr(ref, method), arg)):
            getattr(pca, method)(arg)
    with pytest.raises(ValueError, match=_sklearn_error(ref.fit, Xbad)):
        PCA(2, svd_solver=solver).fit(Xbad)


def test_finite_data_whose_sum_overflows_is_accepted():
    # check_array's first test (a finite sum) fails here, its entry-by-entry test passes.
    X = np.random.default_rng(0).standard_normal((60, 5)).astype(np.float32)
    pca, ref = PCA(2).fit(X), decomposition.PCA(2).fit(X)
    big = X.copy()
    big[:4, 0] = 3e38
    with np.errstate(over="ignore"):
        assert not np.isfinite(big.sum())
    out, expected = pca.transform(big), ref.transform(big)
    assert_allclose(out[:4], expected[:4], rtol=1e-4)
    assert_allclose(out[4:], expected[4:], atol=1e-4)
    with np.errstate(over="ignore", invalid="ignore"):  # its log-likelihood overflows
        assert pca.score_samples(big).shape == (60,)


def test_assume_finite_config_skips_the_check_as_in_sklearn():
    X = np.random.default_rng(0).standard_normal((60, 5))
    pca, ref = PCA(2).fit(X), decomposition.PCA(2).fit(X)
    Xbad = X.copy()
    Xbad[7, 1] = np.nan
    with config_context(assume_finite=True):
        out, expected = pca.transform(Xbad), ref.transform(Xbad)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))
    assert np.isnan(out[7]).all()


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("solver", ["covariance_eigh", "arpack", "auto"])
def test_row_block_products_agree_with_sklearn(solver, order):
    # Large enough for PCA to split the column sums over row blocks
    # (see skvae.decomposition._blas.map_row_blocks).
    X = make_low_rank_matrix(6000, 400, effective_rank=20, tail_strength=0.3, random_state=0)
    X = np.asarray(X + 0.5, order=order)  # a mean far from zero, which the covariance must remove
    with threadpool_limits(limits=2, user_api="blas"):
        pca = PCA(10, svd_solver=solver, random_state=0).fit(X)
        Y = pca.transform(X)
    ref = decomposition.PCA(10, svd_solver=solver, random_state=0).fit(X)
    assert_allclose(pca.mean_, ref.mean_, rtol=1e-12)
    assert_allclose(pca.explained_variance_, ref.explained_variance_, rtol=1e-8)
    assert_allclose(np.abs(pca.components_ @ ref.components_.T), np.eye(10), atol=1e-6)
    assert_allclose(Y, ref.transform(X), atol=1e-6)


def test_set_output_pandas_and_feature_names():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(IRIS, columns=["a", "b", "c", "d"])
    pca = PCA(2).set_output(transform="pandas").fit(df)
    out = pca.transform(df)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == ["pca0", "pca1"]
    assert list(pca.get_feature_names_out()) == ["pca0", "pca1"]
    assert list(pca.feature_names_in_) == ["a", "b", "c", "d"]
    assert isinstance(pca.fit_transform(df), pd.DataFrame)


def test_pickle_round_trip():
    X = make_data((40, 8), False, np.float32)[0]
    pca = PCA(3, svd_solver="randomized", random_state=0).fit(X)
    clone = pickle.loads(pickle.dumps(pca))
    np.testing.assert_array_equal(clone.transform(X), pca.transform(X))
    assert clone.device_ == pca.device_


def test_unpickling_on_a_machine_without_the_device_falls_back_to_cpu(monkeypatch):
    pca = PCA(2).fit(IRIS)
    state = pca.__getstate__()
    state["device_"] = torch.device("cuda:7")
    clone = PCA.__new__(PCA)
    monkeypatch.setattr("skvae._utils.devices.device_available", lambda d: False)
    with pytest.warns(UserWarning, match="not available here"):
        clone.__setstate__(state)
    assert clone.device_ == torch.device("cpu")
    assert_allclose(clone.transform(IRIS), pca.transform(IRIS))


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("solver", ["arpack", "covariance_eigh", "auto"])
def test_sparse_agrees_with_sklearn_and_dense(solver, fmt):
    rng = np.random.RandomState(0)
    X = sp.random(60, 30, density=0.3, format=fmt, random_state=rng) * 3
    ref = decomposition.PCA(10, svd_solver=solver, random_state=0).fit(X)
    ours = PCA(10, svd_solver=solver, random_state=0).fit(X)
    dense = PCA(10, svd_solver=ref._fit_svd_solver, random_state=0).fit(X.toarray())
    for other in (ref, dense):
        assert_allclose(ours.components_, other.components_, atol=1e-9)
        assert_allclose(ours.explained_variance_, other.explained_variance_, rtol=1e-9)
        assert_allclose(ours.noise_variance_, other.noise_variance_, rtol=1e-9)
    assert_allclose(ours.transform(X), ref.transform(X), atol=1e-9)
    assert_allclose(ours.fit_transform(X), ref.transform(X), atol=1e-9)


@pytest.mark.parametrize("solver", ["arpack", "covariance_eigh"])
def test_sparse_is_never_densified(solver, monkeypatch):
    X = sp.random(60, 30, density=0.3, format="csr", random_state=0)
    toarray = sp.csr_matrix.toarray

    def guarded(self, *args, **kwargs):
        # covariance_eigh may densify the small (n_features, n_features) Gram matrix only.
        assert self.shape != X.shape, "the sparse data matrix was densified"
        return toarray(self, *args, **kwargs)

    for cls in (sp.csr_matrix, sp.csc_matrix):
        monkeypatch.setattr(cls, "toarray", guarded)
        monkeypatch.setattr(cls, "todense", guarded)
    PCA(5, svd_solver=solver, random_state=0).fit_transform(X)


@pytest.mark.parametrize("solver", ["full", "randomized"])
def test_sparse_with_a_dense_solver_is_a_type_error(solver):
    X = sp.random(20, 10, density=0.3, format="csr", random_state=0)
    msg = re.escape(f'while "{solver}" was passed. See TruncatedSVD')
    with pytest.raises(TypeError, match=msg):
        PCA(2, svd_solver=solver).fit(X)


# --- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, match",
    [
        (
            dict(svd_solver="foo"),
            "The 'svd_solver' parameter of PCA must be a str among {'auto', 'full', "
            "'covariance_eigh', 'arpack', 'randomized'}. Got 'foo' instead.",
        ),
        (
            dict(n_components=-1),
            "The 'n_components' parameter of PCA must be an int in the range [0, inf), "
            "a float in the range (0.0, 1.0), a str among {'mle'} or None. Got -1 instead.",
        ),
        (dict(n_components=1.0), "The 'n_components' parameter of PCA must be"),
        (dict(copy="yes"), "The 'copy' parameter of PCA must be an instance of 'bool'"),
        (dict(whiten=None), "The 'whiten' parameter of PCA must be an instance of 'bool'"),
        (dict(tol=-1.0), "The 'tol' parameter of PCA must be a float in the range [0.0, inf)"),
        (dict(iterated_power=-1), "The 'iterated_power' parameter of PCA must be a str among"),
        (dict(n_oversamples=0), "The 'n_oversamples' parameter of PCA must be an int in the"),
        (
            dict(power_iteration_normalizer="qr"),
            "The 'power_iteration_normalizer' parameter of PCA must be a str among",
        ),
        (dict(random_state="x"), "The 'random_state' parameter of PCA must be an int"),
        (dict(device="tpu"), "The 'device' parameter of PCA must be"),
    ],
)
def test_bad_parameters_read_like_sklearn(params, match):
    with pytest.raises(InvalidParameterError, match=re.escape(match)):
        PCA(**params).fit(IRIS)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present")
def test_missing_device_is_an_error():
    with pytest.raises(ValueError, match="no CUDA device"):
        PCA(device="cuda").fit(IRIS)


@pytest.mark.parametrize(
    "data", [np.array([[0, 1, 0], [1, 0, 0]]), np.array([[0, 1, 0], [1, 0, 0]]).T]
)
@pytest.mark.parametrize(
    "solver, n_components, match",
    [
        ("arpack", 0, r"must be between 1 and min\(n_samples, n_features\)"),
        ("randomized", 0, r"must be between 1 and min\(n_samples, n_features\)"),
        (
            "arpack",
            2,
            r"n_components=2 must be strictly less than min\(n_samples, n_features\)=2 "
            r"with svd_solver='arpack'",
        ),
        (
            "auto",
            3,
            r"n_components=3 must be between 0 and min\(n_samples, n_features\)=2 "
            r"with svd_solver='full'",
        ),
    ],
)
def test_n_components_out_of_range(data, solver, n_components, match):
    with pytest.raises(ValueError, match=match):
        PCA(n_components, svd_solver=solver).fit(data)


@pytest.mark.parametrize("solver", ["arpack", "randomized"])
def test_mle_needs_a_full_solver(solver):
    with pytest.raises(
        ValueError, match=f"n_components='mle' cannot be a string with svd_solver='{solver}'"
    ):
        PCA("mle", svd_solver=solver).fit(IRIS)


def test_mle_needs_more_samples_than_features():
    with pytest.raises(ValueError, match="only supported if n_samples >= n_features"):
        PCA("mle", svd_solver="full").fit(IRIS[:3])


def test_unfitted_and_shape_errors():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        PCA().transform(IRIS)
    pca = PCA(2).fit(IRIS)
    with pytest.raises(ValueError, match="X has 3 features, but PCA is expecting 4 features"):
        pca.transform(IRIS[:, :3])


# --- accelerators ----------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize("whiten", [False, True])
@pytest.mark.parametrize("solver", ["full", "covariance_eigh", "arpack", "randomized"])
def test_accelerator_agrees_with_cpu(solver, whiten):
    device = accelerators()[0]
    X = make_data((200, 40), False, np.float32)[0]
    kwargs = dict(n_components=10, svd_solver=solver, whiten=whiten, random_state=0)
    if solver == "randomized":
        kwargs["iterated_power"] = 30
    cpu = PCA(device="cpu", **kwargs).fit(X)
    gpu = PCA(device=device, **kwargs).fit(X)
    assert gpu.device_.type == device
    assert isinstance(gpu.components_, np.ndarray) and gpu.components_.dtype == np.float32
    for name in ["components_", "explained_variance_", "mean_", "singular_values_"]:
        assert_allclose(getattr(gpu, name), getattr(cpu, name), rtol=1e-3, atol=1e-3)
    assert_allclose(gpu.transform(X), cpu.transform(X), rtol=1e-3, atol=1e-3)
    assert_allclose(gpu.score_samples(X), cpu.score_samples(X), rtol=1e-3)
    T = torch.from_numpy(X).to(device)
    Z = gpu.transform(T)
    assert Z.device.type == device
    assert_allclose(Z.cpu().numpy(), cpu.transform(X), rtol=1e-3, atol=1e-3)
    assert gpu.sample(5, random_state=0).shape == (5, 40)
