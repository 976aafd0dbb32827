"""The VAE's scores: the ELBO and the importance-weighted bound of each row.

A mixin of :class:`skvae.VAETransformer`, which provides the fitted attributes
(``likelihood_``, ``noise_variance_``) and the chunked ``_score`` of
:class:`skvae.neural._inference.InferenceMixin`; the bounds themselves are computed by
:func:`skvae.neural._elbo.log_weight_bound`.
"""

import math
from numbers import Integral

from ._base import _SCORE
from ._elbo import log_weight_bound
from ._likelihoods import UNIT_INTERVAL


def check_unit_interval(Xt, likelihood):
    if likelihood not in UNIT_INTERVAL:
        return
    lo, hi = float(Xt.min()), float(Xt.max())
    if lo < 0 or hi > 1:
        # sklearn's words for negative X, which its positive_only tag promises.
        negative = "Negative values in data passed to VAETransformer: " if lo < 0 else ""
        raise ValueError(
            f"{negative}likelihood={likelihood!r} needs X in [0, 1]; got values in "
            f"[{lo:.3g}, {hi:.3g}]. Scale X (e.g. MinMaxScaler(clip=True)) or use "
            "likelihood='gaussian'."
        )


class VAEScoresMixin:
    """``score_samples`` (the ELBO) and ``score_samples_iwae`` of the VAE."""

    def _score_seed(self):
        """The seed of the scoring draws, fixed at fit, independent of the training streams."""
        return self._spawn_seed(_SCORE)

    def _reduce_log_weights(self, X, n_draws, iwae, module):
        """ELBO (mean over s) or IWAE bound (log-mean-exp over s) of the log weights.

        log w_s = log p(x, z_s) - log q(z_s|x) with z_s = g(x) + sqrt(h(x)) ε_s,
        as (batch,). Each row's ε_s come from its own content and the fitted seed
        (:func:`skvae.neural._elbo.row_normals`). Computed by ``module``, the float64 copy of the
        network (float32 on MPS, which lacks float64): the bound sums d terms and,
        for a small c, magnifies float32 rounding. Rows x draws go through the decoder in blocks
        of about ``SCORE_ELEMENTS / widest layer``, so memory is bounded whatever
        n_samples and n_draws.
        """
        check_unit_interval(X, self.likelihood_)
        log_c = None if self.noise_variance_ is None else math.log(self.noise_variance_)
        widest = max(X.shape[1], self._widest())
        return log_weight_bound(
            module, self.likelihood_, log_c, X, self._score_seed(), n_draws, iwae, widest
        )

    def _score_samples(self, X, module):
        return self._reduce_log_weights(X, self.n_score_samples, False, module)

    def score_samples(self, X):
        """Evidence lower bound (ELBO) of each sample, in nats: a lower bound on log p(x).

        A Monte-Carlo estimate with ``n_score_samples`` draws of z from q(z|x),
        every constant included. The KL term is estimated by the same draws
        (log p(z) - log q(z|x)) rather than in closed form, so that this is exactly
        :meth:`score_samples_iwae` with ``n_importance=1`` averaged over the draws,
        and never above it for the same draws.

        Each row has its own draws, derived from its values and the seed fixed at
        fit: a row's value depends on that row alone (not on the rows beside it or
        their order), repeated calls give the same values, and the Monte-Carlo
        errors of different rows are independent, so that of :meth:`score` shrinks
        as 1/sqrt(n_samples). The model is the one fitted (``likelihood_``,
        ``noise_variance_``); ``n_score_samples`` is read at call time.

        Parameters
        ----------
        X : {array-like, torch.Tensor} of shape (n_samples, n_features)
            Data. For the 'bernoulli' and 'continuous_bernoulli' likelihoods it must
            lie in [0, 1]: outside that range they are undefined, and a ValueError
            is raised.

        Returns
        -------
        elbo : ndarray or torch.Tensor of shape (n_samples,)
            ELBO per sample, in X's dtype; float32 for a float16 or bfloat16
            tensor, whose range the scores would overflow.
        """
        return super().score_samples(X)

    def score_samples_iwae(self, X, n_importance=100):
        """Importance-weighted bound on log p(x) per sample, in nats (Burda et al. 2016).

        ``log (1/K) sum_k p(x, z_k) / q(z_k|x)`` with z_k drawn from q(z|x), computed
        with a running logsumexp. It lies above the ELBO for the same draws, equals
        the single-draw ELBO at K=1, and rises towards log p(x) as K grows (on
        average). The draws are the ones :meth:`score_samples` uses, extended.

        Cost: n_samples x K decoder passes, in float64 (float32 on MPS). Memory: rows
        and draws go through the decoder in blocks of about 2**20 / w rows, w the
        widest layer (n_features for MNIST: 1337 rows), so the memory it needs
        beyond X and the model does not grow with n_samples or K: 40 to 100 MB
        measured on MNIST (see ``docs/vae.md``).

        Parameters
        ----------
        X : {array-like, torch.Tensor} of shape (n_samples, n_features)
            Data, as for :meth:`score_samples`.
        n_importance : int, default=100
            Number K of importance samples per row. Costs K decoder passes.

        Returns
        -------
        log_likelihood : ndarray or torch.Tensor of shape (n_samples,)
            The bound per sample, in X's dtype; float32 for a float16 or
            bfloat16 tensor.
        """
        if (
            not isinstance(n_importance, Integral)
            or isinstance(n_importance, bool)
            or (n_importance < 1)
        ):
            raise ValueError(f"n_importance must be an int >= 1; got {n_importance!r}.")
        n_draws = int(n_importance)
        return self._score(
            X, lambda xb, module: self._reduce_log_weights(xb, n_draws, True, module)
        )
