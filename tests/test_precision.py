"""Mixed-precision training (the ``precision`` parameter) and the statistics fit computes
after its last epoch."""

import copy
import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from skvae import AutoencoderTransformer, DivergenceWarning, VAETransformer
from skvae.exceptions import PosteriorCollapseWarning
from skvae.neural._base import STATISTICS_ROWS
from skvae.neural._elbo import row_keys, row_normals
from skvae.neural._likelihoods import log_likelihood
from skvae.neural._training import squared_spread

# The criterion: a mixed-precision fit ends within 1% of float32's loss at the
# same number of epochs.
LOSS_RTOL = 0.01

# Every row trains (no held-out split) unless a test asks for one.
FAST = dict(max_iter=3, tol=0.0, early_stopping=False, device="cpu", random_state=0)


def assert_trains_as_far(half, full):
    """``half`` ends its fit no more than 1% (of the loss's size) above ``full``.

    One-sided: a lower loss is no defect. Rounding sends two fits down different
    paths, and on a loss near zero (a Gaussian VAE with learned noise on digits ends
    near -9) ending lower by more than 1% was seen on another CPU's bfloat16 kernels.
    """
    end, reference = half.loss_curve_[-1], full.loss_curve_[-1]
    assert end <= reference + LOSS_RTOL * abs(reference), (end, reference)


