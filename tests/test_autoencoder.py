import pickle
import re
import warnings

import numpy as np
import pytest
import torch
from scipy.linalg import subspace_angles
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA as SklearnPCA
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from skvae import AutoencoderTransformer, DivergenceWarning
from skvae._utils.devices import accelerators

# Tests of the training interface train on every row (no held-out split) for a fixed budget.
FAST = dict(hidden_layer_sizes=(16,), max_iter=20, early_stopping=False, random_state=0)


@pytest.fixture(scope="module")
def digits():
    return load_digits().data / 16.0  # (1797, 64) in [0, 1]


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.RandomState(0)
    return rng.randn(120, 6) @ rng.randn(6, 6) + 3.0


def few_epochs(est, X):
    """Fit for a test that runs fewer epochs than training needs, on purpose."""
    with pytest.warns(ConvergenceWarning, match=r"stopped after max_iter=\d+ epochs"):
        return est.fit(X)


def converged_fit(est, X):
    """Fit that must converge: a ConvergenceWarning fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        return est.fit(X)


# The step at which Ctrl-C is simulated: from inside training, where the user's one lands.
_ADAM_STEP = torch.optim.Adam.step


def interrupt_at_step(monkeypatch, k):
    """Make the k-th optimizer step from now on raise KeyboardInterrupt."""
    steps = []

    def step(self, *args, **kwargs):
        steps.append(1)
        if len(steps) == k:
            raise KeyboardInterrupt
        return _ADAM_STEP(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step)


def mse(a, b):
    return float(((np.asarray(a) - np.asarray(b)) ** 2).mean())


# --------------------------------------------------------------- agreement with PCA
@pytest.mark.parametrize("k", [4, 10])
def test_linear_autoencoder_matches_pca_error_and_subspace(digits, k):
    pca = SklearnPCA(k).fit(digits)
    pca_mse = mse(pca.inverse_transform(pca.transform(digits)), digits)
    # Default training parameters: only the architecture is set.
    ae = converged_fit(
        AutoencoderTransformer(
            n_components=k, hidden_layer_sizes=(), activation="identity", random_state=0
        ),
        digits,
    )
    ae_mse = mse(ae.inverse_transform(ae.transform(digits)), digits)
    assert ae_mse <= 1.01 * pca_mse
    # The decoder's columns span PCA's top-k subspace (not the same basis).
    decoder = ae.module_.decoder[0][0].weight.detach().cpu().numpy()  # (n_features, k)
    angles = subspace_angles(decoder, pca.components_.T)
    assert np.degrees(angles.max()) < 10


def test_deep_autoencoder_reconstructs_better_than_linear(digits):
    k = 5
    linear = converged_fit(
        AutoencoderTransformer(k, hidden_layer_sizes=(), activation="identity", random_state=0),
        digits,
    )
    deep = converged_fit(
        AutoencoderTransformer(k, hidden_layer_sizes=(64,), random_state=0), digits
    )
    assert mse(deep.inverse_transform(deep.transform(digits)), digits) < mse(
        linear.inverse_transform(linear.transform(digits)), digits
    )


@pytest.mark.mnist
def test_default_autoencoder_beats_pca_on_heldout_mnist(mnist):
    X_train, _, X_test, _ = mnist
    X_train = X_train[:5000]
    pca = SklearnPCA(30).fit(X_train)
    # The defaults: starting at PCA, it stops on its held-out rows in well under max_iter.
    ae = converged_fit(AutoencoderTransformer(n_components=30, random_state=0), X_train)
    ae_err = mse(ae.inverse_transform(ae.transform(X_test)), X_test)
    pca_err = mse(pca.inverse_transform(pca.transform(X_test)), X_test)
    assert ae_err < pca_err


# ------------------------------------------------------------- estimator behaviour
def test_fit_transform_equals_fit_then_transform(blobs):
    a = few_epochs(AutoencoderTransformer(3, **FAST), blobs).transform(blobs)
    with pytest.warns(ConvergenceWarning, match=r"max_iter=20 epochs"):
        b = AutoencoderTransformer(3, **FAST).fit_transform(blobs)
    np.testing.assert_array_equal(a, b)


def test_same_seed_same_result_other_seed_differs(blobs):
    a = few_epochs(AutoencoderTransformer(3, **FAST), blobs)
    b = few_epochs(AutoencoderTransformer(3, **FAST), blobs)
    c = few_epochs(AutoencoderTransformer(3, **{**FAST, "random_state": 1}), blobs)
    np.testing.assert_array_equal(a.transform(blobs), b.transform(blobs))
    assert a.loss_curve_ == b.loss_curve_
    assert not np.allclose(a.transform(blobs), c.transform(blobs))


def test_fit_leaves_global_rngs_alone(blobs):
    torch.manual_seed(123)
    np_state = np.random.get_state()  # noqa: NPY002 (the legacy global RNG is the point)
    expected = torch.rand(3)
    torch.manual_seed(123)
    few_epochs(AutoencoderTransformer(3, **FAST), blobs).sample(5)
    np.testing.assert_array_equal(torch.rand(3), expected)
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), np_state))  # noqa: NPY002


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(blobs, dtype):
    X = blobs.astype(dtype)
    ae = few_epochs(AutoencoderTransformer(3, **FAST), X)
    Z = ae.transform(X)
    assert Z.dtype == dtype and Z.shape == (len(X), 3)
    assert ae.inverse_transform(Z).dtype == dtype
    assert ae.score_samples(X).dtype == dtype
    assert ae.sample(4).dtype == dtype


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tensor_in_tensor_out(blobs, dtype):
    ae = few_epochs(AutoencoderTransformer(3, **FAST), blobs)
    T = torch.as_tensor(blobs, dtype=dtype)
    Z = ae.transform(T)
    assert isinstance(Z, torch.Tensor) and Z.dtype == dtype and Z.device == T.device
    np.testing.assert_allclose(Z.numpy(), ae.transform(blobs), rtol=1e-5, atol=1e-6)
    R = ae.inverse_transform(Z)
    assert isinstance(R, torch.Tensor) and R.shape == T.shape
    # A tensor is also accepted by fit, where it lives.
    few_epochs(AutoencoderTransformer(3, **FAST), T)


def test_last_small_batch_is_trained_on():
    # 7 samples with batch_size=5: two steps per epoch, the second of 2 rows.
    X = np.random.RandomState(0).randn(7, 3)
    ae = AutoencoderTransformer(2, batch_size=5, max_iter=1, early_stopping=False, random_state=0)
    calls = []
    original = torch.optim.Adam.step

    def counting_step(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    torch.optim.Adam.step = counting_step
    try:
        few_epochs(ae, X)
    finally:
        torch.optim.Adam.step = original
    assert len(calls) == 2


def test_convergence_warning_when_max_iter_ends_training(blobs):
    with pytest.warns(ConvergenceWarning, match=r"max_iter=2 epochs"):
        AutoencoderTransformer(3, hidden_layer_sizes=(8,), max_iter=2, tol=0).fit(blobs)


def test_stops_before_max_iter_when_loss_plateaus(blobs):
    ae = AutoencoderTransformer(3, **{**FAST, "max_iter": 500, "tol": 10.0, "n_iter_no_change": 2})
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        ae.fit(blobs)
    assert ae.n_iter_ < 500 and len(ae.loss_curve_) == ae.n_iter_


def test_early_stopping_keeps_best_validation_weights(blobs):
    # From PCA's start the held-out loss stops improving well within 40 epochs.
    ae = converged_fit(
        AutoencoderTransformer(3, **{**FAST, "early_stopping": True, "max_iter": 40}), blobs
    )
    assert len(ae.validation_scores_) == ae.n_iter_
    assert ae.best_validation_score_ == max(ae.validation_scores_)
    assert ae.best_loss_ is None


def test_partial_fit_runs_one_epoch_per_call_and_keeps_optimizer(blobs):
    ae = AutoencoderTransformer(3, hidden_layer_sizes=(8,), random_state=0)
    ae.partial_fit(blobs)
    optimizer = ae.optimizer_
    for _ in range(4):
        ae.partial_fit(blobs)
    assert ae.n_iter_ == 5 and len(ae.loss_curve_) == 5
    assert ae.optimizer_ is optimizer
    assert ae.loss_curve_[-1] < ae.loss_curve_[0]


def test_warm_start_continues_from_the_fitted_network(blobs):
    ae = few_epochs(AutoencoderTransformer(3, **{**FAST, "warm_start": True}), blobs)
    module, first = ae.module_, ae.n_iter_
    few_epochs(ae, blobs)
    assert ae.module_ is module and ae.n_iter_ > first
    cold = few_epochs(AutoencoderTransformer(3, **FAST), blobs)
    few_epochs(cold, blobs)
    assert cold.n_iter_ == first


def test_verbose_shows_a_progress_bar(blobs, capsys):
    few_epochs(AutoencoderTransformer(3, **{**FAST, "verbose": True, "max_iter": 3}), blobs)
    err = capsys.readouterr().err
    assert "AutoencoderTransformer" in err and "loss=" in err


# ----------------------------------------------------------------------- scoring
def test_score_is_gaussian_log_likelihood_of_residuals(blobs):
    ae = few_epochs(AutoencoderTransformer(3, **FAST), blobs)
    resid = ae.inverse_transform(ae.transform(blobs)) - blobs
    var = ae.noise_variance_
    np.testing.assert_allclose(var, (resid**2).mean(), rtol=1e-4)
    expected = -0.5 * (blobs.shape[1] * np.log(2 * np.pi * var) + (resid**2).sum(1) / var)
    np.testing.assert_allclose(ae.score_samples(blobs), expected, rtol=1e-4, atol=1e-4)
    assert ae.score(blobs) == pytest.approx(expected.mean(), rel=1e-4)


def test_linear_autoencoder_score_matches_pca_reconstruction_likelihood(digits):
    k = 10
    ae = converged_fit(
        AutoencoderTransformer(k, hidden_layer_sizes=(), activation="identity", random_state=0),
        digits,
    )
    # The same isotropic reconstruction likelihood, with PCA as encoder/decoder:
    # at the optimum the two pairs reconstruct equally well, so they score alike.
    pca = SklearnPCA(k).fit(digits)
    resid = pca.inverse_transform(pca.transform(digits)) - digits
    var = (resid**2).mean()
    pca_ll = -0.5 * (digits.shape[1] * np.log(2 * np.pi * var) + (resid**2).sum(1) / var)
    assert ae.score(digits) == pytest.approx(pca_ll.mean(), abs=0.5)
    assert ae.score(digits) <= pca_ll.mean() + 1e-6


def test_sample_draws_from_gaussian_fitted_to_codes(digits):
    ae = few_epochs(AutoencoderTransformer(4, **{**FAST, "max_iter": 30}), digits)
    codes = ae.transform(digits)
    np.testing.assert_allclose(ae.latent_mean_, codes.mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ae.latent_covariance_, np.cov(codes.T), rtol=1e-3, atol=1e-5)
    X_new = ae.sample(3000, random_state=0, observation_noise=False)
    assert X_new.shape == (3000, 64)
    np.testing.assert_array_equal(X_new, ae.sample(3000, random_state=0, observation_noise=False))
    Z_new = ae.transform(X_new)
    # Decoded draws re-encode near the code distribution's mean.
    assert np.abs(Z_new.mean(0) - ae.latent_mean_).max() < 0.5 * codes.std(0).max()


def test_set_params_after_fit_changes_nothing_until_the_next_fit(blobs):
    ae = few_epochs(AutoencoderTransformer(3, **FAST), blobs)
    Z = ae.transform(blobs)
    score, decoded = ae.score(blobs), ae.inverse_transform(Z)
    ae.set_params(n_components=5, hidden_layer_sizes=(4,))
    assert ae.score(blobs) == score
    np.testing.assert_array_equal(ae.inverse_transform(Z), decoded)
    assert ae.sample(4, random_state=0).shape == (4, 6)
    assert ae.get_feature_names_out().tolist() == [f"autoencodertransformer{i}" for i in range(3)]


def test_score_is_not_a_density_and_rises_with_the_code_width(digits):
    # The reconstruction likelihood improves with every extra unit of code, so it
    # cannot choose n_components the way a density (PCA's, the VAE's bound) can.
    scores = [
        few_epochs(AutoencoderTransformer(k, **FAST), digits[:500]).score(digits[:500])
        for k in (2, 8)
    ]
    assert scores[0] < scores[1]


# ------------------------------------------------------------------ sklearn glue
def test_pipeline_and_grid_search_without_scorer(digits):
    digits, y = digits[:600], load_digits().target[:600]
    pipe = make_pipeline(
        MinMaxScaler(), AutoencoderTransformer(8, **FAST), LogisticRegression(max_iter=500)
    )
    with pytest.warns(ConvergenceWarning, match=r"max_iter=20 epochs"):
        assert pipe.fit(digits, y).score(digits, y) > 0.6
        search = GridSearchCV(AutoencoderTransformer(**FAST), {"n_components": [2, 8]}, cv=2)
        search.fit(digits)
    assert search.best_params_["n_components"] == 8


def test_set_output_pandas(digits):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(digits[:, :6], columns=[f"f{i}" for i in range(6)])
    ae = few_epochs(AutoencoderTransformer(2, **FAST), df).set_output(transform="pandas")
    out = ae.transform(df)
    assert list(out.columns) == ["autoencodertransformer0", "autoencodertransformer1"]
    np.testing.assert_array_equal(ae.feature_names_in_, df.columns)


def test_pickle_round_trip(blobs):
    ae = few_epochs(AutoencoderTransformer(3, **FAST), blobs)
    clone = pickle.loads(pickle.dumps(ae))
    np.testing.assert_array_equal(clone.transform(blobs), ae.transform(blobs))
    # The optimizer is still bound to the module's parameters after loading.
    opt_params = {id(p) for g in clone.optimizer_.param_groups for p in g["params"]}
    assert opt_params == {id(p) for p in clone.module_.parameters()}
    clone.partial_fit(blobs)


def test_state_saved_on_missing_device_loads_on_cpu_with_warning(blobs):
    # Fitted on the CPU, so that the clone's outputs can be compared bit for bit:
    # only the recorded device says "cuda:7".
    ae = few_epochs(AutoencoderTransformer(3, device="cpu", **FAST), blobs)
    state = ae.__getstate__()
    state["device_"] = "cuda:7"  # as pickled on a machine with a GPU
    clone = AutoencoderTransformer.__new__(AutoencoderTransformer)
    with pytest.warns(UserWarning, match=r"fitted on device 'cuda:7'.*loaded on the CPU"):
        clone.__setstate__(state)
    assert clone.device_ == torch.device("cpu")
    np.testing.assert_array_equal(clone.transform(blobs), ae.transform(blobs))


# ------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    "params, match",
    [
        ({"batch_size": 0}, r"The 'batch_size' parameter of AutoencoderTransformer must be an int"),
        ({"n_components": 0}, r"'n_components' parameter .* Got 0 instead"),
        ({"activation": "rellu"}, r"Got 'rellu' instead. Did you mean 'relu'\?"),
        ({"hidden_layer_sizes": (8, 0)}, r"a tuple of positive ints"),
        ({"learning_rate": -1.0}, r"'learning_rate' parameter"),
        ({"validation_fraction": 1.0}, r"'validation_fraction' parameter"),
        ({"device": "gpu"}, r"'device' parameter .* Got 'gpu' instead"),
    ],
)
def test_bad_parameters_are_named(blobs, params, match):
    with pytest.raises(ValueError, match=match):
        AutoencoderTransformer(**params).fit(blobs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present")
def test_missing_device_is_an_error(blobs):
    with pytest.raises(ValueError, match=r"device='cuda'.*no CUDA device"):
        AutoencoderTransformer(device="cuda").fit(blobs)


def test_wrong_number_of_features(blobs):
    ae = few_epochs(AutoencoderTransformer(3, **FAST), blobs)
    with pytest.raises(ValueError, match=r"X has 4 features, but AutoencoderTransformer is "):
        ae.transform(blobs[:, :4])
    with pytest.raises(ValueError, match=r"X has 4 features, but .* expecting 3 features"):
        ae.inverse_transform(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"X has 4 features"):
        ae.transform(torch.zeros(2, 4))


def test_non_finite_input_is_refused(blobs):
    X = blobs.copy()
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN"):
        AutoencoderTransformer(**FAST).fit(X)
    with pytest.raises(ValueError, match=r"NaN"):
        AutoencoderTransformer(**FAST).fit(torch.as_tensor(X))


def test_early_stopping_needs_enough_samples():
    with pytest.raises(ValueError, match=r"validation_fraction=0.1 leaves 0 validation"):
        AutoencoderTransformer(early_stopping=True).fit(np.zeros((3, 2)))


def test_loss_that_cannot_be_computed_says_how_to_fix_it(blobs):
    # Squares of 1e30 overflow float32 before any training: there is nothing to keep.
    with pytest.raises(FloatingPointError, match=r"loss is inf before training.*Scale X"):
        AutoencoderTransformer(3, **FAST).fit(blobs * 1e30)


def test_diverging_fit_warns_and_keeps_its_best_weights():
    X = load_digits().data[:500]  # pixels 0..16, unscaled
    ae = AutoencoderTransformer(4, **{**FAST, "learning_rate": 10.0, "max_iter": 5})
    message = (
        r"AutoencoderTransformer diverged: its loss went from \S+ before training to \S+ at "
        r"epoch 5\. It keeps the initial weights \(loss \S+\) and a fresh optimizer state\. "
        r"Lower learning_rate \(now 10\.0\), or scale X"
    )
    # A ConvergenceWarning too: filters for it apply.
    with pytest.warns(ConvergenceWarning, match=message) as record:
        ae.fit(X)
    assert [type(w.message) for w in record] == [DivergenceWarning]
    assert ae.n_iter_ == 5 and len(ae.loss_curve_) == 5
    # The initial network reconstructs about as well as the mean, not as the diverged one.
    assert mse(ae.inverse_transform(ae.transform(X)), X) < 2 * X.var(0).mean()
    ae.set_params(learning_rate=1e-3, max_iter=3, warm_start=True)
    few_epochs(ae, X)  # the optimizer was reset: training goes on from there
    assert ae.loss_curve_[-1] < ae.loss_curve_[-3]


def test_diverging_warm_start_keeps_the_weights_it_started_from(blobs):
    ae = few_epochs(AutoencoderTransformer(3, **{**FAST, "warm_start": True}), blobs)
    before = ae.transform(blobs)
    with pytest.warns(DivergenceWarning, match=r"keeps the weights this call started from"):
        ae.set_params(learning_rate=1e3, max_iter=3).fit(blobs)
    np.testing.assert_array_equal(ae.transform(blobs), before)
    assert ae.n_iter_ == 23 and len(ae.loss_curve_) == 23


def test_interrupted_fit_keeps_the_epochs_run(blobs, monkeypatch, capsys):
    # 120 rows in batches of 40: the 14th step is the second of epoch 5.
    params = {**FAST, "batch_size": 40}
    ae = AutoencoderTransformer(3, **params, verbose=True)
    interrupt_at_step(monkeypatch, 14)
    with pytest.warns(
        UserWarning,
        match=r"interrupted after 4 epochs\. It keeps the weights of "
        r"epoch 4 \(loss \S+\) and is fitted: call fit with warm_start=True",
    ):
        ae.fit(blobs)
    assert capsys.readouterr().err.endswith("\n")  # the progress bar was closed
    assert ae.n_iter_ == 4 and len(ae.loss_curve_) == 4
    assert ae.loss_curve_[-1] == min(ae.loss_curve_) == ae.best_loss_
    # The weights of epoch 4 are those of a fit that stops there.
    monkeypatch.undo()
    four = few_epochs(AutoencoderTransformer(3, **{**params, "max_iter": 4}), blobs)
    np.testing.assert_array_equal(ae.transform(blobs), four.transform(blobs))
    assert ae.noise_variance_ == four.noise_variance_


def test_interrupt_in_the_first_epoch_leaves_the_estimator_as_it_was(blobs, monkeypatch, capsys):
    params = {**FAST, "batch_size": 40, "verbose": True}
    ae = AutoencoderTransformer(3, **params)
    interrupt_at_step(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt) as interrupt:
        ae.fit(blobs)
    # Closed by fit, not when the traceback (which holds the bar) is dropped.
    assert interrupt.traceback and capsys.readouterr().err.endswith("\n")
    assert ae.__dict__ == AutoencoderTransformer(3, **params).__dict__
    # A fitted network trained in place gets its weights back, by warm_start or partial_fit.
    monkeypatch.undo()
    few_epochs(ae.set_params(warm_start=True), blobs)
    before, curve = ae.transform(blobs), ae.loss_curve_
    for continue_training in (ae.fit, ae.partial_fit):
        interrupt_at_step(monkeypatch, 2)
        with pytest.raises(KeyboardInterrupt):
            continue_training(blobs)
        np.testing.assert_array_equal(ae.transform(blobs), before)
        assert ae.n_iter_ == 20 and ae.loss_curve_ == curve


def test_interrupted_warm_start_keeps_the_epochs_run(blobs, monkeypatch):
    ae = few_epochs(
        AutoencoderTransformer(3, **{**FAST, "batch_size": 40, "warm_start": True}), blobs
    )
    curve = ae.loss_curve_
    interrupt_at_step(monkeypatch, 8)  # the second step of the third epoch
    with pytest.warns(UserWarning, match=r"interrupted after 22 epochs"):
        ae.fit(blobs)
    assert ae.n_iter_ == 22 and ae.loss_curve_[:20] == curve and len(ae.loss_curve_) == 22
    monkeypatch.undo()
    ae.partial_fit(blobs)
    assert ae.n_iter_ == 23


def test_failed_fit_leaves_the_fitted_model_untouched(blobs):
    ae = few_epochs(AutoencoderTransformer(3, **{**FAST, "warm_start": True}), blobs)
    before = ae.transform(blobs)
    attributes = dict(ae.__dict__)
    bad = blobs[:, :4].copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match=r"infinity"):
        ae.fit(bad)
    with pytest.raises(FloatingPointError):
        ae.set_params(learning_rate=1e30).fit(blobs * 1e30)  # diverges in place
    with pytest.raises(ValueError, match=r"X has 4 features"):
        ae.partial_fit(blobs[:, :4])
    ae.set_params(learning_rate=AutoencoderTransformer().learning_rate)
    assert ae.__dict__.keys() == attributes.keys()
    assert ae.n_features_in_ == blobs.shape[1] and ae.n_iter_ == attributes["n_iter_"]
    np.testing.assert_array_equal(ae.transform(blobs), before)


@pytest.mark.parametrize(
    "name, value", [("n_components", 2), ("hidden_layer_sizes", (8,)), ("activation", "tanh")]
)
def test_continued_training_refuses_a_changed_network(blobs, name, value):
    ae = few_epochs(AutoencoderTransformer(3, **{**FAST, "warm_start": True}), blobs)
    before, fitted_value = ae.transform(blobs), ae.get_params()[name]
    ae.set_params(**{name: value})
    message = (
        rf"fitted with {name}={re.escape(repr(fitted_value))}, and warm_start=True continues "
        rf".*cannot change to {name}={re.escape(repr(value))}\. Set {name} back"
    )
    with pytest.raises(ValueError, match=message):
        ae.fit(blobs)
    with pytest.raises(ValueError, match=r"and partial_fit continues training"):
        ae.partial_fit(blobs)
    np.testing.assert_array_equal(ae.transform(blobs), before)
    # warm_start=False trains the network the parameters now describe.
    few_epochs(ae.set_params(warm_start=False, max_iter=3), blobs)
    assert ae.transform(blobs).shape[1] == ae.n_components


def test_continued_training_may_change_the_optimisation(blobs):
    ae = few_epochs(AutoencoderTransformer(3, **{**FAST, "warm_start": True}), blobs)
    n_iter = ae.n_iter_
    few_epochs(ae.set_params(learning_rate=1e-4, batch_size=16, max_iter=3), blobs)
    assert ae.n_iter_ == n_iter + 3


def test_bad_sample_count(blobs):
    ae = few_epochs(AutoencoderTransformer(3, **FAST), blobs)
    with pytest.raises(ValueError, match=r"n_samples must be an int in the range \[1, inf\)"):
        ae.sample(0)


# --------------------------------------------------------------------------- GPU
@pytest.mark.gpu
@pytest.mark.parametrize("device", accelerators() or ["cuda"])
def test_accelerator_agrees_with_cpu(blobs, device):
    cpu = few_epochs(AutoencoderTransformer(3, **{**FAST, "device": "cpu"}), blobs)
    acc = few_epochs(AutoencoderTransformer(3, **{**FAST, "device": device}), blobs)
    assert acc.device_.type == device
    # Same initial weights and batch order; kernels differ in rounding only.
    np.testing.assert_allclose(acc.transform(blobs), cpu.transform(blobs), rtol=1e-2, atol=1e-2)
    T = torch.as_tensor(blobs, device=device)
    assert acc.transform(T).device.type == device
    clone = pickle.loads(pickle.dumps(acc))
    assert clone.device_.type == device


def test_feature_names_need_a_fitted_model():
    with pytest.raises(NotFittedError, match="not fitted yet"):
        AutoencoderTransformer(3).get_feature_names_out()
