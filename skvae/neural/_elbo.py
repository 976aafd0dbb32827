"""What the VAE's objective and scores compute: the closed-form KL, the optimal
Gaussian c, counter-based draws per row, and the ELBO/IWAE bounds in blocks."""

import math

import torch

from .._utils.arrays import SCORE_ELEMENTS
from .._utils.validation import MIN_NOISE_VARIANCE
from ._likelihoods import LOG_2PI, log_likelihood

_MASK32 = 0xFFFFFFFF


def gaussian_kl(mean, log_var):
    """KL(N(mean, diag exp(log_var)) || N(0, I)) per latent dimension, (batch, n_components).

    Closed form, Kingma & Welling (2014), Appendix B:
    -KL = 1/2 sum_j (1 + log σ_j² - μ_j² - σ_j²).
    """
    return 0.5 * (mean.square() + log_var.exp() - 1.0 - log_var)


def optimal_log_c(x, out, floor=MIN_NOISE_VARIANCE):
    """log of the c that maximises the Gaussian likelihood of x given f(z) = ``out``.

    c* = ||x - f(z)||² / d averaged over the rows (Rybkin et al. 2021): in closed
    form rather than a parameter that Adam would move by at most its step size
    per step. A scalar tensor, floored at ``floor`` (:func:`noise_floor` of X).
    """
    return (x - out).square().mean().clamp(min=floor).log()


def _mix32(x):
    """The 'lowbias32' integer hash (C. Wellons) of int64 tensors holding 32-bit values.

    Products may wrap around int64; the mask keeps their low 32 bits, which wrapping
    does not change.
    """
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _MASK32
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & _MASK32
    return x ^ (x >> 16)


def row_keys(X, seed):
    """A 32-bit key per row from the bits of its float32 values and ``seed``, (batch,) int64.

    Hashed SCORE_ELEMENTS values at a time: the hash's int64 temporaries are
    twice the size of the float32 rows, several times over.
    """
    position = torch.arange(X.shape[1], device=X.device, dtype=torch.int64)
    salt = _mix32((position + seed) & _MASK32)  # (d,): the value's place counts too
    keys = []
    for xb in X.split(max(1, SCORE_ELEMENTS // X.shape[1])):
        bits = xb.to(torch.float32).view(torch.int32).to(torch.int64) & _MASK32  # (b, d)
        keys.append(_mix32((_mix32(bits ^ salt).sum(1) + seed) & _MASK32))
    return torch.cat(keys)


def row_normals(keys, start, stop, k):
    """Draws s = start, ..., stop - 1 of N(0, I_k) for each row key, (stop - start, batch, k).

    A counter-based generator: the uniforms are hashes of (key, counter), turned
    into normals by Box-Muller, so draw s of a row is the same whatever the
    other rows, their order, or how many draws are asked for.
    """
    counter = torch.arange(2 * start * k, 2 * stop * k, device=keys.device, dtype=torch.int64)
    bits = _mix32(_mix32(counter.reshape(-1, 1, 2 * k) & _MASK32) ^ keys.reshape(1, -1, 1))
    dtype = torch.float32 if keys.device.type == "mps" else torch.float64  # MPS lacks float64
    u = ((bits >> 8).to(dtype) + 0.5) * 2.0**-24  # in (0, 1), (S, batch, 2k)
    u1, u2 = u[..., :k], u[..., k:]
    return torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2 * math.pi * u2)


def log_weight_bound(module, likelihood, log_c, X, seed, n_draws, iwae, widest):
    """ELBO (mean over s) or IWAE bound (log-mean-exp over s) of each row of ``X``, (n,).

    log w_s = log p(x, z_s) - log q(z_s|x) with z_s = g(x) + sqrt(h(x)) ε_s; each
    row's ε_s come from its content and ``seed`` (:func:`row_normals`). ``module``
    computes in its own dtype; rows x draws go through the decoder in blocks of
    about ``SCORE_ELEMENTS / widest`` rows, so memory is bounded whatever n and
    ``n_draws``.
    """
    dtype = next(module.parameters()).dtype  # rows are cast block by block below
    n, d = X.shape
    per_pass = max(1, SCORE_ELEMENTS // widest)  # decoder rows per pass
    out = []
    for i in range(0, n, per_pass):
        # Keys from the rows as given, then the cast: both per block, as the
        # (b, d) temporaries of the hash would otherwise scale with n.
        kb = row_keys(X[i : i + per_pass], seed)  # (b,)
        xb = X[i : i + per_pass].to(dtype)  # (b, d)
        mean, log_var = module.encoder(xb)  # (b, k) each
        k = mean.shape[1]
        std = (0.5 * log_var).exp()
        # log q(z|x) = log N(ε; 0, I) - 1/2 sum_j log h_j(x), since (z - g(x)) / sqrt(h(x)) = ε.
        log_q_const = -0.5 * (log_var.sum(1) + k * LOG_2PI)  # (b,)
        step = max(1, per_pass // xb.shape[0])  # draws per pass
        acc = None
        for s in range(0, n_draws, step):
            n_s = min(n_draws, s + step) - s
            eps = row_normals(kb, s, s + n_s, k).to(X.dtype)  # (n_s, b, k)
            z = mean + std * eps  # (n_s, b, k)
            x_rep = xb.expand(n_s, -1, -1).reshape(-1, d)  # (n_s * b, d)
            out_z = module.decoder(z.reshape(-1, k))
            log_px = log_likelihood(likelihood, x_rep, out_z, log_c).reshape(n_s, -1)
            log_pz = -0.5 * (z.square().sum(2) + k * LOG_2PI)  # (n_s, b)
            log_w = log_px + log_pz - (log_q_const - 0.5 * eps.square().sum(2))
            if iwae:
                part = torch.logsumexp(log_w, 0)  # (b,)
                acc = part if acc is None else torch.logaddexp(acc, part)
            else:
                acc = log_w.sum(0) if acc is None else acc + log_w.sum(0)
        out.append(acc - math.log(n_draws) if iwae else acc / n_draws)
    return torch.cat(out)
