"""PCA as an array-API estimator: fitted state in the input's container, sklearn's mixing rules.

sklearn's own array-API estimator checks run in tests/test_common.py; these
tests pin what a user sees around them.
"""

import pickle
import re
import warnings

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from sklearn import config_context, decomposition
from sklearn.datasets import make_low_rank_matrix
from test_pca import FITTED_ARRAYS

from skvae import PCA
from skvae._utils.devices import accelerators

SOLVERS = ["full", "covariance_eigh", "randomized", "arpack"]


def data(n_samples=200, n_features=10, dtype=np.float64):
    X = make_low_rank_matrix(n_samples, n_features, effective_rank=4, random_state=0)
    return (10 * X + np.linspace(-1, 1, n_features)).astype(dtype)


@pytest.fixture
def dispatch(monkeypatch):
    """sklearn's array-API dispatch, on for the test (sklearn needs array-api-compat)."""
    pytest.importorskip("array_api_compat", reason="array-API dispatch needs array-api-compat")
    # sklearn enables dispatch only with SciPy's array-API mode declared; skvae hands
    # SciPy numpy arrays only, so declaring it changes nothing SciPy does here.
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    with config_context(array_api_dispatch=True):
        yield


def same_namespace_error(method, fitted, got):
    return re.escape(
        f"Inputs passed to PCA.{method}() must use the same namespace and the same device "
        f"as those passed to fit(). PCA was fitted on {fitted}, and {method} got {got}."
    )


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("tdtype", [torch.float32, torch.float64])
def test_fitted_on_a_tensor_every_fitted_array_is_a_tensor(solver, tdtype):
    X = data()
    T = torch.from_numpy(X).to(tdtype)
    pca = PCA(3, svd_solver=solver, random_state=0).fit(T)
    ref = PCA(3, svd_solver=solver, random_state=0).fit(T.numpy())
    for name in FITTED_ARRAYS:
        attribute = getattr(pca, name)
        assert isinstance(attribute, torch.Tensor), name
        assert attribute.dtype == tdtype and attribute.device == T.device, name
        assert isinstance(getattr(ref, name), np.ndarray | np.floating), name
        assert_allclose(attribute.numpy(), getattr(ref, name), rtol=2e-3, atol=1e-4, err_msg=name)
    assert pca.noise_variance_.ndim == 0
    # The reproducer: the fitted arrays combine with the data.
    assert (pca.components_ @ T.T).shape == (3, T.shape[0])
    # The model's own answers come in the fitted container.
    for method in ["get_covariance", "get_precision"]:
        answer = getattr(pca, method)()
        assert isinstance(answer, torch.Tensor) and answer.dtype == tdtype, method
        assert_allclose(answer.numpy(), getattr(ref, method)(), rtol=2e-3, atol=1e-3)
    sample = pca.sample(5, random_state=0)
    assert isinstance(sample, torch.Tensor) and sample.shape == (5, 10) and sample.dtype == tdtype
    assert_allclose(sample.numpy(), ref.sample(5, random_state=0), rtol=1e-3, atol=1e-3)


def test_a_fit_without_discarded_components_has_a_zero_tensor_noise():
    pca = PCA(None, svd_solver="full").fit(torch.randn(20, 4, dtype=torch.float64))
    assert torch.equal(pca.noise_variance_, torch.tensor(0.0, dtype=torch.float64))
    assert PCA(None, svd_solver="full").fit(np.eye(4)).noise_variance_ == 0.0


def test_tags_declare_array_api_support():
    for solver in ["auto", *SOLVERS]:
        assert PCA(svd_solver=solver).__sklearn_tags__().array_api_support


