"""encoder=/decoder= modules of your own, input_shape=, and the built-in convolutional network."""

import math
import os
import pickle
import subprocess
import sys
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from torch import nn

from skvae import AutoencoderTransformer, VAETransformer
from skvae._utils.devices import accelerators
from skvae.exceptions import PosteriorCollapseWarning

IMAGE = (1, 28, 28)
FAST = dict(max_iter=3, batch_size=32, learning_rate=3e-3, device="cpu", random_state=0)


# Module-level classes: a pickled estimator refers to its modules' classes by name.
class ConvEncoder(nn.Module):
    """(batch, 1, 28, 28) -> (batch, 2 * channels, 7, 7): skvae flattens the features."""

    def __init__(self, channels=4):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, channels, 3, stride=2, padding=1),  # (batch, c, 14, 14)
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1),  # (batch, 2c, 7, 7)
            nn.ReLU(),
        )

    def forward(self, x):
        return self.net(x)


class ConvDecoder(nn.Module):
    """(batch, n_components) -> (batch, 1, 28, 28)."""

    def __init__(self, n_components, channels=4):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_components, 2 * channels * 7 * 7),
            nn.ReLU(),
            nn.Unflatten(1, (2 * channels, 7, 7)),
            nn.ConvTranspose2d(2 * channels, channels, 4, stride=2, padding=1),  # 14x14
            nn.LayerNorm([channels, 14, 14]),
            nn.ReLU(),
            nn.ConvTranspose2d(channels, 1, 4, stride=2, padding=1),  # (batch, 1, 28, 28)
        )

    def forward(self, z):
        return self.net(z)


class MetaEncoder(nn.Module):
    """Layers created on the meta device, without values until skvae initialises them."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 5, stride=4, device="meta")  # (batch, 3, 6, 6)
        self.norm = nn.BatchNorm2d(3, device="meta")

    def forward(self, x):
        return self.norm(self.conv(x))


def fit_few(est, X):
    """Fit for fewer epochs than training needs, on purpose; a collapsed posterior
    after so few steps is beside the point of these interface tests."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PosteriorCollapseWarning)
        with pytest.warns(ConvergenceWarning, match=r"stopped after max_iter=\d+ epochs"):
            return est.fit(X)


def custom_vae(**params):
    base = dict(input_shape=IMAGE, encoder=ConvEncoder, decoder=ConvDecoder, **FAST)
    return VAETransformer(4, likelihood="bernoulli", **{**base, **params})


def custom_ae(**params):
    base = dict(input_shape=IMAGE, encoder=ConvEncoder, decoder=ConvDecoder, **FAST)
    return AutoencoderTransformer(4, **{**base, **params})


@pytest.fixture(scope="module")
def images(mnist):
    return mnist[0][:256]  # (256, 784) float32 in [0, 1]


@pytest.fixture(scope="module")
def labels(mnist):
    return mnist[1][:256]


@pytest.fixture(scope="module")
def fitted_vae(images):
    return fit_few(custom_vae(), images)


def mean_predictor_mse(X):
    return float(((X - X.mean(0)) ** 2).mean())


# -------------------------------------------------------- the estimator API
@pytest.mark.mnist
def test_custom_conv_vae_through_the_whole_api(fitted_vae, images):
    vae, X = fitted_vae, images
    assert vae.n_features_in_ == 784
    assert isinstance(vae.module_.encoder.trunk[1], ConvEncoder)
    Z = vae.transform(X)
    assert Z.shape == (256, 4) and Z.dtype == np.float32
    X_hat = vae.inverse_transform(Z)
    assert X_hat.shape == (256, 784) and X_hat.min() >= 0 and X_hat.max() <= 1
    scores = vae.score_samples(X)
    assert scores.shape == (256,) and np.isfinite(scores).all()
    assert vae.score_samples_iwae(X[:8], n_importance=5).shape == (8,)
    assert vae.sample(5, random_state=0).shape == (5, 784)
    # Training improved the bound it optimises.
    assert vae.loss_curve_[-1] < vae.loss_curve_[0]
    # float64 in, float64 out; a tensor in, a tensor out.
    assert vae.transform(X.astype(np.float64)).dtype == np.float64
    T = vae.transform(torch.as_tensor(X[:10]))
    assert isinstance(T, torch.Tensor) and T.shape == (10, 4)


@pytest.mark.mnist
def test_custom_conv_autoencoder_reconstructs_better_than_the_mean(images):
    ae = fit_few(custom_ae(max_iter=20), images)
    X_hat = ae.inverse_transform(ae.transform(images))
    assert float(((X_hat - images) ** 2).mean()) < mean_predictor_mse(images)
    assert np.isfinite(ae.score(images))
    assert ae.sample(3, random_state=0).shape == (3, 784)


