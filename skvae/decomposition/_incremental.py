"""PCA of data seen in batches: ``partial_fit``, and ``fit`` on larger-than-memory arrays.

Kernels of tensors first: the running mean and variance of Chan, Golub and
LeVeque, the merge of batch SVDs of Ross et al. (2008) that scikit-learn's
IncrementalPCA uses, and a covariance accumulated block by block in float64.
Then the methods PCA inherits, which read their input one block at a time.
"""

import math
from numbers import Integral

import numpy as np
import scipy.sparse as sp
import torch

from .._utils.arrays import is_streamed as streamed_array
from .._utils.arrays import to_tensor
from .._utils.devices import resolve_input_device
from .._utils.validation import check_params
from ._linalg import _check_n_components, _svd_flip, numpy_linalg_errors
from ._namespace import FittedState, as_numpy, check_same_namespace, other_namespaces

# Entries per streamed block: 2**22 is 32 MiB of float64 (16 MiB of float32),
# large enough that the BLAS calls of a block run at full speed.
BLOCK_ENTRIES = 2**22


def is_streamed(X):
    """Whether ``fit``/``transform`` read ``X`` block by block rather than whole:
    a 2-D memmap or sliceable array-like (:func:`skvae._utils.arrays.is_streamed`)."""
    return streamed_array(X) and len(X.shape) == 2


def _float64_rows(X, workspace, dtype=torch.float64):
    """``X`` converted to ``dtype`` in ``workspace[0]``, a buffer reused from block to block.

    One buffer for the whole stream: a fresh block-sized temporary per block
    fragments the C heap, whose resident size then creeps up block after block.
    """
    n, p = X.shape
    buffer = workspace[0]
    if buffer is None or buffer.shape[0] < n or buffer.shape[1] != p or buffer.device != X.device:
        buffer = workspace[0] = torch.empty(n, p, dtype=dtype, device=X.device)
    return buffer[:n].copy_(X)


def block_rows(n_features, at_least=1):
    """Rows per streamed block for ``n_features`` columns."""
    return max(at_least, BLOCK_ENTRIES // max(1, n_features))


def row_blocks(n_samples, rows):
    """``(start, stop)`` of consecutive blocks of ``rows`` rows; the last one takes the rest
    when it would be smaller than ``rows // 2`` (so no block is tiny)."""
    bounds = list(range(0, n_samples, rows)) + [n_samples]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] < rows // 2:
        del bounds[-2]
    return list(zip(bounds[:-1], bounds[1:]))


class RunningMoments:
    """Per-feature count, mean and variance (ddof=0) of rows seen in batches.

    The pairwise update of Chan, Golub and LeVeque (1979), sums in float64, as
    scikit-learn's ``_incremental_mean_and_var``.
    """

    def __init__(self, n_seen=0, mean=None, var=None):
        self.n_seen = n_seen
        self.mean = mean  # (n_features,) float64 tensor, or None before the first batch
        self.var = var
        self.workspace = [None]

    def update(self, X):
        """Add the rows of the tensor ``X``; return the batch mean (float64)."""
        n = X.shape[0]
        batch_var, batch_mean = torch.var_mean(
            _float64_rows(X, self.workspace), dim=0, correction=0
        )
        batch_ss = batch_var * n  # (n_features,)
        if self.n_seen == 0:
            self.mean, self.var = batch_mean, batch_ss / n
        else:
            total = self.n_seen + n
            delta = batch_mean - self.mean
            ss = self.var * self.n_seen + batch_ss + delta**2 * (self.n_seen * n / total)
            self.mean = self.mean + delta * (n / total)
            self.var = ss / total
        self.n_seen += n
        return batch_mean


