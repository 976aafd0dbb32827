"""Never worse than PCA: the default networks start at (probabilistic) PCA and are
judged on held-out rows; the VAE fits and scores X of any scale."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skvae import PCA, AutoencoderTransformer, DivergenceWarning, VAETransformer

# One Adam step of 1e-9 moves each weight by about 1e-9: the network as it started.
AT_START = dict(max_iter=1, learning_rate=1e-9, early_stopping=False, device="cpu", random_state=0)


@pytest.fixture(scope="module")
def digits():
    X = load_digits().data / 16.0
    return train_test_split(X, test_size=0.25, random_state=0)


@pytest.fixture(scope="module")
def wine():
    X = StandardScaler().fit_transform(load_wine().data)
    return train_test_split(X, test_size=0.25, random_state=0)


@pytest.fixture(scope="module")
def breast_cancer():
    X = StandardScaler().fit_transform(load_breast_cancer().data)
    return train_test_split(X, test_size=0.25, random_state=0)


def at_start(est, X):
    with pytest.warns(ConvergenceWarning, match="max_iter=1 epochs"):
        return est.fit(X)


def mse(est, X):
    return float(((est.inverse_transform(est.transform(X)) - X) ** 2).mean())


def quiet_fit(est, X):
    """A default fit; a ConvergenceWarning would fail the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        return est.fit(X)


# ------------------------------------------------------------- the start
@pytest.mark.parametrize("hidden", [(), (32, 16)])
def test_autoencoder_starts_at_pca_reconstruction(digits, hidden):
    X_train, X_test = digits
    pca = PCA(5, svd_solver="full").fit(X_train)
    ae = at_start(AutoencoderTransformer(5, hidden_layer_sizes=hidden, **AT_START), X_train)
    for X in (X_train, X_test):
        expected = pca.inverse_transform(pca.transform(X))
        np.testing.assert_allclose(ae.inverse_transform(ae.transform(X)), expected, atol=1e-5)


@pytest.mark.parametrize("hidden", [(), (32, 16)])
@pytest.mark.parametrize("k", [2, 8])
def test_vae_elbo_starts_at_ppca_log_likelihood(digits, hidden, k):
    # At PPCA's maximum-likelihood solution q(z|x) is the exact posterior, so with
    # c = σ² the ELBO equals log p(x) for every row, held-out ones too, whatever
    # the draws of z (Lucas et al. 2019).
    X_train, X_test = digits
    pca = PCA(k, svd_solver="full").fit(X_train)
    c = pca.noise_variance_
    vae = at_start(
        VAETransformer(k, hidden_layer_sizes=hidden, noise_variance=c, **AT_START), X_train
    )
    for X in (X_train, X_test):
        np.testing.assert_allclose(vae.score_samples(X), pca.score_samples(X), atol=1e-4)


def test_learned_noise_variance_starts_at_ppca(digits):
    # The learned c is the training rows' mean squared residual, σ² up to its
    # Monte-Carlo error, which moves the mean ELBO of those rows to second order only.
    X_train, _ = digits
    pca = PCA(8, svd_solver="full").fit(X_train)
    vae = at_start(VAETransformer(8, **AT_START), X_train)
    assert vae.noise_variance_ == pytest.approx(pca.noise_variance_, rel=1e-2)
    assert vae.score(X_train) == pytest.approx(pca.score(X_train), abs=1e-3)


def test_vae_that_keeps_its_start_is_ppca_noise_variance_included(wine):
    # A rate of 10 makes the fit diverge: no epoch beats the start on the held-out
    # rows, the fit keeps PPCA's closed form, and with it PPCA's σ² (not c measured
    # again on the 90% of rows left after the split, a percent or so off).
    X_train, X_test = wine
    pca = PCA(4, svd_solver="full").fit(X_train)
    params = {**AT_START, "early_stopping": True, "learning_rate": 10.0, "max_iter": 3}
    with pytest.warns(DivergenceWarning, match="keeps the initial weights"):
        vae = VAETransformer(4, **params).fit(X_train)
    assert vae.noise_variance_ == pytest.approx(pca.noise_variance_, rel=1e-6)
    np.testing.assert_allclose(vae.score_samples(X_test), pca.score_samples(X_test), atol=1e-4)


