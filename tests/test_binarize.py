"""Dynamic binarization of the Bernoulli VAE's targets, and Adam's epsilon."""

import contextlib
import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from torch import nn

from skvae import AutoencoderTransformer, VAETransformer
from skvae._utils.devices import accelerators
from skvae.exceptions import PosteriorCollapseWarning

N_FEATURES = 16
# Grey levels from 0 to 1, one per feature: each is the probability of a 1.
LEVELS = np.linspace(0.0, 1.0, N_FEATURES, dtype=np.float32)


class RecordingTrunk(nn.Module):
    """An encoder trunk that keeps the rows it sees: in training mode, and in eval mode."""

    seen = []
    seen_eval = []

    def __init__(self, n_features=N_FEATURES):
        super().__init__()
        self.layer = nn.Linear(n_features, 8)

    def forward(self, x):
        kept = RecordingTrunk.seen if self.training else RecordingTrunk.seen_eval
        kept.append(x.detach().cpu().clone())
        return torch.tanh(self.layer(x))


def fit_recording(X, **params):
    """Fit a bernoulli VAE with dynamic binarization; return it and the rows its encoder saw."""
    RecordingTrunk.seen, RecordingTrunk.seen_eval = [], []
    params = {"max_iter": 3, "random_state": 0, "batch_size": X.shape[0],
              "binarize": "dynamic", "early_stopping": False, "device": "cpu",
              **params}  # fmt: skip
    vae = VAETransformer(2, encoder=RecordingTrunk, likelihood="bernoulli", **params)
    with warnings.catch_warnings():
        # Identical rows leave nothing to encode, so the codes are expected to collapse;
        # but the encoder sees them binarized, each row by its own draws, so not surely.
        warnings.simplefilter("ignore", PosteriorCollapseWarning)
        # A fixed, short budget (max_iter <= 5, n_iter_no_change 10): the stopping rule
        # cannot fire, and max_iter ends the fit.
        with pytest.warns(ConvergenceWarning, match=r"stopped after max_iter=\d+ epochs"):
            vae.fit(X)
    return vae, RecordingTrunk.seen


@pytest.fixture
def grey():
    """Identical rows, so that every batch shows the same probabilities whatever the order."""
    return np.tile(LEVELS, (400, 1))


def test_targets_are_binary_with_the_rows_as_their_mean(grey):
    _, seen = fit_recording(grey, max_iter=5)
    assert len(seen) == 5  # one batch per epoch, each the encoder's input
    targets = torch.cat(seen).numpy()
    assert set(np.unique(targets)) <= {0.0, 1.0}
    # Each feature's ones are Binomial(n, p): the mean is within 5 standard errors of p
    # but for a probability below 6e-7 per feature. p = 0 and 1 give no 1 or no 0 at all.
    n = targets.shape[0]
    bound = 5 * np.sqrt(LEVELS * (1 - LEVELS) / n)
    assert np.all(np.abs(targets.mean(0) - LEVELS) <= bound)


def test_each_epoch_draws_new_targets(grey):
    _, seen = fit_recording(grey)
    for first, second in zip(seen, seen[1:]):
        assert not torch.equal(first, second)


def test_targets_are_reproducible_from_random_state(grey):
    vae_a, seen_a = fit_recording(grey, random_state=3)
    vae_b, seen_b = fit_recording(grey, random_state=3)
    _, seen_c = fit_recording(grey, random_state=4)
    assert all(torch.equal(a, b) for a, b in zip(seen_a, seen_b, strict=True))
    assert vae_a.loss_curve_ == vae_b.loss_curve_
    assert not torch.equal(seen_a[0], seen_c[0])


def test_global_rng_is_untouched(grey):
    state = torch.get_rng_state()
    fit_recording(grey)
    assert torch.equal(torch.get_rng_state(), state)


def test_without_binarize_the_encoder_sees_the_rows_as_given(grey):
    _, seen = fit_recording(grey, binarize=None)
    np.testing.assert_array_equal(seen[0].numpy(), grey)


@pytest.mark.parametrize("likelihood", ["gaussian", "continuous_bernoulli"])
def test_other_likelihoods_refuse_binarize(grey, likelihood):
    vae = VAETransformer(likelihood=likelihood, binarize="dynamic")
    with pytest.raises(ValueError, match=rf"binarize='dynamic'.*got likelihood='{likelihood}'.*"):
        vae.fit(grey)
    assert not hasattr(vae, "module_")


def test_bad_binarize_is_named(grey):
    with pytest.raises(ValueError, match="'binarize' parameter of VAETransformer.*'static'"):
        VAETransformer(likelihood="bernoulli", binarize="static").fit(grey)


def test_partial_fit_and_pickle_continue_the_same_streams(grey):
    vae, _ = fit_recording(grey, max_iter=2)
    copy = pickle.loads(pickle.dumps(vae))
    np.testing.assert_array_equal(copy.transform(grey), vae.transform(grey))
    RecordingTrunk.seen = []
    vae.partial_fit(grey)
    after_original = RecordingTrunk.seen
    RecordingTrunk.seen = []
    copy.partial_fit(grey)
    assert torch.equal(after_original[0], RecordingTrunk.seen[0])
    assert set(np.unique(after_original[0].numpy())) <= {0.0, 1.0}
    assert vae.loss_curve_ == copy.loss_curve_ and len(vae.loss_curve_) == 3


