"""Where a fitted PCA keeps its state, and how the data of later calls meet it.

Fitted on numpy (or scipy sparse matrices, lists, pandas), the fitted arrays are
numpy arrays; fitted on a torch tensor, they are tensors on the device the model
was fitted on (``device_``), as scikit-learn's array-API estimators keep theirs
in the input's namespace and device. Methods given data in the fitted container
answer in it. Under ``sklearn.set_config(array_api_dispatch=True)`` data of
another namespace or device is refused with scikit-learn's error; otherwise the
model meets the data where they are (a tensor on its own device, numpy on the
host), as skvae always has.

Floats narrower than float32 (float16, bfloat16) and integers compute and come
back in float64 (float32 where the device has no float64), as scikit-learn's
validation converts them.

Arrays of other array-API libraries (array-api-strict, ...) are computed as
numpy arrays, read through DLPack, and the answers and the fitted state are
handed back in their namespace and on their device (:func:`other_namespaces`).
"""

import functools

import numpy as np
import scipy.sparse as sp
import torch
from sklearn import config_context, get_config

from .._utils.arrays import is_tensor
from .._utils.devices import restore_device
from ._linalg import _work_dtype


def dispatching():
    """Whether scikit-learn's array-API dispatch is on (``array_api_dispatch=True``)."""
    return bool(get_config().get("array_api_dispatch", False))


def tensor_np_dtype(X):
    """The numpy float dtype a tensor is fitted and answered in (see the module docstring)."""
    if X.dtype == torch.float32 or (X.device.type == "mps" and X.dtype != torch.float64):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def torch_dtype(np_dtype):
    return torch.float64 if np.dtype(np_dtype) == np.float64 else torch.float32


def like_input(T, X, np_dtype):
    """The result tensor ``T`` in ``X``'s container: a tensor on ``X``'s device, else numpy.

    ``np_dtype`` is the float dtype ``X`` was validated to (float32 or float64).
    """
    if is_tensor(X):
        return T.detach().to(device=X.device, dtype=torch_dtype(np_dtype))
    return T.detach().cpu().numpy().astype(np_dtype, copy=False)


def other_namespace(X):
    """The namespace of an array of an array-API library other than numpy and torch, else None."""
    if isinstance(X, np.ndarray | np.generic) or is_tensor(X) or sp.issparse(X):
        return None
    get = getattr(X, "__array_namespace__", None)
    return None if get is None else get()


def as_numpy(a):
    """A fitted array (numpy, a tensor on any device, another namespace's) as numpy."""
    if is_tensor(a):
        return a.detach().cpu().numpy()
    if other_namespace(a) is not None:
        return np.from_dlpack(a)
    return np.asarray(a)


def in_namespace_of(a, like):
    """The numpy array (or scalar) ``a`` in the namespace and on the device of ``like``."""
    return like.__array_namespace__().asarray(a, device=like.device)


# The fitted arrays, the state that follows the data.
FITTED_ARRAYS = (
    "components_",
    "mean_",
    "explained_variance_",
    "explained_variance_ratio_",
    "singular_values_",
    "var_",
    "noise_variance_",
)


def other_namespaces(method):
    """Run ``method`` on numpy for data of another array-API namespace, answering in it.

    ``X`` is read through DLPack, the method runs without dispatch on the
    numpy array, and its answer, and after ``fit``, ``fit_transform`` or
    ``partial_fit`` the fitted arrays, are put back in ``X``'s namespace and
    on its device. numpy and torch data go straight through.
    """

    @functools.wraps(method)
    def wrapper(self, X, *args, **kwargs):
        if other_namespace(X) is None:
            return method(self, X, *args, **kwargs)
        fits = method.__name__ in ("fit", "fit_transform", "partial_fit")
        if method.__name__ not in ("fit", "fit_transform") and hasattr(self, "components_"):
            check_same_namespace(X, self, method.__name__)
        with config_context(array_api_dispatch=False):
            out = method(self, as_numpy(X), *args, **kwargs)
        if fits:
            for name in FITTED_ARRAYS:
                value = getattr(self, name)
                if isinstance(value, np.ndarray | np.generic):
                    setattr(self, name, in_namespace_of(value, X))
        if out is self or isinstance(out, float):
            return out
        return in_namespace_of(out, X)

    return wrapper


