"""torch.nn modules of the neural estimators. No scikit-learn in here."""

import torch
from torch import nn

ACTIVATIONS = {
    "identity": nn.Identity,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}


def mlp(sizes, activation, activate_last=False):
    """Linear layers of ``sizes[i] -> sizes[i + 1]`` with ``activation`` between them.

    The last layer is left linear unless ``activate_last``. Parameters are created
    on the meta device: :func:`materialize` gives them storage and a seeded
    initialisation, so that building a module never draws from torch's global RNG.
    """
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out, device="meta"))
        if i < len(sizes) - 2 or activate_last:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def materialize(module, generator, device):
    """Allocate ``module``'s meta parameters and initialise every layer its own way.

    Each submodule's ``reset_parameters`` (torch's default initialisation for
    that layer type: Linear, Conv, LayerNorm, BatchNorm, Embedding, ...) runs
    under a forked CPU RNG seeded from ``generator``, so a seed gives the same
    network on every device and torch's global RNG is left as it was. Parameters
    and meta buffers of modules without ``reset_parameters`` start at zero; buffers
    that already hold values (such as :class:`Centred`'s offset) keep them.
    """
    buffers = {
        name: b.detach().cpu() for name, b in module.named_buffers() if b.device.type != "meta"
    }
    module.to_empty(device="cpu")
    seed = int(torch.randint(2**62, (), generator=generator))
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for tensor in (*module.parameters(), *module.buffers()):
            tensor.zero_()  # to_empty leaves whatever was in memory
        for layer in module.modules():
            reset = getattr(layer, "reset_parameters", None)
            if callable(reset):
                reset()
        for name, value in buffers.items():
            module.get_buffer(name).copy_(value)
    return module.to(device)


class Centred(nn.Module):
    """Shift by a fixed vector: ``x + offset`` (a buffer, not trained).

    The encoders see centred data and the decoders add the mean back. That is a
    reparameterisation (the model class is unchanged) which spares the network
    learning the mean through its biases, and it speeds training up several-fold:
    the linear autoencoder reaches PCA's error in a fraction of the epochs.
    """

    def __init__(self, offset):
        super().__init__()
        self.register_buffer("offset", offset.detach().clone())

    def forward(self, x):
        return x + self.offset


class Autoencoder(nn.Module):
    """MLP encoder ``n_features -> hidden -> n_components`` and its mirror image as decoder.

    ``mean`` (n_features,) is subtracted before the encoder and added after the
    decoder. With ``hidden=()`` and ``activation="identity"`` both maps are
    linear: the linear autoencoder whose optimum spans the principal subspace.
    """

    def __init__(self, mean, n_components, hidden, activation):
        super().__init__()
        n_features = mean.shape[0]
        self.encoder = nn.Sequential(
            Centred(-mean), mlp([n_features, *hidden, n_components], activation)
        )
        self.decoder = nn.Sequential(
            mlp([n_components, *reversed(hidden), n_features], activation), Centred(mean)
        )

    def forward(self, x):  # (batch, n_features) -> (batch, n_features)
        return self.decoder(self.encoder(x))


class GaussianEncoder(nn.Module):
    """MLP trunk and two linear heads: the mean and log-variance of q(z|x) = N(g(x), diag h(x)).

    ``mean`` (n_features,) is subtracted first, as in :class:`Autoencoder`.
    The log-variance head keeps h(x) = exp(log_var) positive without a constraint.
    """

    def __init__(self, mean, n_components, hidden, activation):
        super().__init__()
        n_features = mean.shape[0]
        self.trunk = nn.Sequential(
            Centred(-mean), mlp([n_features, *hidden], activation, activate_last=True)
        )
        width = hidden[-1] if hidden else n_features
        self.loc = nn.Linear(width, n_components, device="meta")
        self.log_var = nn.Linear(width, n_components, device="meta")

    def forward(self, x):  # (batch, n_features) -> 2 x (batch, n_components)
        h = self.trunk(x)
        return self.loc(h), self.log_var(h)


class VAE(nn.Module):
    """Variational autoencoder: a :class:`GaussianEncoder` and an MLP decoder.

    The decoder maps ``n_components -> reversed(hidden) -> n_features`` and adds
    ``output_offset`` (n_features,): the data mean for a Gaussian likelihood, the
    logit of the mean for a Bernoulli one, so that an untrained decoder already
    predicts the average sample.
    """

    def __init__(self, mean, n_components, hidden, activation, output_offset):
        super().__init__()
        n_features = mean.shape[0]
        self.encoder = GaussianEncoder(mean, n_components, hidden, activation)
        self.decoder = nn.Sequential(
            mlp([n_components, *reversed(hidden), n_features], activation), Centred(output_offset)
        )

    def forward(self, x):  # (batch, n_features) -> (batch, n_features): decode(posterior mean)
        return self.decoder(self.encoder(x)[0])
