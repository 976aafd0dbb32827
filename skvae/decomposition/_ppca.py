"""The probabilistic PCA model of a fitted PCA: covariance, precision, likelihood, sampling.

Tipping and Bishop (1999): x ~ N(mean, W^T diag(g) W + sigma2 I), with W the
principal axes (orthonormal rows), g the explained variances less the noise
variance sigma2. Kernels of tensors below; the methods PCA inherits at the end.
"""

import math

import torch
from sklearn.utils.validation import check_is_fitted

from .._sampling import as_input_container
from .._utils.arrays import to_tensor
from .._utils.validation import check_n_samples
from ._incremental import is_streamed
from ._linalg import _torch_generator, _work_dtype, numpy_linalg_errors
from ._namespace import FittedState, check_same_namespace, like_input, other_namespaces

# What a singular covariance means for the caller of get_precision and the scores.
_SINGULAR = (
    "The probabilistic PCA model has a singular covariance: its noise_variance_ is 0 "
    "(n_components equals min(n_samples, n_features), or the data lie on fewer "
    "dimensions), so the density is undefined. Fit with fewer components "
    "(n_components < min(n_samples, n_features)) to score or to invert it."
)


def _lowrank_precision(W, g, sigma2):
    """Inverse of the probabilistic PCA covariance ``W^T diag(g) W + sigma2 I``.

    The cases are scikit-learn's ``get_precision``: no component gives
    ``I / sigma2``; no noise the inverse of the covariance itself (singular
    when fewer components than features: ``LinAlgError``).
    """
    if W.shape[0] == 0:
        return torch.eye(W.shape[1], device=W.device, dtype=W.dtype) / sigma2
    if sigma2 == 0.0:
        return torch.linalg.inv((W.T * g) @ W)
    # Orthonormal rows of W make the Woodbury inverse diagonal in the component basis:
    # (W^T G W + s I)^-1 = I / s - W^T diag(g / (s (g + s))) W.
    precision = -(W.T * (g / (sigma2 * (g + sigma2)))) @ W
    precision.diagonal().add_(1.0 / sigma2)
    return precision


def _lowrank_log_likelihood(Xr, W, g, sigma2):
    """Gaussian log-density of centred rows ``Xr`` under ``W^T diag(g) W + sigma2 I``.

    Bishop, "Pattern Recognition and Machine Learning", 12.2.1.
    """
    n_features = Xr.shape[1]
    if sigma2 > 0:
        # x^T P x = |x|^2 / s - sum_j g_j / (s (g_j + s)) (w_j . x)^2, and
        # log det P = -sum_j log(g_j + s) - (p - k) log s.
        Z = Xr @ W.T  # (n_samples, k)
        quad = torch.linalg.vector_norm(Xr, dim=1) ** 2 / sigma2
        quad -= (Z**2) @ (g / (sigma2 * (g + sigma2)))
        logdet = -torch.log(g + sigma2).sum() - (n_features - W.shape[0]) * math.log(sigma2)
    else:
        precision = _lowrank_precision(W, g, sigma2)
        quad = ((Xr @ precision) * Xr).sum(dim=1)
        sign, logdet = torch.linalg.slogdet(precision)
        if sign <= 0:
            logdet = torch.tensor(-torch.inf, device=Xr.device, dtype=Xr.dtype)
    return -0.5 * quad - 0.5 * (n_features * math.log(2.0 * math.pi) - logdet)


def _lowrank_sample(W, g, sigma2, mean, n_samples, generator):
    """Draws from N(mean, W^T diag(g) W + sigma2 I) without factorising a dense matrix."""
    shape = dict(generator=generator, device=W.device, dtype=W.dtype)
    z = torch.randn(n_samples, W.shape[0], **shape)  # (n_samples, k)
    e = torch.randn(n_samples, W.shape[1], **shape)  # (n_samples, n_features)
    X = torch.addmm(mean, z * g.sqrt(), W)
    # Round-off can leave the noise variance of a truncated solver a hair below zero.
    return X.add_(e, alpha=math.sqrt(max(sigma2, 0.0)))


