"""The decoder distributions p(x|z) of the VAE: log-density, mean and sampler.

Torch only. Each takes the decoder's output ``out`` of shape (batch, n_features):
the mean f(z) for 'gaussian', logits η for 'bernoulli' and 'continuous_bernoulli'.
"""

import math

import torch
from torch.nn import functional as F

LIKELIHOODS = ("gaussian", "bernoulli", "continuous_bernoulli")
# Likelihoods defined on [0, 1] only.
UNIT_INTERVAL = ("bernoulli", "continuous_bernoulli")

LOG_2PI = math.log(2 * math.pi)
_LOG_2 = math.log(2.0)
# Below these |η| the continuous Bernoulli's closed forms are 0/0 or lose digits to
# cancellation, and their Taylor series are used instead; the first terms left out
# are below 1e-12 there: O(η⁶) for log C, η⁷/1209600 for the mean, O(η³) for the
# quantile.
_CB_TAYLOR = 1e-2
_CB_MEAN_TAYLOR = 1e-1
_CB_QUANTILE_TAYLOR = 1e-4


def cb_log_normalizer(eta):
    """log C(η) of the continuous Bernoulli with logit η, elementwise.

    p(x|λ) = C(λ) λ^x (1 - λ)^(1 - x) on [0, 1] with λ = sigmoid(η), where
    C(λ) = 2 artanh(1 - 2λ) / (1 - 2λ) (Loaiza-Ganem & Cunningham 2019, Eq. 7).
    In terms of η this is C = η / tanh(η/2), so with a = |η|:
    log C = log a - log(1 - e^-a) + log(1 + e^-a), and near λ = 1/2 (η = 0), where
    both forms are 0/0, log C = log 2 + η²/12 - 7η⁴/1440 + O(η⁶).
    """
    a = eta.abs()
    small = a < _CB_TAYLOR
    safe = torch.where(small, torch.ones_like(a), a)  # keeps the unused branch finite
    direct = safe.log() - torch.log(-torch.expm1(-safe)) + torch.log1p(torch.exp(-safe))
    a2 = a.square()
    taylor = _LOG_2 + a2 / 12 - 7 * a2.square() / 1440
    return torch.where(small, taylor, direct)


def cb_mean(eta):
    """Mean of the continuous Bernoulli with logit η: 1 / (1 - e^-η) - 1/η.

    Not λ = sigmoid(η): the density tilts [0, 1] less than a Bernoulli does.
    Near η = 0, where the two terms cancel, the series
    1/2 + η/12 - η³/720 + η⁵/30240 replaces them.
    """
    small = eta.abs() < _CB_MEAN_TAYLOR
    safe = torch.where(small, torch.ones_like(eta), eta)
    direct = -1.0 / torch.expm1(-safe) - 1.0 / safe
    taylor = 0.5 + eta / 12 - eta**3 / 720 + eta**5 / 30240
    return torch.where(small, taylor, direct)


def _cb_quantile_nonpositive(eta, u):
    """Inverse CDF log(1 + u (e^η - 1)) / η of the continuous Bernoulli for η <= 0.

    Near η = 0 (0/0): u + η u(1 - u)/2 + η² u(1 - u)(1 - 2u)/6 + O(η³).
    """
    small = eta.abs() < _CB_QUANTILE_TAYLOR
    safe = torch.where(small, -torch.ones_like(eta), eta)
    v = u * (1 - u)
    taylor = u + eta * v / 2 + eta.square() * v * (1 - 2 * u) / 6
    return torch.where(small, taylor, torch.log1p(u * torch.expm1(safe)) / safe)


def cb_quantile(eta, u):
    """Inverse CDF of the continuous Bernoulli with logit η at u in [0, 1].

    F(x) = (e^(ηx) - 1) / (e^η - 1); for η > 0 the mirror image
    x = 1 - F⁻¹(1 - u; -η) keeps e^η from overflowing.
    """
    x = torch.where(
        eta <= 0,
        _cb_quantile_nonpositive(eta.clamp(max=0), u),
        1 - _cb_quantile_nonpositive((-eta).clamp(max=0), 1 - u),
    )
    return x.clamp(0, 1)


def cb_sample(eta, generator):
    """Draws from the continuous Bernoulli with logit η, by inversion of its CDF."""
    u = torch.rand(eta.shape, generator=generator, device=eta.device, dtype=eta.dtype)
    return cb_quantile(eta, u)


def log_likelihood(likelihood, x, out, log_c=None):
    """log p(x|z) per row, in nats with every constant, as (batch,).

    ``log_c`` is log c of the Gaussian N(f(z), cI): a float, or a scalar tensor
    when c is learned.
    """
    if likelihood == "gaussian":
        # log N(x; f(z), cI) = -||x - f(z)||² / (2c) - d/2 log(2πc)
        inv_c = torch.exp(-log_c) if torch.is_tensor(log_c) else math.exp(-log_c)
        sq = (x - out).square().sum(1)  # (batch,)
        return -0.5 * (sq * inv_c + x.shape[1] * (LOG_2PI + log_c))
    # log Bern(x; sigmoid(η)) = -BCE(η, x), summed over features; for x strictly
    # between 0 and 1 a soft target, not a density. Negated after the row sums:
    # the same values, one pass over (batch, d) fewer each way.
    nll = F.binary_cross_entropy_with_logits(out, x, reduction="none")  # (batch, d)
    if likelihood == "continuous_bernoulli":
        nll = nll - cb_log_normalizer(out)  # now a density on [0, 1]^d
    return -nll.sum(1)


def total_nll(likelihood, x, out, log_c=None):
    """-log p(x|z) summed over the rows and features of the batch: a scalar tensor.

    The training loss's term: :func:`log_likelihood`'s rows summed and negated,
    except that the Bernoulli sum is reduced inside torch's kernel, with no
    (batch, d) temporary of per-pixel terms and no separate reduction, forward or
    backward.
    """
    if likelihood == "bernoulli":
        return F.binary_cross_entropy_with_logits(out, x, reduction="sum")
    return -log_likelihood(likelihood, x, out, log_c).sum()


def decoder_mean(likelihood, out):
    """E[x|z] from the decoder's output."""
    if likelihood == "bernoulli":
        return torch.sigmoid(out)
    if likelihood == "continuous_bernoulli":
        return cb_mean(out)
    return out


def bernoulli_rows(x, generator):
    """Binary rows drawn elementwise as Bernoulli(x), x in [0, 1], in x's dtype.

    The draws of dynamic binarization; ``generator`` lives on x's device.
    """
    u = torch.rand(x.shape, generator=generator, device=x.device)  # (batch, n_features)
    return (u < x).to(x.dtype)


def decoder_sample(likelihood, out, noise_variance, generator):
    """A draw of x from p(x|z) given the decoder's output."""
    if likelihood == "bernoulli":
        u = torch.rand(out.shape, generator=generator, device=out.device, dtype=out.dtype)
        return (u < torch.sigmoid(out)).to(out.dtype)
    if likelihood == "continuous_bernoulli":
        return cb_sample(out, generator)
    noise = torch.randn(out.shape, generator=generator, device=out.device, dtype=out.dtype)
    return out + math.sqrt(noise_variance) * noise
