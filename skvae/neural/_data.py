"""The one entrance of data into the neural estimators: X to float32 rows.

``fit`` and ``partial_fit`` call :func:`training_rows` once, every fitted method
calls :func:`inference_input` once; nothing else validates or converts X.
The neural estimators compute in float32. This module turns the caller's rows
(a numpy array of any real or integer dtype, a ``numpy.memmap``, an array-like
that slices such as an HDF5 or zarr dataset, or a tensor) into float32 tensors
on the device, checking the values chunk by chunk, so that no float64 copy of X
is ever made and an array larger than memory is read one chunk at a time. See
``docs/memory.md`` for what each path copies.
"""

import math
import warnings

import numpy as np
import torch
from sklearn.utils import check_array
from sklearn.utils.validation import validate_data

from .._utils.arrays import (
    INFERENCE_ROWS,
    INTEGER_KINDS,
    is_streamed,
    is_tensor,
    tensor_numpy_dtype,
    to_tensor,
)
from .._utils.validation import check_float32_values, check_tensor

# Bytes of the caller's array converted per step: the conversion holds one such
# chunk (and its float32 image) beside the float32 result.
CHUNK_BYTES = 2**24
# Bytes of float32 activations of the widest layer per inference chunk.
INFERENCE_BYTES = 2**25


def check_streamed_shape(X, estimator_name):
    """check_array's shape checks for an array that is not read whole: 2-D, >= 1 row and column."""
    if len(X.shape) != 2:
        raise ValueError(
            f"Expected a 2D array of shape (n_samples, n_features), got shape {tuple(X.shape)}. "
            "Reshape your data with X.reshape(-1, 1) if it has a single feature or "
            "X.reshape(1, -1) if it has a single sample."
        )
    for axis, what in enumerate(("sample", "feature")):
        if X.shape[axis] < 1:
            raise ValueError(
                f"Found array with {X.shape[axis]} {what}(s) (shape={tuple(X.shape)}) while a "
                f"minimum of 1 is required by {estimator_name}."
            )


def keeps_dtype(X):
    """Whether X's own numeric dtype can go to float32 without a float64 copy first.

    float32, float64 and integer (or bool) numpy arrays; other dtypes (float16,
    object, pandas frames) go through ``check_array``'s float64 as before.
    """
    dtype = getattr(X, "dtype", None)
    return isinstance(dtype, np.dtype) and (
        dtype.kind in INTEGER_KINDS or dtype in (np.float32, np.float64)
    )


def output_dtype(dtype):
    """The numpy dtype results come back in for input of ``dtype``.

    float32 stays float32; float64, integers and bools give float64, as
    scikit-learn's transformers return for integer input.
    """
    return np.dtype(np.float32) if dtype == np.float32 else np.dtype(np.float64)


