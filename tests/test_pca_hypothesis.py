"""Property-based agreement of skvae.PCA with sklearn.decomposition.PCA.

Over small random problems (1-40 samples, 1-12 features, low and full rank,
scales 1e-3..1e3, float32/float64, every solver, n_components at and around
its limits, whitening, numpy, CSR, CSC and torch input), either both libraries
fit and agree on every attribute and output to the dtype's tolerance, or both
raise the same class of exception. Torch input runs skvae's torch kernels on
the CPU, numpy and scipy input its numpy/scipy kernels.

Where the answer itself is not unique (principal axes inside a cluster of
equal variances, the projection on k components when the k-th and (k+1)-th
variances tie), only what is unique is compared: the spectrum, the axes that
stand apart, the reconstruction when the subspace is determined.
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import event, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from sklearn import decomposition

from skvae import PCA

SOLVERS = ["auto", "full", "covariance_eigh", "arpack", "randomized"]
# Power-iteration normalizers whose iterations keep the trailing directions: with
# 'none' they collapse onto the leading one, and what is left is round-off in both.
NORMALIZERS = ["auto", "QR", "LU"]
CONTAINERS = ["numpy", "csr", "csc", "torch"]
# Agreement, relative to the largest value of the quantity compared.
ATOL = {np.float64: 1e-8, np.float32: 2e-4}
# Relative variance gap that makes a principal axis (or subspace) well determined.
GAP = {np.float64: 1e-5, np.float32: 2e-2}
# Exceptions that must match in kind: numpy's LinAlgError is a ValueError, checked first.
KINDS = (np.linalg.LinAlgError, ValueError, TypeError)


@st.composite
def problems(draw, solvers=SOLVERS, containers=CONTAINERS):
    n_samples = draw(st.integers(1, 40))
    n_features = draw(st.integers(1, 12))
    low = min(n_samples, n_features)
    rank = draw(st.sampled_from(["full", "low"]))
    scale = 10.0 ** draw(st.floats(-3, 3))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    n_rows = n_samples + 5  # the last five rows are held out for transform and score
    if rank == "low":
        r = draw(st.integers(1, max(1, low - 1)))
        X = rng.standard_normal((n_rows, r)) @ rng.standard_normal((r, n_features))
    else:
        # Distinct column scales: a spectrum with gaps, so that axes can be compared.
        X = rng.standard_normal((n_rows, n_features)) * np.geomspace(1, 0.1, n_features)
    X = (scale * (X + rng.standard_normal(n_features))).astype(dtype)
    n_components = draw(
        st.sampled_from(
            [None, 0, 1, low, low + 1, 0.5, 0.9, 0.999]
            + (["mle"] if rank == "full" and n_samples > n_features else [])
        )
    )
    params = dict(
        n_components=n_components,
        svd_solver=draw(st.sampled_from(solvers)),
        whiten=draw(st.booleans()),
        random_state=0,
    )
    if params["svd_solver"] == "randomized":
        # Enough power iterations for round-off accuracy, as in sklearn's solver tests.
        params["iterated_power"] = 20
    return X[:n_samples], X[n_samples:], params, draw(st.sampled_from(containers))


def to_container(X, container):
    if container == "torch":
        return torch.from_numpy(X)
    if container in ("csr", "csc"):
        return sp.csr_matrix(X) if container == "csr" else sp.csc_matrix(X)
    return X


def run(make, X):
    """(fitted estimator, None) or (None, the exception fit raised)."""
    try:
        return make().fit(X), None
    except Exception as error:  # noqa: BLE001 - the class is what is compared
        return None, error


def kind(error):
    return next((k for k in KINDS if isinstance(error, k)), type(error))


def both(call_ref, call_ours):
    """Both results, or (None, None) when both calls raise the same kind of exception."""
    try:
        ref = call_ref()
    except Exception as ref_error:  # noqa: BLE001
        with pytest.raises(kind(ref_error)):
            call_ours()
        return None, None
    return ref, as_numpy(call_ours())


def as_numpy(Y):
    return Y.numpy() if isinstance(Y, torch.Tensor) else np.asarray(Y)


def separated(variances, gap):
    """Which entries of ``variances`` differ from all the others by more than ``gap``."""
    diffs = np.abs(variances[:, None] - variances[None, :])
    np.fill_diagonal(diffs, np.inf)
    return diffs.min(axis=1, initial=np.inf) > gap


class OnHost:
    """A fitted skvae PCA whose fitted arrays read as numpy (tensors after a tensor fit)."""

    def __init__(self, estimator):
        self.estimator = estimator

    def __getattr__(self, name):
        value = getattr(self.estimator, name)
        return value.numpy() if isinstance(value, torch.Tensor) else value


def check_agreement(ref, ours, X, X_test, container, dtype):
    if container == "torch":
        # Fitted on a tensor, every fitted array is a tensor of the data's dtype.
        for name, value in vars(ref).items():
            if isinstance(value, np.ndarray):
                assert isinstance(getattr(ours, name), torch.Tensor), name
    ours = OnHost(ours)
    atol, gap = ATOL[dtype], GAP[dtype]
    Xc_test = to_container(X_test, container)
    k = ref.n_components_
    assert ours.n_components_ == k
    assert ours.n_samples_ == ref.n_samples_
    assert ours.components_.dtype == ref.components_.dtype
    assert_allclose(ours.mean_, ref.mean_, rtol=0, atol=atol * max(np.abs(X).max(), 1e-300))
    if X.shape[0] == 1:
        # One sample: the variances are 0/0; both give NaN, and nothing else is defined.
        assert_allclose(ours.explained_variance_, ref.explained_variance_)
        return
    # The full spectrum in float64, padded with the zero variances of the missing axes.
    exact = np.linalg.svd((X - X.mean(axis=0)).astype(np.float64), compute_uv=False)
    spectrum = np.zeros(X.shape[1])
    spectrum[: exact.size] = exact**2 / (X.shape[0] - 1)
    top = spectrum[0]
    if ref._fit_svd_solver == "covariance_eigh":
        # X^T X - n mean mean^T cancels: its round-off is relative to the raw second
        # moment, in both libraries.
        raw = (X.astype(np.float64) ** 2).sum(axis=0).max() / (X.shape[0] - 1)
        top = max(top, raw)
    assert_allclose(ours.explained_variance_, ref.explained_variance_, rtol=0, atol=atol * top)
    assert_allclose(
        ours.singular_values_**2, ref.singular_values_**2, rtol=0, atol=atol * top * X.shape[0]
    )
    total = max(spectrum.sum(), np.finfo(np.float64).tiny)
    ratio_atol = atol * top / total
    assert_allclose(ours.explained_variance_ratio_, ref.explained_variance_ratio_, atol=ratio_atol)
    assert_allclose(ours.noise_variance_, ref.noise_variance_, rtol=0, atol=atol * top * X.shape[1])

    # Axes that stand apart are unique up to sign, and the sign is sklearn's unless the two
    # largest entries of the axis tie.
    unique = separated(spectrum, gap * top)[:k]
    signs = np.ones(k)
    for i in np.flatnonzero(unique):
        dot = float(ours.components_[i] @ ref.components_[i])
        assert abs(abs(dot) - 1) < 10 * atol, (i, dot)
        entries = np.sort(np.abs(ref.components_[i]))[::-1]
        if entries.size < 2 or entries[0] - entries[1] > 10 * atol:
            assert dot > 0, f"axis {i} has the opposite sign to sklearn's"
        signs[i] = np.sign(dot)

    Z_ref, Z = both(lambda: ref.transform(X_test), lambda: ours.transform(Xc_test))
    assert Z.dtype == Z_ref.dtype and Z.shape == Z_ref.shape
    # Whitening divides by sqrt(variance): round-off for a null axis.
    cols = unique & (spectrum[:k] > gap * top) if ref.whiten else unique
    scale = max(np.abs(Z_ref[:, cols]).max(initial=0.0), np.abs(X_test).max())
    assert_allclose(Z[:, cols] * signs[cols], Z_ref[:, cols], rtol=0, atol=atol * scale)

    # The subspace of the k leading axes is unique when a gap follows it; whitening
    # round-trips through 1 / sqrt(variance), which is round-off for a null axis.
    determined = k == 0 or k == X.shape[1] or (spectrum[k - 1] - spectrum[k]) > gap * top
    if determined and not (ref.whiten and k > 0 and spectrum[k - 1] <= gap * top):
        back_ref, back = both(
            lambda: ref.inverse_transform(Z_ref),
            lambda: ours.inverse_transform(ours.transform(Xc_test)),
        )
        if back_ref is not None:
            scale = np.abs(back_ref).max()
            assert_allclose(back, back_ref, rtol=0, atol=10 * atol * scale)
        # sklearn inverts the model covariance in the data's dtype: compare where that
        # is accurate, a covariance whose condition number is far below 1 / eps.
        cov = ref.get_covariance().astype(np.float64)
        eigenvalues = np.linalg.eigvalsh(cov)
        well_conditioned = eigenvalues[-1] < 1e-4 / np.finfo(dtype).eps * eigenvalues[0]
        if ref.noise_variance_ > gap * top and well_conditioned:
            dense = container in ("numpy", "torch")  # score_samples takes no sparse input
            Xd_test = Xc_test if dense else X_test
            ll_ref, ll = both(
                lambda: ref.score_samples(X_test), lambda: ours.score_samples(Xd_test)
            )
            assert_allclose(ll, ll_ref, rtol=10 * atol, atol=10 * atol * np.abs(ll_ref).max())


@given(problems())
def test_agrees_with_sklearn(problem):
    X, X_test, params, container = problem
    with warnings.catch_warnings():
        # Degenerate problems (one sample, constant columns) divide 0 by 0 in both
        # libraries; the results (NaN) are compared, the RuntimeWarnings are not.
        warnings.simplefilter("ignore", RuntimeWarning)
        ref, ref_error = run(
            lambda: decomposition.PCA(**params),
            to_container(X, container) if container != "torch" else X,
        )
        ours, error = run(lambda: PCA(**params), to_container(X, container))
        if ref_error is not None:
            assert error is not None, f"sklearn raised {ref_error!r}, skvae fitted"
            assert kind(error) is kind(ref_error), (error, ref_error)
            event(f"both raise {kind(ref_error).__name__}")
            return
        if error is not None:
            raise AssertionError(f"sklearn fitted, skvae raised {error!r}") from error
        event(f"both fit ({ref._fit_svd_solver}, {container})")
        check_agreement(ref, ours, X, X_test, container, X.dtype.type)


@pytest.mark.parametrize("container", ["numpy", "torch"])
def test_fit_transform_matches_transform_on_random_problems(container):
    # fit_transform reuses the decomposition (U S) instead of projecting again.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 6)) * np.geomspace(1, 0.1, 6)
    for solver in SOLVERS:
        pca = PCA(3, svd_solver=solver, random_state=0)
        Y = as_numpy(pca.fit_transform(to_container(X, container)))
        assert_allclose(Y, as_numpy(pca.transform(to_container(X, container))), atol=1e-12)


@settings(max_examples=300)
@given(problems(solvers=["randomized"], containers=["numpy"]), st.sampled_from(NORMALIZERS))
def test_randomized_draws_sklearns_test_matrix(problem, normalizer):
    # The same seed draws the same Gaussian test matrix (numpy's RandomState), so
    # with sklearn's default power iterations, not only at convergence, every
    # component sklearn determines is the same, component by component.
    X, _, params, _ = problem
    params = dict(params, power_iteration_normalizer=normalizer)
    del params["iterated_power"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # 0/0 of one sample, in both
        ref, ref_error = run(lambda: decomposition.PCA(**params), X)
        ours, error = run(lambda: PCA(**params), X)
    if ref_error is not None:
        assert kind(error) is kind(ref_error), (error, ref_error)
        return
    assert error is None, error
    atol = ATOL[X.dtype.type]
    largest = ref.singular_values_.max(initial=0.0)
    assert_allclose(ours.singular_values_, ref.singular_values_, rtol=0, atol=10 * atol * largest)
    # A component of zero variance (beyond the rank of the centred data) is round-off
    # in both libraries: any unit vector orthogonal to the others.
    top = max(ref.explained_variance_.max(initial=0.0), np.finfo(np.float64).tiny)
    determined = ref.explained_variance_ > 100 * atol * top
    event(f"{int(determined.sum())} of {ref.n_components_} components determined")
    assert_allclose(ours.components_[determined], ref.components_[determined], atol=100 * atol)
