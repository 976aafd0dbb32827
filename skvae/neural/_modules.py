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


def _allocate_on_cpu(layer):
    """``layer.to_empty(device="cpu", recurse=False)`` without an op on a meta tensor.

    torch runs ops on meta tensors through Python decompositions that import sympy
    and torch._dynamo on first use, hundreds of modules: an interrupt (Ctrl-C)
    during that import leaves them half-imported, and every later fit of the
    process fails. ``torch.empty`` of the same shape needs none of it.
    """
    for store in (layer._parameters, layer._buffers):
        for name, tensor in store.items():
            if tensor is not None and tensor.is_meta:
                empty = torch.empty(tensor.shape, dtype=tensor.dtype)
                if isinstance(tensor, nn.Parameter):
                    empty = nn.Parameter(empty, requires_grad=tensor.requires_grad)
                store[name] = empty


def materialize(module, generator, device):
    """Allocate ``module``'s meta layers, initialise each its own way, and move it to ``device``.

    A layer whose own parameters or buffers are on the meta device gets storage
    and its ``reset_parameters`` (torch's default initialisation for that layer
    type: Linear, Conv, ConvTranspose, LayerNorm, BatchNorm, Embedding, ...), run
    under a forked CPU RNG seeded from ``generator``, so a seed gives the same
    network on every device and torch's global RNG is left as it was. Tensors of
    meta layers without ``reset_parameters`` start at zero. Layers that already
    hold values (such as :class:`Centred`'s offset, or a module built by the
    user) keep them.
    """
    seed = int(torch.randint(2**62, (), generator=generator))
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for layer in module.modules():
            own = (*layer.parameters(recurse=False), *layer.buffers(recurse=False))
            if not any(t.is_meta for t in own):
                continue
            kept = {
                name: b.detach().cpu()
                for name, b in layer.named_buffers(recurse=False)
                if not b.is_meta
            }
            _allocate_on_cpu(layer)
            for tensor in (*layer.parameters(recurse=False), *layer.buffers(recurse=False)):
                tensor.zero_()  # to_empty leaves whatever was in memory
            reset = getattr(layer, "reset_parameters", None)
            if callable(reset):
                reset()
            for name, value in kept.items():
                layer.get_buffer(name).copy_(value)
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
    """Encoder ``trunk`` with a linear code layer ``width -> n_components``, and a decoder.

    The default network is an MLP trunk ``n_features -> hidden`` after
    :class:`Centred` (-mean), and the mirror-image MLP decoder followed by
    :class:`Centred` (+mean). With ``hidden=()`` and ``activation="identity"``
    both maps are linear: the linear autoencoder whose optimum spans the
    principal subspace.
    """

    def __init__(self, trunk, width, n_components, decoder):
        super().__init__()
        self.encoder = nn.Sequential(trunk, nn.Linear(width, n_components, device="meta"))
        self.decoder = decoder

    def forward(self, x):  # (batch, n_features) -> (batch, n_features)
        return self.decoder(self.encoder(x))


class GaussianEncoder(nn.Module):
    """A trunk and a linear head: the mean and log-variance of q(z|x) = N(g(x), diag h(x)).

    ``trunk`` maps (batch, n_features) to (batch, width). The head is one linear
    layer ``width -> 2 * n_components`` whose first half of outputs is the mean
    and second half the log-variance: the two heads of the model, computed with
    one matrix product (and one per gradient) instead of two. Each output's
    weights are initialised as a separate ``width -> n_components`` layer's
    would be. The log-variance keeps h(x) = exp(log_var) positive without a
    constraint.
    """

    def __init__(self, trunk, width, n_components):
        super().__init__()
        self.trunk = trunk
        self.head = nn.Linear(width, 2 * n_components, device="meta")

    def forward(self, x):  # (batch, n_features) -> 2 x (batch, n_components)
        return self.head(self.trunk(x)).chunk(2, dim=1)  # mean, log_var


class VAE(nn.Module):
    """Variational autoencoder: a :class:`GaussianEncoder` on ``trunk`` and a decoder.

    The decoder maps (batch, n_components) to the likelihood's parameters,
    (batch, n_features). The default decoder is an MLP
    ``n_components -> reversed(hidden) -> n_features`` that adds ``output_offset``
    (the data mean for a Gaussian likelihood, the logit of the mean for a
    Bernoulli one), so that an untrained decoder already predicts the average sample.
    """

    def __init__(self, trunk, width, n_components, decoder):
        super().__init__()
        self.encoder = GaussianEncoder(trunk, width, n_components)
        self.decoder = decoder

    def forward(self, x):  # (batch, n_features) -> (batch, n_features): decode(posterior mean)
        return self.decoder(self.encoder(x)[0])


# The built-in convolutional network: channels of its two stride-2 convolutions.
CONV_CHANNELS = (32, 64)


def conv_trunk(input_shape, hidden, activation):
    """Convolutional encoder trunk (batch, C*H*W) -> (batch, width), and ``width``.

    Two 4x4 convolutions of stride 2 and padding 1 (32 then 64 channels) halve
    H and W twice, as in DCGAN's discriminator (Radford et al. 2016) and the
    beta-VAE encoder (Burgess et al. 2018); then dense layers of widths
    ``hidden``. H and W must be multiples of 4.
    """
    c, h, w = input_shape
    c1, c2 = CONV_CHANNELS
    flat = c2 * (h // 4) * (w // 4)
    act = ACTIVATIONS[activation]
    trunk = nn.Sequential(
        nn.Unflatten(1, tuple(input_shape)),  # (batch, C, H, W)
        nn.Conv2d(c, c1, 4, stride=2, padding=1, device="meta"),  # (batch, c1, H/2, W/2)
        act(),
        nn.Conv2d(c1, c2, 4, stride=2, padding=1, device="meta"),  # (batch, c2, H/4, W/4)
        act(),
        nn.Flatten(1),
        mlp([flat, *hidden], activation, activate_last=True),
    )
    return trunk, hidden[-1] if hidden else flat


def conv_decoder(input_shape, n_components, hidden, activation):
    """The mirror image of :func:`conv_trunk`: (batch, n_components) -> (batch, C*H*W).

    Dense layers ``n_components -> reversed(hidden) -> c2*(H/4)*(W/4)``, then two
    4x4 transposed convolutions of stride 2 (DCGAN's generator) double H and W
    back; the last one is linear.
    """
    c, h, w = input_shape
    c1, c2 = CONV_CHANNELS
    act = ACTIVATIONS[activation]
    return nn.Sequential(
        mlp([n_components, *reversed(hidden), c2 * (h // 4) * (w // 4)], activation, True),
        nn.Unflatten(1, (c2, h // 4, w // 4)),
        nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1, device="meta"),  # (batch, c1, H/2, W/2)
        act(),
        nn.ConvTranspose2d(c1, c, 4, stride=2, padding=1, device="meta"),  # (batch, C, H, W)
        nn.Flatten(1),
    )
