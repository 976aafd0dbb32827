"""Device resolution and array <-> tensor conversion.

This is the one module that knows device names: every estimator asks it which
``torch.device`` to use and how to move data there and back.
"""

import contextlib
import functools
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from sklearn.utils import check_random_state
from threadpoolctl import ThreadpoolController

_DEVICE_KINDS = ("auto", "cpu", "cuda", "mps")


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
    if not isinstance(device, str) or device.split(":")[0] not in _DEVICE_KINDS:
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


def seed_from(random_state):
    """An int seed for torch generators, from an estimator's ``random_state``.

    None draws fresh entropy from the OS rather than from numpy's global RNG, so
    that library code never advances (or seeds) the user's global random state.
    """
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1)[0] >> 1)
    return int(check_random_state(random_state).randint(2**31 - 1))


def spawn_seed(seed, *key):
    """An int seed for one torch generator: the child ``key`` of ``SeedSequence(seed)``.

    ``SeedSequence(seed, spawn_key=key)`` is what ``SeedSequence(seed).spawn``
    would hand out as that child (a grandchild for a key of two), without the
    spawn counter's state: the same seed and key always give the same seed.
    Different keys give independent streams, where ``seed + k`` would hand one
    purpose's stream to another. 63 bits, which every torch generator takes.
    """
    state = np.random.SeedSequence(seed, spawn_key=key).generate_state(1, np.uint64)
    return int(state[0] >> np.uint64(1))


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


def flushes_denormals():
    """Whether the calling thread's CPU flushes denormal floats to zero.

    torch has a setter for the flag but no getter: a one-element product runs on
    the calling thread, and a denormal survives it only when neither flushing its
    inputs (DAZ) nor its result (FTZ) is on; torch's setter switches both together.
    """
    return (torch.tensor(1e-310, dtype=torch.float64) * 1.0).item() == 0.0


@contextlib.contextmanager
def cpu_fast_math(device):
    """Flush denormal floats to zero on the calling thread while computing on the CPU.

    Denormals carry no useful signal for these models, and x86 CPUs slow down by
    one or two orders of magnitude on them. The flag acts on the calling thread
    only, not on torch's worker threads, so it is a safeguard: the training loop
    keeps the optimizer state, where denormals arise, free of them. A flag that
    is already set is left alone; one set here is cleared on the way out.
    """
    if torch.device(device).type != "cpu" or flushes_denormals():
        yield
        return
    # set_flush_denormal returns whether the CPU supports the flag at all.
    supported = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if supported:
            torch.set_flush_denormal(False)


@functools.cache
def _numpy_blas():
    """numpy's BLAS as a ThreadpoolController (loaded with numpy, so found at first use)."""
    return ThreadpoolController().select(user_api="blas")


def _blas_threads():
    """The number of threads numpy's BLAS may use now."""
    return max([lib.num_threads for lib in _numpy_blas().lib_controllers], default=1)


def map_row_blocks(fn, X, min_block_size=2**20):
    """``fn`` applied to consecutive row blocks of the array ``X``, side by side in threads.

    One block per thread numpy's BLAS is allowed; numpy releases the GIL, so the
    blocks really run in parallel. Reductions (sums) that numpy runs on one
    thread get every core this way. ``fn`` should not call BLAS itself: BLAS
    runs its own threads, and nothing here limits them. Returns the list of
    results in row order: one element when ``X`` is too small to split (blocks
    under ``min_block_size`` entries) or BLAS has one thread.
    """
    n_blocks = max(1, min(_blas_threads(), X.size // min_block_size, X.shape[0]))
    if n_blocks == 1:
        return [fn(X)]
    bounds = np.linspace(0, X.shape[0], n_blocks + 1).astype(int)
    blocks = [X[start:stop] for start, stop in zip(bounds[:-1], bounds[1:])]
    with ThreadPoolExecutor(n_blocks) as pool:
        return list(pool.map(fn, blocks))


# Rows per chunk when a fitted model maps data through torch, bounding the
# memory of the intermediate activations.
INFERENCE_ROWS = 8192
# Values per scoring block (float64 temporaries, the widest activation per decoder
# pass): bounds the memory of the scores whatever n_samples and the draws.
SCORE_ELEMENTS = 2**20


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