def test_streamed_memmap_trains_as_the_array_does(grey, tmp_path):
    X = np.asarray(grey, dtype=np.float64)  # float64: read a chunk at a time, not viewed
    mm = np.memmap(tmp_path / "x.dat", dtype=np.float64, mode="w+", shape=X.shape)
    mm[:] = X
    mm.flush()
    params = {"batch_size": 50, "max_iter": 2}
    from_array, seen_array = fit_recording(X, **params)
    from_memmap, seen_memmap = fit_recording(np.memmap(tmp_path / "x.dat", dtype=np.float64,
                                                       shape=X.shape), **params)  # fmt: skip
    assert all(torch.equal(a, b) for a, b in zip(seen_array, seen_memmap, strict=True))
    # The same steps; the epoch's sums may round differently.
    np.testing.assert_allclose(from_memmap.loss_curve_, from_array.loss_curve_, rtol=1e-6)
    assert from_memmap.transform(X).dtype == np.float64


def test_binarize_works_under_bfloat16(grey):
    vae, seen = fit_recording(grey, precision="bfloat16")
    assert set(np.unique(torch.cat(seen).float().numpy())) <= {0.0, 1.0}
    assert np.isfinite(vae.loss_curve_).all()


@pytest.mark.parametrize("early_stopping", [False, True])
def test_fit_shows_the_encoder_binary_rows_only(grey, early_stopping):
    # The loss before training, the validation loss and the statistics at the end of
    # fit (eval mode) see binarized rows too, as training does.
    vae, seen = fit_recording(grey, early_stopping=early_stopping, batch_size=40, max_iter=2)
    seen_eval = RecordingTrunk.seen_eval
    assert seen_eval  # the loss before training and the statistics, at least
    for rows in [*seen, *seen_eval]:
        assert set(np.unique(rows.numpy())) <= {0.0, 1.0}
    if early_stopping:
        assert any(len(rows) == 40 for rows in seen_eval)  # the 10% held out
        assert len(vae.validation_scores_) == 2 and np.isfinite(vae.validation_scores_).all()


@pytest.mark.mnist
def test_dynamic_beats_static_binarization_on_heldout_mnist(mnist):
    # A single binarization of a small training set is overfitted: the model learns
    # its noise. Fresh draws every step regularise (Burda et al. 2016, App. D), so on
    # the same digits, epochs and seed the held-out log-likelihood is higher and the
    # gap between training and held-out scores smaller.
    X_train, _, X_test, _ = mnist
    X, X_test = X_train[:1000], X_test[:500]
    X_static = (np.random.default_rng(1).random(X.shape) < X).astype(np.float32)
    X_test = (np.random.default_rng(2).random(X_test.shape) < X_test).astype(np.float32)
    params = dict(
        hidden_layer_sizes=(200,), likelihood="bernoulli", batch_size=50, max_iter=60,
        tol=0.0, n_iter_no_change=60, early_stopping=False, random_state=0, device="cpu",
    )  # fmt: skip
    scores = {}
    for name, data, binarize in [("dynamic", X, "dynamic"), ("static", X_static, None)]:
        # A fixed budget: n_iter_no_change = max_iter, so the stopping rule cannot fire.
        with pytest.warns(ConvergenceWarning, match=r"stopped after max_iter=60 epochs"):
            vae = VAETransformer(20, binarize=binarize, **params).fit(data)
        train = vae.score_samples_iwae(X_static, 50).mean()
        held_out = vae.score_samples_iwae(X_test, 50).mean()
        scores[name] = (held_out, train - held_out)
    assert scores["dynamic"][0] > scores["static"][0]
    assert scores["dynamic"][1] < scores["static"][1]


@pytest.mark.parametrize("Estimator", [AutoencoderTransformer, VAETransformer])
def test_epsilon_reaches_adam(grey, Estimator):
    # Identical rows, unbinarized: every code is the same, so the VAE's posterior collapses.
    collapse = (
        pytest.warns(PosteriorCollapseWarning, match=r"0 of 2 latent units are active")
        if Estimator is VAETransformer
        else contextlib.nullcontext()
    )
    # One epoch, fewer than n_iter_no_change: max_iter ends the fit.
    with collapse, pytest.warns(ConvergenceWarning, match=r"stopped after max_iter=1 epochs"):
        est = Estimator(2, epsilon=1e-4, max_iter=1, device="cpu", random_state=0).fit(grey)
    assert all(group["eps"] == 1e-4 for group in est.optimizer_.param_groups)


@pytest.mark.parametrize("epsilon", [0.0, -1e-8])
def test_bad_epsilon_is_named(grey, epsilon):
    with pytest.raises(ValueError, match=r"'epsilon' parameter of VAETransformer.*\(0, inf\)"):
        VAETransformer(epsilon=epsilon).fit(grey)


@pytest.mark.gpu
@pytest.mark.parametrize("device", accelerators() or ["cuda"])
def test_binarize_on_accelerator(grey, device):
    X = torch.as_tensor(grey, device=device)  # the rows where they live: drawn there
    vae, seen = fit_recording(X, device=device)
    again, seen_again = fit_recording(X, device=device)
    assert vae.device_.type == device
    assert set(np.unique(torch.cat(seen).numpy())) <= {0.0, 1.0}
    # The targets come from the estimator's generator on the device: the same draws.
    assert all(torch.equal(a, b) for a, b in zip(seen, seen_again, strict=True))
    np.testing.assert_allclose(vae.loss_curve_, again.loss_curve_, rtol=1e-5)
    assert vae.transform(X).device.type == device
