"""What the VAE trains on and what a fit leaves behind: the objective (the ELBO,
with KL warm-up), the reference losses the stopping rule compares against, and
the statistics of the fitted posterior (active units, KL per unit, learned c).

A mixin of :class:`skvae.VAETransformer`, which provides the parameters, the
module and ``_output_offset``.
"""

import math
import warnings

import numpy as np
import torch

from .._utils.validation import MIN_NOISE_VARIANCE, noise_floor
from ..exceptions import PosteriorCollapseWarning
from ._base import _BINARIZE, STATISTICS_BLOCK, caller_stacklevel
from ._elbo import LOG_2PI, gaussian_kl, optimal_log_c, row_keys, row_normals
from ._likelihoods import bernoulli_rows, log_likelihood, total_nll
from ._training import squared_spread
from ._vae_scores import check_unit_interval

# A unit is active when the variance of its posterior mean over the data exceeds this
# (Burda et al. 2016, Sec. 5.2).
_ACTIVE_UNIT_THRESHOLD = 0.01
# The learned c's Monte-Carlo average: this many draws of z in all, at most _C_DRAWS a row.
_C_ROW_DRAWS, _C_DRAWS = 4096, 32


def _collapse_remedy(vae):
    if vae.likelihood == "gaussian" and vae.noise_variance != "learned":
        return "Use noise_variance='learned' or a smaller noise_variance, or kl_warmup."
    return "Train longer (max_iter, tol), use kl_warmup, or a smaller beta."


def _check_binarize(binarize, likelihood):
    if binarize is not None and likelihood != "bernoulli":
        raise ValueError(
            f"binarize={binarize!r} draws binary targets for likelihood='bernoulli'; got "
            f"likelihood={likelihood!r}. Use likelihood='bernoulli', or binarize=None."
        )


