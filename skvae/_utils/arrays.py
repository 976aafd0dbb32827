"""Containers: numpy arrays and torch tensors, and the way between them.

Results come back in the container the caller passed: a tensor on its device,
or a numpy array of the input's dtype.
"""

import warnings

import numpy as np
import scipy.sparse as sp
import torch

# Rows per chunk when a fitted model maps data through torch, bounding the
# memory of the intermediate activations.
INFERENCE_ROWS = 8192
# Values per scoring block (float64 temporaries, the widest activation per decoder
# pass): bounds the memory of the scores whatever n_samples and the draws.
SCORE_ELEMENTS = 2**20
# numpy dtype kinds converted to float32 directly: bool, signed and unsigned ints.
INTEGER_KINDS = "biu"


def is_tensor(X):
    return isinstance(X, torch.Tensor)


def to_tensor(X, device, dtype=torch.float32):
    """``X`` (a numpy array or tensor) as a ``dtype`` tensor on ``device``.

    On the CPU with a matching dtype, a numpy array is viewed, not copied.
    float64 on MPS is not supported by torch, so callers ask for float32 there.
    """
    if isinstance(X, torch.Tensor):
        return X.detach().to(device=device, dtype=dtype)
    with warnings.catch_warnings():
        # Read-only arrays (memmaps) are fine: the tensor is never written unless a
        # caller asked for in-place work, and then validate_data made X writeable.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        try:
            T = torch.from_numpy(X)
        except ValueError:  # negative strides
            T = torch.from_numpy(np.ascontiguousarray(X))
    return T.to(device=device, dtype=dtype)


def to_numpy(T, dtype):
    """Copy a tensor back to the host as a numpy array of ``dtype``."""
    return T.detach().cpu().numpy().astype(dtype, copy=False)


def output_like(T, X, dtype):
    """Return ``T`` in the kind of container ``X`` was: a tensor on ``X``'s device, else numpy.

    ``dtype`` is the numpy dtype the caller's input had (float32 or float64).
    """
    if isinstance(X, torch.Tensor):
        out_dtype = X.dtype if X.is_floating_point() else torch.float64
        if X.device.type == "mps" and out_dtype == torch.float64:
            out_dtype = torch.float32
        return T.detach().to(device=X.device, dtype=out_dtype)
    return to_numpy(T, dtype)


def tensor_numpy_dtype(X):
    """The numpy float dtype matching a tensor's dtype (float32 unless it is float64)."""
    return np.float64 if X.dtype == torch.float64 else np.float32


def is_streamed(X):
    """Whether X is read in place, a chunk at a time, rather than as one array.

    That is a ``numpy.memmap``, or an array-like that is not a numpy array but
    has a ``shape``, a numeric ``dtype`` and slices (h5py and zarr datasets); not
    a tensor, a sparse matrix or a pandas object (whose ``[]`` selects columns).
    Callers check that it is 2-D.
    """
    if isinstance(X, np.memmap):
        return True
    if isinstance(X, np.ndarray) or is_tensor(X) or sp.issparse(X) or hasattr(X, "iloc"):
        return False
    dtype = getattr(X, "dtype", None)
    return (
        hasattr(X, "shape")
        and hasattr(X, "__getitem__")
        and isinstance(dtype, np.dtype)
        and dtype.kind in INTEGER_KINDS + "f"
    )
