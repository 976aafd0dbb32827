import copy
import math
import pickle
import warnings

import numpy as np
import pytest
import torch
from scipy.integrate import quad
from scipy.stats import multivariate_normal
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, KFold, train_test_split
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from skvae import PCA, AutoencoderTransformer, DivergenceWarning, VAETransformer
from skvae._utils.devices import accelerators
from skvae.exceptions import PosteriorCollapseWarning
from skvae.neural._elbo import gaussian_kl
from skvae.neural._likelihoods import cb_mean, cb_quantile, cb_sample, log_likelihood, total_nll
from skvae.neural._modules import materialize

FAST = dict(
    hidden_layer_sizes=(16,),
    max_iter=15,
    batch_size=50,
    learning_rate=3e-3,
    device="cpu",
    random_state=0,
)
# Enough Adam steps for the latent units to settle on 400 rows.
SLOW = dict(max_iter=100, batch_size=32, learning_rate=3e-3)


def few_epochs(est, X):
    """Fit for a test that runs fewer epochs than training needs, on purpose."""
    with pytest.warns(ConvergenceWarning, match=r"stopped after max_iter=\d+ epochs"):
        return est.fit(X)


def converged_fit(est, X):
    """Fit that must converge: a ConvergenceWarning fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        return est.fit(X)


def collapse_expected(fit, est, X):
    """Fit for a test of the interface on a few rows and epochs, where a collapsed
    posterior is expected and beside the point."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PosteriorCollapseWarning)
        return fit(est, X)


def api_fit(est, X):
    return collapse_expected(few_epochs, est, X)


def recon_mse(est, X):
    return float(((est.inverse_transform(est.transform(X)) - X) ** 2).mean())


@pytest.fixture(scope="module")
def digits():
    return load_digits().data[:400] / 16.0  # (400, 64) in [0, 1]


@pytest.fixture(scope="module")
def fitted(digits):
    est = VAETransformer(n_components=4, likelihood="bernoulli", **{**FAST, "max_iter": 30})
    return few_epochs(est, digits)


# ----------------------------------------------------------------- the bound
def test_closed_form_kl_matches_monte_carlo():
    g = torch.Generator().manual_seed(0)
    mean = torch.randn(3, 4, generator=g, dtype=torch.float64)
    log_var = torch.randn(3, 4, generator=g, dtype=torch.float64)
    eps = torch.randn(200_000, 1, 4, generator=g, dtype=torch.float64)
    std = (0.5 * log_var).exp()
    z = mean + std * eps  # (draws, 3, 4)
    log_q = -0.5 * (eps**2 + log_var + math.log(2 * math.pi))
    log_p = -0.5 * (z**2 + math.log(2 * math.pi))
    mc = (log_q - log_p).mean(0)  # (3, 4)
    np.testing.assert_allclose(gaussian_kl(mean, log_var), mc, atol=0.03)


def test_kl_per_dimension_is_the_training_data_average(fitted, digits):
    with torch.inference_mode():
        mean, log_var = fitted.module_.encoder(torch.as_tensor(digits, dtype=torch.float32))
        expected = gaussian_kl(mean, log_var).mean(0).numpy()
    np.testing.assert_allclose(fitted.kl_per_dimension_, expected, rtol=1e-4)
    assert fitted.kl_per_dimension_.shape == (4,)
    assert (fitted.kl_per_dimension_ >= 0).all()


def test_iwae_is_above_elbo_for_the_same_draws(fitted, digits):
    X = digits[:100]
    est = copy.deepcopy(fitted)
    # Same draws: the IWAE bound is log-mean-exp of the log weights the ELBO averages.
    for k in (1, 5):
        est.set_params(n_score_samples=k)
        elbo, iwae = est.score_samples(X), est.score_samples_iwae(X, n_importance=k)
        if k == 1:
            np.testing.assert_allclose(iwae, elbo, rtol=1e-10)
        else:
            assert (iwae >= elbo - 1e-9).all()


@pytest.fixture(scope="module")
def low_rank():
    rng = np.random.RandomState(0)
    Z = rng.randn(400, 2)
    return Z @ rng.randn(2, 10) + 0.05 * rng.randn(400, 10)  # two latent factors


