"""Saving and loading fitted estimators as data: the one home of skvae's file format
and of what pickling turns tensors into.

A saved estimator is a zip archive: ``estimator.json`` (the class, the parameters,
the fitted scalars and lists, the skvae version) and one ``.npy`` file per array
or tensor, read with ``allow_pickle=False``. Nothing in the file is executed on
load: the class is looked up in a fixed table of skvae's estimators, and any other
callable the parameters name (a user's encoder or decoder class) is named by its
import path and imported only if the caller lists it in ``trusted``. See
``docs/guide/persistence.md``.
"""

import copy
import importlib
import json
import os
import warnings
import zipfile

import numpy as np
import torch

from ._utils.devices import restore_device

FORMAT = "skvae-estimator"
FORMAT_VERSION = 1
_MANIFEST = "estimator.json"


# ---------------------------------------------------------------- tensors as arrays
def tensor_to_record(tensor):
    """A CPU copy of ``tensor`` as numpy data: ``(dtype name, shape, ndarray)``.

    dtypes numpy has (float32, float64, int64, bool, ...) keep their type; the
    others (bfloat16, float8) travel as their raw bytes.
    """
    tensor = tensor.detach().to("cpu").contiguous()
    dtype = str(tensor.dtype).removeprefix("torch.")
    try:
        data = tensor.numpy()
    except TypeError:
        data = tensor.reshape(-1).view(torch.uint8).numpy()  # the raw bytes, flat
    return dtype, tuple(tensor.shape), data.copy()


def record_to_tensor(dtype, shape, data):
    """The tensor :func:`tensor_to_record` made ``(dtype, shape, data)`` from, on the CPU."""
    torch_dtype = getattr(torch, dtype, None)
    if not isinstance(torch_dtype, torch.dtype):
        raise ValueError(f"Unknown tensor dtype {dtype!r} in a saved skvae estimator.")
    tensor = torch.from_numpy(np.ascontiguousarray(data))
    if tensor.dtype != torch_dtype:  # raw bytes
        tensor = tensor.view(torch_dtype)
    return tensor.reshape(shape)