def _svd_rows(A):
    """Singular values and right singular vectors of ``A`` (rows >= columns or not).

    A tall ``A`` is reduced to its triangular factor first: the SVD of the small
    R has the same S and Vt, at a fraction of the cost of an SVD of ``A``.
    """
    if A.shape[0] > A.shape[1]:
        A = torch.linalg.qr(A, mode="r").R  # (n_features, n_features)
    # On CUDA torch's default SVD is an iterative Jacobi method (gesvdj); gesvd
    # is the QR-based algorithm of LAPACK, which the CPU and scikit-learn use,
    # and these matrices are small (at most n_features + batch rows).
    driver = "gesvd" if A.is_cuda else None
    _, S, Vt = torch.linalg.svd(A, full_matrices=False, driver=driver)
    return S, Vt


def merge_batch(X, moments, S, Vt):
    """One step of incremental PCA: the SVD of all rows seen, given the batch ``X``.

    Ross, Lim, Lin and Yang (2008), "Incremental learning for robust visual
    tracking", Sec. 3.1 (the mean update): the rows seen so far are summarised
    by ``diag(S) Vt`` about their mean; stacking it over the centred batch and
    the mean-shift row ``sqrt(n_seen n / n_total) (mean_seen - mean_batch)``
    gives a matrix with the Gram matrix of all rows centred at the new mean.
    With ``S`` and ``Vt`` None (the first batch) it is the SVD of the centred batch.

    ``X`` is a (n, n_features) tensor, ``moments`` a :class:`RunningMoments`
    updated here. Returns all singular values and right vectors, descending,
    unflipped; the caller truncates.
    """
    n_seen, mean_seen = moments.n_seen, moments.mean
    batch_mean = moments.update(X).to(X.dtype)
    if Vt is None:
        A = X - moments.mean.to(X.dtype)
    else:
        shift = math.sqrt(n_seen * X.shape[0] / moments.n_seen)
        correction = (shift * (mean_seen.to(X.dtype) - batch_mean))[None, :]
        A = torch.cat([S[:, None] * Vt, X - batch_mean, correction])
    return _svd_rows(A)


class StreamedCovariance:
    """``sum (x - s)(x - s)^T`` over rows seen in batches, in float64, and their mean.

    The shift ``s`` is ``shift`` when given, else the first batch's mean: with it
    the final centring ``C = (G - n d d^T) / (n - 1)``, ``d = mean - s``, subtracts
    a small term instead of cancelling two large ones, as ``X^T X - n mean mean^T``
    would for data far from the origin. ``dtype`` is float64 but where the device
    has none (MPS).
    """

    def __init__(self, shift=None, dtype=torch.float64):
        self.n_seen, self.gram, self.total = 0, None, None
        self.shift = None if shift is None else shift.to(dtype)
        self.dtype, self.workspace = dtype, [None]

    def update(self, X):
        Xs = _float64_rows(X, self.workspace, self.dtype)
        if self.gram is None:
            if self.shift is None:
                self.shift = Xs.mean(dim=0)
            self.gram = torch.zeros(X.shape[1], X.shape[1], dtype=self.dtype, device=X.device)
            self.total = torch.zeros(X.shape[1], dtype=self.dtype, device=X.device)
        Xs -= self.shift
        self.gram.addmm_(Xs.T, Xs)
        self.total += Xs.sum(dim=0)
        self.n_seen += X.shape[0]

    def scatter(self):
        """The mean and ``sum (x - mean)(x - mean)^T`` of all rows seen."""
        d = self.total / self.n_seen
        return self.shift + d, self.gram.addr_(d, d, alpha=-self.n_seen)

    def finish(self):
        """The mean (float64) and the covariance (ddof=1) of all rows seen."""
        mean, scatter = self.scatter()
        return mean, scatter.div_(self.n_seen - 1)


