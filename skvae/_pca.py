"""Principal component analysis computed with torch on a chosen device."""

import math
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.sparsefuncs import mean_variance_axis
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from ._device import device_available, is_tensor, output_like, resolve_device, to_tensor
from ._linalg import (
    _arpack_svd,
    _centred,
    _centred_sparse_operator,
    _covariance_eigh,
    _full_svd,
    _lowrank_log_likelihood,
    _lowrank_precision,
    _lowrank_sample,
    _numpy_random_state,
    _project_array,
    _project_tensor,
    _randomized_svd,
    _select_n_components,
    _sum_of_squares,
    _svd_flip,
    _torch_generator,
    _work_dtype,
)
from ._validation import (
    BOOLEAN,
    DEVICE,
    NONE,
    RANDOM_STATE,
    Interval,
    StrOptions,
    check_finite,
    check_params,
)

_SPARSE_SOLVERS = ("auto", "arpack", "covariance_eigh")


class PCA(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Principal component analysis (PCA) computed with PyTorch.

    A drop-in replacement for :class:`sklearn.decomposition.PCA`: the same
    parameters, solvers, fitted attributes and results, with the linear algebra
    run by torch on the ``device`` you choose. Data are centred per feature, not
    scaled, then projected on the leading right singular vectors.

    It adds :meth:`sample`, which draws from the fitted probabilistic PCA model,
    and accepts torch tensors: a tensor passed to :meth:`transform`,
    :meth:`inverse_transform` or :meth:`score_samples` comes back as a tensor
    on its own device.

    Parameters
    ----------
    n_components : int, float or 'mle', default=None
        Number of components to keep. ``None`` keeps
        ``min(n_samples, n_features)`` (one fewer with ``svd_solver='arpack'``).
        A float in (0, 1) keeps the fewest components whose explained variance
        ratio exceeds it (needs a full solver). ``'mle'`` guesses the dimension
        by Minka's method (needs a full solver and ``n_samples >= n_features``).

    copy : bool, default=True
        If False, the data passed to fit are centred in place and overwritten.

    whiten : bool, default=False
        When True, the projections are divided by the square root of the
        explained variance so that each output has unit variance.

    svd_solver : {'auto', 'full', 'covariance_eigh', 'arpack', 'randomized'}, \
            default='auto'
        'full' is an exact SVD of the centred data (``torch.linalg.svd``; on
        the CPU, tall data by scipy's QR first); 'covariance_eigh' the
        eigendecomposition of the covariance matrix ``X^T X - n mean mean^T``
        (``torch.linalg.eigh``), best when ``n_samples >> n_features``;
        'arpack' a truncated SVD by ARPACK (:func:`scipy.sparse.linalg.svds`'s
        algorithm, matrix products in torch on a device); 'randomized' a
        randomized truncated SVD (Halko et al.) in torch.
        'auto' picks as scikit-learn does: 'covariance_eigh' when
        ``n_features <= 1000`` and ``n_samples >= 10 * n_features``, else 'full'
        for inputs no larger than 500x500 or ``n_components='mle'``, else
        'randomized' when ``1 <= n_components < 0.8 * min(X.shape)``, else 'full'.
        Sparse input selects 'arpack'.

    tol : float, default=0.0
        Tolerance for singular values computed by ``svd_solver='arpack'``.

    iterated_power : int or 'auto', default='auto'
        Number of power iterations of ``svd_solver='randomized'``; 'auto' is
        7 when ``n_components < 0.1 * min(X.shape)``, else 4.

    n_oversamples : int, default=10
        Extra random vectors sampled by ``svd_solver='randomized'``.

    power_iteration_normalizer : {'auto', 'QR', 'LU', 'none'}, default='auto'
        How ``svd_solver='randomized'`` renormalises between power iterations;
        'auto' is 'none' for at most 2 iterations, else 'LU'.

    random_state : int, RandomState instance or None, default=None
        Seeds the 'arpack' starting vector and the 'randomized' Gaussian test
        matrix (through a ``torch.Generator``); the global RNGs are not used.

    device : str or torch.device, default='auto'
        Where torch computes: 'auto' (CUDA, then MPS, then the CPU), 'cpu',
        'cuda', 'cuda:N' or 'mps'. Resolved in :meth:`fit` into ``device_``.

    Attributes
    ----------
    components_ : ndarray of shape (n_components_, n_features)
        Principal axes in feature space, sorted by decreasing explained
        variance; the largest-magnitude entry of each is positive.

    explained_variance_ : ndarray of shape (n_components_,)
        Variance explained by each component (``n_samples - 1`` degrees of
        freedom).

    explained_variance_ratio_ : ndarray of shape (n_components_,)
        Fraction of the total variance explained by each component.

    singular_values_ : ndarray of shape (n_components_,)
        Singular values of the centred data for the selected components.

    mean_ : ndarray of shape (n_features,)
        Per-feature mean of the training data.

    n_components_ : int
        Number of components kept.

    n_samples_ : int
        Number of samples in the training data.

    noise_variance_ : float
        Noise variance of the probabilistic PCA model (Tipping and Bishop,
        1999): the mean of the discarded eigenvalues of the covariance.

    n_features_in_ : int
        Number of features seen during :term:`fit`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`, when they are all strings.

    device_ : torch.device
        The device the model was fitted on, resolved from ``device``.

    See Also
    --------
    sklearn.decomposition.PCA : The reference implementation on NumPy/SciPy.
    AutoencoderTransformer : A non-linear reduction learned by gradient descent.

    References
    ----------
    Tipping, M. E., and Bishop, C. M. (1999). "Probabilistic principal
    component analysis". Journal of the Royal Statistical Society B, 61(3), 611-622.

    Minka, T. P. (2000). "Automatic choice of dimensionality for PCA". NIPS, 598-604.

    Halko, N., Martinsson, P. G., and Tropp, J. A. (2011). "Finding structure
    with randomness: Probabilistic algorithms for constructing approximate
    matrix decompositions". SIAM Review, 53(2), 217-288.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae import PCA
    >>> X = np.array([[-1, -1], [-2, -1], [-3, -2], [1, 1], [2, 1], [3, 2]])
    >>> pca = PCA(n_components=2, device="cpu").fit(X)
    >>> print(pca.explained_variance_ratio_.round(4))
    [0.9924 0.0076]
    >>> pca.sample(3, random_state=0).shape
    (3, 2)
    """

    _parameter_constraints = {
        "n_components": [
            Interval(Integral, 0, None, closed="left"),
            Interval(Real, 0.0, 1.0, closed="neither"),
            StrOptions(("mle",)),
            NONE,
        ],
        "copy": [BOOLEAN],
        "whiten": [BOOLEAN],
        "svd_solver": [StrOptions(("auto", "full", "covariance_eigh", "arpack", "randomized"))],
        "tol": [Interval(Real, 0.0, None, closed="left")],
        "iterated_power": [StrOptions(("auto",)), Interval(Integral, 0, None, closed="left")],
        "n_oversamples": [Interval(Integral, 1, None, closed="left")],
        "power_iteration_normalizer": [StrOptions(("auto", "QR", "LU", "none"))],
        "random_state": [RANDOM_STATE],
        "device": [DEVICE],
    }

    def __init__(
        self,
        n_components=None,
        *,
        copy=True,
        whiten=False,
        svd_solver="auto",
        tol=0.0,
        iterated_power="auto",
        n_oversamples=10,
        power_iteration_normalizer="auto",
        random_state=None,
        device="auto",
    ):
        self.n_components = n_components
        self.copy = copy
        self.whiten = whiten
        self.svd_solver = svd_solver
        self.tol = tol
        self.iterated_power = iterated_power
        self.n_oversamples = n_oversamples
        self.power_iteration_normalizer = power_iteration_normalizer
        self.random_state = random_state
        self.device = device

    def fit(self, X, y=None):
        """Fit the model with X.

        Parameters
        ----------
        X : {array-like, sparse matrix, torch.Tensor} of shape (n_samples, n_features)
            Training data.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._fit(X)
        return self

    def fit_transform(self, X, y=None):
        """Fit the model with X and project X on the components.

        Parameters
        ----------
        X : {array-like, sparse matrix, torch.Tensor} of shape (n_samples, n_features)
            Training data.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        X_new : ndarray or torch.Tensor of shape (n_samples, n_components_)
            Projected data; a tensor on ``X``'s device when ``X`` is a tensor.
        """
        U, signs, S, Xv, x_is_centred = self._fit(X)
        np_dtype = self.components_.dtype
        k = self.n_components_
        with torch.no_grad():
            if U is not None:
                # X V = U S V^T V = U S, with V's signs flipped; whitening divides by
                # sqrt(S^2 / (n - 1)).
                scale = math.sqrt(U.shape[0] - 1) if self.whiten else S[:k]
                Y = U[:, :k] * (signs[:k] * scale)
            elif sp.issparse(Xv):
                return self._transform_array(Xv)
            elif Xv.device.type == "cpu" and not is_tensor(X):
                return self._transform_array(Xv.numpy(), centred=x_is_centred)
            else:
                Y = self._transform_tensor(Xv, centred=x_is_centred)
        return output_like(Y, X, np_dtype)

    def _validate(self, X, reset, accept_sparse=True, finite=True):
        """Validate X; return it (numpy, scipy sparse or tensor) and its numpy float dtype.

        With ``finite=False`` an array or sparse matrix is not tested for NaN and
        inf: the caller runs ``check_finite`` (a tensor is always tested).
        """
        if is_tensor(X):
            if X.layout != torch.strided:
                raise TypeError(
                    "PCA does not accept sparse torch tensors; pass a scipy.sparse "
                    "CSR or CSC matrix instead."
                )
            if X.ndim != 2:
                raise ValueError(
                    f"Expected a 2D tensor of shape (n_samples, n_features), got shape "
                    f"{tuple(X.shape)}. Reshape your data with X.reshape(-1, 1) if it has "
                    "a single feature or X.reshape(1, -1) if it has a single sample."
                )
            validate_data(self, X, reset=reset, skip_check_array=True)
            if X.shape[0] < 1:
                raise ValueError(
                    f"Found array with 0 sample(s) (shape={tuple(X.shape)}) while a "
                    "minimum of 1 is required by PCA."
                )
            if X.is_floating_point() and not bool(torch.isfinite(X).all()):
                raise ValueError("Input X contains NaN or infinity.")
            half = (torch.float32, torch.float16, torch.bfloat16)
            return X, np.dtype(np.float32 if X.dtype in half else np.float64)
        X = validate_data(
            self,
            X,
            dtype=[np.float64, np.float32],
            accept_sparse=("csr", "csc") if accept_sparse else False,
            reset=reset,
            force_writeable=reset and not self.copy,
            ensure_all_finite=False,
        )
        if finite:
            check_finite(X, type(self).__name__)  # check_array's test, on every core
        return X, X.dtype

    def _fit(self, X):
        """Validate, pick the solver and dispatch; return what fit_transform needs."""
        check_params(self, self._parameter_constraints)
        if sp.issparse(X) and self.svd_solver not in _SPARSE_SOLVERS:
            raise TypeError(
                'PCA only support sparse inputs with the "arpack" and "covariance_eigh" '
                f'solvers, while "{self.svd_solver}" was passed. See TruncatedSVD for a '
                "possible alternative."
            )
        self.device_ = resolve_device(self.device, type(self).__name__)
        X, np_dtype = self._validate(X, reset=True)
        n_samples, n_features = X.shape

        solver = self.svd_solver
        if solver == "auto" and sp.issparse(X):
            solver = "arpack"
        n_components = self.n_components
        if n_components is None:
            n_components = min(X.shape) - (solver == "arpack")
        if solver == "auto":
            if n_features <= 1_000 and n_samples >= 10 * n_features:
                solver = "covariance_eigh"  # tall and skinny: the covariance is small
            elif max(X.shape) <= 500 or n_components == "mle":
                solver = "full"
            elif 1 <= n_components < 0.8 * min(X.shape):
                solver = "randomized"
            else:  # also n_components in (0, 1)
                solver = "full"
        self._fit_svd_solver = solver

        dtype = _work_dtype(self.device_, np_dtype)
        with torch.no_grad():
            if solver in ("full", "covariance_eigh"):
                return self._fit_full(X, n_components, np_dtype, dtype)
            return self._fit_truncated(X, n_components, np_dtype, dtype)

    def _centre(self, X, dtype):
        """Mean (n_features,) and centred data (n_samples, n_features) as tensors.

        With copy=False the centring happens in place, overwriting X when it
        shares memory with the tensor, as in scikit-learn.
        """
        return _centred(to_tensor(X, self.device_, dtype), copy=self.copy)

    def _fit_full(self, X, n_components, np_dtype, dtype):
        """Exact decomposition by SVD of the centred data or eigh of its covariance."""
        n_samples, n_features = X.shape
        solver = self._fit_svd_solver
        if n_components == "mle":
            if n_samples < n_features:
                raise ValueError("n_components='mle' is only supported if n_samples >= n_features")
        elif not 0 <= n_components <= min(n_samples, n_features):
            raise ValueError(
                f"n_components={n_components} must be between 0 and "
                f"min(n_samples, n_features)={min(n_samples, n_features)} with "
                f"svd_solver={solver!r}"
            )

        U, x_is_centred = None, False
        if solver == "full":
            mean, Xv = self._centre(X, dtype)
            x_is_centred = True
            U, S, Vt = _full_svd(Xv)
            explained_variance = S**2 / (n_samples - 1)
        else:
            Xv = X if sp.issparse(X) else to_tensor(X, self.device_, dtype)
            mean, explained_variance, S, Vt = _covariance_eigh(Xv, self.device_, dtype)
        signs, Vt = _svd_flip(Vt)

        spectrum = explained_variance.cpu().numpy().astype(np_dtype, copy=False)
        ratio = spectrum / spectrum.sum()
        n_components = _select_n_components(n_components, spectrum, ratio, n_samples)

        # Maximum-likelihood noise variance of probabilistic PCA (Bishop 2006, eq. 12.46).
        if n_components < min(n_features, n_samples):
            self.noise_variance_ = np_dtype.type(spectrum[n_components:].mean())
        else:
            self.noise_variance_ = 0.0
        self._set_fitted(
            n_samples,
            n_components,
            mean,
            Vt[:n_components],
            spectrum[:n_components],
            ratio[:n_components],
            S[:n_components],
            np_dtype,
        )
        return U, signs, S, Xv, x_is_centred

    def _fit_truncated(self, X, n_components, np_dtype, dtype):
        """Truncated decomposition by ARPACK or by the randomized range finder."""
        n_samples, n_features = X.shape
        solver = self._fit_svd_solver
        if isinstance(n_components, str):
            raise ValueError(
                f"n_components={n_components!r} cannot be a string with svd_solver={solver!r}"
            )
        if not 1 <= n_components <= min(n_samples, n_features):
            raise ValueError(
                f"n_components={n_components!r} must be between 1 and "
                f"min(n_samples, n_features)={min(n_samples, n_features)!r} with "
                f"svd_solver={solver!r}"
            )
        if solver == "arpack" and n_components == min(n_samples, n_features):
            raise ValueError(
                f"n_components={n_components!r} must be strictly less than "
                f"min(n_samples, n_features)={min(n_samples, n_features)!r} with "
                f"svd_solver={solver!r}"
            )

        x_is_centred = False
        if sp.issparse(X):
            mean_np, var = mean_variance_axis(X, axis=0)
            mean_np = mean_np.astype(np_dtype, copy=False)
            total_var = float(var.sum()) * n_samples / (n_samples - 1)  # ddof=1
            mean = torch.from_numpy(mean_np).to(self.device_, dtype)
            Xv, operator = X, _centred_sparse_operator(X, mean_np)
        else:
            mean, Xv = self._centre(X, dtype)
            x_is_centred = True
            total_var = _sum_of_squares(Xv) / (n_samples - 1)
            operator = None

        if solver == "arpack":
            v0 = _numpy_random_state(self.random_state).uniform(-1, 1, min(X.shape))
            A = Xv if operator is None else operator
            U, S, Vt = _arpack_svd(A, n_components, self.tol, v0, self.device_, dtype)
        else:
            generator = _torch_generator(self.random_state, self.device_)
            U, S, Vt = _randomized_svd(
                Xv,
                n_components,
                self.n_oversamples,
                self.iterated_power,
                self.power_iteration_normalizer,
                generator,
            )
        signs, Vt = _svd_flip(Vt)

        explained_variance = (S**2 / (n_samples - 1)).cpu().numpy().astype(np_dtype, copy=False)
        ratio = explained_variance / np_dtype.type(total_var)
        if n_components < min(n_features, n_samples):
            noise = (total_var - explained_variance.sum()) / (
                min(n_features, n_samples) - n_components
            )
            self.noise_variance_ = np_dtype.type(noise)
        else:
            self.noise_variance_ = 0.0
        self._set_fitted(n_samples, n_components, mean, Vt, explained_variance, ratio, S, np_dtype)
        return U, signs, S, Xv, x_is_centred

    def _set_fitted(self, n_samples, n_components, mean, Vt, variance, ratio, S, np_dtype):
        """Store the fitted attributes as numpy arrays of the input dtype."""
        as_numpy = lambda t: t.cpu().numpy().astype(np_dtype, copy=True)  # noqa: E731
        self.n_samples_ = n_samples
        self.n_components_ = n_components
        self.mean_ = as_numpy(mean)
        self.components_ = as_numpy(Vt)
        self.explained_variance_ = np.array(variance, dtype=np_dtype)
        self.explained_variance_ratio_ = np.array(ratio, dtype=np_dtype)
        self.singular_values_ = as_numpy(S)

    def _model(self, device, dtype):
        """The fitted model on ``device``: components (k, p), mean (p,), variance (k,)."""
        to = lambda a: torch.as_tensor(np.asarray(a)).to(device=device, dtype=dtype)  # noqa: E731
        return to(self.components_), to(self.mean_), to(self.explained_variance_)

    def _transform_tensor(self, X, centred=False):
        """Project a (n_samples, n_features) tensor on the components, on its own device."""
        W, mean, variance = self._model(X.device, X.dtype)
        return _project_tensor(X, W, None if centred else mean, variance if self.whiten else None)

    def _transform_array(self, X, centred=False, with_total=False):
        """Project a numpy array or sparse matrix on the components with numpy/scipy."""
        variance = self.explained_variance_ if self.whiten else None
        mean = None if centred else self.mean_
        return _project_array(X, self.components_, mean, variance, with_total)

    def _device_for(self, X):
        """Where to compute for ``X``: a tensor's own device, else ``device_``."""
        return X.device if is_tensor(X) else self.device_

    def transform(self, X):
        """Project X on the principal components.

        Parameters
        ----------
        X : {array-like, sparse matrix, torch.Tensor} of shape (n_samples, n_features)
            New data.

        Returns
        -------
        X_new : ndarray or torch.Tensor of shape (n_samples, n_components_)
            Projection of X; a tensor on ``X``'s device when ``X`` is a tensor,
            computed in ``X``'s float dtype.
        """
        check_is_fitted(self)
        Xv, np_dtype = self._validate(X, reset=False, finite=False)
        device = self._device_for(Xv)
        if sp.issparse(Xv) or (device.type == "cpu" and not is_tensor(Xv)):
            # numpy's BLAS (OpenBLAS) multiplies faster than torch's MKL on the CPU,
            # with no tensor round trip, and the same product tests X for NaN and
            # inf: see _project_array.
            Y, total = self._transform_array(Xv, with_total=True)
            check_finite(Xv, type(self).__name__, total)
            return Y
        if not is_tensor(Xv):
            check_finite(Xv, type(self).__name__)
        with torch.no_grad():
            Y = self._transform_tensor(to_tensor(Xv, device, _work_dtype(device, np_dtype)))
        return output_like(Y, X, np_dtype)

    def inverse_transform(self, X):
        """Map projected data back to feature space, undoing whitening.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, n_components_)
            Data in the component space.

        Returns
        -------
        X_original : ndarray or torch.Tensor of shape (n_samples, n_features)
            ``X @ components_ + mean_`` (components scaled by the square root of
            the explained variance when ``whiten=True``).
        """
        check_is_fitted(self)
        if is_tensor(X):
            Xv = X
            np_dtype = np.dtype(np.float64 if X.dtype == torch.float64 else np.float32)
        else:
            Xv = check_array(X, input_name="X", dtype=[np.float64, np.float32])
            np_dtype = Xv.dtype
        device = self._device_for(Xv)
        with torch.no_grad():
            Z = to_tensor(Xv, device, _work_dtype(device, np_dtype))
            W, mean, variance = self._model(device, Z.dtype)
            if self.whiten:
                W = variance.sqrt()[:, None] * W
            Y = torch.addmm(mean, Z, W)  # mean + Z W: (n_samples, n_features)
        return output_like(Y, X, np_dtype)

    def _generative(self, device, dtype):
        """Low-rank form of the model covariance ``W^T diag(g) W + sigma2 I``.

        Returns W (k, n_features), g (k,), sigma2 (float) and the mean. With
        whitening, W is scaled by the square root of the explained variance,
        as scikit-learn's ``get_covariance`` does.
        """
        W, mean, variance = self._model(device, dtype)
        sigma2 = float(self.noise_variance_)
        g = (variance - sigma2).clamp(min=0)
        if self.whiten:
            g = g * variance
        return W, g, sigma2, mean

    def get_covariance(self):
        """Data covariance of the probabilistic PCA model.

        ``cov = components_.T @ diag(explained_variance_ - noise_variance_)
        @ components_ + noise_variance_ * I``.

        Returns
        -------
        cov : ndarray of shape (n_features, n_features)
            Estimated covariance of the data.
        """
        check_is_fitted(self)
        np_dtype = self.components_.dtype
        with torch.no_grad():
            W, g, sigma2, _ = self._generative(self.device_, _work_dtype(self.device_, np_dtype))
            cov = (W.T * g) @ W
            cov.diagonal().add_(sigma2)
        return cov.cpu().numpy().astype(np_dtype, copy=False)

    def get_precision(self):
        """Inverse of :meth:`get_covariance`, by the matrix inversion lemma.

        Returns
        -------
        precision : ndarray of shape (n_features, n_features)
            Estimated precision of the data.
        """
        check_is_fitted(self)
        np_dtype = self.components_.dtype
        with torch.no_grad():
            W, g, sigma2, _ = self._generative(self.device_, _work_dtype(self.device_, np_dtype))
            precision = _lowrank_precision(W, g, sigma2)
        return precision.cpu().numpy().astype(np_dtype, copy=False)

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
        """
        check_is_fitted(self)
        Xv, np_dtype = self._validate(X, reset=False, accept_sparse=False)
        device = self._device_for(Xv)
        with torch.no_grad():
            Xt = to_tensor(Xv, device, _work_dtype(device, np_dtype))
            W, g, sigma2, mean = self._generative(device, Xt.dtype)
            ll = _lowrank_log_likelihood(Xt - mean, W, g, sigma2)
        return output_like(ll, X, np_dtype)

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
        ``z ~ N(0, I_k)`` and ``e ~ N(0, I_p)``, so that ``x`` follows
        ``N(mean_, get_covariance())`` without factorising a dense matrix.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples to draw.

        random_state : int, RandomState instance or None, default=None
            Seeds a ``torch.Generator`` on ``device_``; the global RNGs are not used.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            Samples, in the dtype of the training data.
        """
        check_is_fitted(self)
        if isinstance(n_samples, bool | np.bool_) or not isinstance(n_samples, Integral):
            raise ValueError(f"n_samples must be an int >= 1; got {n_samples!r} instead.")
        if n_samples < 1:
            raise ValueError(f"n_samples must be an int >= 1; got {n_samples!r} instead.")
        np_dtype = self.components_.dtype
        device = self.device_
        with torch.no_grad():
            W, g, sigma2, mean = self._generative(device, _work_dtype(device, np_dtype))
            X = _lowrank_sample(
                W, g, sigma2, mean, n_samples, _torch_generator(random_state, device)
            )
        return X.cpu().numpy().astype(np_dtype, copy=False)

    @property
    def _n_features_out(self):
        """Number of transformed output features."""
        return self.components_.shape[0]

    def __setstate__(self, state):
        device = state.get("device_")
        if device is not None and not device_available(device):
            warnings.warn(
                f"PCA was fitted on {device}, which is not available here; it will compute "
                "on the CPU. Refit with device='cpu' to silence this warning.",
                UserWarning,
                stacklevel=2,
            )
            state["device_"] = torch.device("cpu")
        self.__dict__.update(state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.sparse = self.svd_solver in _SPARSE_SOLVERS
        return tags