class FittedState:
    """The container of a fit's arrays: numpy of ``np_dtype``, or tensors on ``device``.

    ``device`` is also where the model computes for its own methods
    (covariance, precision, samples); ``dtype`` is the torch dtype it computes in.
    """

    def __init__(self, tensors, device, np_dtype, like=None):
        self.tensors = tensors
        self.device = torch.device(device)
        self.np_dtype = np.dtype(np_dtype)
        self.dtype = _work_dtype(self.device, self.np_dtype)
        self.like = like  # an array of another namespace the state lives in, else None

    @classmethod
    def of(cls, estimator):
        """The state of a fitted estimator, read from its ``components_``."""
        components = estimator.components_
        if is_tensor(components):
            return cls(True, components.device, tensor_np_dtype(components))
        device = torch.device("cpu") if estimator.device is None else estimator.device_
        like = components if other_namespace(components) is not None else None
        return cls(False, device, as_numpy(components).dtype, like)

    def _out(self, a):
        return a if self.like is None else in_namespace_of(a, self.like)

    def array(self, a):
        """A fitted attribute: a fresh copy of ``a`` (a tensor or numpy array) in this container."""
        if self.tensors:
            return torch.as_tensor(a).to(device=self.device, dtype=self.dtype, copy=True)
        return self._out(np.array(as_numpy(a), dtype=self.np_dtype))

    def scalar(self, x):
        """A fitted scalar (``noise_variance_``): a 0-d tensor, else a numpy scalar.

        ``None`` (no discarded component, no noise) is a zero tensor, else the
        float 0.0, as scikit-learn stores it.
        """
        if self.tensors:
            return torch.tensor(
                0.0 if x is None else float(x), device=self.device, dtype=self.dtype
            )
        return 0.0 if x is None else self._out(self.np_dtype.type(x))

    def wrap(self, T):
        """A result tensor of one of the model's own methods, in this container."""
        if self.tensors:
            return T.detach().to(device=self.device, dtype=self.dtype)
        return self._out(T.detach().cpu().numpy().astype(self.np_dtype, copy=False))


def _where(a):
    """The namespace and device of ``a``: numpy (lists and sparse matrices included) has none."""
    if is_tensor(a):
        return "torch", a.device
    namespace = other_namespace(a)
    return ("numpy", None) if namespace is None else (namespace.__name__, a.device)


def _describe(a):
    if is_tensor(a):
        return f"torch tensors on {a.device}"
    if other_namespace(a) is not None:
        return f"{other_namespace(a).__name__} arrays on {a.device}"
    if sp.issparse(a):
        return "a scipy sparse matrix"
    if isinstance(a, np.ndarray):
        return "numpy arrays"
    return f"{type(a).__name__} input"


def check_same_namespace(X, estimator, method):
    """Refuse, under array-API dispatch, data of another namespace or device than the fit's.

    scikit-learn's rule and wording (``check_same_namespace``): numpy, lists and
    sparse matrices all count as numpy; a tensor must be on the fitted device.
    """
    if not dispatching():
        return
    fitted = estimator.components_
    if _where(X) == _where(fitted):
        return
    name = type(estimator).__name__
    raise ValueError(
        f"Inputs passed to {name}.{method}() must use the same namespace and the same "
        f"device as those passed to fit(). {name} was fitted on {_describe(fitted)}, and "
        f"{method} got {_describe(X)}. Move the data to the fitted namespace and device "
        "(e.g. torch.as_tensor(X, device=...)), or the model to the data's "
        "(scikit-learn's move_estimator_to)."
    )


def pickled(state):
    """An estimator's ``__dict__`` to pickle: fitted tensors on the CPU, their device recorded.

    A CUDA tensor pickles with its device and cannot be unpickled where there is
    no CUDA; on the CPU it can, and :func:`unpickled` moves it back.
    """
    devices = {v.device for v in state.values() if is_tensor(v)}
    if not devices - {torch.device("cpu")}:
        return state
    (device,) = devices  # one fit, one device
    state = {k: v.cpu() if is_tensor(v) else v for k, v in state.items()}
    state["_tensors_device"] = str(device)
    return state


def unpickled(state, estimator_name):
    """The pickled ``state`` with ``device_`` and the fitted tensors on their device again.

    A device missing on this machine becomes the CPU, with a warning
    (:func:`skvae._utils.devices.restore_device`).
    """
    device = state.pop("_tensors_device", None)
    fitted_on = state.get("device_")
    state = restore_device(state, estimator_name, stacklevel=4)
    if device is None:
        return state
    if fitted_on is not None and torch.device(device) == torch.device(fitted_on):
        target = state["device_"]  # already checked, and warned about
    else:
        target = restore_device({"device_": device}, estimator_name, stacklevel=4)["device_"]
    return {k: v.to(target) if is_tensor(v) else v for k, v in state.items()}
