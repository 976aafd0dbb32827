"""Denormal floats on the CPU: whether they are flushed, and flushing them for a while.

x86 arithmetic on denormals is one or two orders of magnitude slower; the flag
that flushes them is per thread, and is put back exactly as it was found.
"""

import contextlib

import torch


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