def test_linear_vae_bounds_its_exact_log_likelihood(low_rank):
    # With a linear decoder, p(x) = N(b, W Wᵀ + cI) in closed form: the ELBO must lie
    # below it and the IWAE bound approach it, which holds only with every constant right.
    est = few_epochs(
        VAETransformer(
            n_components=2,
            activation="identity",
            noise_variance="learned",
            n_score_samples=100,
            **{**FAST, **SLOW, "hidden_layer_sizes": ()},
        ),
        low_rank,
    )
    linear, offset = est.module_.decoder[0][0], est.module_.decoder[1].offset
    W = linear.weight.detach().double().numpy()  # (n_features, n_components)
    b = (linear.bias + offset).detach().double().numpy()
    cov = W @ W.T + est.noise_variance_ * np.eye(W.shape[0])
    exact = multivariate_normal(b, cov).logpdf(low_rank)
    elbo = est.score_samples(low_rank)
    assert (elbo <= exact + 0.05).all()
    assert elbo.mean() < exact.mean() - 0.1
    iwae = est.score_samples_iwae(low_rank, n_importance=10_000)
    np.testing.assert_allclose(iwae.mean(), exact.mean(), atol=0.01)
    # On average over draws (other seeds of the scoring noise) the bound rises with K.
    means = []
    for k in (1, 10, 100):
        runs = []
        for seed in range(20):
            est._seed = seed
            runs.append(est.score_samples_iwae(low_rank, n_importance=k).mean())
        means.append(np.mean(runs))
    assert means[0] < means[1] < means[2] < exact.mean() + 0.05
    # The training loss is the negative ELBO too (reconstruction + KL, nothing dropped).
    parts = np.add(est.loss_parts_["reconstruction"], est.loss_parts_["kl"])
    # float32 sums of parts of about 20 nats: the loss itself crosses zero.
    np.testing.assert_allclose(est.loss_curve_, parts, rtol=1e-5, atol=1e-5)


def test_score_is_repeatable_and_row_independent(fitted, digits):
    a = fitted.score_samples(digits)
    np.testing.assert_array_equal(a, fitted.score_samples(digits))
    np.testing.assert_allclose(fitted.score_samples(digits[::-1][:50]), a[::-1][:50], rtol=1e-12)
    assert np.isclose(fitted.score(digits), a.mean())


# ------------------------------------------------------------ estimator API
def test_fit_transform_equals_fit_then_transform(digits):
    a = few_epochs(VAETransformer(**FAST), digits).transform(digits)
    b = VAETransformer(**FAST)
    with pytest.warns(ConvergenceWarning, match=r"max_iter=15 epochs"):
        np.testing.assert_array_equal(b.fit_transform(digits), a)


def test_same_seed_same_results_other_seed_differs(digits):
    X = digits[:150]
    a, b = (few_epochs(VAETransformer(**FAST), X) for _ in range(2))
    c = few_epochs(VAETransformer(**{**FAST, "random_state": 1}), X)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(X))
    np.testing.assert_array_equal(a.sample(3, random_state=0), b.sample(3, random_state=0))
    assert not np.allclose(a.transform(X), c.transform(X))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(fitted, digits, dtype):
    X = digits[:20].astype(dtype)
    Z = fitted.transform(X)
    assert Z.dtype == dtype and Z.shape == (20, 4)
    assert fitted.inverse_transform(Z).dtype == dtype
    assert fitted.score_samples(X).dtype == dtype
    assert fitted.score_samples_iwae(X, n_importance=3).dtype == dtype
    est = api_fit(VAETransformer(**FAST), X)
    assert est.sample(2).dtype == dtype


def test_tensors_in_tensors_out(fitted, digits):
    X = torch.as_tensor(digits[:30])  # float64 tensor
    Z = fitted.transform(X)
    assert isinstance(Z, torch.Tensor) and Z.dtype == torch.float64
    np.testing.assert_allclose(Z.numpy(), fitted.transform(digits[:30]))
    s = fitted.score_samples(X.float())
    assert isinstance(s, torch.Tensor) and s.dtype == torch.float32 and s.shape == (30,)
    est = api_fit(VAETransformer(**FAST), X.float())
    assert isinstance(est.inverse_transform(est.transform(X.float())), torch.Tensor)


