"""Guards around a fit: one fit per estimator at a time, interrupts held back while
torch imports modules on first use, and what an out-of-memory error is."""

import contextlib
import signal
import sys
import threading

import torch

_OUT_OF_MEMORY = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


def out_of_memory(error):
    """Whether ``error`` is torch's out-of-memory error, a device's or the CPU allocator's."""
    if isinstance(error, _OUT_OF_MEMORY):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and (
        "can't allocate memory" in text or "out of memory" in text.lower()
    )


_fitting_lock = threading.Lock()
_fitting = set()  # ids of the estimators being fitted


@contextlib.contextmanager
def exclusive(estimator):
    """Refuse a second fit of ``estimator`` while one runs (in another thread, say)."""
    with _fitting_lock:
        if id(estimator) in _fitting:
            raise RuntimeError(
                f"This {type(estimator).__name__} is already being fitted (in another "
                "thread?): one estimator fits one call at a time. Wait for that call, or "
                "fit a clone (sklearn.base.clone) in each thread."
            )
        _fitting.add(id(estimator))
    try:
        yield
    finally:
        with _fitting_lock:
            _fitting.discard(id(estimator))


@contextlib.contextmanager
def interrupts_deferred():
    """Hold Ctrl-C back while torch imports modules on first use, then deliver it.

    Building the first network and optimizer of a process makes torch import
    torch._dynamo and sympy, hundreds of modules; an interrupt in the middle
    leaves them half-imported and every later fit failing. Once they are imported
    (and off the main thread, which receives no signals) this does nothing.
    """
    if (
        "torch._dynamo" in sys.modules
        or threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is None  # a handler Python did not install
    ):
        yield
        return
    received = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received and callable(previous):
        previous(signal.SIGINT, received[0])  # Python's handler raises KeyboardInterrupt
