"""Threads of a network's computations: how many CPU threads torch uses to train and infer.

The one place where skvae chooses a thread count. A step of a small network on
a small batch gains up to twice from a second thread on a quiet machine, and
loses up to thirty times when other processes hold the cores, as every parallel
region waits for a descheduled thread (``docs/guide/devices.md`` has the
measurements). So on the CPU a fit runs on one thread (:class:`FitThreads`),
and so does inference; a step (a training batch, or a chunk of rows at
inference) of at least :data:`SMALL_STEP` multiply-adds gets torch's count back
unless a matrix product of its size, timed at one thread and at torch's count,
says the cores are too busy to share. A fit times it again every
:data:`FRESH_SECONDS`, so load that comes or goes during a fit changes the count
within seconds. Steps that large are therefore reproducible bit for bit only at
a thread count the program fixes: the count changes the rounding.

Unless the program chose a thread count itself: ``OMP_NUM_THREADS`` or
``MKL_NUM_THREADS`` in the environment, ``torch.set_num_threads`` or a
threadpoolctl limit. The limit is threadpoolctl's, on the calling thread only,
and what it found is put back on the way out.
"""

import contextlib
import contextvars
import functools
import math
import os
import statistics
import time

import torch
from threadpoolctl import ThreadpoolController

# Multiply-adds of one forward pass (rows x weights) below which a step runs on one
# thread without measuring; the default networks on digits (2e7) and on MNIST (1e8)
# are below it. Measuring MNIST's steps too was tried: on cores kept busy by two
# other threads the timing chose two threads and the fits took 1.5 to 2.4 times
# longer than at one. A product of a few milliseconds does not meet the
# descheduling that slows a whole epoch.
SMALL_STEP = 3e8
# The measurement times a product of the step's size, up to this many multiply-adds
# (about 10 ms at one thread): contention shows at any size, and a larger product
# shares between threads at least as well.
MEASURED_STEP = 2e8
# torch's count must be this much faster than one thread to be used.
MARGIN = 1.1
_REPEATS = 5
# A measurement is reused this long for steps of the same shape (the epochs of a
# fit, partial_fit, searches); a fit measures again once it is older.
FRESH_SECONDS = 10.0
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


def _width(size, rows):
    return max(1, round(math.sqrt(size / max(rows, 1))))


def _fresh(size, rows):
    """The answer of a measurement of this shape under :data:`FRESH_SECONDS` old, else None."""
    when, answer = _measured.get((rows, _width(size, rows)), (-math.inf, None))
    return answer if time.monotonic() - when < FRESH_SECONDS else None


def one_thread_is_as_fast(size, rows):
    """Whether one thread is within :data:`MARGIN` of torch's count on a step of ``size``, now.

    Times a (rows, w) @ (w, w) product, rows * w^2 ≈ ``size`` multiply-adds, at
    one thread and at torch's count, interleaved: torch's count is chosen only
    when even its slowest run beats one thread's median by the margin, and a
    pair where it takes over twice as long settles it.
    """
    answer = _fresh(size, rows)
    if answer is not None:
        return answer
    width = _width(size, rows)
    now = time.monotonic()
    a = torch.ones(rows, width)  # (rows, width): the values do not change the time
    w = torch.ones(width, width)

    def seconds():
        start = time.perf_counter()
        torch.mm(a, w)
        return time.perf_counter() - start

    one, many = [], []
    for _ in range(_REPEATS):
        with _one_thread():
            one.append(seconds())
        many.append(seconds())
        if many[-1] > 2 * one[-1]:
            break  # contended: each run on busy cores costs tens of milliseconds
    # Wrongly choosing torch's count costs 5-20x on busy cores, wrongly choosing one
    # thread at most the speed-up missed: torch's count must win in its slowest run.
    answer = statistics.median(one) <= MARGIN * max(many)
    _measured[rows, width] = (now, answer)
    return answer


# Set while a fit runs under :class:`FitThreads`' one-thread limit: the policy
# still applies inside it, though torch's count then reads 1.
_IN_FIT = contextvars.ContextVar("skvae_fit_threads", default=False)


