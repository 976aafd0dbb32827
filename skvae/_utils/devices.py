"""Which torch device to compute on.

The one module that knows device names: every estimator asks it which
``torch.device`` a parameter or an input means, and what a saved device becomes
on a machine that lacks it.
"""

import re
import warnings

import torch

from .arrays import is_tensor


def _mps_available():
    backend = getattr(torch.backends, "mps", None)
    return backend is not None and backend.is_available()


def resolve_device(device, estimator_name="estimator"):
    """Turn the ``device`` parameter into a ``torch.device``.

    ``"auto"`` picks CUDA, then Apple MPS, then the CPU. A device that is
    asked for explicitly but is not present is an error rather than a silent
    fall back to the CPU.
    """
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str) or not re.fullmatch(r"auto|(cpu|cuda|mps)(:\d+)?", device):
        raise ValueError(
            f"The 'device' parameter of {estimator_name} must be one of "
            f"{{'auto', 'cpu', 'cuda', 'cuda:N', 'mps'}} or a torch.device. "
            f"Got {device!r} instead."
        )
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"{estimator_name} was asked for device={device!r}, but torch sees no CUDA "
                "device on this machine. Use device='auto' or device='cpu'."
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"{estimator_name} was asked for device={device!r}, but only "
                f"{torch.cuda.device_count()} CUDA device(s) are present. "
                "Use device='cuda' or device='auto'."
            )
    if resolved.type == "mps" and not _mps_available():
        raise ValueError(
            f"{estimator_name} was asked for device={device!r}, but torch sees no MPS "
            "device on this machine. Use device='auto' or device='cpu'."
        )
    return resolved


def accelerators():
    """Names of the accelerator devices present: a sublist of ["cuda", "mps"]."""
    found = ["cuda"] if torch.cuda.is_available() else []
    return found + (["mps"] if _mps_available() else [])


def device_available(device):
    """Whether a saved ``torch.device`` can be used on this machine."""
    device = torch.device(device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return False
        return device.index is None or device.index < torch.cuda.device_count()
    if device.type == "mps":
        return _mps_available()
    return True


def resolve_input_device(device, X, estimator_name="estimator"):
    """The ``torch.device`` to compute on for the data ``X``.

    ``device=None`` follows the data: a tensor's own device, else the CPU, so
    that numpy input never opens a GPU context. Any other value goes through
    :func:`resolve_device` (``"auto"`` and ``"cuda"`` opt in to an accelerator).
    """
    if device is None:
        return X.device if is_tensor(X) else torch.device("cpu")
    return resolve_device(device, estimator_name)


def restore_device(state, estimator_name="estimator", stacklevel=3):
    """``state["device_"]`` as a usable ``torch.device`` when unpickling.

    A device that is missing on this machine (a CUDA model loaded on a laptop)
    becomes the CPU, with a warning that says how to silence it. Returns the
    updated ``state`` dict.
    """
    device = state.get("device_")
    if device is None:
        return state
    device = torch.device(device)
    if not device_available(device):
        warnings.warn(
            f"This {estimator_name} was fitted on device {str(device)!r}, which is not "
            "available here; it is loaded on the CPU. Fit it again (device='cpu', or "
            "device='auto' for this machine's best device) to silence this warning.",
            UserWarning,
            stacklevel=stacklevel,
        )
        device = torch.device("cpu")
    state["device_"] = device
    return state
