"""What a fitted PCA does with new data: validation, projection, and the map back.

The methods PCA inherits for ``transform`` and ``inverse_transform``, as
scikit-learn's ``_BasePCA`` holds them, and the one entrance that validates X
for every method. numpy and sparse input is projected by numpy/scipy, a tensor
on its own device by torch; the answer comes in the input's container.
"""

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from .._utils.arrays import INFERENCE_ROWS, is_tensor, to_tensor
from .._utils.validation import check_tensor
from ._blas import check_finite
from ._incremental import is_streamed
from ._linalg import _project_array, _project_tensor, _work_dtype, host_view
from ._namespace import (
    as_numpy,
    check_same_namespace,
    like_input,
    other_namespaces,
    tensor_np_dtype,
)


class ProjectionMixin(TransformerMixin):
    """``transform``, ``inverse_transform`` and input validation of a fitted PCA.

    A TransformerMixin, as scikit-learn's ``_BasePCA`` is: ``set_output`` wraps
    the ``transform`` of the class that defines it.

    Needs ``components_``, ``mean_``, ``explained_variance_``, ``whiten``,
    ``device`` and ``device_``.
    """

    def _validate(self, X, reset, accept_sparse=True, finite=True):
        """Validate X; return it (numpy, scipy sparse or tensor) and its numpy float dtype.

        With ``finite=False`` an array, a sparse matrix or a CPU float tensor (which
        the caller reads through numpy) is not tested for NaN and inf: the caller
        runs ``check_finite``. Other tensors are always tested.
        """
        if is_tensor(X):
            check_tensor(X, type(self).__name__, ensure_finite=finite or host_view(X) is X)
            validate_data(self, X, reset=reset, skip_check_array=True)
            return X, tensor_np_dtype(X)
        X = validate_data(
            self,
            X,
            dtype=[np.float64, np.float32],
            accept_sparse=("csr", "csc") if accept_sparse else False,
            reset=reset,
            ensure_all_finite=False,
        )
        if finite:
            check_finite(X, type(self).__name__)  # check_array's test, on every core
        return X, X.dtype

    def _model(self, device, dtype):
        """The fitted model on ``device``: components (k, p), mean (p,), variance (k,)."""
        to = lambda a: torch.as_tensor(a if is_tensor(a) else as_numpy(a)).to(device, dtype)  # noqa: E731
        return to(self.components_), to(self.mean_), to(self.explained_variance_)

    def _transform_tensor(self, X, centred=False):
        """Project a (n_samples, n_features) tensor on the components, on its own device."""
        W, mean, variance = self._model(X.device, X.dtype)
        return _project_tensor(X, W, None if centred else mean, variance if self.whiten else None)

    def _transform_array(self, X, centred=False, with_total=False):
        """Project a numpy array or sparse matrix on the components with numpy/scipy."""
        variance = as_numpy(self.explained_variance_) if self.whiten else None
        mean = None if centred else as_numpy(self.mean_)
        return _project_array(X, as_numpy(self.components_), mean, variance, with_total)

    def _device_for(self, X):
        """Where to compute for ``X``: a tensor's own device; for an array, the CPU
        unless ``device`` asked for an accelerator (then ``device_``)."""
        if is_tensor(X):
            return X.device
        return torch.device("cpu") if self.device is None else self.device_

    @other_namespaces
    def transform(self, X):
        """Project X on the principal components.

        Parameters
        ----------
        X : {array-like, sparse matrix, torch.Tensor} of shape (n_samples, n_features)
            New data.

        Returns
        -------
        X_new : ndarray or torch.Tensor of shape (n_samples, n_components)
            Projection of X; a tensor on ``X``'s device when ``X`` is a tensor,
            computed in ``X``'s float dtype.
        """
        check_is_fitted(self)
        check_same_namespace(X, self, "transform")
        if is_streamed(X) and X.shape[0] > 0:
            return self._map_streamed(self.transform, X)
        Xv, np_dtype = self._validate(X, reset=False, finite=False)
        device = self._device_for(Xv)
        array = host_view(Xv)  # a CPU tensor's memory, for numpy's faster projection
        if sp.issparse(array) or (device.type == "cpu" and not is_tensor(array)):
            # numpy input stays numpy, and the same product tests X for NaN and
            # inf: see _project_array.
            Y, total = self._transform_array(array, with_total=True)
            check_finite(array, type(self).__name__, total)
            return like_input(torch.from_numpy(Y), X, np_dtype) if is_tensor(X) else Y
        dtype = _work_dtype(device, np_dtype)
        with torch.no_grad():
            if is_tensor(Xv):
                Y = self._transform_tensor(to_tensor(Xv, device, dtype))
                return like_input(Y, X, np_dtype)
            # An array bound for an accelerator goes there in chunks, never whole.
            check_finite(Xv, type(self).__name__)
            chunks = range(0, Xv.shape[0], INFERENCE_ROWS)
            parts = [
                self._transform_tensor(to_tensor(Xv[i : i + INFERENCE_ROWS], device, dtype))
                .cpu()
                .numpy()
                .astype(np_dtype, copy=False)
                for i in chunks
            ]
        return np.concatenate(parts) if parts else np.empty((0, self.n_components_), np_dtype)

    @other_namespaces
    def inverse_transform(self, X):
        """Map projected data back to feature space, undoing whitening.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, n_components)
            Data in the component space.

        Returns
        -------
        X_original : ndarray or torch.Tensor of shape (n_samples, n_features)
            ``X @ components_ + mean_`` (components scaled by the square root of
            the explained variance when ``whiten=True``).
        """
        check_is_fitted(self)
        check_same_namespace(X, self, "inverse_transform")
        if is_tensor(X):
            check_tensor(X, type(self).__name__)
            Xv, np_dtype = X, tensor_np_dtype(X)
        else:
            Xv = check_array(X, input_name="X", dtype=[np.float64, np.float32])
            np_dtype = Xv.dtype
        if Xv.shape[1] != self.n_components_:
            raise ValueError(
                f"X has {Xv.shape[1]} columns, but PCA has {self.n_components_} components: "
                f"inverse_transform expects data of shape (n_samples, {self.n_components_}), "
                "such as the output of transform."
            )
        device = self._device_for(Xv)
        with torch.no_grad():
            Z = to_tensor(Xv, device, _work_dtype(device, np_dtype))
            W, mean, variance = self._model(device, Z.dtype)
            if self.whiten:
                W = variance.sqrt()[:, None] * W
            Y = torch.addmm(mean, Z, W)  # mean + Z W: (n_samples, n_features)
        return like_input(Y, X, np_dtype)

    @property
    def _n_features_out(self):
        """Number of transformed output features."""
        return self.components_.shape[0]
