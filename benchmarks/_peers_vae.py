"""The VAE side of bench_peers: one Bernoulli VAE trained by skvae and by the peers.

The network is ``bench_training.RefVAE``: 784-200-200-50 tanh encoder with a
Gaussian posterior (mean and log-variance heads), 50-200-200-784 tanh decoder
giving Bernoulli logits, the negative ELBO (closed-form KL, one draw of z per
row) as the loss, Adam at 1e-3, batch 100, shuffled minibatches. Each fit
returns a :class:`Fitted` read by the same checks: the held-out ELBO (nats per
image, 10 draws of z per row) and the squared error per pixel of the
reconstruction from the posterior mean.
"""

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from bench_training import RefVAE, plain_epoch
from sklearn.exceptions import ConvergenceWarning
from torch import nn

from skvae import VAETransformer

HIDDEN = (200, 200)
K = 50
BATCH = 100
LR = 1e-3
ELBO_DRAWS = 10


@dataclass
class Fitted:
    """What the checks read from a fitted contender."""

    reconstruct: Callable  # (n, 784) array -> posterior-mean reconstruction, (n, 784)
    elbo: Callable  # (n, 784) array -> mean ELBO per image, nats


def bernoulli_elbo(encode, log_lik, A, draws=ELBO_DRAWS):
    """Mean ELBO per image: E_q[log p(x|z)] by ``draws`` draws, minus the closed-form KL.

    ``encode(x) -> (mean, log_var)`` of q(z|x); ``log_lik(x, z) -> (n,)`` log p(x|z).
    The KL of a diagonal Gaussian to N(0, I) is Kingma & Welling (2014), App. B.
    """
    x = torch.from_numpy(A)
    gen = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        mu, logvar = encode(x)  # (n, K) each
        kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)
        rec = torch.zeros(len(x), dtype=torch.float64)
        for _ in range(draws):
            eps = torch.randn(mu.shape, generator=gen)
            rec += log_lik(x, mu + torch.exp(0.5 * logvar) * eps).double()
        return float((rec / draws - kl.double()).mean())


def _logit_log_lik(decoder):
    return lambda x, z: (
        -nn.functional.binary_cross_entropy_with_logits(decoder(z), x, reduction="none").sum(1)
    )


def _ref_fitted(ref):
    """Checks of a model built on RefVAE's modules (the loop, skorch, Pyro)."""
    ref.eval()

    def encode(x):
        h = ref.trunk(x)
        return ref.mean(h), ref.logvar(h)

    def reconstruct(A):
        with torch.inference_mode():
            return torch.sigmoid(ref.dec(encode(torch.from_numpy(A))[0])).numpy()

    return Fitted(reconstruct, lambda A: bernoulli_elbo(encode, _logit_log_lik(ref.dec), A))


def minimal_loop(X, n_epochs, seed):
    torch.manual_seed(seed)
    model = RefVAE()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    Xt = torch.from_numpy(X)
    for _ in range(n_epochs):
        plain_epoch(model, opt, Xt, BATCH)
    return _ref_fitted(model)


def skvae_fit(X, n_epochs, seed):
    est = VAETransformer(
        K,
        hidden_layer_sizes=HIDDEN,
        activation="tanh",
        likelihood="bernoulli",
        batch_size=BATCH,
        learning_rate=LR,
        max_iter=n_epochs,
        tol=0.0,
        n_iter_no_change=10**6,
        device="cpu",
        random_state=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a fixed epoch budget, by design
        est.fit(X)
    # score: the ELBO by n_score_samples (10) draws, its KL by the same draws.
    return Fitted(lambda A: est.inverse_transform(est.transform(A)), est.score)


class _Forward(nn.Module):
    """RefVAE as a skorch module: forward gives (logits, mean, log_var) of one draw."""

    def __init__(self, ref):
        super().__init__()
        self.ref = ref

    def forward(self, x):
        h = self.ref.trunk(x)
        mu, logvar = self.ref.mean(h), self.ref.logvar(h)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        return self.ref.dec(z), mu, logvar


def skorch_fit(X, n_epochs, seed):
    from skorch import NeuralNet

    class VAENet(NeuralNet):
        # skorch's documented way to a loss that is not criterion(y_pred, y).
        def get_loss(self, y_pred, y_true, X=None, training=False):
            logits, mu, logvar = y_pred
            rec = nn.functional.binary_cross_entropy_with_logits(logits, X, reduction="none")
            kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)
            return (rec.sum(1) + kl).mean()

    torch.manual_seed(seed)
    ref = RefVAE()
    net = VAENet(
        _Forward(ref),
        criterion=nn.BCEWithLogitsLoss,  # required by skorch, unused by get_loss
        max_epochs=n_epochs,
        lr=LR,
        optimizer=torch.optim.Adam,
        batch_size=BATCH,
        iterator_train__shuffle=True,
        train_split=None,
        verbose=0,
    )
    net.fit(X, None)
    return _ref_fitted(ref)