@pytest.mark.mnist
def test_same_random_state_gives_identical_networks(images):
    a, b = fit_few(custom_ae(), images), fit_few(custom_ae(), images)
    for (name, p), q in zip(a.module_.state_dict().items(), b.module_.state_dict().values()):
        assert torch.equal(p, q), name
    c = fit_few(custom_ae(random_state=1), images)
    assert not torch.equal(
        a.module_.encoder[0][1].net[0].weight, c.module_.encoder[0][1].net[0].weight
    )


@pytest.mark.mnist
def test_clone_keeps_classes_and_copies_instances(images):
    est = custom_vae(encoder_kwargs={"channels": 2}, decoder_kwargs={"channels": 2})
    twin = clone(est)
    assert twin.encoder is ConvEncoder and twin.decoder is ConvDecoder
    assert twin.encoder_kwargs == {"channels": 2} and twin.encoder_kwargs is not est.encoder_kwargs
    instance = ConvEncoder(channels=2)
    with_instance = clone(custom_ae(encoder=instance))
    assert isinstance(with_instance.encoder, ConvEncoder) and with_instance.encoder is not instance


@pytest.mark.mnist
def test_a_module_instance_is_copied_never_trained_or_moved(images):
    encoder = ConvEncoder()
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    ae = fit_few(custom_ae(encoder=encoder), images)
    for name, value in encoder.state_dict().items():
        assert torch.equal(value, before[name]), name
    user = ae.module_.encoder[0][1]
    assert user is not encoder
    # It started from the instance's values: its first layer moved by no more than
    # Adam's steps allow, lr (1 - beta1) / sqrt(1 - beta2) each (Kingma & Ba 2015,
    # Sec. 2.1), over 3 epochs of 256 / 32 steps.
    drift = (user.net[0].weight.detach() - before["net.0.weight"]).abs().max()
    assert drift <= 3 * 8 * ae.learning_rate * 0.1 / math.sqrt(0.001) * 1.001


@pytest.mark.mnist
def test_pickling_a_fitted_custom_network(fitted_vae, images):
    twin = pickle.loads(pickle.dumps(fitted_vae))
    np.testing.assert_array_equal(twin.transform(images), fitted_vae.transform(images))
    np.testing.assert_array_equal(twin.score_samples(images), fitted_vae.score_samples(images))
    twin.partial_fit(images)  # its optimizer is bound to the loaded parameters
    assert twin.n_iter_ == fitted_vae.n_iter_ + 1


@pytest.mark.mnist
def test_custom_network_saved_on_a_missing_device_loads_on_cpu(fitted_vae, images):
    state = fitted_vae.__getstate__()
    state["device_"] = "cuda:7"  # as pickled on a machine with a GPU
    twin = VAETransformer.__new__(VAETransformer)
    with pytest.warns(UserWarning, match=r"fitted on device 'cuda:7'.*loaded on the CPU"):
        twin.__setstate__(state)
    np.testing.assert_array_equal(twin.transform(images), fitted_vae.transform(images))


@pytest.mark.mnist
def test_grid_search_over_n_components_builds_the_decoder_for_each(images):
    search = GridSearchCV(custom_vae(max_iter=2), {"n_components": [2, 4]}, cv=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PosteriorCollapseWarning)
        with pytest.warns(ConvergenceWarning):
            search.fit(images)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    best = search.best_params_["n_components"]
    assert search.best_estimator_.transform(images[:5]).shape == (5, best)


@pytest.mark.mnist
def test_pipeline_codes_carry_the_digit_classes(images, labels):
    pipe = make_pipeline(custom_ae(max_iter=20), LogisticRegression(max_iter=1000))
    with pytest.warns(ConvergenceWarning, match="AutoencoderTransformer stopped"):
        pipe.fit(images[:192], labels[:192])
    # Chance is 1/10; 4 binomial standard deviations above it on the 64 held-out rows.
    above_chance = 0.1 + 4 * math.sqrt(0.1 * 0.9 / 64)
    assert pipe.score(images[192:], labels[192:]) > above_chance