@pytest.mark.parametrize(
    "method, args",
    [("transform", ()), ("inverse_transform", ()), ("score_samples", ()), ("partial_fit", ())],
)
def test_under_dispatch_other_containers_are_refused(dispatch, method, args):
    X = data()
    T = torch.from_numpy(X)
    on_tensors = PCA(3).fit(T)
    on_numpy = PCA(3).fit(X)
    if method == "inverse_transform":
        X, T = X[:, :3], T[:, :3]
    match = same_namespace_error(method, "torch tensors on cpu", "numpy arrays")
    with pytest.raises(ValueError, match=match):
        getattr(on_tensors, method)(X)
    with pytest.raises(
        ValueError, match=same_namespace_error(method, "torch tensors on cpu", "list input")
    ):
        getattr(on_tensors, method)(X.tolist())
    match = same_namespace_error(method, "numpy arrays", "torch tensors on cpu")
    with pytest.raises(ValueError, match=match):
        getattr(on_numpy, method)(T)
    # The fitted container itself is answered in kind.
    assert isinstance(getattr(on_tensors, method)(T), torch.Tensor | PCA)
    assert isinstance(getattr(on_numpy, method)(X.tolist()), np.ndarray | PCA)


def test_score_under_dispatch_is_a_float_and_refuses_other_containers(dispatch):
    X = data()
    pca = PCA(3).fit(torch.from_numpy(X))
    assert isinstance(pca.score(torch.from_numpy(X)), float)
    with pytest.raises(ValueError, match="must use the same namespace"):
        pca.score(X)


def test_without_dispatch_the_model_meets_the_data_where_they_are():
    X = data()
    T = torch.from_numpy(X)
    on_tensors, on_numpy = PCA(3).fit(T), PCA(3).fit(X)
    for pca in (on_tensors, on_numpy):
        assert isinstance(pca.transform(X), np.ndarray)
        assert isinstance(pca.transform(X.tolist()), np.ndarray)
        assert isinstance(pca.transform(T), torch.Tensor)
        assert isinstance(pca.score_samples(X), np.ndarray)
        assert isinstance(pca.inverse_transform(X[:, :3]), np.ndarray)
    assert_allclose(on_tensors.transform(X), on_numpy.transform(X), atol=1e-10)
    assert_allclose(on_numpy.transform(T).numpy(), on_numpy.transform(X), atol=1e-12)


def test_move_estimator_to_moves_the_fitted_state():
    compat = pytest.importorskip(
        "array_api_compat", reason="move_estimator_to needs array-api-compat"
    )
    array_api = pytest.importorskip("sklearn.utils._array_api")
    if not hasattr(array_api, "move_estimator_to"):
        pytest.skip("this scikit-learn has no move_estimator_to")
    X = data()
    T = torch.from_numpy(X)
    on_tensors = PCA(3).fit(T)
    moved = array_api.move_estimator_to(on_tensors, np, "cpu")
    for name in FITTED_ARRAYS:
        assert not isinstance(getattr(moved, name), torch.Tensor), name
    assert_allclose(moved.transform(X), on_tensors.transform(T).numpy(), atol=1e-12)
    assert isinstance(moved.get_covariance(), np.ndarray)
    back = array_api.move_estimator_to(moved, compat.array_namespace(T), T.device)
    assert isinstance(back.components_, torch.Tensor)
    assert isinstance(back.get_precision(), torch.Tensor)


@pytest.mark.parametrize("narrow", [torch.float16, torch.bfloat16])
def test_narrow_float_tensors_are_computed_and_answered_in_float64(narrow):
    T = torch.from_numpy(data()).to(narrow)
    pca = PCA(3).fit(T)
    # sklearn's validation converts float16 to float64: the same numbers as a float64 fit.
    ref = decomposition.PCA(3).fit(T.to(torch.float64).numpy())
    assert pca.components_.dtype == torch.float64
    assert_allclose(pca.components_.numpy(), ref.components_, atol=1e-10)
    Z = pca.transform(T)
    assert Z.dtype == torch.float64
    assert_allclose(Z.numpy(), ref.transform(T.to(torch.float64).numpy()), atol=1e-10)
    ll = pca.score_samples(T)
    assert ll.dtype == torch.float64 and bool(torch.isfinite(ll).all())
    assert np.isfinite(pca.score(T))
    assert pca.inverse_transform(Z.to(narrow)).dtype == torch.float64