class IncrementalPCAMixin:
    """``partial_fit`` and the block-by-block ``fit`` of a PCA.

    Needs the estimator's ``_validate``,
    ``_finish_exact``, ``_finish_truncated``, ``_set_fitted`` and ``_set_moments``.
    """

    @other_namespaces
    def partial_fit(self, X, y=None):
        """Update the model with a batch of samples, as scikit-learn's IncrementalPCA.

        The first call fits the batch; each later call merges the SVD of the
        rows seen so far with the new batch (Ross et al., 2008), in torch on
        ``device_``. Calls after :meth:`fit` continue from the fitted model;
        :meth:`fit` starts afresh. The result depends on the batches when
        components are discarded along the way (``n_components`` below the
        rank): it equals IncrementalPCA's on the same batches, and PCA's on
        all rows when nothing is discarded.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, n_features)
            A batch of training data. The first batch needs at least
            ``n_components`` rows.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            The updated estimator.
        """
        check_params(self, self._parameter_constraints)
        name = type(self).__name__
        if sp.issparse(X):
            # IncrementalPCA's words, which code written for it matches on.
            raise TypeError(
                f"{name}.partial_fit does not support sparse input. Either convert "
                f"data to dense or use {name}.fit to do so in batches. ({name}.fit "
                "takes a sparse matrix whole, without densifying it.)"
            )
        n_components = self.n_components
        if n_components is not None and not isinstance(n_components, Integral):
            raise ValueError(
                f"{name}.partial_fit needs n_components to be an int or None, got "
                f"n_components={n_components!r}: a variance fraction or 'mle' needs the "
                "whole spectrum. Pass the number of components (e.g. the n_components_ "
                "of a PCA fitted on a first batch)."
            )
        first_pass = not hasattr(self, "components_")
        if not first_pass:
            check_same_namespace(X, self, "partial_fit")
        X, np_dtype = self._validate(X, reset=first_pass, accept_sparse=False)
        n_samples, n_features = X.shape
        if n_components is None:
            n_components = min(n_samples, n_features) if first_pass else self.n_components_
        elif n_components > n_features:
            raise ValueError(
                f"n_components={n_components!r} invalid for n_features={n_features}, need "
                f"more rows than columns for {name} processing"
            )
        elif n_components > n_samples and first_pass:
            raise ValueError(
                f"n_components={n_components} must be less or equal to the batch number "
                f"of samples {n_samples} for the first partial_fit call."
            )
        if not first_pass and self.components_.shape[0] != n_components:
            raise ValueError(
                f"Number of components has changed from {self.components_.shape[0]} to "
                f"{n_components} between calls to partial_fit! Try setting n_components "
                "to a fixed value."
            )
        if first_pass:
            self.device_ = resolve_input_device(self.device, X, name)
            state = FittedState(torch.is_tensor(X), self.device_, np_dtype)
        else:
            # The container of the first batch; the dtype of this one, as IncrementalPCA.
            fitted = FittedState.of(self)
            state = FittedState(fitted.tensors, fitted.device, np_dtype, fitted.like)
        dtype, device = state.dtype, state.device
        as_tensor = lambda a, d=dtype: torch.as_tensor(  # noqa: E731
            a if torch.is_tensor(a) else as_numpy(a)
        ).to(device, d)
        with torch.no_grad(), numpy_linalg_errors():
            X = to_tensor(X, device, dtype)
            if first_pass:
                moments, S, Vt = RunningMoments(), None, None
            else:
                moments = RunningMoments(
                    self.n_samples_seen_,
                    as_tensor(self.mean_, torch.float64),
                    as_tensor(self.var_, torch.float64),
                )
                S, Vt = as_tensor(self.singular_values_), as_tensor(self.components_)
            S, Vt = merge_batch(X, moments, S, Vt)
            _, Vt = _svd_flip(Vt)
        n_total = moments.n_seen
        explained_variance = (S**2 / (n_total - 1)).cpu().numpy().astype(np_dtype)
        total = float(moments.var.sum()) * n_total
        ratio = (S**2).cpu().numpy().astype(np_dtype) / np_dtype.type(total)
        # IncrementalPCA's rule, kept for agreement: no noise when n_components
        # equals this batch's size or n_features.
        noise = None
        if n_components not in (n_samples, n_features):
            noise = explained_variance[n_components:].mean()
        self.noise_variance_ = state.scalar(noise)
        k = n_components
        self._set_fitted(
            n_total, k, moments.mean, Vt[:k], explained_variance[:k], ratio[:k], S[:k], state
        )
        self._set_moments(n_total, moments.var.cpu().numpy(), state)
        return self

    def _stream(self, X, rows, reset=False):
        """Validated blocks of ``rows`` rows of the sliceable ``X``: (numpy array, dtype)."""
        for start, stop in row_blocks(X.shape[0], rows):
            yield self._validate(np.asarray(X[start:stop]), reset=reset and start == 0)

    def _fit_streamed(self, X):
        """Fit on an array read block by block (a memmap): peak memory one block plus the model.

        ``'covariance_eigh'``, and ``'auto'`` up to 4096 features, accumulate the
        covariance in float64 and eigendecompose it: exact PCA, a
        (n_features, n_features) float64 state. ``'full'`` (and ``'auto'`` beyond
        4096 features unless ``n_components`` is an int) merges exact SVDs of the
        blocks with nothing discarded: exact, with SVD accuracy, a (min(n_samples,
        n_features), n_features) state. ``'randomized'`` and ``'arpack'`` (and
        ``'auto'`` beyond 4096 features with an int ``n_components``) run
        IncrementalPCA's truncated merge: a (n_components, n_features) state,
        approximate as IncrementalPCA is.
        """
        check_params(self, self._parameter_constraints)
        n_samples, n_features = X.shape
        first, np_dtype = self._validate(np.asarray(X[:1]), reset=True)
        self.device_ = resolve_input_device(self.device, first, type(self).__name__)
        state = FittedState(False, self.device_, np_dtype)
        dtype = state.dtype
        solver, n_components = self.svd_solver, self.n_components
        if solver == "auto":
            if n_features <= 4096:
                solver = "covariance_eigh"
            elif isinstance(n_components, Integral) and n_components < 0.8 * n_features:
                solver = "randomized"
            else:
                solver = "full"
        self._fit_svd_solver = solver
        if n_components is None:
            n_components = min(n_samples, n_features) - (solver == "arpack")
        _check_n_components(n_components, n_samples, n_features, solver)
        truncated = solver in ("randomized", "arpack")
        rows = block_rows(n_features, at_least=n_components if truncated else 1)

        with torch.no_grad(), numpy_linalg_errors():
            if solver == "covariance_eigh":
                covariance = StreamedCovariance()
                for block, _ in self._stream(X, rows):
                    covariance.update(to_tensor(block, self.device_, dtype))
                mean, C = covariance.finish()
                variances = C.diagonal().cpu().numpy() * ((n_samples - 1) / n_samples)
                eigenvalues, eigenvectors = torch.linalg.eigh(C)  # ascending
                explained_variance = eigenvalues.flip(0).clamp_(min=0)
                S = torch.sqrt(explained_variance * (n_samples - 1))
                Vt = eigenvectors.flip(1).T
            else:
                moments, S, Vt = RunningMoments(), None, None
                for block, _ in self._stream(X, rows):
                    S, Vt = merge_batch(to_tensor(block, self.device_, dtype), moments, S, Vt)
                    if truncated:
                        S, Vt = S[:n_components], Vt[:n_components]
                mean, variances = moments.mean, moments.var.cpu().numpy()
                explained_variance = S**2 / (n_samples - 1)
            _, Vt = _svd_flip(Vt)
            mean = mean.to(dtype)
            if truncated:
                total_var = float(moments.var.sum()) * n_samples / (n_samples - 1)
                self._finish_truncated(n_samples, n_components, mean, S, Vt, total_var, state)
            else:
                self._finish_exact(
                    n_samples, n_components, mean, explained_variance.to(dtype), S, Vt, state
                )
        self._set_moments(n_samples, variances, state)
        return self

    def _map_streamed(self, method, X):
        """``method`` applied to blocks of rows of a sliceable ``X``, the results stacked."""
        out = None
        for start, stop in row_blocks(X.shape[0], block_rows(X.shape[1])):
            part = method(np.asarray(X[start:stop]))
            if out is None:  # the output, allocated once: (n_samples, ...)
                out = np.empty((X.shape[0], *part.shape[1:]), dtype=part.dtype)
            out[start:stop] = part
        return out