def test_validation_elbo_draws_the_same_noise_every_epoch(wine):
    # Weights that do not move (a rate of 1e-30) measure the same validation ELBO at
    # every epoch: the epochs' losses differ by their weights, not by fresh draws of z.
    X_train, _ = wine
    params = {**AT_START, "early_stopping": True, "learning_rate": 1e-30, "max_iter": 4}
    with pytest.warns(ConvergenceWarning):
        vae = VAETransformer(4, hidden_layer_sizes=(8,), **params).fit(X_train)
    scores = vae.validation_scores_
    assert len(scores) == 4
    np.testing.assert_allclose(scores, scores[0], rtol=1e-6)


def test_start_uses_every_training_row(wine):
    # The validation split comes after the start: PCA of all the rows fit is given.
    X_train, _ = wine
    pca = PCA(2, svd_solver="full").fit(X_train)
    params = {**AT_START, "early_stopping": True}
    ae = at_start(AutoencoderTransformer(2, hidden_layer_sizes=(), **params), X_train)
    np.testing.assert_allclose(
        ae.inverse_transform(ae.transform(X_train)),
        pca.inverse_transform(pca.transform(X_train)),
        atol=1e-5,
    )


# ------------------------------------------------------------ held out
@pytest.mark.parametrize("data", ["digits", "breast_cancer"])
def test_default_autoencoder_is_no_worse_than_pca_held_out(data, request):
    X_train, X_test = request.getfixturevalue(data)
    k = 8
    pca = PCA(k).fit(X_train)
    ae = quiet_fit(AutoencoderTransformer(k, device="cpu", random_state=0), X_train)
    assert mse(ae, X_test) <= mse(pca, X_test)
    assert ae.validation_scores_ is not None  # 'auto' held rows out


@pytest.mark.parametrize("data", ["digits", "breast_cancer"])
def test_default_vae_is_no_worse_than_ppca_held_out(data, request):
    X_train, X_test = request.getfixturevalue(data)
    k = 8
    pca = PCA(k).fit(X_train)
    vae = quiet_fit(VAETransformer(k, device="cpu", random_state=0), X_train)
    # The ELBO, a lower bound on the VAE's log-likelihood, against PPCA's exact one.
    assert vae.score(X_test) >= pca.score(X_test)


def test_early_stopping_auto_holds_out_at_least_10_rows_below_50000_samples():
    rng = np.random.default_rng(0)
    params = dict(n_components=1, hidden_layer_sizes=(4,), max_iter=2, device="cpu")

    def fit(X, **kwargs):
        ae = AutoencoderTransformer(**params, random_state=0, **kwargs)
        with pytest.warns(ConvergenceWarning):  # 2 epochs: cut short, as asked
            return ae.fit(X)

    # n_samples: rows 'auto' holds out (0: none), the fraction of them, or at least 10,
    # or half of fewer than 20; 1 row cannot be split.
    for n, n_val in [(1, 0), (2, 1), (15, 7), (20, 10), (50, 10), (90, 10), (300, 30)]:
        X = rng.standard_normal((n, 2))
        auto = fit(X)
        if n_val == 0:
            assert auto.validation_scores_ is None and auto.best_loss_ is not None, n
            continue
        assert auto.best_loss_ is None, n
        # The same split as early_stopping=True holding out that many rows.
        explicit = fit(X, early_stopping=True, validation_fraction=n_val / n)
        assert auto.validation_scores_ == explicit.validation_scores_, n
        assert auto.loss_curve_ == explicit.loss_curve_, n
    for n, held_out in [(49_999, True), (50_000, False)]:
        est = fit(rng.standard_normal((n, 2)))
        assert (est.validation_scores_ is not None) is held_out, n


@pytest.mark.parametrize("Estimator", [AutoencoderTransformer, VAETransformer])
def test_defaults_on_a_few_dozen_rows_end_no_worse_than_pca(Estimator):
    # 40 rows of wine: trained on every row, the defaults ended at 1.2-1.3 times PCA's
    # test error (the VAE below PPCA); 'auto' now holds out 10 rows and keeps the start
    # unless they say training helps.
    X = StandardScaler().fit_transform(load_wine().data)
    idx = np.random.default_rng(0).permutation(len(X))
    X_train, X_test = X[idx[:40]], X[idx[40:]]
    pca = PCA(2).fit(X_train)
    model = quiet_fit(Estimator(2, device="cpu", random_state=0), X_train)
    assert model.validation_scores_ is not None
    if Estimator is AutoencoderTransformer:
        assert mse(model, X_test) <= mse(pca, X_test) * (1 + 1e-6)
    else:
        assert model.score(X_test) >= pca.score(X_test) - 1e-5


