"""Warnings skvae raises, beside scikit-learn's own (e.g. ``ConvergenceWarning``)."""

from sklearn.exceptions import ConvergenceWarning

__all__ = ["DivergenceWarning", "PosteriorCollapseWarning"]


class DivergenceWarning(ConvergenceWarning):
    """Raised when training a neural estimator diverged.

    :class:`~skvae.AutoencoderTransformer` and :class:`~skvae.VAETransformer`
    warn when the training loss became infinite or NaN, or ended above both the
    loss training started from and a bound well above the loss of predicting the
    mean of X. The estimator then keeps the weights of its best epoch (possibly
    the weights it started from) and resets its optimizer, so it stays usable;
    a lower ``learning_rate`` or a scaled X usually trains. A subclass of
    :class:`~sklearn.exceptions.ConvergenceWarning`, so filters for that
    warning apply to it too.
    """


class PosteriorCollapseWarning(UserWarning):
    """Raised when a fitted VAE's posterior has collapsed to its prior.

    :class:`~skvae.VAETransformer` warns after ``fit`` when none of its latent
    units is active (``n_active_units_ == 0``): every sample is then encoded to
    nearly the same code, so ``transform`` carries no information about X.
    """