def test_sample_shape_dtype_and_range(fitted):
    S = fitted.sample(7, random_state=0)
    assert S.shape == (7, 64) and S.dtype == np.float64
    # Bernoulli means: sigmoid of logits.
    assert (S >= 0).all() and (S <= 1).all()
    assert not np.array_equal(S, fitted.sample(7, random_state=1))


def test_pickle_round_trip(fitted, digits):
    clone = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(clone.transform(digits), fitted.transform(digits))
    np.testing.assert_array_equal(clone.score_samples(digits), fitted.score_samples(digits))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_pickle_loads_on_cpu_with_warning(fitted, digits):
    state = fitted.__getstate__()
    state["device_"] = "cuda"  # as saved on a GPU machine; the tensors are device-free bytes
    loaded = VAETransformer.__new__(VAETransformer)
    with pytest.warns(UserWarning, match="fitted on device 'cuda'.*loaded on the CPU"):
        loaded.__setstate__(state)
    assert loaded.device_ == torch.device("cpu")
    np.testing.assert_array_equal(loaded.transform(digits), fitted.transform(digits))


@pytest.mark.parametrize("scaler", [MinMaxScaler(), StandardScaler()], ids=["minmax", "standard"])
def test_default_vae_is_useful_on_scaled_digits(scaler):
    # The defaults, as a new user runs them: codes must carry as much class
    # information as PCA's (a collapsed posterior scored 0.61 against PCA's 0.91).
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    accuracy = {}
    for name, reducer in [("pca", PCA(8)), ("vae", VAETransformer(8, random_state=0))]:
        pipe = make_pipeline(scaler, reducer, LogisticRegression(max_iter=2000))
        # The defaults converge (no ConvergenceWarning) and do not collapse.
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            warnings.simplefilter("error", PosteriorCollapseWarning)
            accuracy[name] = pipe.fit(X_train, y_train).score(X_test, y_test)
    assert pipe[1].n_active_units_ >= 4
    assert accuracy["vae"] > accuracy["pca"] - 0.03


def test_collapsed_posterior_warns_at_the_callers_line(digits):
    # c = 1 is about 14 times the pixel variance of digits / 16: nothing is worth encoding.
    with pytest.warns(PosteriorCollapseWarning, match=r"0 of 3 latent units are active") as rec:
        few_epochs(VAETransformer(3, noise_variance=1.0, **{**FAST, "max_iter": 40}), digits)
    assert rec[0].filename == __file__


def test_diverging_fit_warns_and_stays_usable(digits):
    vae = VAETransformer(3, **{**FAST, "learning_rate": 10.0})
    message = r"VAETransformer diverged: .* to nan at epoch 1\. It keeps the initial weights"
    # The initial network encodes nothing yet, and that is said too.
    with pytest.warns(PosteriorCollapseWarning), pytest.warns(DivergenceWarning, match=message):
        vae.fit(digits)
    assert vae.n_iter_ == 1 and np.isnan(vae.loss_curve_[0])
    assert np.isfinite(vae.transform(digits)).all() and np.isfinite(vae.score(digits))


def test_grid_search_uses_score(digits):
    search = GridSearchCV(VAETransformer(**FAST), {"n_components": [1, 4]}, cv=2)
    X = digits[:200]
    api_fit(search, X)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    # Without a scorer, the held-out mean ELBO: that of the first split, recomputed.
    train, test = next(KFold(2).split(X))
    expected = api_fit(VAETransformer(**{**FAST, "n_components": 4}), X[train]).score(X[test])
    assert search.cv_results_["split0_test_score"][1] == pytest.approx(expected, rel=1e-9)


def test_set_output_pandas(digits):
    pd = pytest.importorskip("pandas")
    est = VAETransformer(n_components=3, **FAST).set_output(transform="pandas")
    with pytest.warns(ConvergenceWarning, match=r"max_iter=15 epochs"):
        out = est.fit_transform(pd.DataFrame(digits[:50]).add_prefix("px"))
    assert list(out.columns) == ["vaetransformer0", "vaetransformer1", "vaetransformer2"]