def test_float16_arrays_are_fitted_in_float64_as_in_sklearn():
    X = data().astype(np.float16)
    pca, ref = PCA(3).fit(X), decomposition.PCA(3).fit(X)
    assert pca.components_.dtype == ref.components_.dtype == np.float64
    assert pca.transform(X).dtype == ref.transform(X).dtype
    assert np.isfinite(pca.score_samples(X)).all()


def test_pickle_keeps_a_tensor_model_a_tensor_model():
    pca = PCA(3).fit(torch.from_numpy(data()))
    clone = pickle.loads(pickle.dumps(pca))
    for name in FITTED_ARRAYS:
        assert torch.equal(getattr(clone, name), getattr(pca, name)), name


def test_tensors_of_a_missing_device_are_loaded_on_the_cpu():
    pca = PCA(3).fit(torch.from_numpy(data()))
    # As a CUDA model pickles: tensors moved to the CPU, their device recorded.
    state = dict(pca.__getstate__(), _tensors_device="cuda:7", device_=torch.device("cuda:7"))
    clone = PCA.__new__(PCA)
    with pytest.warns(UserWarning, match="fitted on device 'cuda:7', which is not available"):
        clone.__setstate__(state)
    assert clone.device_ == clone.components_.device == torch.device("cpu")


@pytest.mark.gpu
@pytest.mark.parametrize("solver", SOLVERS)
def test_an_accelerator_fit_keeps_its_state_on_the_accelerator(solver, dispatch):
    device = accelerators()[0]
    X = data(dtype=np.float32)
    T = torch.from_numpy(X).to(device)
    pca = PCA(3, svd_solver=solver, random_state=0).fit(T)
    ref = PCA(3, svd_solver=solver, random_state=0).fit(X)
    for name in FITTED_ARRAYS:
        assert getattr(pca, name).device.type == device, name
        assert_allclose(getattr(pca, name).cpu().numpy(), getattr(ref, name), rtol=1e-3, atol=1e-3)
    for method in ["get_covariance", "get_precision", "sample"]:
        assert getattr(pca, method)().device.type == device, method
    assert pca.transform(T).device.type == device
    with pytest.raises(ValueError, match="must use the same namespace"):
        pca.transform(T.cpu())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clone = pickle.loads(pickle.dumps(pca))
    assert clone.components_.device == pca.components_.device


@pytest.mark.parametrize("device_name", ["CPU_DEVICE", "device1"])
def test_another_namespace_keeps_its_namespace_and_device(device_name, dispatch):
    xp = pytest.importorskip("array_api_strict", reason="the test's namespace is array-api-strict")
    device = xp.Device(device_name)
    X = data()
    A = xp.asarray(X, device=device)
    pca, ref = PCA(3, whiten=True).fit(A), PCA(3, whiten=True).fit(X)
    for name in FITTED_ARRAYS:
        attribute = getattr(pca, name)
        assert attribute.__array_namespace__() is xp and attribute.device == device, name
        assert_allclose(np.from_dlpack(attribute), getattr(ref, name), atol=1e-12, err_msg=name)
    Z = pca.transform(A)
    for answer, expected in [
        (Z, ref.transform(X)),
        (pca.fit_transform(A), ref.fit_transform(X)),
        (pca.inverse_transform(Z), ref.inverse_transform(ref.transform(X))),
        (pca.score_samples(A), ref.score_samples(X)),
        (pca.get_covariance(), ref.get_covariance()),
        (pca.get_precision(), ref.get_precision()),
    ]:
        assert answer.__array_namespace__() is xp and answer.device == device
        assert_allclose(np.from_dlpack(answer), expected, atol=1e-10)
    assert pca.score(A) == pytest.approx(ref.score(X))
    match = same_namespace_error(
        "transform", f"array_api_strict arrays on {device!r}", "numpy arrays"
    )
    with pytest.raises(ValueError, match=match):
        pca.transform(X)
    on_numpy = PCA(3).fit(X)
    with pytest.raises(ValueError, match="must use the same namespace"):
        on_numpy.transform(A)
    # partial_fit continues in the namespace of its first batch.
    streamed = PCA(3).partial_fit(A[:100, ...]).partial_fit(A[100:, ...])
    assert streamed.components_.__array_namespace__() is xp