def chunk_rows(n_features, itemsize, budget=CHUNK_BYTES):
    """Rows per chunk such that a chunk of X and its float32 image fit ``budget`` bytes."""
    return max(1, budget // (n_features * max(itemsize, 4)))


def inference_rows(width):
    """Rows per inference chunk when the widest layer (or X) has ``width`` units.

    INFERENCE_BYTES of float32 activations, and at most INFERENCE_ROWS rows.
    """
    return max(1, min(INFERENCE_ROWS, INFERENCE_BYTES // (4 * max(1, width))))


def _host_chunk(X, rows):
    """``X[rows]`` as a numpy array (rows: a slice, or sorted indices)."""
    block = np.asarray(X[rows])
    if any(s < 0 for s in block.strides):
        # A copy: ascontiguousarray keeps a one-row array's negative stride, which
        # torch.from_numpy refuses.
        block = block.copy(order="C")
    return block


def _from_numpy(block):
    """``torch.from_numpy``, read-only arrays (memmaps) included: the tensor is only read."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(block)


def to_float32(X, device, estimator_name):
    """The numpy array X as one float32 tensor on ``device``, converted chunk by chunk.

    A float32 array on the CPU is viewed, not copied. Otherwise the float32
    result is allocated once (by numpy on the CPU, so that ``tracemalloc`` sees
    it) and filled a chunk at a time: the peak is the result plus one chunk,
    never a float64 copy of X. X has passed ``check_array``'s test for NaN and
    infinity; float64 values beyond float32's range are refused chunk by chunk
    (:func:`~skvae._utils.validation.check_float32_values`).
    """
    device = torch.device(device)
    n, d = X.shape
    step = chunk_rows(d, X.dtype.itemsize)
    if X.dtype == np.float32 and device.type == "cpu":
        return _from_numpy(_host_chunk(X, slice(None)))
    if device.type == "cpu":
        out = torch.from_numpy(np.empty((n, d), dtype=np.float32))
    else:
        out = torch.empty((n, d), dtype=torch.float32, device=device)
    for i in range(0, n, step):
        block = _host_chunk(X, slice(i, i + step))
        out[i : i + step].copy_(_from_numpy(block))  # converts as it copies
        if block.dtype == np.float64:  # integers are within float32's range
            check_float32_values(block, out[i : i + step], estimator_name)
    return out


class Rows:
    """Rows of an array read on demand as float32 tensors on ``device``.

    Stands in for the float32 training tensor when X should not be copied whole
    (a memmap, a dataset on disk): it has the few tensor methods the estimators
    use on their training data (``shape``, ``device``, slicing, indexing with a
    tensor of row indices, ``numel``, ``split``, ``mean``, ``min``, ``max``),
    each of which reads X a chunk at a time. Every chunk read is checked for
    finite values within float32's range.

    Parameters
    ----------
    X : numpy.memmap, array-like or torch.Tensor of shape (n_samples, n_features)
        The rows; a numpy-like X needs ``shape``, ``dtype`` and slicing.
    device : torch.device
        Where the tensors read are put.
    estimator_name : str
        For error messages.
    index : ndarray of int, default=None
        The rows of X this object holds, in order; None for all of them.
    """

    dtype = torch.float32
    ndim = 2

    def __init__(self, X, device, estimator_name, index=None):
        self.X, self.device, self.estimator_name, self.index = X, device, estimator_name, index
        n = X.shape[0] if index is None else len(index)
        self.shape = torch.Size((n, X.shape[1]))
        itemsize = X.element_size() if is_tensor(X) else X.dtype.itemsize
        self.step = chunk_rows(X.shape[1], itemsize)
        self._stats = None

    def __len__(self):
        return self.shape[0]

    def __deepcopy__(self, memo):
        # X is only read: a copy shares it, as another memmap of the file would.
        return Rows(self.X, self.device, self.estimator_name, self.index)

    def numel(self):
        return self.shape[0] * self.shape[1]

    def subset(self, rows):
        """The rows ``rows`` (positions in self), as another :class:`Rows`, read lazily."""
        rows = np.asarray(torch.as_tensor(rows).cpu(), dtype=np.int64)
        return Rows(self.X, self.device, self.estimator_name, self._source_rows(rows))

    def _source_rows(self, rows):
        return rows if self.index is None else self.index[rows]

    def _read(self, rows):
        """Rows of X (a slice or int indices into X) as a checked float32 tensor."""
        if is_tensor(self.X):
            block = self.X[torch.as_tensor(rows) if not isinstance(rows, slice) else rows]
            out = block.detach().to(device=self.device, dtype=torch.float32)
        else:
            block = _host_chunk(self.X, rows)
            out = _from_numpy(block).to(device=self.device, dtype=torch.float32)
        floating = block.is_floating_point() if is_tensor(block) else block.dtype.kind == "f"
        if floating:  # integers are finite and within float32's range
            check_float32_values(block, out, self.estimator_name)
        return out

    def __getitem__(self, key):
        if isinstance(key, slice) and self.index is None:
            return self._read(key)
        if isinstance(key, slice):
            rows = self.index[key]
        else:
            rows = self._source_rows(np.asarray(torch.as_tensor(key).cpu(), dtype=np.int64))
        if len(rows) and np.all(rows[1:] > rows[:-1]):
            return self._read(rows)
        # Read in increasing order (sequential on disk), then put the rows in place.
        order = np.argsort(rows, kind="stable")
        out = self._read(rows[order])
        return out[torch.as_tensor(np.argsort(order), device=self.device)]

    def split(self, size):
        """Consecutive chunks of ``size`` rows, as float32 tensors."""
        return (self[i : i + size] for i in range(0, self.shape[0], size))

    def _statistics(self):
        """Column means (summed in float64), min and max."""
        if self._stats is None:
            total, lo, hi = 0.0, math.inf, -math.inf
            # A quarter of a chunk at a time: its float64 copy is twice the float32 rows.
            for block in self.split(max(1, self.step // 4)):
                total = total + block.to(torch.float64).sum(0)
                lo, hi = min(lo, float(block.min())), max(hi, float(block.max()))
            self._stats = (total / self.shape[0], lo, hi)
        return self._stats

    def scan(self):
        """Read X once: check every value and compute the statistics."""
        self._statistics()
        return self

    def mean(self, dim=0):
        if dim != 0:
            raise NotImplementedError("Rows.mean supports dim=0 only.")
        return self._statistics()[0].to(self.device, torch.float32)

    def min(self):
        return torch.tensor(self._statistics()[1])

    def max(self):
        return torch.tensor(self._statistics()[2])


# ----------------------------------------------------------------------------
# The entrance: every route of X into a neural estimator goes through here once.


def training_rows(estimator, X, reset):
    """X validated for ``fit`` or ``partial_fit``: float32 rows on ``estimator.device_``.

    Returns the rows (a float32 tensor, or a :class:`Rows` for a memmap or an
    array-like that slices, scanned once so that bad values are refused before
    training) and the numpy dtype results come back in. ``reset`` (a fresh fit)
    records ``n_features_in_`` and the feature names; otherwise X is checked
    against them.
    """
    return _rows(estimator, X, reset=reset)


def inference_input(estimator, X, n_features=None):
    """X validated for a fitted estimator's method, read a chunk at a time.

    ``n_features=None`` checks X against the input space (``n_features_in_``,
    feature names); an int checks it against that width (the latent space).
    Returns a :class:`Rows` and the numpy dtype results come back in.
    """
    return _rows(estimator, X, n_features=n_features, stream=True)


def _reset_width_without_names(estimator, X):
    estimator.n_features_in_ = X.shape[1]
    if hasattr(estimator, "feature_names_in_"):
        del estimator.feature_names_in_


def _rows(estimator, X, reset=False, n_features=None, stream=False):
    """Check X and return its rows as float32 on ``device_``, with the output dtype.

    ``n_features=None`` checks X against the input space (``n_features_in_``,
    feature names); an int checks it against that width (the latent space).
    The rows are a float32 tensor, or, with ``stream=True`` and for memmaps
    and other sliceable array-likes in any case, a :class:`~skvae.neural._data.Rows`
    that reads them a chunk at a time (scanned once here when fitting, so
    that bad values are refused before training). Integer, float32 and
    float64 arrays become float32 chunk by chunk, never through a float64
    copy (see ``docs/memory.md``). The dtype is the numpy dtype results come
    back in: float32 for float32 input, float64 otherwise.
    """
    name = type(estimator).__name__
    expected = estimator.n_features_in_ if n_features is None and not reset else n_features
    if is_tensor(X):
        check_tensor(X, name, ensure_finite=False)  # checked once converted, below
        dtype = tensor_numpy_dtype(X)
        if stream:
            Xt = Rows(X, estimator.device_, name)
        else:
            Xt = to_tensor(X, estimator.device_)
            check_float32_values(X, Xt, name)
        if reset:
            _reset_width_without_names(estimator, X)
    elif is_streamed(X) and not (
        X.dtype == np.float32 and isinstance(X, np.ndarray) and estimator.device_.type == "cpu"
    ):
        # A float32 memmap on the CPU is viewed by the array path below, not streamed.
        check_streamed_shape(X, name)
        dtype = output_dtype(X.dtype)
        Xt = Rows(X, estimator.device_, name)
        if not stream:
            Xt.scan()
        if reset:
            _reset_width_without_names(estimator, X)
    else:
        # Integer, float32 and float64 arrays keep their dtype here: the float32
        # rows are made from them chunk by chunk, below. check_array's test for
        # NaN and inf is a sum over X, without a copy.
        allowed = None if keeps_dtype(X) else [np.float64, np.float32]
        if n_features is None:
            X = validate_data(estimator, X, reset=reset, dtype=allowed)
        else:
            X = check_array(X, dtype=allowed, estimator=estimator, input_name="X")
        dtype = output_dtype(X.dtype)
        Xt = Rows(X, estimator.device_, name) if stream else to_float32(X, estimator.device_, name)
    if expected is not None and Xt.shape[1] != expected:
        raise ValueError(
            f"X has {Xt.shape[1]} features, but {name} is expecting {expected} features as input."
        )
    return Xt, dtype


def split_rows(Xt, n_val, generator, fraction):
    """Training and validation rows of ``Xt``: ``n_val`` of them held out at random,
    ``validation_fraction=fraction`` of them by the estimator's rule."""
    n = Xt.shape[0]
    if n_val < 1 or n - n_val < 1:
        raise ValueError(
            f"early_stopping=True with validation_fraction={fraction} "
            f"leaves {n_val} validation and {n - n_val} training samples out of n_samples={n}; "
            "both need at least 1. Raise validation_fraction, pass more samples, "
            "or set early_stopping=False."
        )
    order = torch.randperm(n, generator=generator)
    if isinstance(Xt, Rows):  # two lazy views, not two copies of X
        return Xt.subset(order[n_val:]), Xt.subset(order[:n_val])
    order = order.to(Xt.device)
    return Xt[order[n_val:]], Xt[order[:n_val]]
