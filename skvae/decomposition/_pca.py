"""Principal component analysis computed with torch on a chosen device."""

import math
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.sparsefuncs import mean_variance_axis

from .._persistence import SaveMixin
from .._utils.arrays import is_tensor, to_tensor
from .._utils.devices import resolve_input_device
from .._utils.validation import (
    BOOLEAN,
    DEVICE,
    NONE,
    RANDOM_STATE,
    Interval,
    StrOptions,
    check_params,
)
from ._incremental import IncrementalPCAMixin, is_streamed
from ._linalg import (
    _centred,
    _check_n_components,
    _column_sum_of_squares,
    _numpy_random_state,
    _select_n_components,
    _svd_flip,
    numpy_linalg_errors,
)
from ._namespace import FittedState, like_input, other_namespaces, pickled, unpickled
from ._ppca import ProbabilisticPCAMixin
from ._projection import ProjectionMixin
from ._solvers import (
    _arpack_svd,
    _centred_sparse_operator,
    _covariance_eigh,
    _full_svd,
    _randomized_svd,
)

_SPARSE_SOLVERS = ("auto", "arpack", "covariance_eigh")


class PCA(
    SaveMixin,
    IncrementalPCAMixin,
    ProbabilisticPCAMixin,
    ProjectionMixin,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    BaseEstimator,
):
    """Principal component analysis (PCA) computed with PyTorch.

    A drop-in replacement for :class:`sklearn.decomposition.PCA`: the same
    parameters, solvers, fitted attributes and results, with the linear algebra
    run where the data live. Data are centred per feature, not scaled, then
    projected on the leading right singular vectors.

    :meth:`partial_fit` updates the model batch by batch as scikit-learn's
    IncrementalPCA does, and :meth:`fit`, :meth:`transform` and :meth:`score`
    read a ``numpy.memmap`` (or another array-like that slices) block by block,
    never whole (see docs/scaling.md).

    It adds :meth:`sample`, which draws from the fitted probabilistic PCA model,
    and takes torch tensors as scikit-learn's array-API estimators do. Fitted
    on a tensor, every fitted array is a tensor on ``device_`` (numpy input
    gives numpy arrays), and :meth:`get_covariance`, :meth:`get_precision` and
    :meth:`sample` answer in that container; float16, bfloat16 and integer
    tensors are fitted and answered in float64 (float32 on MPS). Data passed to
    the other methods comes back in its own container. Mixing containers
    follows scikit-learn: under ``sklearn.set_config(array_api_dispatch=True)``
    data of another namespace or device than the fit's is refused with a
    ValueError (move it, or move the model with scikit-learn's
    ``move_estimator_to``); without dispatch the model meets the data where
    they are (a tensor on its own device, numpy on the host). The kernels
    follow the container: numpy and scipy input runs numpy/scipy (and torch on
    CPU memory shared with the array), a tensor runs torch kernels on its
    device, the CPU included (with numpy's BLAS and scipy's LAPACK on a CPU
    tensor's memory where they are faster).

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
        matrix, both drawn by a numpy ``RandomState`` as scikit-learn draws
        them, for arrays and tensors alike: one seed gives scikit-learn's
        numbers. None draws fresh entropy; the global RNGs are not used.

    device : str, torch.device or None, default=None
        Where to compute. None follows the data: numpy and scipy input stays
        on the CPU (no GPU context is opened, e.g. in every GridSearchCV
        worker), a tensor is processed on its own device. 'auto' (CUDA, then
        MPS, then the CPU), 'cuda', 'cuda:N' or 'mps' opt in to an
        accelerator, moving numpy input there; 'cpu' moves tensors to the CPU.
        Resolved in :meth:`fit` into ``device_``; :meth:`transform` and the
        other methods compute a tensor on its own device.

    Attributes
    ----------
    components_ : ndarray or torch.Tensor of shape (n_components, n_features)
        Principal axes in feature space, sorted by decreasing explained
        variance; the largest-magnitude entry of each is positive.

    explained_variance_ : ndarray or torch.Tensor of shape (n_components,)
        Variance explained by each component (``n_samples - 1`` degrees of
        freedom).

    explained_variance_ratio_ : ndarray or torch.Tensor of shape (n_components,)
        Fraction of the total variance explained by each component.

    singular_values_ : ndarray or torch.Tensor of shape (n_components,)
        Singular values of the centred data for the selected components.

    mean_ : ndarray or torch.Tensor of shape (n_features,)
        Per-feature mean of the training data.

    n_components_ : int
        Number of components kept.

    n_samples_ : int
        Number of samples in the training data.

    n_samples_seen_ : int
        Number of samples the model has seen: ``n_samples_`` after :meth:`fit`,
        the running total over :meth:`partial_fit` calls.

    var_ : ndarray or torch.Tensor of shape (n_features,)
        Per-feature variance of the samples seen (divided by ``n_samples_seen_``,
        as scikit-learn's IncrementalPCA), from which :meth:`partial_fit` continues.

    noise_variance_ : float or torch.Tensor of shape ()
        Noise variance of the probabilistic PCA model (Tipping and Bishop,
        1999): the mean of the discarded eigenvalues of the covariance. A
        0-d tensor after a fit on a tensor.

    n_features_in_ : int
        Number of features seen during ``fit``.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``, when they are all strings.

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
        "device": [DEVICE, NONE],
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
        device=None,
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

    @other_namespaces
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
        if is_streamed(X) and X.shape[0] > 0:
            return self._fit_streamed(X)
        self._fit(X)
        return self

    @other_namespaces
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
        X_new : ndarray or torch.Tensor of shape (n_samples, n_components)
            Projected data; a tensor on ``X``'s device when ``X`` is a tensor.
        """
        if is_streamed(X) and X.shape[0] > 0:
            return self._fit_streamed(X).transform(X)
        U, signs, S, Xv, x_is_centred = self._fit(X, compute_u=True)
        np_dtype = FittedState.of(self).np_dtype
        k = self.n_components_
        with torch.no_grad():
            if U is not None:
                # X V = U S V^T V = U S, with V's signs flipped; whitening divides by
                # sqrt(S^2 / (n - 1)).
                scale = math.sqrt(U.shape[0] - 1) if self.whiten else S[:k]
                Y = U[:, :k] * (signs[:k] * scale)
            elif sp.issparse(Xv):
                return self._transform_array(Xv)
            elif not is_tensor(Xv):
                return self._transform_array(Xv, centred=x_is_centred)
            else:
                Y = self._transform_tensor(Xv, centred=x_is_centred)
        return like_input(Y, X, np_dtype)

    def _fit(self, X, compute_u=False):
        """Validate, pick the solver, dispatch; return what fit_transform needs (U if compute_u)."""
        check_params(self, self._parameter_constraints)
        if sp.issparse(X) and self.svd_solver not in _SPARSE_SOLVERS:
            raise TypeError(
                'PCA only support sparse inputs with the "arpack" and "covariance_eigh" '
                f'solvers, while "{self.svd_solver}" was passed. See TruncatedSVD for a '
                "possible alternative."
            )
        X, np_dtype = self._validate(X, reset=True)
        self.device_ = resolve_input_device(self.device, X, type(self).__name__)
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
        if (
            not self.copy
            and solver != "covariance_eigh"
            and not is_tensor(X)
            and not sp.issparse(X)
        ):
            if not X.flags.writeable:
                # These solvers centre X in place; a read-only input (a memmap) is
                # copied once, as scikit-learn does. covariance_eigh never writes to X.
                X = X.copy()

        # The fitted state follows the data: tensors on device_ for a tensor, else numpy.
        state = FittedState(is_tensor(X), self.device_, np_dtype)
        dtype = state.dtype
        if not sp.issparse(X) and (is_tensor(X) or self.device_.type != "cpu"):
            # The torch kernels; numpy input stays numpy for the numpy/scipy ones.
            X = to_tensor(X, self.device_, dtype)
        with torch.no_grad(), numpy_linalg_errors():
            if solver in ("full", "covariance_eigh"):
                return self._fit_full(X, n_components, state)
            return self._fit_truncated(X, n_components, state, compute_u)

    def _fit_full(self, X, n_components, state):
        """Exact decomposition by SVD of the centred data or eigh of its covariance."""
        n_samples, n_features = X.shape
        _check_n_components(n_components, n_samples, n_features, self._fit_svd_solver)
        U, x_is_centred = None, False
        if self._fit_svd_solver == "full":
            # With copy=False the centring overwrites X, as in scikit-learn.
            mean, Xv = _centred(X, copy=self.copy)
            x_is_centred = True
            U, S, Vt = _full_svd(Xv)
            # Divided by numpy, as in scikit-learn: one sample divides 0 by 0, with
            # numpy's warning (the same correctly rounded quotients as torch's).
            explained_variance = torch.from_numpy((S**2).cpu().numpy() / (n_samples - 1))
            variances = _column_sum_of_squares(Xv) / n_samples
        else:
            Xv = X
            mean, explained_variance, S, Vt, variances = _covariance_eigh(
                Xv, self.device_, state.dtype
            )
        signs, Vt = _svd_flip(Vt if is_tensor(X) else Vt.numpy())
        self._finish_exact(n_samples, n_components, mean, explained_variance, S, Vt, state)
        self._set_moments(n_samples, variances, state)
        return U, signs, S, Xv, x_is_centred

    def _finish_exact(self, n_samples, n_components, mean, explained_variance, S, Vt, state):
        """Select the components from the whole spectrum and store the fitted attributes."""
        n_features = Vt.shape[1]
        spectrum = explained_variance.cpu().numpy().astype(state.np_dtype, copy=False)
        ratio = spectrum / spectrum.sum()
        n_components = _select_n_components(n_components, spectrum, ratio, n_samples)

        # Maximum-likelihood noise variance of probabilistic PCA (Bishop 2006, eq. 12.46).
        discarded = n_components < min(n_features, n_samples)
        self.noise_variance_ = state.scalar(spectrum[n_components:].mean() if discarded else None)
        self._set_fitted(
            n_samples,
            n_components,
            mean,
            Vt[:n_components],
            spectrum[:n_components],
            ratio[:n_components],
            S[:n_components],
            state,
        )

    def _fit_truncated(self, X, n_components, state, compute_u):
        """Truncated decomposition by ARPACK or by the randomized range finder."""
        n_samples, n_features = X.shape
        solver = self._fit_svd_solver
        _check_n_components(n_components, n_samples, n_features, self._fit_svd_solver)
        x_is_centred = False
        if sp.issparse(X):
            mean_np, var = mean_variance_axis(X, axis=0)
            mean_np = mean_np.astype(state.np_dtype, copy=False)
            # ddof=1; numpy division: one sample gives NaN with a warning, as in scikit-learn.
            variances = var
            total_var = np.float64(var.sum()) * n_samples / np.float64(n_samples - 1)
            mean = torch.from_numpy(mean_np).to(self.device_, state.dtype)
            Xv, operator = X, _centred_sparse_operator(X, mean_np)
        else:
            mean, Xv = _centred(X, copy=self.copy)
            x_is_centred = True
            square_sums = _column_sum_of_squares(Xv)
            variances = square_sums / n_samples
            total_var = np.float64(square_sums.sum()) / np.float64(n_samples - 1)
            operator = None

        random_state = _numpy_random_state(self.random_state)
        if solver == "arpack":
            v0 = random_state.uniform(-1, 1, min(X.shape))
            A = Xv if operator is None else operator
            U, S, Vt = _arpack_svd(A, n_components, self.tol, v0, self.device_, state.dtype)
        else:
            U, S, Vt = _randomized_svd(
                Xv,
                n_components,
                self.n_oversamples,
                self.iterated_power,
                self.power_iteration_normalizer,
                random_state,
                compute_u,
            )
        signs, Vt = _svd_flip(Vt if is_tensor(X) else Vt.cpu().numpy())
        self._finish_truncated(n_samples, n_components, mean, S, Vt, total_var, state)
        self._set_moments(n_samples, variances, state)
        return U, signs, S, Xv, x_is_centred

    def _finish_truncated(self, n_samples, n_components, mean, S, Vt, total_var, state):
        """Store the attributes of a truncated decomposition; ``total_var``: the data's."""
        n_features = Vt.shape[1]
        np_dtype = state.np_dtype
        explained_variance = (S**2 / (n_samples - 1)).cpu().numpy().astype(np_dtype, copy=False)
        ratio = explained_variance / np_dtype.type(total_var)
        noise = None
        if n_components < min(n_features, n_samples):
            noise = (total_var - explained_variance.sum()) / (
                min(n_features, n_samples) - n_components
            )
        self.noise_variance_ = state.scalar(noise)
        self._set_fitted(n_samples, n_components, mean, Vt, explained_variance, ratio, S, state)

    def _set_moments(self, n_samples, variances, state):
        """The running statistics that :meth:`partial_fit` continues from."""
        self.n_samples_seen_ = n_samples
        self.var_ = state.array(np.asarray(variances))

    def _set_fitted(self, n_samples, n_components, mean, Vt, variance, ratio, S, state):
        """Store the fitted attributes in the fitted container (``state``), the input's dtype."""
        self.n_samples_ = n_samples
        self.n_components_ = n_components
        self.mean_ = state.array(mean)
        self.components_ = state.array(Vt)
        self.explained_variance_ = state.array(variance)
        self.explained_variance_ratio_ = state.array(ratio)
        self.singular_values_ = state.array(S)

    def __getstate__(self):
        return pickled(super().__getstate__())

    def __setstate__(self, state):
        self.__dict__.update(unpickled(dict(state), type(self).__name__))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.sparse = self.svd_solver in _SPARSE_SOLVERS
        tags.array_api_support = True  # every solver computes on tensors, on their device
        return tags