def _policy_applies(device=None):
    """Whether skvae chooses the thread count: on the CPU (any device when None), and
    the program has not chosen one."""
    if device is not None and torch.device(device).type != "cpu":
        return False
    if _IN_FIT.get():
        return True
    return torch.get_num_threads() > 1 and not chosen_by_user()


@functools.cache
def _controller():
    # threadpoolctl's view of the loaded thread pools, taken once: torch's OpenMP
    # runtime is loaded with torch, before skvae. A limit through it costs 0.04 ms
    # against 1.2 ms for threadpool_limits, which inspects the process each time.
    return ThreadpoolController()


def _limit(threads):
    """A limit of torch's OpenMP pool to ``threads``, in force until restored."""
    return _controller().limit(limits=threads, user_api="openmp")


def _one_thread():
    return _limit(1)


def _torch_count():
    """torch's own count: a context that restores it inside a fit's one-thread limit."""
    return _limit(_STARTING_THREADS) if _IN_FIT.get() else contextlib.nullcontext()


def _one_thread_pays(size, rows):
    return size < SMALL_STEP or one_thread_is_as_fast(min(size, MEASURED_STEP), rows)


class StepThreads:
    """The thread count of a network's steps over ``rows`` rows: one CPU thread
    unless it pays to share.

    A context manager for a loop of steps (the epochs of training, the chunks
    of inference): on entry it chooses the count, one thread for a step under
    :data:`SMALL_STEP` and otherwise as a timing says, and :meth:`update`,
    called at each epoch, chooses again once the last timing is
    :data:`FRESH_SECONDS` old, so a long fit follows the machine's load. On
    exit it puts back the count it found. Off the CPU, or where the program
    chose a count, it changes nothing.

    Parameters
    ----------
    module : torch.nn.Module
        The network.
    rows : int
        Rows per step: the batch size in training, the chunk size in inference.
    device : torch.device
        Where it computes; only the CPU is limited.
    """

    def __init__(self, module, rows, device):
        self.rows, self._device = rows, device
        self.size = step_size(module, rows)
        self.applies = False
        self._limit = None  # the threadpoolctl limit in force: one thread or torch's count
        self._chosen = None  # what made it: _one_thread or _torch_count

    def __enter__(self):
        self.applies = _policy_applies(self._device)
        self.update()
        return self

    def update(self):
        """Choose the count for the next steps: measure again if the last answer is old."""
        if not self.applies:
            return
        if self.size >= SMALL_STEP and _fresh(min(self.size, MEASURED_STEP), self.rows) is None:
            self._set(_torch_count)  # time torch's own count, not a limit of ours
        chosen = _one_thread if _one_thread_pays(self.size, self.rows) else _torch_count
        if chosen is not self._chosen:  # the same choice stays in force, not made again
            self._set(chosen)

    def _set(self, make_limit):
        """Put back the limit in force, then apply ``make_limit()`` (None: none).

        A threadpoolctl limit applies when made: the one in force goes first.
        """
        if self._limit is not None:
            self._limit.__exit__(None, None, None)
            self._limit = None
        self._chosen = make_limit
        if make_limit is not None:
            self._limit = make_limit()
            self._limit.__enter__()

    def __exit__(self, *exc_info):
        self._set(None)
        return False


class FitThreads:
    """One CPU thread for all of a fit, unless its steps pay to share.

    Entered around a whole ``fit``: the work outside the training loop (the PCA
    start, the losses before training, the statistics after it) is small on the
    data where small networks train, but slow at torch's count on busy cores: on
    digits, beside one spinning process, a VAE's statistics after training took
    0.40 s a fit at torch's count and 0.01 s at one thread, against 1.0 s of
    training. Inside, :class:`StepThreads` still gives torch's count to steps
    that measure faster with it. Nothing changes when the program chose a count.
    """

    def __init__(self):
        self._limit = self._token = None

    def __enter__(self):
        if _policy_applies():
            self._limit = _one_thread().__enter__()
            self._token = _IN_FIT.set(True)
        return self

    def __exit__(self, *exc_info):
        if self._token is not None:
            _IN_FIT.reset(self._token)
            self._limit.__exit__(*exc_info)
            self._limit = self._token = None
        return False