# ------------------------------------------------------------ any scale
@pytest.fixture(scope="module")
def large():
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((400, 2))
    X = Z @ rng.standard_normal((2, 6)) + 0.3 * rng.standard_normal((400, 6))
    return X * 1e4 + 3e4  # columns of std about 1e4, far from 0


def test_vae_fits_columns_of_std_1e4_in_their_units(large):
    pca = PCA(2).fit(large)
    vae = VAETransformer(2, hidden_layer_sizes=(16,), max_iter=30, device="cpu", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        vae.fit(large)
    # Reconstructions in X's units: PCA's order (PPCA's posterior mean, the start,
    # shrinks towards the mean), far below the variance of X.
    assert mse(vae, large) <= 1.5 * mse(pca, large)
    assert mse(vae, large) < 0.5 * large.var(0).mean()
    assert vae.score(large) >= pca.score(large) - 0.05
    np.testing.assert_allclose(vae.sample(2000, random_state=0).std(0), large.std(0), rtol=0.2)


@pytest.mark.parametrize("Estimator", [AutoencoderTransformer, VAETransformer])
def test_columns_of_std_1e_minus_6_fit_as_at_unit_scale(Estimator):
    # The learned noise variance's floor scales with X: an absolute 1e-6 held X at
    # this scale (noise variance about 1e-13) millions of times above its noise, and
    # the VAE's bound fell 50 nats per row below PPCA's, the posterior collapsed.
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((400, 2))
    unit = Z @ rng.standard_normal((2, 6)) + 0.3 * rng.standard_normal((400, 6))
    scores, noise, warned = [], [], []
    for scale in (1.0, 1e-6):
        X = unit * scale
        model = Estimator(2, hidden_layer_sizes=(16,), device="cpu", random_state=0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(X)
        warned.append(sorted({w.category.__name__ for w in caught}))
        # Log-densities of X * scale are those of X less d * log(scale).
        scores.append(model.score(X) + X.shape[1] * np.log(scale))
        noise.append(model.noise_variance_ / scale**2)
        if Estimator is VAETransformer:
            assert model.score(X) >= PCA(2).fit(X).score(X) - 0.05
    assert warned[1] == warned[0] == []  # no PosteriorCollapseWarning at either scale
    np.testing.assert_allclose(scores[1], scores[0], atol=0.05)
    np.testing.assert_allclose(noise[1], noise[0], rtol=0.05)


@pytest.mark.parametrize("factor", [1e3, 1e5])
def test_vae_scores_rows_far_outside_the_data_finite_and_low(large, factor):
    vae = VAETransformer(2, hidden_layer_sizes=(16,), max_iter=5, device="cpu", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        vae.fit(large)
    far = large[:20] * factor
    scores = vae.score_samples(far)
    assert np.isfinite(scores).all()
    assert scores.max() < vae.score_samples(large).min()
    assert np.isfinite(vae.score_samples_iwae(far, n_importance=10)).all()


def test_auto_batch_size_gives_a_few_hundred_rows_four_steps_per_epoch(monkeypatch):
    # scikit-learn's min(200, n) would take 120 rows in one step and 400 in two: an epoch,
    # the unit of early stopping's patience, would barely move the network.
    import skvae.neural._base as base

    seen = []

    def recording_train(*args, **kwargs):
        seen.append(kwargs["batch_size"])
        return train(*args, **kwargs)

    train = base.train
    monkeypatch.setattr(base, "train", recording_train)
    rng = np.random.default_rng(0)
    for n, expected in [(60, 32), (120, 32), (400, 100), (800, 200), (2000, 200)]:
        ae = AutoencoderTransformer(1, hidden_layer_sizes=(2,), max_iter=1, early_stopping=False)
        with pytest.warns(ConvergenceWarning):
            ae.fit(rng.standard_normal((n, 3)))
        assert seen[-1] == expected, n