def tensors_to_records(value):
    """``value`` (a state dict: nested dicts and lists) with every tensor made a record."""
    if torch.is_tensor(value):
        return _TensorRecord(*tensor_to_record(value))
    if isinstance(value, dict):
        return type(value)((k, tensors_to_records(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(tensors_to_records(v) for v in value)
    return value


def records_to_tensors(value):
    """The inverse of :func:`tensors_to_records`."""
    if isinstance(value, _TensorRecord):
        return record_to_tensor(value.dtype, value.shape, value.data)
    if isinstance(value, dict):
        return type(value)((k, records_to_tensors(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(records_to_tensors(v) for v in value)
    return value


def module_tensors(module):
    """``module``'s parameters and buffers (non-persistent ones too) by qualified name,
    each distinct tensor once, under the first name it has (tied weights stay tied)."""
    seen, tensors = set(), {}
    for prefix, sub in module.named_modules(remove_duplicate=False):
        for store in (sub._parameters, sub._buffers):
            for name, tensor in store.items():
                if tensor is not None and id(tensor) not in seen:
                    seen.add(id(tensor))
                    tensors[f"{prefix}.{name}" if prefix else name] = tensor
    return tensors


def skeleton(module):
    """A copy of ``module`` whose parameters and buffers are on the meta device: its
    structure without its values (nor their memory)."""
    memo = {}
    for tensor in module_tensors(module).values():
        meta = torch.empty_like(tensor, device="meta")
        if isinstance(tensor, torch.nn.Parameter):
            meta = torch.nn.Parameter(meta, requires_grad=tensor.requires_grad)
        memo[id(tensor)] = meta
    return copy.deepcopy(module, memo)


def fill(skeleton, tensors):
    """Put ``tensors`` (from :func:`module_tensors` of a module of the same structure)
    into ``skeleton`` in place of its tensors; returns it."""
    filled = {}
    for prefix, sub in skeleton.named_modules(remove_duplicate=False):
        for is_param, store in ((True, sub._parameters), (False, sub._buffers)):
            for name, tensor in list(store.items()):
                if tensor is None:
                    continue
                if id(tensor) not in filled:
                    key = f"{prefix}.{name}" if prefix else name
                    if key not in tensors:
                        raise ValueError(f"The saved network has no tensor {key!r}.")
                    value = tensors[key].to(tensor.dtype)
                    if tuple(value.shape) != tuple(tensor.shape):
                        raise ValueError(
                            f"The saved tensor {key!r} has shape {tuple(value.shape)}; the "
                            f"network built to hold it expects {tuple(tensor.shape)}."
                        )
                    if is_param:
                        value = torch.nn.Parameter(value, requires_grad=tensor.requires_grad)
                    filled[id(tensor)] = value
                store[name] = filled[id(tensor)]
    return skeleton


class ModuleRecord:
    """A module as its skeleton and its tensors as numpy data, for pickles."""

    def __init__(self, module):
        self.skeleton = skeleton(module)
        self.tensors = tensors_to_records(module_tensors(module))

    def module(self):
        return fill(self.skeleton, records_to_tensors(self.tensors))


class _TensorRecord:
    """A tensor as numpy data, for pickles: numpy arrays unpickle without torch.load."""

    __slots__ = ("dtype", "shape", "data")

    def __init__(self, dtype, shape, data):
        self.dtype, self.shape, self.data = dtype, tuple(shape), data

    def __reduce__(self):
        return (_TensorRecord, (self.dtype, self.shape, self.data))


# ---------------------------------------------------------------------- versions
def check_version(recorded, estimator_name, stacklevel=3):
    """Warn when ``recorded``, the version that saved an estimator, is not this one."""
    from . import __version__
    from .exceptions import InconsistentVersionWarning

    if recorded != __version__:
        warnings.warn(
            InconsistentVersionWarning(
                estimator_name=estimator_name,
                current_version=__version__,
                original_version=recorded,
            ),
            stacklevel=stacklevel,
        )


# ----------------------------------------------------------- values as JSON + arrays
class _Writer:
    """Turns fitted values into JSON, putting arrays and tensors in ``arrays``."""

    def __init__(self, estimator_name):
        self.arrays, self.estimator_name = {}, estimator_name

    def _array(self, data):
        name = f"arrays/{len(self.arrays)}.npy"
        self.arrays[name] = data
        return name

    def __call__(self, value, where):
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, np.generic):
            if value.dtype.kind not in "biuf":
                raise self._refuse(value, where)
            return {"__scalar__": value.dtype.str, "value": value.item()}
        if isinstance(value, (int, float)):
            return value
        if isinstance(value, list):
            return [self(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, tuple):
            return {"__tuple__": [self(v, f"{where}[{i}]") for i, v in enumerate(value)]}
        if isinstance(value, dict):
            items = [[self(k, where), self(v, f"{where}[{k!r}]")] for k, v in value.items()]
            return {"__dict__": items}
        if isinstance(value, np.ndarray):
            if value.dtype.kind == "O":
                if all(isinstance(v, str) for v in value.flat):
                    return {"__strings__": value.tolist(), "shape": list(value.shape)}
                raise self._refuse(value, where)
            return {"__array__": self._array(value)}
        if torch.is_tensor(value):
            dtype, shape, data = tensor_to_record(value)
            return {"__tensor__": self._array(data), "dtype": dtype, "shape": list(shape)}
        if isinstance(value, np.dtype):
            return {"__dtype__": value.str}
        if isinstance(value, type) and issubclass(value, np.generic):  # np.float32 itself
            return {"__numpy_type__": np.dtype(value).str}
        if isinstance(value, torch.device):
            return {"__device__": str(value)}
        if isinstance(value, np.random.RandomState):
            return {"__random_state__": self(value.get_state(), where)}
        if isinstance(value, torch.nn.Module):
            raise ValueError(
                f"{self.estimator_name}.save cannot store {where}, a module instance "
                f"({type(value).__name__}): the file holds no code, and an instance's "
                "construction is not known. Pass the class and its arguments instead "
                "(encoder=MyEncoder, encoder_kwargs={...}), or use pickle or joblib "
                "for files you trust."
            )
        if isinstance(value, type) or callable(value):
            module = getattr(value, "__module__", None)
            qualname = getattr(value, "__qualname__", "")
            if not module or "<" in qualname:
                raise ValueError(
                    f"{self.estimator_name}.save cannot store {where}={value!r}: it must be "
                    "importable, defined at the top level of a module."
                )
            return {"__import__": f"{module}:{qualname}"}
        raise self._refuse(value, where)

    def _refuse(self, value, where):
        return TypeError(
            f"{self.estimator_name}.save cannot store {where}, a {type(value).__name__}: "
            "only numbers, strings, lists, dicts, arrays and tensors are saved as data. "
            "Use pickle or joblib for files you trust."
        )


def _import_path(obj):
    return f"{obj.__module__}:{obj.__qualname__}" if not isinstance(obj, str) else obj


class _Reader:
    """Turns the JSON of :class:`_Writer` back into values, importing only what is trusted."""

    def __init__(self, archive, trusted, path):
        self.archive, self.path, self.trusted = archive, path, set(trusted)
        self.untrusted = []

    def _array(self, name):
        try:
            with self.archive.open(name) as f:
                return np.lib.format.read_array(f, allow_pickle=False)
        except (KeyError, ValueError) as error:
            raise ValueError(
                f"{self.path!r} is not a valid skvae file: its array {name!r} cannot be "
                f"read as plain data ({error}). Files whose arrays hold Python objects "
                "are refused, as loading them would run code."
            ) from error

    def __call__(self, value):
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if "__scalar__" in value:
            return np.dtype(value["__scalar__"]).type(value["value"])
        if "__tuple__" in value:
            return tuple(self(v) for v in value["__tuple__"])
        if "__dict__" in value:
            return {self(k): self(v) for k, v in value["__dict__"]}
        if "__strings__" in value:
            return np.array(value["__strings__"], dtype=object).reshape(value["shape"])
        if "__array__" in value:
            return self._array(value["__array__"])
        if "__tensor__" in value:
            data = self._array(value["__tensor__"])
            return record_to_tensor(value["dtype"], value["shape"], data)
        if "__dtype__" in value:
            return np.dtype(value["__dtype__"])
        if "__numpy_type__" in value:
            return np.dtype(value["__numpy_type__"]).type
        if "__device__" in value:
            return torch.device(value["__device__"])
        if "__random_state__" in value:
            state = np.random.RandomState()
            state.set_state(self(value["__random_state__"]))
            return state
        if "__import__" in value:
            return self._import(value["__import__"])
        raise ValueError(f"{self.path!r} is not a valid skvae file: unknown entry {value!r}.")

    def _import(self, path):
        if path not in self.trusted:
            self.untrusted.append(path)
            return None
        module, _, qualname = path.partition(":")
        obj = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        return obj


def _estimator_classes():
    from .decomposition import PCA
    from .neural import AutoencoderTransformer, VAETransformer

    return {cls.__name__: cls for cls in (PCA, AutoencoderTransformer, VAETransformer)}


def save(estimator, path):
    """Write ``estimator`` to ``path`` as data (see :func:`load`)."""
    from . import __version__

    name = type(estimator).__name__
    if _estimator_classes().get(name) is not type(estimator):
        raise TypeError(
            f"skvae saves its own estimators (PCA, AutoencoderTransformer, VAETransformer); "
            f"got {type(estimator).__module__}.{name}. Use pickle or joblib."
        )
    write = _Writer(name)
    params = estimator.get_params(deep=False)
    fitted = {k: v for k, v in estimator.__dict__.items() if k not in params}
    extra = estimator._persistent_state(fitted) if hasattr(estimator, "_persistent_state") else {}
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "skvae_version": __version__,
        "estimator": name,
        "params": {k: write(v, k) for k, v in params.items()},
        "attributes": {k: write(v, k) for k, v in fitted.items()},
        "state": {k: write(v, k) for k, v in extra.items()},
    }
    text = json.dumps(manifest, indent=1)
    tmp = f"{os.fspath(path)}.tmp"
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(_MANIFEST, text)
        for member, data in write.arrays.items():
            with archive.open(member, "w") as f:
                np.lib.format.write_array(f, np.ascontiguousarray(data), allow_pickle=False)
    os.replace(tmp, path)  # a file interrupted while written never replaces a good one


def load(path, *, trusted=()):
    """Load an estimator written by ``save``, without running code from the file.

    Parameters
    ----------
    path : str or path-like
        A file written by ``PCA.save``, ``AutoencoderTransformer.save`` or
        ``VAETransformer.save``.
    trusted : iterable of (str or class or function), default=()
        The callables the estimator's parameters name besides skvae's own
        (your ``encoder``/``decoder`` classes or factories), as objects or as
        import paths ``"package.module.Name"`` (or ``"package.module:Name"``).
        A file that names any other is refused, and nothing from it imported.

    Returns
    -------
    estimator : PCA, AutoencoderTransformer or VAETransformer
        The fitted estimator, on its device if present, else on the CPU with a
        warning. An :class:`~skvae.exceptions.InconsistentVersionWarning` says
        when another skvae version saved it.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import skvae
    >>> pca = skvae.PCA(2).fit(np.random.default_rng(0).random((20, 4)))
    >>> path = os.path.join(tempfile.mkdtemp(), "pca.skvae")
    >>> pca.save(path)
    >>> np.allclose(skvae.load(path).components_, pca.components_)
    True
    """
    trusted = [t if isinstance(t, str) else _import_path(t) for t in trusted]
    # "a.b.Name" and "a.b:Name" name the same object; the file always holds the latter.
    trusted = [t if ":" in t else ":".join(t.rsplit(".", 1)) for t in trusted]
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        raise ValueError(
            f"{os.fspath(path)!r} is not a file written by skvae's save (not a zip archive). "
            "Pickles are read with pickle or joblib, for files you trust."
        ) from error
    with archive:
        try:
            manifest = json.loads(archive.read(_MANIFEST))
        except (KeyError, ValueError) as error:
            raise ValueError(
                f"{os.fspath(path)!r} is not a file written by skvae's save: no readable "
                f"{_MANIFEST}."
            ) from error
        if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{os.fspath(path)!r} is not in a format this skvae reads (format "
                f"{manifest.get('format')!r} version {manifest.get('format_version')!r}; "
                f"this skvae reads {FORMAT!r} version {FORMAT_VERSION}). It was written by "
                f"skvae {manifest.get('skvae_version')!r}: load it with that version."
            )
        name = manifest.get("estimator")
        cls = _estimator_classes().get(name)
        if cls is None:
            raise ValueError(f"{os.fspath(path)!r} holds an unknown estimator {name!r}.")
        read = _Reader(archive, trusted, os.fspath(path))
        params = {k: read(v) for k, v in manifest["params"].items()}
        attributes = {k: read(v) for k, v in manifest["attributes"].items()}
        state = {k: read(v) for k, v in manifest.get("state", {}).items()}
    if read.untrusted:
        names = sorted(set(read.untrusted))
        raise ValueError(
            f"{os.fspath(path)!r} names {len(names)} callable(s) that skvae.load does not "
            f"import unless trusted: {', '.join(n.replace(':', '.') for n in names)}. If you "
            f"trust them, pass trusted={[n.replace(':', '.') for n in names]!r}."
        )
    check_version(manifest.get("skvae_version"), name, stacklevel=2)
    if "device_" in attributes:  # a device this machine lacks becomes the CPU, with a warning
        attributes = restore_device(attributes, name, stacklevel=2)
        device = attributes["device_"]
        attributes = {k: v.to(device) if torch.is_tensor(v) else v for k, v in attributes.items()}
    estimator = cls(**params)
    estimator.__dict__.update(attributes)
    if hasattr(estimator, "_restore_persistent_state"):
        estimator._restore_persistent_state(state)
    return estimator


class SaveMixin:
    """The ``save`` method of skvae's estimators."""

    def save(self, path):
        """Write the estimator to ``path`` as data, for :func:`skvae.load`.

        The file is a zip archive of JSON (parameters, fitted scalars and lists,
        the skvae version) and ``.npy`` arrays (fitted arrays, the network's
        weights and the optimizer's state), with any user class named by its
        import path. Loading it runs no code from it; see
        ``docs/guide/persistence.md``.

        Parameters
        ----------
        path : str or path-like
            Where to write; replaced whole once written.
        """
        save(self, path)