class VAEObjectiveMixin:
    """The VAE's loss, reference losses and fitted statistics."""

    def _check_training_values(self, Xt):
        _check_binarize(self.binarize, self.likelihood)
        check_unit_interval(Xt, self.likelihood)

    def _reference_losses(self, Xt, mean):
        # The loss of q(z|x) = p(z), which costs no KL, with a decoder that outputs
        # the mean of X; training has diverged above it plus a nat per feature.
        d = Xt.shape[1]
        # The least c this fit learns, from X's scale: set by every fit call, before
        # its loss is made and its statistics are computed.
        self._noise_floor = MIN_NOISE_VARIANCE  # no c to learn under a Bernoulli likelihood
        if self.likelihood == "gaussian":
            sq = squared_spread(Xt, mean)  # E||x - mean||²
            self._noise_floor = noise_floor(sq / d)
            if self.noise_variance == "learned":
                c = max(sq / d, self._noise_floor)
            else:
                c = float(self.noise_variance)
            null = 0.5 * (sq / c + d * (LOG_2PI + math.log(c)))
        else:
            # Both Bernoulli log-likelihoods are affine in x for fixed logits, so their
            # average over the rows is their value at the mean row: no pass over X.
            out = self._output_offset(mean)
            null = -float(log_likelihood(self.likelihood, mean[None], out[None]).sum())
        return null, null + d

    def _monitor_from(self):
        return self.kl_warmup

    def _resume_note(self):
        if self.n_iter_ >= self.kl_warmup:
            return ""
        return (
            f" The KL warm-up was at epoch {self.n_iter_} of {self.kl_warmup}: training "
            f"further continues it there, at KL weight {self._kl_weight(self.n_iter_):.3g}, "
            f"rising to beta={self.beta!r}."
        )

    def _kl_weight(self, epoch):
        if self.kl_warmup == 0:
            return float(self.beta)
        return float(self.beta) * min(1.0, epoch / self.kl_warmup)

    def _make_loss(self, noise_generator):
        likelihood = self.likelihood
        fixed_log_c = None
        if likelihood == "gaussian" and self.noise_variance != "learned":
            fixed_log_c = math.log(self.noise_variance)

        binarize = self.binarize == "dynamic"
        floor = self._noise_floor

        def loss(module, xb, epoch):
            if binarize:
                # Dynamic binarization (Burda et al. 2016, Sec. 5): fresh binary
                # targets x_b ~ Bernoulli(x) at every step, which the encoder sees too.
                xb = bernoulli_rows(xb, noise_generator)  # (batch, n_features) of 0 and 1
            # float(): under autocast the network's outputs may be bfloat16 or float16;
            # the noise, the likelihood and the KL and their reductions stay float32.
            mean, log_var = (t.float() for t in module.encoder(xb))  # (batch, n_components)
            eps = torch.randn(mean.shape, generator=noise_generator, device=mean.device)
            z = torch.addcmul(mean, (0.5 * log_var).exp(), eps)  # reparameterisation
            out = module.decoder(z).float()
            log_c = fixed_log_c
            if likelihood == "gaussian" and log_c is None:
                log_c = optimal_log_c(xb, out, floor)
            # Means over the batch as sums over all its terms divided by its size:
            # each a single reduction, which matters in steps of many small ops.
            n = xb.shape[0]
            rec = total_nll(likelihood, xb, out, log_c) / n
            kl = gaussian_kl(mean, log_var).sum() / n
            parts = {"reconstruction": rec.detach(), "kl": kl.detach()}
            weight = self._kl_weight(epoch)
            return (rec + kl if weight == 1.0 else rec + weight * kl), parts

        return loss

    def _after_fit(self, Xt, incremental, kept_start=False):
        # What inference reads: the model as fitted, not the parameters as they
        # may have been set since.
        start_noise_variance = self.__dict__.pop("_start_noise_variance", None)
        self.likelihood_ = self.likelihood
        learned = self.likelihood == "gaussian" and self.noise_variance == "learned"
        stats = self._fitted_statistics(Xt, learned)
        if self.likelihood != "gaussian":
            self.noise_variance_ = None
        elif not learned:
            self.noise_variance_ = float(self.noise_variance)
        else:
            self.noise_variance_ = stats.pop("noise_variance_")
            if kept_start and start_noise_variance is not None:
                # The fit kept PPCA's closed form (no epoch beat it on held-out rows):
                # the model is PPCA, σ² included, not its weights with c re-measured.
                self.noise_variance_ = start_noise_variance
        for name, value in stats.items():
            setattr(self, name, value)
        if not incremental and self.n_active_units_ == 0:
            warnings.warn(
                f"The posterior of {type(self).__name__} collapsed to its prior: 0 of "
                f"{self.n_components} latent units are active (the variance of every "
                f"code over X is at most {_ACTIVE_UNIT_THRESHOLD}), so transform maps "
                f"every sample to nearly the same point. {_collapse_remedy(self)}",
                PosteriorCollapseWarning,
                stacklevel=caller_stacklevel(),
            )

    def _fitted_statistics(self, Xt, learned_noise_variance):
        """The encoder statistics of the rows ``Xt``, and the learned c if asked, as a dict.

        One pass, block by block. ``kl_per_dimension_`` and the activity of each
        unit (the variance of its posterior mean over the rows, Burda et al. 2016,
        Sec. 5.2) are taken on the rows as training saw them: with dynamic
        binarization, on one binarization drawn from a stream fixed by the fit
        call. The learned c is E_q ||x - f(z)||² / d, averaged over draws of z
        from the scoring stream: at least :data:`_C_ROW_DRAWS` draws in all, up to
        :data:`_C_DRAWS` per row, divided by n - 1 as PCA's σ² is. One draw per
        row leaves c a percent or so off on a hundred rows, which costs a model at
        PPCA's solution (a fit that kept its start) a few hundredths of a nat per
        row against PPCA's own σ².
        """
        n = Xt.shape[0]
        kl, codes, sq = 0.0, [], 0.0
        draws = max(1, min(_C_DRAWS, _C_ROW_DRAWS // n))  # draws of z per row for c
        binarizer = None
        if self.binarize == "dynamic":
            seed = self._spawn_seed(_BINARIZE, self._n_fit_calls - 1)
            binarizer = torch.Generator(device=self.device_).manual_seed(seed)
        for xb in Xt.split(STATISTICS_BLOCK):
            seen = xb if binarizer is None else bernoulli_rows(xb, binarizer)
            mean, log_var = self.module_.encoder(seen)  # (batch, n_components) each
            # Summed on the device, accumulated in float64 on the host (MPS has no float64).
            kl = kl + gaussian_kl(mean, log_var).sum(0).to("cpu", torch.float64)  # (n_components,)
            codes.append(mean.to("cpu", torch.float64).numpy())
            if learned_noise_variance:
                keys = row_keys(xb, self._score_seed())
                for s in range(draws):
                    eps = row_normals(keys, s, s + 1, mean.shape[1])[0]
                    z = mean + (0.5 * log_var).exp() * eps.to(mean.dtype)
                    sq += float((self.module_.decoder(z) - xb).square().sum()) / draws
        activity = np.concatenate(codes).var(0)  # (n_components,): Var_x(E_q[z_j])
        active = activity > _ACTIVE_UNIT_THRESHOLD
        stats = {
            "kl_per_dimension_": (kl / n).numpy(),
            "active_units_": active,
            "n_active_units_": int(active.sum()),
        }
        if learned_noise_variance:
            # Divided by n - 1, not n, per feature: PCA's normalisation of its σ², as the
            # decoder's mean was fitted to these rows.
            stats["noise_variance_"] = max(sq / (max(n - 1, 1) * Xt.shape[1]), self._noise_floor)
        return stats