# ---------------------------------------------------------- initialisation
def test_user_layers_start_from_their_own_default_init():
    X = np.random.default_rng(0).random((64, 784), dtype=np.float32)
    ae = AutoencoderTransformer(
        2, input_shape=IMAGE, encoder=MetaEncoder, decoder=ConvDecoder, max_iter=1,
        learning_rate=1e-9, batch_size=64, device="cpu", random_state=0,
    )  # fmt: skip
    with pytest.warns(ConvergenceWarning):
        ae.fit(X)  # one step of 1e-9: the weights are their initial values to 1e-8
    meta = ae.module_.encoder[0][1]
    bound = 1 / math.sqrt(1 * 5 * 5)  # U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = 1*5*5
    assert 0.5 * bound < meta.conv.weight.abs().max() <= bound + 1e-8
    np.testing.assert_allclose(meta.norm.weight.detach(), np.ones(3), atol=1e-8)
    decoder = ae.module_.decoder[0].net
    bound = 1 / math.sqrt(4 * 4 * 4)  # ConvTranspose2d(8 -> 4): fan_in = out channels * 4 * 4
    assert 0.5 * bound < decoder[3].weight.abs().max() <= bound + 1e-8
    np.testing.assert_allclose(decoder[4].weight.detach(), np.ones((4, 14, 14)), atol=1e-8)
    for name, value in ae.module_.state_dict().items():
        assert torch.isfinite(value.float()).all(), name


def test_lazy_layers_initialise_reproducibly_on_the_dry_run():
    X = np.random.default_rng(0).random((32, 10))
    encoder = partial(nn.LazyLinear, 6)
    a, b, c = (
        fit_few(
            AutoencoderTransformer(2, encoder=encoder, max_iter=1, device="cpu", random_state=s), X
        )
        for s in (0, 0, 1)
    )
    weight = [e.module_.encoder[0][0].weight for e in (a, b, c)]
    assert weight[0].shape == (6, 10)
    assert torch.equal(weight[0], weight[1]) and not torch.equal(weight[0], weight[2])


@pytest.mark.mnist
@pytest.mark.parametrize(
    "make",
    [
        custom_ae,
        lambda **p: AutoencoderTransformer(
            2, input_shape=IMAGE, architecture="conv", hidden_layer_sizes=(8,), **{**FAST, **p}
        ),
    ],
    ids=["custom", "conv"],
)
def test_global_rngs_untouched(images, make):
    torch_state, np_state = torch.random.get_rng_state(), np.random.get_state()  # noqa: NPY002
    fit_few(make(max_iter=1), images[:64])
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    after = np.random.get_state()  # noqa: NPY002
    assert after[0] == np_state[0] and np.array_equal(after[1], np_state[1])


# ------------------------------------------------------ the built-in conv net
@pytest.mark.mnist
@pytest.mark.parametrize("Estimator", [AutoencoderTransformer, VAETransformer])
def test_builtin_conv_on_mnist(images, Estimator):
    params = dict(likelihood="bernoulli") if Estimator is VAETransformer else {}
    est = Estimator(
        4, input_shape=IMAGE, architecture="conv", hidden_layer_sizes=(32,),
        **{**FAST, "max_iter": 4}, **params,
    )  # fmt: skip
    fit_few(est, images)
    kinds = {type(m) for m in est.module_.modules()}
    assert {nn.Conv2d, nn.ConvTranspose2d} <= kinds
    X_hat = est.inverse_transform(est.transform(images))
    assert X_hat.shape == images.shape
    assert float(((X_hat - images) ** 2).mean()) < mean_predictor_mse(images)
    assert est.sample(2, random_state=0).shape == (2, 784)


def test_builtin_conv_on_32x32_colour_images():
    X = np.random.default_rng(0).random((40, 3 * 32 * 32), dtype=np.float32)
    vae = VAETransformer(
        3, input_shape=(3, 32, 32), architecture="conv", hidden_layer_sizes=(16,),
        **{**FAST, "max_iter": 1},
    )  # fmt: skip
    fit_few(vae, X)
    assert vae.transform(X).shape == (40, 3)
    assert vae.sample(2, random_state=0).shape == (2, 3072)


@pytest.mark.parametrize(
    "shape, match",
    [
        (
            None,
            r"architecture='conv' needs input_shape=\(channels, height, width\).*"
            r"got input_shape=None",
        ),
        ((1, 30, 30), r"multiples of 4 .*got input_shape=\(1, 30, 30\)"),
        ((900,), r"multiples of 4 .*got input_shape=\(900,\)"),
    ],
)
def test_builtin_conv_refuses_shapes_it_cannot_halve(shape, match):
    X = np.zeros((10, 900), dtype=np.float32)
    with pytest.raises(ValueError, match=match):
        AutoencoderTransformer(input_shape=shape, architecture="conv", device="cpu").fit(X)


# ------------------------------------------------------------------ errors
def test_input_shape_must_hold_the_features():
    X = np.zeros((10, 785), dtype=np.float32)
    with pytest.raises(
        ValueError,
        match=r"input_shape=\(1, 28, 28\) holds 784 values per sample, but X has 785 features",
    ):
        AutoencoderTransformer(input_shape=IMAGE, device="cpu").fit(X)