# ------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "params, match",
    [
        ({"likelihood": "gausian"}, r"'likelihood' parameter.*Did you mean 'gaussian'\?"),
        ({"noise_variance": 0.0}, r"'noise_variance' parameter.*\[1e-06, inf\).*Got 0.0"),
        ({"noise_variance": "learn"}, r"Did you mean 'learned'\?"),
        ({"noise_variance": float("inf")}, r"'noise_variance' parameter"),
        ({"beta": -1.0}, r"'beta' parameter.*\[0, inf\).*Got -1.0"),
        ({"kl_warmup": 1.5}, r"'kl_warmup' parameter.*int.*Got 1.5"),
        ({"n_score_samples": 0}, r"'n_score_samples' parameter.*Got 0"),
    ],
)
def test_bad_parameters_are_named(params, match):
    with pytest.raises(ValueError, match=match):
        VAETransformer(**params).fit(np.zeros((5, 2)))


def test_bernoulli_rejects_data_outside_unit_interval(fitted, digits):
    X = np.array([[-0.3, 1.0], [0.5, 4.2]])
    msg = r"likelihood='bernoulli' needs X in \[0, 1\]; got values in \[-0.3, 4.2\]"
    with pytest.raises(ValueError, match=msg + r".*MinMaxScaler.*likelihood='gaussian'"):
        VAETransformer(likelihood="bernoulli").fit(X)
    bad = digits[:5] * 2
    with pytest.raises(ValueError, match=r"needs X in \[0, 1\]"):
        fitted.score_samples(bad)
    fitted.transform(bad)  # encoding is defined anywhere; only the likelihood is not


def test_bad_n_importance(fitted, digits):
    with pytest.raises(ValueError, match="n_importance must be an int >= 1; got 0"):
        fitted.score_samples_iwae(digits, n_importance=0)


# -------------------------------------------------------------- diagnostics
def test_noise_variance_trades_reconstruction_for_regularity(digits):
    small = few_epochs(VAETransformer(n_components=4, noise_variance=0.01, **FAST), digits)
    with pytest.warns(PosteriorCollapseWarning):  # c = 1 is 14x the pixel variance
        big = few_epochs(VAETransformer(n_components=4, noise_variance=1.0, **FAST), digits)
    assert small.noise_variance_ == 0.01 and big.noise_variance_ == 1.0  # as given
    assert recon_mse(small, digits) < recon_mse(big, digits)
    assert small.kl_per_dimension_.sum() > big.kl_per_dimension_.sum()


def test_kl_warmup_weights_early_epochs(digits):
    est = few_epochs(VAETransformer(kl_warmup=4, beta=2.0, **{**FAST, "max_iter": 6}), digits)
    rec, kl = np.array(est.loss_parts_["reconstruction"]), np.array(est.loss_parts_["kl"])
    weight = 2.0 * np.minimum(1.0, np.arange(6) / 4)  # 0, 0.5, 1, 1.5, 2, 2
    np.testing.assert_allclose(est.loss_curve_, rec + weight * kl, rtol=1e-5)


def test_stopping_rule_waits_for_the_end_of_warmup(digits):
    # tol so large that no epoch counts as an improvement: stop after n_iter_no_change + 2
    # epochs of monitoring, which only starts once the KL weight is full.
    params = {**FAST, "max_iter": 30, "tol": 1e9, "n_iter_no_change": 1}

    def fit(est, X):
        return est.fit(X)

    assert collapse_expected(fit, VAETransformer(**params), digits[:50]).n_iter_ == 3
    assert collapse_expected(fit, VAETransformer(kl_warmup=5, **params), digits[:50]).n_iter_ == 8


def test_active_units_count_collapsed_dimensions(low_rank):
    # 300 epochs whatever the stopping rule says: the unused units take that long to collapse.
    params = {**FAST, **SLOW, "max_iter": 300, "tol": 0.0, "n_iter_no_change": 300}
    est = few_epochs(VAETransformer(n_components=6, noise_variance=0.1, **params), low_rank)
    activity = est.transform(low_rank).var(0)
    np.testing.assert_array_equal(est.active_units_, activity > 0.01)
    # Two factors generate the data: the two units that carry them are active, the
    # other four collapse to the prior (next to no KL).
    kl_order = np.argsort(est.kl_per_dimension_)
    assert est.active_units_[kl_order[-2:]].all()
    assert est.kl_per_dimension_[kl_order[:4]].max() < 0.05


