"""Threads of a network's computations: how many CPU threads torch uses to train and infer.

The one place where skvae chooses a thread count. A step of a small network on
a small batch gains a little from more threads on a quiet machine, and loses
several times when other processes hold the cores, as every parallel region
waits for a descheduled thread (``docs/guide/devices.md`` has the measurements). So on the CPU, a
step (a training batch, or a chunk of rows at inference) under
:data:`SMALL_STEP` multiply-adds runs on one thread; a larger one keeps torch's
count unless a matrix product of its size, timed just before at one thread and
at torch's count, says the cores are too busy to share.

Unless the program chose a thread count itself: ``OMP_NUM_THREADS`` or
``MKL_NUM_THREADS`` in the environment, ``torch.set_num_threads`` or a
threadpoolctl limit. The limit is threadpoolctl's, on the calling thread only,
and what it found is put back on the way out.
"""

import contextlib
import math
import os
import statistics
import time

import torch
from threadpoolctl import threadpool_limits

# Multiply-adds of one forward pass (rows x weights) below which a step runs on one
# thread without measuring; the default networks on digits (2e7) and on MNIST (1e8)
# are below it. What a second thread can gain them on a quiet machine is smaller
# than what it loses on a busy one, and a timing taken before training cannot tell
# which the next minutes will be.
SMALL_STEP = 3e8
# The measurement times a product of the step's size, up to this many multiply-adds
# (about 10 ms at one thread): contention shows at any size, and a larger product
# shares between threads at least as well.
MEASURED_STEP = 2e8
# torch's count must be this much faster than one thread to be used.
MARGIN = 1.1
_REPEATS = 5
# A measurement is reused this long for steps of the same shape (partial_fit, searches).
_FRESH_SECONDS = 10.0
_measured = {}  # (rows, width) -> (time.monotonic() of the measurement, one thread as fast)

_ENVIRONMENT = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")

# torch's thread count when skvae was first imported: torch's default, unless the
# program set another before importing skvae.
_STARTING_THREADS = torch.get_num_threads()


def step_size(module, rows):
    """Multiply-adds of one forward pass of ``module`` over ``rows`` rows, roughly.

    Each weight of a dense or convolutional layer takes part in at least one
    multiply-add per row; convolutions reuse theirs, so this undercounts them.
    """
    return rows * sum(p.numel() for p in module.parameters() if p.dim() > 1)


def chosen_by_user():
    """Whether the program set torch's thread count itself (environment, torch or threadpoolctl).

    A count set to exactly torch's default by ``torch.set_num_threads`` cannot
    be told from the default; the environment variables always can.
    """
    if any(os.environ.get(name, "").strip() for name in _ENVIRONMENT):
        return True
    return torch.get_num_threads() != _STARTING_THREADS


def one_thread_is_as_fast(size, rows):
    """Whether one thread is within :data:`MARGIN` of torch's count on a step of ``size``, now.

    Times a (rows, w) @ (w, w) product, rows * w^2 ≈ ``size`` multiply-adds, at
    one thread and at torch's count, interleaved: torch's count is chosen only
    when even its slowest run beats one thread's median by the margin, and a
    pair where it takes over twice as long settles it.
    """
    width = max(1, round(math.sqrt(size / max(rows, 1))))
    now = time.monotonic()
    when, answer = _measured.get((rows, width), (-math.inf, None))
    if now - when < _FRESH_SECONDS:
        return answer
    a = torch.ones(rows, width)  # (rows, width): the values do not change the time
    w = torch.ones(width, width)

    def seconds():
        start = time.perf_counter()
        torch.mm(a, w)
        return time.perf_counter() - start

    one, many = [], []
    for _ in range(_REPEATS):
        with threadpool_limits(limits=1, user_api="openmp"):
            one.append(seconds())
        many.append(seconds())
        if many[-1] > 2 * one[-1]:
            break  # contended: each run on busy cores costs tens of milliseconds
    # Wrongly choosing torch's count costs 5-20x on busy cores, wrongly choosing one
    # thread at most the speed-up missed: torch's count must win in its slowest run.
    answer = statistics.median(one) <= MARGIN * max(many)
    _measured[rows, width] = (now, answer)
    return answer


def _policy_applies(device):
    return (
        torch.device(device).type == "cpu" and torch.get_num_threads() > 1 and not chosen_by_user()
    )


def threads_for(module, rows, device):
    """A context for a network's steps over ``rows`` rows: one CPU thread unless it pays to share.

    Parameters
    ----------
    module : torch.nn.Module
        The network.
    rows : int
        Rows per step: the batch size in training, the chunk size in inference.
    device : torch.device
        Where it computes; only the CPU is limited.

    Returns
    -------
    context : context manager
        ``threadpoolctl.threadpool_limits(1, "openmp")`` (torch's pool) when the
        policy applies and chooses one thread, else a context that changes nothing.
    """
    if not _policy_applies(device):
        return contextlib.nullcontext()
    size = step_size(module, rows)
    if size >= SMALL_STEP and not one_thread_is_as_fast(min(size, MEASURED_STEP), rows):
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="openmp")