class ProbabilisticPCAMixin:
    """Covariance, precision, log-likelihood and samples of a fitted PCA's generative model.

    Needs ``components_``, ``explained_variance_``, ``noise_variance_``,
    ``mean_``, ``whiten``, ``device_`` and the estimator's ``_model``,
    ``_validate`` and ``_device_for``. The model's own answers (covariance,
    precision, samples) come in the fitted container: tensors on the fitted
    device after a fit on tensors, else numpy (see _namespace.py).
    """

    def _generative(self, device, dtype, as_sklearn_whitened=True):
        """Low-rank form of the model covariance ``W^T diag(g) W + sigma2 I``.

        Returns W (k, n_features), g (k,), sigma2 (float) and the mean. With
        ``whiten=True`` and ``as_sklearn_whitened``, g is multiplied by the
        explained variance, as scikit-learn's ``get_covariance`` scales the
        components: the model of the whitened output's inverse map, kept for
        parity in ``get_covariance``, ``get_precision`` and ``score``.
        """
        W, mean, variance = self._model(device, dtype)
        sigma2 = float(self.noise_variance_)
        # torch.where, not clamp: a NaN variance (one training sample) counts as
        # zero, as in scikit-learn.
        g = torch.where(variance > sigma2, variance - sigma2, torch.zeros_like(variance))
        if self.whiten and as_sklearn_whitened:
            g = g * variance
        return W, g, sigma2, mean

    def get_covariance(self):
        """Data covariance of the probabilistic PCA model.

        ``cov = components_.T @ diag(explained_variance_ - noise_variance_)
        @ components_ + noise_variance_ * I``. With ``whiten=True`` the
        components are first scaled by the square root of the explained
        variance, as scikit-learn does.

        Returns
        -------
        cov : ndarray or torch.Tensor of shape (n_features, n_features)
            Estimated covariance of the data; a tensor on the fitted device
            when the model was fitted on tensors.
        """
        check_is_fitted(self)
        state = FittedState.of(self)
        with torch.no_grad():
            W, g, sigma2, _ = self._generative(state.device, state.dtype)
            cov = (W.T * g) @ W
            cov.diagonal().add_(sigma2)
        return state.wrap(cov)

    def get_precision(self):
        """Inverse of :meth:`get_covariance`, by the matrix inversion lemma.

        Returns
        -------
        precision : ndarray or torch.Tensor of shape (n_features, n_features)
            Estimated precision of the data, in the container of
            :meth:`get_covariance`.

        Raises
        ------
        numpy.linalg.LinAlgError
            When the model has no noise and its covariance is singular.
        """
        check_is_fitted(self)
        state = FittedState.of(self)
        with torch.no_grad(), numpy_linalg_errors(_SINGULAR):
            W, g, sigma2, _ = self._generative(state.device, state.dtype)
            precision = _lowrank_precision(W, g, sigma2)
        return state.wrap(precision)

    @other_namespaces
    def score_samples(self, X):
        """Log-likelihood of each sample under the probabilistic PCA model.

        See Bishop, "Pattern Recognition and Machine Learning", 12.2.1, and
        Tipping and Bishop (1999).

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, n_features)
            The data.

        Returns
        -------
        ll : ndarray or torch.Tensor of shape (n_samples,)
            Log-likelihood of each sample.

        Raises
        ------
        numpy.linalg.LinAlgError
            When the model has no noise and its covariance is singular (e.g.
            fitted on a single sample), as in scikit-learn.
        """
        check_is_fitted(self)
        check_same_namespace(X, self, "score_samples")
        if is_streamed(X) and X.shape[0] > 0:
            return self._map_streamed(self.score_samples, X)
        Xv, np_dtype = self._validate(X, reset=False, accept_sparse=False)
        device = self._device_for(Xv)
        with torch.no_grad(), numpy_linalg_errors(_SINGULAR):
            Xt = to_tensor(Xv, device, _work_dtype(device, np_dtype))
            W, g, sigma2, mean = self._generative(device, Xt.dtype)
            ll = _lowrank_log_likelihood(Xt - mean, W, g, sigma2)
        return like_input(ll, X, np_dtype)

    @other_namespaces
    def score(self, X, y=None):
        """Average log-likelihood of the samples under the probabilistic PCA model.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, n_features)
            The data.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        ll : float
            Mean of :meth:`score_samples`.
        """
        return float(self.score_samples(X).mean())

    def sample(self, n_samples=1, random_state=None):
        """Draw samples from the fitted probabilistic PCA model.

        ``x = mean_ + W^T (sqrt(g) * z) + sqrt(noise_variance_) * e`` with
        ``z ~ N(0, I_k)``, ``e ~ N(0, I_p)`` and ``g = explained_variance_ -
        noise_variance_``, without factorising a dense matrix. Whitening
        changes the output of :meth:`transform`, not the model of X: the
        samples follow the same distribution with or without ``whiten``.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples to draw.

        random_state : int, RandomState instance or None, default=None
            Seeds a ``torch.Generator`` on the device the model computes on;
            the global RNGs are not used.

        Returns
        -------
        X : ndarray, DataFrame or torch.Tensor of shape (n_samples, n_features)
            Samples, in the dtype of the training data; a tensor on the
            fitted device when the model was fitted on tensors; a DataFrame with
            the training data's feature names under ``set_output(transform="pandas")``.
        """
        check_is_fitted(self)
        check_n_samples(n_samples)
        state = FittedState.of(self)
        with torch.no_grad():
            W, g, sigma2, mean = self._generative(
                state.device, state.dtype, as_sklearn_whitened=False
            )
            generator = _torch_generator(random_state, state.device)
            X = _lowrank_sample(W, g, sigma2, mean, n_samples, generator)
        return as_input_container(state.wrap(X), self)