# --------------------------------------------------------------- accelerators
@pytest.mark.gpu
@pytest.mark.parametrize("device", accelerators() or ["cuda"])
def test_accelerator_agrees_with_cpu(fitted, digits, device):
    moved = copy.deepcopy(fitted)
    moved.module_.to(device)
    moved.device_ = torch.device(device)
    np.testing.assert_allclose(moved.transform(digits), fitted.transform(digits), atol=1e-4)
    np.testing.assert_allclose(moved.score_samples(digits), fitted.score_samples(digits), rtol=1e-4)
    Z = fitted.transform(digits[:10])
    np.testing.assert_allclose(moved.inverse_transform(Z), fitted.inverse_transform(Z), atol=1e-4)


@pytest.mark.gpu
@pytest.mark.parametrize("device", accelerators() or ["cuda"])
def test_training_on_accelerator_matches_cpu_quality(digits, device):
    params = dict(n_components=4, likelihood="bernoulli", **{**FAST, "max_iter": 30})
    cpu = few_epochs(VAETransformer(**params), digits)
    acc = few_epochs(VAETransformer(**{**params, "device": device}), digits)
    assert acc.device_.type == device
    Xt = torch.as_tensor(digits, device=device)
    assert acc.transform(Xt).device.type == device
    assert abs(acc.score(digits) - cpu.score(digits)) < 0.05 * abs(cpu.score(digits))


def test_continued_training_refuses_a_changed_likelihood(digits):
    vae = api_fit(VAETransformer(2, **{**FAST, "warm_start": True}), digits)
    before = vae.transform(digits)
    with pytest.raises(ValueError, match=r"fitted with likelihood=.*Set likelihood back"):
        vae.set_params(likelihood="bernoulli").fit(digits)
    np.testing.assert_array_equal(vae.transform(digits), before)
    api_fit(vae.set_params(warm_start=False), digits)  # a new network of the new kind


@pytest.mark.parametrize("first, then", [(1.0, 0.5), ("learned", 0.5), (1.0, "learned")])
def test_continued_training_may_change_the_noise_variance(digits, first, then):
    # The network is the same whatever c: c only weighs the loss.
    params = {**FAST, "warm_start": True}
    vae = api_fit(VAETransformer(2, noise_variance=first, **params), digits)
    n_iter = vae.n_iter_
    api_fit(vae.set_params(noise_variance=then), digits)
    assert vae.n_iter_ > n_iter
    if then != "learned":
        assert vae.noise_variance_ == then


def test_vae_samples_look_like_data_where_autoencoder_samples_do_not():
    # The library's story: decoding draws from a deep autoencoder's irregular latent
    # space gives points far from any digit; the VAE's regularised latent space
    # gives samples as close to the training digits as unseen real digits are.
    X = load_digits().data.astype(np.float32) / 16.0
    X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)
    nearest = NearestNeighbors(n_neighbors=1).fit(X_train)
    real = nearest.kneighbors(X_test)[0].mean()
    common = dict(hidden_layer_sizes=(128,), device="cpu", random_state=0)
    ae = converged_fit(AutoencoderTransformer(8, **common), X_train)
    vae = converged_fit(VAETransformer(8, likelihood="bernoulli", **common), X_train)
    # The decoded points (observation_noise=False): noise would move both away from data.
    ae_samples = ae.sample(500, random_state=0, observation_noise=False)
    vae_samples = vae.sample(500, random_state=0, observation_noise=False)
    ae_distance = nearest.kneighbors(ae_samples)[0].mean() / real
    vae_distance = nearest.kneighbors(vae_samples)[0].mean() / real
    # Measured: autoencoder 1.40-1.41, VAE 1.11-1.12 over seeds 0-2.
    assert vae_distance < 1.25
    assert vae_distance < 0.9 * ae_distance


# ---------------------------------------------------------------- materialize
class _MixedLayers(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 3, 3, device="meta")
        self.norm = torch.nn.LayerNorm(5, device="meta")
        self.batch = torch.nn.BatchNorm1d(4, device="meta")
        self.embed = torch.nn.Embedding(7, 2, device="meta")
        self.linear = torch.nn.Linear(6, 2, device="meta")


