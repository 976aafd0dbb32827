"""The network a neural estimator trains, assembled from its parameters.

The encoder trunk and the decoder are the built-in MLP or convolutional ones
(``architecture``), or the user's modules (``encoder=``, ``decoder=``); the heads
the estimator needs go on the trunk. Every layer gets its initial values here,
under a forked RNG seeded from the estimator's init stream.
"""

import copy
import math
from contextlib import contextmanager

import torch
from torch import nn

from ._modules import Centred, conv_decoder, conv_trunk, materialize, mlp

# Rows of the zero batch run through user modules to learn their output shapes.
_DRY_ROWS = 2


@contextmanager
def seeded_rng(generator):
    """Run the block under torch's CPU RNG forked and seeded from ``generator``."""
    seed = int(torch.randint(2**62, (), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def input_shape_of(estimator, n_features):
    """The shape one sample has inside the networks: ``input_shape`` checked against X."""
    shape = (n_features,) if estimator.input_shape is None else tuple(estimator.input_shape)
    if math.prod(shape) != n_features:
        raise ValueError(
            f"input_shape={shape!r} holds {math.prod(shape)} values per sample, but X has "
            f"{n_features} features. Pass an input_shape whose product is {n_features} "
            f"(rows of X are the flattened samples, e.g. X.reshape(len(X), -1)), or "
            "input_shape=None for flat rows."
        )
    builds_conv = estimator.architecture == "conv" and (
        estimator.encoder is None or estimator.decoder is None
    )
    if builds_conv and (len(shape) != 3 or shape[1] % 4 or shape[2] % 4):
        raise ValueError(
            f"architecture='conv' needs input_shape=(channels, height, width) with height "
            f"and width multiples of 4 (e.g. (1, 28, 28) or (3, 32, 32)); got "
            f"input_shape={estimator.input_shape!r}. Pass such an input_shape (pad or crop "
            f"the images to it), or use architecture='mlp' or encoder=/decoder= with "
            f"modules of your own."
        )
    return shape


def _user_module(estimator, role, generator, extra):
    """The user's ``encoder`` or ``decoder``: a deep copy of an instance, or built
    from a class (or factory) with its ``*_kwargs`` and ``extra`` under a seeded RNG."""
    name = type(estimator).__name__
    spec = getattr(estimator, role)
    kwargs = getattr(estimator, f"{role}_kwargs")
    if isinstance(spec, nn.Module):
        if kwargs:
            raise ValueError(
                f"{role}_kwargs={kwargs!r} are the arguments of a class or factory given as "
                f"{role}=, but {name} got "
                f"the module instance {role}={type(spec).__name__}(...). Pass the class with "
                f"{role}_kwargs, or the instance with {role}_kwargs=None."
            )
        module = copy.deepcopy(spec)  # the user's object is never trained or moved
    else:
        kwargs = dict(kwargs or {})
        clash = sorted(set(kwargs) & set(extra))
        if clash:
            raise ValueError(
                f"{role}_kwargs={kwargs!r} sets {clash[0]!r}, which {name} passes to the "
                f"{role} itself ({clash[0]}={extra[clash[0]]!r}). Remove it from {role}_kwargs."
            )
        with seeded_rng(generator):
            try:
                module = spec(**kwargs, **extra)
            except TypeError as error:
                called = ", ".join(f"{k}={v!r}" for k, v in {**kwargs, **extra}.items())
                raise TypeError(
                    f"{name} could not build {role}={getattr(spec, '__name__', spec)!r} by "
                    f"calling it with ({called}): {error}. A {role} class or factory must "
                    f"accept {role}_kwargs" + (" and n_components=." if extra else ".")
                ) from error
        if not isinstance(module, nn.Module):
            raise TypeError(
                f"{role}={spec!r} returned {type(module).__name__}, not a torch.nn.Module. "
                f"Pass a torch.nn.Module subclass, an instance, or a function returning one."
            )
    # Layers the user left on the meta device have no values yet: initialise them now,
    # so that the dry run computes on real tensors.
    return materialize(module, generator, "cpu")


def _dry_run(module, batch, role, estimator, expects, shape, generator):
    """The output of ``module`` on ``batch`` in eval mode, or an error that says what it expects.

    Under a seeded RNG: lazy layers (``nn.LazyLinear``, ...) initialise on this first call.
    """
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad(), seeded_rng(generator):
            return module(batch)
    # What torch raises on a wrong shape; a NameError, AttributeError or TypeError in
    # the user's forward is a bug of its own, and propagates as itself.
    except (RuntimeError, ValueError, IndexError) as error:
        raise ValueError(
            f"{type(estimator).__name__}'s {role} failed on a batch of shape {shape}: "
            f"{type(error).__name__}: {error}. {expects}"
        ) from error
    finally:
        module.train(was_training)


def build_network(estimator, Xt, generator, make, mean, output_offset):
    """The module of ``estimator`` before :func:`materialize`: skvae's own layers on
    the meta device, the user's with their values on the CPU.

    ``make(trunk, width, decoder)`` wraps the encoder trunk (batch, n_features) ->
    (batch, width) with the estimator's heads. ``output_offset`` (n_features,) is
    what the built-in decoders add to their output (the user's get nothing added:
    their output is the likelihood's parameters as written). ``mean``
    (n_features,) is the mean of ``Xt``, which the built-in encoders subtract.
    """
    n_features = Xt.shape[1]
    shape = input_shape_of(estimator, n_features)
    hidden = tuple(estimator.hidden_layer_sizes)
    activation, k = estimator.activation, estimator.n_components

    if estimator.encoder is None:
        if estimator.architecture == "conv":
            body, width = conv_trunk(shape, hidden, activation)
        else:
            body = mlp([n_features, *hidden], activation, activate_last=True)
            width = hidden[-1] if hidden else n_features
        trunk = nn.Sequential(Centred(-mean), body)
    else:
        user = _user_module(estimator, "encoder", generator, {})
        # Rows are unflattened to (batch, *input_shape) for it, its features flattened.
        unflatten = [nn.Unflatten(1, shape)] if len(shape) > 1 else []
        trunk = nn.Sequential(*unflatten, user, nn.Flatten(1))
        features = _dry_run(
            trunk,
            torch.zeros(_DRY_ROWS, n_features),
            "encoder",
            estimator,
            f"The encoder must map a batch shaped like one sample, (batch, *input_shape) = "
            f"(batch, {', '.join(map(str, shape))}), to features (batch, n_hidden); set "
            "input_shape to the shape it expects.",
            (_DRY_ROWS, *shape),
            generator,
        )
        width = features.shape[1]

    if estimator.decoder is None:
        if estimator.architecture == "conv":
            body = conv_decoder(shape, k, hidden, activation)
        else:
            body = mlp([k, *reversed(hidden), n_features], activation)
        decoder = nn.Sequential(body, Centred(output_offset))
    else:
        user = _user_module(estimator, "decoder", generator, {"n_components": k})
        decoder = nn.Sequential(user, nn.Flatten(1))
        out = _dry_run(
            decoder,
            torch.zeros(_DRY_ROWS, k),
            "decoder",
            estimator,
            f"The decoder must map (batch, n_components) = (batch, {k}) to the "
            f"likelihood's parameters shaped like the input; a decoder instance is built "
            f"for one n_components: pass its class to vary n_components.",
            (_DRY_ROWS, k),
            generator,
        )
        if out.shape[1] != n_features:
            raise ValueError(
                f"{type(estimator).__name__}'s decoder maps (batch, {k}) to "
                f"{tuple(out.shape[1:])} per sample, {out.shape[1]} values, but X has "
                f"{n_features} features (input_shape={shape!r}). The decoder must output "
                "(batch, *input_shape)."
            )
    return make(trunk, width, decoder)


def widest_activation(module, forward, n_features, device):
    """Values per row of the widest tensor any layer of ``module`` makes in ``forward``.

    ``forward`` maps rows (batch, n_features) through the network (encode, then
    decode); the widest output of any submodule, X included, sizes the chunks of
    inference, whose activations would otherwise exceed their memory budget for a
    network wider inside than at its ends (a convolution's feature maps).
    """
    widest = [n_features]

    def record(_module, _inputs, output):
        for out in output if isinstance(output, (tuple, list)) else (output,):
            if torch.is_tensor(out) and out.dim() >= 1 and out.shape[0] == _DRY_ROWS:
                widest.append(out[0].numel())

    handles = [m.register_forward_hook(record) for m in module.modules()]
    training = module.training
    try:
        module.eval()
        with torch.inference_mode():
            forward(torch.zeros(_DRY_ROWS, n_features, device=device))
    finally:
        for handle in handles:
            handle.remove()
        module.train(training)
    return max(widest)