@pytest.mark.parametrize(
    "params, error, match",
    [
        (
            {"encoder": ConvEncoder(), "encoder_kwargs": {"channels": 2}},
            ValueError,
            r"encoder_kwargs=\{'channels': 2\} are the arguments of a class or factory "
            r"given as encoder=, .* Pass the class",
        ),
        (
            {"decoder_kwargs": {"n_components": 3}},
            ValueError,
            r"sets 'n_components', which AutoencoderTransformer passes to the decoder",
        ),
        (
            {"encoder_kwargs": {"width": 3}},
            TypeError,
            r"could not build encoder='ConvEncoder'.*width=3",
        ),
        ({"encoder": lambda: "conv"}, TypeError, r"returned str, not a torch.nn.Module"),
        (
            {"encoder": nn.Conv2d(3, 4, 3)},
            ValueError,
            r"encoder failed on a batch of shape \(2, 1, 28, 28\).*set\s+input_shape",
        ),
        (
            {"decoder": ConvDecoder(n_components=3)},
            ValueError,
            r"decoder failed on a batch of shape \(2, 2\).*pass its class",
        ),
        (
            {"decoder": nn.Linear(2, 10)},
            ValueError,
            r"maps \(batch, 2\) to \(10,\) per sample, 10 values, but X has 784 features",
        ),
        (
            {"encoder": 3},
            ValueError,
            r"'encoder' parameter of AutoencoderTransformer must be None or a torch.nn.Module",
        ),
        (
            {"input_shape": (1, 0, 28)},
            ValueError,
            r"'input_shape' parameter .* a tuple of positive ints",
        ),
        ({"architecture": "cnn"}, ValueError, r"'architecture' .* Got 'cnn' instead"),
    ],
)
def test_errors_name_the_problem_and_the_way_out(params, error, match):
    X = np.zeros((8, 784), dtype=np.float32)
    base = dict(
        n_components=2, input_shape=IMAGE, encoder=ConvEncoder, decoder=ConvDecoder, device="cpu"
    )
    with pytest.raises(error, match=match):
        AutoencoderTransformer(**{**base, **params}).fit(X)


@pytest.mark.mnist
@pytest.mark.parametrize(
    "change",
    [
        {"decoder": ConvEncoder},
        {"encoder_kwargs": {"channels": 2}},
        {"input_shape": (784,)},
    ],
    ids=["decoder", "encoder_kwargs", "input_shape"],
)
def test_continued_training_refuses_a_changed_network(images, change):
    ae = fit_few(custom_ae(warm_start=True, max_iter=1), images[:64])
    name = next(iter(change))
    with pytest.raises(ValueError, match=rf"fitted with {name}=.*Set {name} back"):
        ae.set_params(**change).partial_fit(images[:64])
    ae.set_params(**{name: custom_ae().get_params()[name]}).partial_fit(images[:64])
    assert ae.n_iter_ == 2


# ----------------------------------------------------------------- devices
@pytest.mark.mnist
@pytest.mark.gpu
@pytest.mark.parametrize("device", accelerators() or ["cuda"])
def test_custom_network_trained_on_the_accelerator_loads_on_a_cpu_machine(images, device, tmp_path):
    vae = fit_few(custom_vae(device=device), images)
    assert next(vae.module_.parameters()).device.type == device
    assert isinstance(vae.transform(torch.as_tensor(images, device=device)), torch.Tensor)
    np.save(tmp_path / "X.npy", images[:20])
    np.save(tmp_path / "Z.npy", vae.transform(images[:20]))
    (tmp_path / "vae.pkl").write_bytes(pickle.dumps(vae))
    # A process that sees no accelerator, as on a CPU-only machine.
    script = (
        "import pickle, sys, warnings, numpy as np\n"
        "d = sys.argv[1]\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    vae = pickle.loads(open(d + '/vae.pkl', 'rb').read())\n"
        "assert any('loaded on the CPU' in str(w.message) for w in caught), caught\n"
        "assert vae.device_.type == 'cpu', vae.device_\n"
        "Z = vae.transform(np.load(d + '/X.npy'))\n"
        "np.testing.assert_allclose(Z, np.load(d + '/Z.npy'), atol=1e-4)\n"
    )
    here = Path(__file__).resolve()
    env = {
        **os.environ,
        "CUDA_VISIBLE_DEVICES": "",
        "PYTORCH_ENABLE_MPS_FALLBACK": "0",
        "PYTHONPATH": os.pathsep.join([str(here.parents[1]), str(here.parent)]),
    }
    if device == "mps":
        pytest.skip("MPS cannot be hidden from a process; the CUDA run covers this")
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