def test_materialize_initialises_every_layer_type_reproducibly():
    state = torch.get_rng_state()
    a, b, c = (
        materialize(_MixedLayers(), torch.Generator().manual_seed(seed), "cpu")
        for seed in (0, 0, 1)
    )
    np.testing.assert_array_equal(torch.get_rng_state(), state)  # global RNG untouched
    for name, value in a.state_dict().items():
        assert torch.isfinite(value).all(), name
        np.testing.assert_array_equal(value, b.state_dict()[name])
    bound = 1 / math.sqrt(9)  # Conv2d's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert 0 < a.conv.weight.abs().max() <= bound
    assert torch.equal(a.norm.weight, torch.ones(5))
    assert torch.equal(a.norm.bias, torch.zeros(5))
    assert torch.equal(a.batch.running_var, torch.ones(4))
    assert a.embed.weight.std() > 0.5  # N(0, 1)
    assert not torch.equal(a.conv.weight, c.conv.weight)


# --------------------------------------------------- inference reads fitted state
def test_set_params_after_fit_changes_nothing_until_the_next_fit(digits):
    est = few_epochs(VAETransformer(4, noise_variance=0.05, **FAST), digits)
    Z = est.transform(digits[:20])
    score, decoded = est.score(digits), est.inverse_transform(Z)
    est.set_params(noise_variance=0.01, likelihood="bernoulli", n_components=2)
    assert est.score(digits) == score
    np.testing.assert_array_equal(est.inverse_transform(Z), decoded)  # no sigmoid
    assert est.sample(3, random_state=0).shape == (3, 64)
    assert est.get_feature_names_out().shape == (4,)
    assert (est.likelihood_, est.noise_variance_) == ("gaussian", 0.05)


def test_learned_noise_variance_is_used_after_set_params(digits):
    est = few_epochs(VAETransformer(4, **FAST), digits)
    score = est.score(digits)
    assert est.set_params(noise_variance=1.0).score(digits) == score


# ------------------------------------------------------------ per-row draws
def test_each_row_has_its_own_draws(fitted, digits):
    X = digits[:60]
    a = fitted.score_samples(X)
    np.testing.assert_array_equal(fitted.score_samples(X), a)  # repeatable
    np.testing.assert_allclose(fitted.score_samples(X[7:8]), a[7:8], rtol=1e-12)  # alone
    order = np.random.RandomState(0).permutation(len(X))
    np.testing.assert_allclose(fitted.score_samples(X[order]), a[order], rtol=1e-12)
    # Equal rows get equal draws, whatever their place.
    twice = fitted.score_samples(np.vstack([X[:1], X[:1]]))
    assert twice[0] == twice[1]


def test_monte_carlo_error_of_score_shrinks_with_n(fitted, digits):
    # Spread of score over independent seeds of the scoring draws: with one shared
    # draw per seed it would not shrink with n; with independent rows it falls as
    # 1/sqrt(n), by 4x from 25 to 400 rows.
    est = copy.deepcopy(fitted).set_params(n_score_samples=1)
    spread = {}
    for n in (25, 400):
        scores = []
        for seed in range(30):
            est._score_seed = lambda seed=seed: seed
            scores.append(est.score(digits[:n]))
        spread[n] = np.std(scores)
    assert spread[400] < 0.5 * spread[25]


def test_scores_do_not_depend_on_the_block_size(fitted, digits, monkeypatch):
    X = digits[:50]
    elbo, iwae = fitted.score_samples(X), fitted.score_samples_iwae(X, n_importance=30)
    monkeypatch.setattr("skvae.neural._elbo.SCORE_ELEMENTS", 7 * 64)  # 7 rows x draws per pass
    np.testing.assert_allclose(fitted.score_samples(X), elbo, rtol=1e-12)
    np.testing.assert_allclose(fitted.score_samples_iwae(X, n_importance=30), iwae, rtol=1e-12)


