"""Warnings skvae raises, beside scikit-learn's own (e.g. ``ConvergenceWarning``)."""

__all__ = ["PosteriorCollapseWarning"]


class PosteriorCollapseWarning(UserWarning):
    """Raised when a fitted VAE's posterior has collapsed to its prior.

    :class:`~skvae.VAETransformer` warns after ``fit`` when none of its latent
    units is active (``n_active_units_ == 0``): every sample is then encoded to
    nearly the same code, so ``transform`` carries no information about X.
    """