def pyod_fit(X, n_epochs, seed):
    from pyod.models.vae import VAE

    est = VAE(
        encoder_neuron_list=list(HIDDEN),
        decoder_neuron_list=list(HIDDEN),
        latent_dim=K,
        hidden_activation_name="tanh",
        output_activation_name="sigmoid",
        batch_norm=False,
        dropout_rate=0.0,
        preprocessing=False,
        optimizer_params={"weight_decay": 0.0},
        # PyOD clamps the KL term to [0, capacity]: its default 0 drops the KL.
        capacity=math.inf,
        epoch_num=n_epochs,
        batch_size=BATCH,
        lr=LR,
        device="cpu",
        random_state=seed,
        verbose=0,
    )
    est.fit(X)
    model = est.model.eval()

    def log_lik(x, z):  # its sigmoid outputs read as Bernoulli means
        p = model.decode(z).clamp(1e-7, 1 - 1e-7)
        return (x * p.log() + (1 - x) * (-p).log1p()).sum(1)

    def reconstruct(A):
        with torch.inference_mode():
            return model.decode(model.encode(torch.from_numpy(A))[0]).numpy()

    return Fitted(reconstruct, lambda A: bernoulli_elbo(model.encode, log_lik, A))


def pyro_fit(X, n_epochs, seed):
    import pyro
    import pyro.distributions as dist
    from pyro.infer import SVI, TraceMeanField_ELBO

    pyro.clear_param_store()
    pyro.set_rng_seed(seed)
    ref = RefVAE()

    def model(x):
        pyro.module("vae", ref)
        with pyro.plate("rows", len(x)):
            z = pyro.sample("z", dist.Normal(x.new_zeros(len(x), K), 1.0).to_event(1))
            # MNIST/255 is not binary: the Bernoulli likelihood of grey levels, as in the loop.
            likelihood = dist.Bernoulli(logits=ref.dec(z), validate_args=False)
            pyro.sample("x", likelihood.to_event(1), obs=x)

    def guide(x):
        pyro.module("vae", ref)
        with pyro.plate("rows", len(x)):
            h = ref.trunk(x)
            scale = torch.exp(0.5 * ref.logvar(h))
            pyro.sample("z", dist.Normal(ref.mean(h), scale).to_event(1))

    # TraceMeanField_ELBO: the KL in closed form, as the other contenders compute it.
    svi = SVI(model, guide, pyro.optim.Adam({"lr": LR}), loss=TraceMeanField_ELBO())
    Xt = torch.from_numpy(X)
    for _ in range(n_epochs):
        order = torch.randperm(len(Xt))
        for i in range(0, len(Xt), BATCH):
            svi.step(Xt[order[i : i + BATCH]])
    return _ref_fitted(ref)


# name: (fit, the module a peer needs, or None)
CONTENDERS = {
    "minimal torch loop": (minimal_loop, None),
    "skvae VAETransformer": (skvae_fit, None),
    "skorch NeuralNet (ELBO in get_loss)": (skorch_fit, "skorch"),
    "PyOD VAE": (pyod_fit, "pyod"),
    "Pyro SVI (TraceMeanField_ELBO)": (pyro_fit, "pyro"),
}


def checks(fitted, X_test):
    """The figures that show a contender trained."""
    return {
        "test ELBO (nats/image)": fitted.elbo(X_test),
        "test recon. MSE/pixel": float(((fitted.reconstruct(X_test) - X_test) ** 2).mean()),
    }


def pixel_means(X_train, X_test):
    """The checks' figures for independent Bernoulli pixels at the training means: a model
    that learnt nothing (its ELBO is that log-likelihood: no latent code)."""
    p = np.clip(X_train.mean(0, dtype=np.float64), 1e-7, 1 - 1e-7)
    log_lik = X_test * np.log(p) + (1 - X_test) * np.log1p(-p)
    return {
        "test ELBO (nats/image)": float(log_lik.sum(1).mean()),
        "test recon. MSE/pixel": float(((X_test - p) ** 2).mean()),
    }


def reference_rows(X_train, X_test):
    """Rows of two models that learnt nothing: the pixel means, and RefVAE as initialised
    (seed 0), where the RefVAE-based contenders start."""
    torch.manual_seed(0)
    return [
        {"contender": "(reference: independent pixels at the training means)",
         **pixel_means(X_train, X_test)},
        {"contender": "(reference: RefVAE untrained)", **checks(_ref_fitted(RefVAE()), X_test)},
    ]  # fmt: skip