# --------------------------------------------------------- sample and likelihoods
def test_sample_adds_the_observation_noise_that_score_assumes(digits):
    est = few_epochs(VAETransformer(4, noise_variance=0.05, **FAST), digits)
    noisy = est.sample(2000, random_state=0)
    mean = est.sample(2000, random_state=0, observation_noise=False)
    np.testing.assert_allclose((noisy - mean).var(), 0.05, rtol=0.05)
    ae = few_epochs(AutoencoderTransformer(4, **FAST), digits)
    residual = ae.sample(2000, random_state=0) - ae.sample(
        2000, random_state=0, observation_noise=False
    )
    np.testing.assert_allclose(residual.var(), ae.noise_variance_, rtol=0.05)


def test_bernoulli_samples_are_binary(fitted):
    assert set(np.unique(fitted.sample(50, random_state=0))) <= {0.0, 1.0}


def test_bad_observation_noise(fitted):
    with pytest.raises(ValueError, match="observation_noise must be a bool; got 'yes'"):
        fitted.sample(2, observation_noise="yes")


@pytest.mark.parametrize(
    "eta",
    [
        -60.0,
        -4.0,
        -0.3,
        -0.1001,
        -1e-2,
        -1e-4,
        -1e-7,
        0.0,
        1e-9,
        9.9e-5,
        0.0099,
        0.0101,
        0.0999,
        3.0,
        60.0,
    ],
)
def test_continuous_bernoulli_is_a_density_with_the_stated_mean(eta):
    def density(x):
        x_t = torch.tensor([[x]], dtype=torch.float64)
        eta_t = torch.tensor([[eta]], dtype=torch.float64)
        return math.exp(float(log_likelihood("continuous_bernoulli", x_t, eta_t)))

    mass = quad(density, 0, 1, epsabs=1e-12, points=[0.01, 0.1, 0.9, 0.99])[0]
    mean = quad(lambda x: x * density(x), 0, 1, epsabs=1e-12, points=[0.01, 0.1, 0.9, 0.99])[0]
    np.testing.assert_allclose(mass, 1.0, rtol=1e-7)
    np.testing.assert_allclose(cb_mean(torch.tensor(eta, dtype=torch.float64)), mean, atol=1e-7)
    # The sampler inverts the CDF: the mass below its quantile of u is u.
    u = torch.tensor([1e-6, 0.1, 0.5, 0.9, 1 - 1e-6], dtype=torch.float64)
    x = cb_quantile(torch.full_like(u, eta), u)
    below = [quad(density, 0, float(xi), epsabs=1e-13)[0] for xi in x]
    np.testing.assert_allclose(below, u, rtol=1e-7, atol=1e-12)
    draws = cb_sample(torch.full((1000,), eta, dtype=torch.float64), torch.Generator())
    assert 0 <= draws.min() and draws.max() <= 1


def test_continuous_bernoulli_vae_scores_a_density(digits):
    est = few_epochs(VAETransformer(4, likelihood="continuous_bernoulli", **FAST), digits)
    assert np.isfinite(est.score_samples(digits)).all()
    assert est.noise_variance_ is None and est.likelihood_ == "continuous_bernoulli"
    for X in (est.inverse_transform(est.transform(digits)), est.sample(50, random_state=0)):
        assert X.min() >= 0 and X.max() <= 1
    with pytest.raises(ValueError, match=r"likelihood='continuous_bernoulli' needs X in \[0, 1\]"):
        est.score(digits - 0.5)


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli", "continuous_bernoulli"])
@pytest.mark.parametrize("tensor_log_c", [False, True])
def test_the_training_loss_term_is_the_summed_negative_log_likelihood(likelihood, tensor_log_c):
    # The loss sums -log p(x|z) over the batch in one reduction; it must be the
    # per-row log-likelihoods that the scores use, summed and negated.
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(37, 11, generator=gen, dtype=torch.float64)
    out = 3 * torch.randn(37, 11, generator=gen, dtype=torch.float64)
    log_c = math.log(0.07)
    if tensor_log_c:
        log_c = torch.tensor(log_c, dtype=torch.float64)
    expected = -log_likelihood(likelihood, x, out, log_c).sum()
    got = total_nll(likelihood, x, out, log_c)
    np.testing.assert_allclose(float(got), float(expected), rtol=1e-12)
