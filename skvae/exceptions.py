"""Warnings skvae raises, beside scikit-learn's own (e.g. ``ConvergenceWarning``)."""

from sklearn.exceptions import ConvergenceWarning

__all__ = ["DivergenceWarning", "InconsistentVersionWarning", "PosteriorCollapseWarning"]


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


class InconsistentVersionWarning(UserWarning):
    """Raised when an estimator is loaded by another skvae version than saved it.

    As scikit-learn's warning of that name, for skvae's version: the estimator
    may load and work, or behave differently; fit it again with this version to
    be sure. Raised by unpickling and by :func:`skvae.load`.

    Parameters
    ----------
    estimator_name : str
        The estimator's class name.
    current_version : str
        This skvae's version.
    original_version : str or None
        The version that saved it; None for pickles that record none. Each is
        kept as the attribute of that name, as in scikit-learn's warning.
    """

    def __init__(self, *, estimator_name, current_version, original_version):
        self.estimator_name = estimator_name
        self.current_version = current_version
        self.original_version = original_version

    def __str__(self):
        return (
            f"This {self.estimator_name} was saved by skvae {self.original_version} and is "
            f"loaded by skvae {self.current_version}. It may not work, or give other "
            "results: fit it again with this version to be sure."
        )