def fit_briefly(est, X):
    """fit for max_iter <= 10 epochs, no more than n_iter_no_change (10).

    Short fits on purpose: the stopping rule cannot fire, so max_iter ends them, with
    its ConvergenceWarning. A VAE of a few epochs may or may not have opened its latent
    units yet; its collapse warning is not what is tested here.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PosteriorCollapseWarning)
        with pytest.warns(ConvergenceWarning, match=r"stopped after max_iter=\d+ epochs"):
            return est.fit(X)


def mnist_ae(**params):
    return AutoencoderTransformer(
        32, hidden_layer_sizes=(512, 256), batch_size=128, **{**FAST, **params}
    )


def mnist_vae(**params):
    return VAETransformer(
        50,
        hidden_layer_sizes=(200, 200),
        activation="tanh",
        likelihood="bernoulli",
        batch_size=100,
        **{**FAST, **params},
    )


@pytest.fixture(scope="module")
def mnist_rows(mnist):
    X_train, _, X_test, _ = mnist
    return X_train[:6000], X_test[:1000]


@pytest.fixture(scope="module")
def digits():
    return load_digits().data / 16


@pytest.mark.mnist
@pytest.mark.parametrize("make", [mnist_ae, mnist_vae], ids=["AE", "VAE"])
def test_bfloat16_trains_mnist_as_far_as_float32(make, mnist_rows):
    X, X_test = mnist_rows
    full = fit_briefly(make(), X)
    half = fit_briefly(make(precision="bfloat16"), X)
    assert_trains_as_far(half, full)
    # Held out, and computed in float32 or better whatever the training precision.
    assert half.score(X_test) == pytest.approx(full.score(X_test), rel=LOSS_RTOL)
    assert half.loss_curve_[-1] < half.loss_curve_[0]  # it trained on, epoch after epoch


@pytest.mark.parametrize("Est", [AutoencoderTransformer, VAETransformer])
def test_bfloat16_trains_digits_as_far_as_float32(Est, digits):
    params = dict(
        n_components=8, max_iter=10, tol=0.0, early_stopping=False, device="cpu", random_state=0
    )
    full = fit_briefly(Est(**params), digits)
    half = fit_briefly(Est(precision="bfloat16", **params), digits)
    assert_trains_as_far(half, full)


@pytest.mark.parametrize("Est", [AutoencoderTransformer, VAETransformer])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bfloat16_outputs_keep_the_input_dtype(Est, dtype, digits):
    X = digits.astype(dtype)
    est = fit_briefly(Est(2, hidden_layer_sizes=(16,), precision="bfloat16", **FAST), X)
    Z = est.transform(X)
    assert Z.dtype == dtype
    assert est.inverse_transform(Z).dtype == dtype
    assert est.score_samples(X).dtype == dtype
    assert est.sample(3, random_state=0).dtype == dtype
    tensor = torch.as_tensor(X)
    assert est.transform(tensor).dtype == tensor.dtype


@pytest.mark.parametrize("Est", [AutoencoderTransformer, VAETransformer])
def test_float16_on_the_cpu_names_the_fix(Est, digits):
    est = Est(precision="float16", **FAST)
    with pytest.raises(
        ValueError, match=r"precision='float16'.*CUDA.*got device='cpu'.*'bfloat16'"
    ):
        est.fit(digits)
    assert not hasattr(est, "module_")


def test_unknown_precision_is_refused(digits):
    with pytest.raises(ValueError, match=r"'precision' parameter.*'bfloat16'.*Got 'bf16'"):
        AutoencoderTransformer(precision="bf16", **FAST).fit(digits)


def test_precision_may_change_between_warm_starts(digits):
    ae = fit_briefly(AutoencoderTransformer(4, warm_start=True, **FAST), digits)
    fit_briefly(ae.set_params(precision="bfloat16"), digits)
    assert ae.n_iter_ == 6
    assert ae.loss_curve_[-1] < ae.loss_curve_[2]


def test_divergence_under_bfloat16_is_caught(digits):
    X = load_digits().data[:500]  # pixels 0..16, unscaled
    ae = AutoencoderTransformer(4, **{**FAST, "learning_rate": 10.0, "precision": "bfloat16"})
    with pytest.warns(DivergenceWarning, match=r"diverged.*It keeps the initial weights"):
        ae.fit(X)
    assert np.isfinite(ae.transform(X)).all()


@pytest.mark.gpu
@pytest.mark.mnist
@pytest.mark.skipif(not torch.cuda.is_available(), reason="mixed precision on CUDA")
@pytest.mark.parametrize("precision", ["float16", "bfloat16"])
@pytest.mark.parametrize("make", [mnist_ae, mnist_vae], ids=["AE", "VAE"])
def test_cuda_mixed_precision_trains_mnist_as_far_as_float32(make, precision, mnist_rows):
    X, X_test = mnist_rows
    full = fit_briefly(make(device="cuda"), X)
    half = fit_briefly(make(device="cuda", precision=precision), X)
    assert_trains_as_far(half, full)
    assert half.score(X_test) == pytest.approx(full.score(X_test), rel=LOSS_RTOL)
    assert half.transform(X_test).dtype == np.float32


# ------------------------------------------------------------------ the fit tail
def test_statistics_are_made_in_fit_and_keep_no_reference_to_x(digits):
    X = digits.astype(np.float32)  # viewed by fit, not copied
    ae = fit_briefly(AutoencoderTransformer(4, **FAST), X)
    assert {"noise_variance_", "latent_mean_", "latent_covariance_"} <= ae.__dict__.keys()
    assert not [v for v in ae.__dict__.values() if v is X]


def test_statistics_of_many_rows_come_from_evenly_spaced_rows():
    X = np.random.default_rng(0).normal(size=(3 * STATISTICS_ROWS, 5)).astype(np.float32)
    ae = fit_briefly(AutoencoderTransformer(2, hidden_layer_sizes=(8,), **FAST), X)
    codes = ae.transform(X[::3])  # STATISTICS_ROWS rows, every third
    np.testing.assert_allclose(ae.latent_mean_, codes.mean(0), rtol=1e-4, atol=1e-5)


def test_statistics_are_absent_before_fit():
    for name in ("noise_variance_", "latent_mean_", "latent_covariance_"):
        assert not hasattr(AutoencoderTransformer(), name)
    assert not hasattr(VAETransformer(), "noise_variance_")


def reference_statistics(ae, X):
    """The statistics in float64 throughout, from a float64 copy of the network."""
    module = copy.deepcopy(ae.module_).double()
    X64 = torch.as_tensor(X, dtype=torch.float64)
    with torch.no_grad():
        Z = module.encoder(X64)
        sq = ((module.decoder(Z) - X64) ** 2).mean().item()
    Z = Z.numpy()
    return sq, Z.mean(0), np.cov(Z, rowvar=False)


@pytest.mark.mnist
def test_autoencoder_statistics_agree_with_float64(mnist_rows):
    X = mnist_rows[0][:3000]
    ae = fit_briefly(mnist_ae(max_iter=1), X)
    noise_variance, mean, cov = reference_statistics(ae, X)
    # The float32 network rounds each of its ~10 layers' sums (up to 784 terms) to
    # float32; 1e-4 relative is ~800 ulps, far above that, and far below a change of model.
    np.testing.assert_allclose(ae.noise_variance_, noise_variance, rtol=1e-4)
    scale = np.sqrt(np.diag(cov)).max()
    np.testing.assert_allclose(ae.latent_mean_, mean, rtol=0, atol=1e-4 * scale)
    np.testing.assert_allclose(ae.latent_covariance_, cov, rtol=0, atol=1e-4 * scale**2)


def test_vae_learned_noise_variance_agrees_with_float64(digits):
    vae = fit_briefly(VAETransformer(4, **FAST), digits)
    module = copy.deepcopy(vae.module_).double()
    X64 = torch.as_tensor(digits)
    n, d = X64.shape
    # The pass draws z from the scoring stream, 4096 draws in all (3 per row here, at
    # most 32), and divides the squared residuals by (n - 1) d: the same draws here.
    draws = max(1, min(32, 4096 // n))
    with torch.no_grad():
        mean, log_var = module.encoder(X64)
        eps = row_normals(row_keys(X64, vae._score_seed()), 0, draws, 4)  # (draws, n, 4)
        z = mean + (0.5 * log_var).exp() * eps
        squares = ((module.decoder(z) - X64) ** 2).sum().item() / draws
    np.testing.assert_allclose(vae.noise_variance_, squares / ((n - 1) * d), rtol=1e-4)


@pytest.mark.parametrize("Est", [AutoencoderTransformer, VAETransformer])
def test_pickles_keep_the_statistics_not_the_rows(Est, digits):
    est = fit_briefly(Est(4, hidden_layer_sizes=(16,), **FAST), digits)
    blob = pickle.dumps(est)
    assert len(blob) < digits.astype(np.float32).nbytes  # the training rows stay behind
    restored = pickle.loads(blob)
    assert restored.noise_variance_ == est.noise_variance_
    assert restored.score(digits) == est.score(digits)
    if Est is AutoencoderTransformer:
        np.testing.assert_array_equal(restored.latent_covariance_, est.latent_covariance_)


def test_partial_fit_statistics_describe_the_last_call(digits):
    ae = AutoencoderTransformer(4, **FAST)
    ae.partial_fit(digits[:1000])
    ae.partial_fit(digits[1000:])
    codes = ae.transform(digits[1000:])
    np.testing.assert_allclose(ae.latent_mean_, codes.mean(0), rtol=1e-4, atol=1e-5)


@pytest.mark.mnist
@pytest.mark.parametrize("likelihood", ["bernoulli", "continuous_bernoulli"])
def test_vae_null_loss_without_a_pass_over_x_is_the_row_average(likelihood, mnist_rows):
    X = torch.as_tensor(mnist_rows[0][:2000])
    vae = VAETransformer(likelihood=likelihood)
    null, _ = vae._reference_losses(X, X.mean(0))
    logits = vae._output_offset(X.mean(0)).double().expand_as(X)
    rows = -log_likelihood(likelihood, X.double(), logits)  # (n_samples,)
    # float32 means and logits against float64 sums over 784 features.
    assert null == pytest.approx(float(rows.mean()), rel=1e-5)


@pytest.mark.mnist
def test_squared_spread_is_the_summed_variance(mnist_rows):
    X = torch.as_tensor(mnist_rows[0][:3000])
    expected = float(torch.var(X.double(), dim=0, correction=0).sum())
    assert squared_spread(X, X.mean(0), rows=1000) == pytest.approx(expected, rel=1e-5)


def test_vae_encoder_statistics_match_the_posterior_means(digits):
    X = np.concatenate([digits] * 5).astype(np.float32)[:STATISTICS_ROWS]  # two encoder blocks
    vae = fit_briefly(VAETransformer(4, likelihood="bernoulli", **FAST), X)
    activity = vae.transform(X).var(0)
    assert vae.n_active_units_ > 0
    np.testing.assert_array_equal(vae.active_units_, activity > 0.01)


def test_vae_collapse_is_warned_and_agrees_with_the_attributes(digits):
    # c = 1 on digits / 16: nothing is worth encoding.
    X = np.concatenate([digits] * 5).astype(np.float32)
    vae = VAETransformer(3, noise_variance=1.0, **{**FAST, "max_iter": 2})
    with pytest.warns(PosteriorCollapseWarning, match=r"0 of 3 latent units are active"):
        # Two epochs, fewer than n_iter_no_change: max_iter ends the fit.
        with pytest.warns(ConvergenceWarning, match=r"stopped after max_iter=2 epochs"):
            vae.fit(X)
    assert vae.n_active_units_ == 0 and vae.kl_per_dimension_.shape == (3,)


def test_vae_encoder_statistics_see_the_rows_binarized_as_training_did(digits):
    X = np.concatenate([digits] * 5).astype(np.float32)
    params = dict(likelihood="bernoulli", binarize="dynamic", **FAST)
    first = fit_briefly(VAETransformer(4, **params), X)
    again = fit_briefly(VAETransformer(4, **params), X.astype(np.float64))
    # The same draws whatever X's dtype: the binarization's stream is fixed by the fit call.
    np.testing.assert_array_equal(first.kl_per_dimension_, again.kl_per_dimension_)
    np.testing.assert_array_equal(first.active_units_, again.active_units_)
