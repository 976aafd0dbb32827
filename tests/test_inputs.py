"""What the neural estimators do with odd inputs, where their warnings point, their seeds.

AutoencoderTransformer and VAETransformer share their validation, fit driver and
inference, so each case runs on both, on numpy arrays and on tensors.
"""

import copy
import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse
import sklearn
import torch
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils import get_tags

from skvae import AutoencoderTransformer, VAETransformer
from skvae.exceptions import PosteriorCollapseWarning

# Every row trains (no held-out split): these tests pin inputs, not the stopping rule.
SMALL = dict(
    n_components=2,
    hidden_layer_sizes=(8,),
    max_iter=3,
    early_stopping=False,
    device="cpu",
    random_state=0,
)
ESTIMATORS = {
    "ae": AutoencoderTransformer(**SMALL),
    "vae": VAETransformer(**SMALL),
    "vae-bernoulli": VAETransformer(likelihood="bernoulli", **SMALL),
}
METHODS = ("fit", "partial_fit", "transform", "inverse_transform", "score_samples")


def fit_briefly(est, X):
    """fit for max_iter=3 epochs, fewer than n_iter_no_change (10).

    The stopping rule cannot fire, so max_iter ends the fit, with its ConvergenceWarning.
    A VAE of three epochs may or may not have opened a latent unit: its collapse warning
    is beside these tests of inputs.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PosteriorCollapseWarning)
        with pytest.warns(ConvergenceWarning, match=r"stopped after max_iter=3 epochs"):
            return est.fit(X)


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).random((40, 4))  # in [0, 1], for every likelihood


@pytest.fixture(scope="module", params=sorted(ESTIMATORS))
def fitted(request, X):
    return fit_briefly(clone(ESTIMATORS[request.param]), X)


def call(fitted, method, X):
    """``method`` on X: fit and partial_fit on a fresh copy, the others on the fitted model.

    Every caller expects X to be refused, before any training that could warn.
    """
    est = clone(fitted) if method in ("fit", "partial_fit") else fitted
    return getattr(est, method)(X)


def row(fitted, method, values):
    """One row starting with ``values``, as wide as ``method`` expects, zero-padded."""
    width = fitted.n_components if method == "inverse_transform" else fitted.n_features_in_
    return values + [0] * (width - len(values))


# -------------------------------------------------------------------- shapes and kinds
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("container", [np.empty, torch.empty])
def test_no_features_is_refused_like_check_array(fitted, method, container):
    name = type(fitted).__name__
    with pytest.raises(
        ValueError,
        match=rf"0 feature\(s\) \(shape=\(10, 0\)\) while a minimum of 1 is required by {name}\.",
    ):
        call(fitted, method, container((10, 0)))


@pytest.mark.parametrize("method", METHODS)
def test_no_samples_is_refused(fitted, method):
    with pytest.raises(ValueError, match=r"0 sample\(s\) \(shape=\(0, 4\)\) while a minimum of 1"):
        call(fitted, method, torch.empty(0, 4))


# torch says so when a CSR tensor is made; the test is about what skvae says.
@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta state")
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("layout", ["coo", "csr"])
def test_sparse_tensor_is_refused_with_the_way_out(fitted, method, layout):
    dense = torch.tensor([row(fitted, method, [0.5])] * 3)
    sparse = dense.to_sparse() if layout == "coo" else dense.to_sparse_csr()
    with pytest.raises(TypeError, match=r"sparse tensor \(layout=torch\.sparse_.*X\.to_dense\(\)"):
        call(fitted, method, sparse)
    with pytest.raises(TypeError, match=r"Sparse data was passed for X, but dense data"):
        call(fitted, method, scipy.sparse.csr_matrix(dense.numpy()))


@pytest.mark.parametrize("method", METHODS)
def test_complex_values_are_refused_not_truncated(fitted, method):
    values = row(fitted, method, [0.5 + 0.25j])
    with pytest.raises(ValueError, match=r"Complex data not supported: X is a torch\.complex"):
        call(fitted, method, torch.tensor([values]))
    with pytest.raises(ValueError, match=r"Complex data not supported"):
        call(fitted, method, np.array([values]))


@pytest.mark.parametrize("cls", [AutoencoderTransformer, VAETransformer])
def test_feature_names_need_a_fitted_model(cls):
    with pytest.raises(NotFittedError, match=rf"This {cls.__name__} instance is not fitted yet"):
        cls(3).get_feature_names_out()


# ------------------------------------------------------------------------------ values
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("container", [np.array, torch.tensor])
def test_values_beyond_float32_name_the_limit_and_the_way_out(fitted, method, container):
    dtype = np.float64 if container is np.array else torch.float64
    X = container([row(fitted, method, [-1e39])], dtype=dtype)
    with pytest.raises(
        ValueError,
        match=r"X holds values up to 1e\+39 in magnitude, beyond the largest float32, "
        r"3\.4e\+38.*Scale X first",
    ):
        call(fitted, method, X)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nan_and_infinity_are_refused(fitted, method, value):
    values = row(fitted, method, [value])
    with pytest.raises(ValueError, match=r"Input X contains NaN or infinity; .* Impute"):
        call(fitted, method, torch.tensor([values]))
    with pytest.raises(ValueError, match=r"Input X contains (NaN|infinity)"):
        call(fitted, method, np.array([values]))


def test_assume_finite_skips_the_pass_over_tensor_values(fitted):
    X = torch.full((2, 4), float("nan"))
    with sklearn.config_context(assume_finite=True):
        assert torch.isnan(fitted.transform(X)).all()


def test_refused_data_leave_the_fitted_model_as_it_was(fitted, X):
    before = fitted.transform(X)
    for bad in (torch.empty(10, 0), torch.tensor([[1e39] * 4], dtype=torch.float64)):
        with pytest.raises(ValueError, match=r"0 feature\(s\)|beyond the largest float32"):
            fitted.partial_fit(bad)
    np.testing.assert_array_equal(fitted.transform(X), before)


def test_scores_of_half_precision_tensors_are_float32():
    # Fixed c = 1e-4 on values up to 16: scores below -1e5 nats, beyond float16's -65504,
    # even from PCA's reconstructions.
    X = np.random.default_rng(0).integers(0, 17, size=(50, 8)).astype(np.float64)
    vae = fit_briefly(VAETransformer(noise_variance=1e-4, **SMALL), X)
    T = torch.as_tensor(X[:3])
    expected = vae.score_samples(T.float())
    assert float(expected.max()) < -65504
    for half in (T.half(), T.bfloat16()):
        for scores in (vae.score_samples(half), vae.score_samples_iwae(half, n_importance=2)):
            assert scores.dtype == torch.float32
            assert torch.isfinite(scores).all()
        torch.testing.assert_close(vae.score_samples(half), expected, rtol=0, atol=0)
    ae = fit_briefly(AutoencoderTransformer(**SMALL), X)
    assert ae.score_samples(T.half()).dtype == torch.float32
    # Codes and reconstructions keep the tensor's dtype.
    assert vae.transform(T.half()).dtype == torch.float16


@pytest.mark.parametrize("method", ["transform", "inverse_transform"])
def test_a_rows_result_does_not_depend_on_the_rows_beside_it(fitted, X, method):
    # To float32 precision: the kernels round a row by the rows beside it, by an ulp or two.
    X = X if method == "transform" else fitted.transform(X)
    apply = getattr(fitted, method)
    full = apply(X)
    for rows in (slice(0, 1), slice(7, 20), slice(None, None, -1)):
        np.testing.assert_allclose(apply(X[rows]), full[rows], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("likelihood", ["bernoulli", "continuous_bernoulli"])
def test_unit_interval_likelihoods_declare_and_refuse_negative_x(X, likelihood):
    assert get_tags(VAETransformer(likelihood=likelihood)).input_tags.positive_only
    with pytest.raises(
        ValueError,
        match=rf"Negative values in data passed to VAETransformer: likelihood='{likelihood}' "
        r"needs X in \[0, 1\]; got values in \[-0.997, -0.00274\]\. Scale X",
    ):
        VAETransformer(likelihood=likelihood, **SMALL).fit(-X)


@pytest.mark.parametrize("est", [VAETransformer(), AutoencoderTransformer()])
def test_gaussian_models_take_negative_x(est):
    assert not get_tags(est).input_tags.positive_only


@pytest.mark.parametrize("cls", [AutoencoderTransformer, VAETransformer])
def test_early_stopping_on_one_sample_names_n_samples(cls):
    with pytest.raises(ValueError, match=r"0 validation and 1 training samples out of n_samples=1"):
        cls(early_stopping=True).fit(np.zeros((1, 3)))


# ---------------------------------------------------------------------------- warnings
@pytest.mark.parametrize("how", ["fit", "fit_transform", "pipeline"])
def test_convergence_warning_points_at_the_callers_line(X, how):
    est = AutoencoderTransformer(**{**SMALL, "max_iter": 1})
    fit = {
        "fit": est.fit,
        "fit_transform": est.fit_transform,
        "pipeline": make_pipeline(MinMaxScaler(), est).fit,
    }[how]
    with pytest.warns(ConvergenceWarning, match=r"stopped after max_iter=1 epochs") as record:
        fit(X)
    assert [r.filename for r in record] == [__file__]


def test_collapse_warning_points_at_the_callers_line(X):
    # c = 100 on values in [0, 1]: nothing is worth encoding.
    est = VAETransformer(**{**SMALL, "noise_variance": 100.0})
    with pytest.warns((PosteriorCollapseWarning, ConvergenceWarning)) as record:
        est.fit_transform(X)
    assert {r.category for r in record} == {PosteriorCollapseWarning, ConvergenceWarning}
    assert {r.filename for r in record} == {__file__}


@pytest.mark.skipif(torch.cuda.device_count() > 7, reason="cuda:7 is present")
def test_unpickling_warning_points_at_the_callers_line(fitted):
    est = copy.deepcopy(fitted)
    est.device_ = torch.device("cuda:7")  # as if pickled on a machine with 8 GPUs
    data = pickle.dumps(est)
    with pytest.warns(UserWarning, match=r"fitted on device 'cuda:7'.*loaded on the CPU") as record:
        pickle.loads(data)
    assert [r.filename for r in record] == [__file__]


# ------------------------------------------------------------------------------- seeds
def _generator_seeds(monkeypatch):
    """Record the seed of the generator behind every torch draw that takes one, by kind."""
    seeds = {"randperm": [], "randn": [], "randint": []}
    for kind in seeds:
        draw = getattr(torch, kind)

        def spy(*args, draw=draw, kind=kind, **kwargs):
            if kwargs.get("generator") is not None:
                seeds[kind].append(kwargs["generator"].initial_seed())
            return draw(*args, **kwargs)

        monkeypatch.setattr(torch, kind, spy)
    return seeds


def test_partial_fit_calls_draw_from_independent_streams(X, monkeypatch):
    seeds = _generator_seeds(monkeypatch)
    vae = VAETransformer(**{**SMALL, "batch_size": len(X)})
    for _ in range(3):
        vae.partial_fit(X)
    shuffles, noises = set(seeds["randperm"]), set(seeds["randn"])
    # One batch order per call; two noise streams per call: the steps', and the one the
    # loss before training is measured with (the same draws at every measurement).
    assert len(shuffles) == 3 and len(noises) == 6
    (init,) = set(seeds["randint"])  # the weights, drawn once
    score = vae._score_seed()  # keys score_samples' per-row draws
    # No stream serves two purposes, or two calls: seed + k would give the first call's
    # noise to the second call's batch order.
    assert len(shuffles | noises | {init, score}) == 11


def test_same_seed_gives_the_same_partial_fits(X):
    def run(seed):
        vae = VAETransformer(**{**SMALL, "random_state": seed})
        for _ in range(3):
            vae.partial_fit(X)
        return vae.transform(X), vae.score_samples(X)

    first, again, other = run(0), run(0), run(1)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(first[0], other[0])


class _DropoutTrunk(torch.nn.Module):
    """An encoder that draws from torch's global RNG in training (nn.Dropout)."""

    def __init__(self):
        super().__init__()
        self.layers = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.5))

    def forward(self, x):
        return self.layers(x)


@pytest.mark.parametrize("Est", [AutoencoderTransformer, VAETransformer])
def test_a_users_dropout_is_seeded_by_random_state_and_the_global_rng_untouched(Est, X):
    def fit_under_global_seed(global_seed):
        torch.manual_seed(global_seed)
        est = fit_briefly(Est(**{**SMALL, "encoder": _DropoutTrunk}), X)
        return est.transform(X), torch.rand(3)  # the global RNG's next draw after fit

    codes, after = fit_under_global_seed(1)
    codes_again, _ = fit_under_global_seed(2)
    np.testing.assert_array_equal(codes, codes_again)  # whatever the global seed
    torch.manual_seed(1)
    torch.testing.assert_close(after, torch.rand(3), rtol=0, atol=0)  # as if fit never ran


# ------------------------------------------------------------- reproducer 8, the inputs
def test_rows_with_negative_strides_are_accepted(fitted, X):
    one = X[:1][::-1]  # a one-row view whose row stride is negative
    np.testing.assert_array_equal(fitted.transform(one), fitted.transform(X[:1]))
    # The network's float32 kernels may round a row differently beside other rows.
    np.testing.assert_allclose(
        fitted.score_samples(X[::-1]), fitted.score_samples(X)[::-1], rtol=1e-6
    )


class _BuggyTrunk(torch.nn.Module):
    def forward(self, x):
        return undefined_name(x)  # noqa: F821


def test_a_bug_in_a_users_forward_is_reported_as_itself(X):
    with pytest.raises(NameError, match="undefined_name"):
        AutoencoderTransformer(**{**SMALL, "encoder": _BuggyTrunk}).fit(X)


def test_out_of_memory_suggests_a_smaller_batch(X, monkeypatch):
    def exhausted(self, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(torch.optim.Adam, "step", exhausted)
    ae = AutoencoderTransformer(**SMALL)
    with pytest.raises(
        torch.OutOfMemoryError,
        match=r"AutoencoderTransformer ran out of memory while fitting with batch_size='auto' "
        r"\(CUDA out of memory\. Tried to allocate 2\.00 GiB\)\. Lower batch_size",
    ):
        ae.fit(X)
    assert not hasattr(ae, "module_")
