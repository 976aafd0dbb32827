"""Threads of a network's computations: how many CPU threads torch uses to train and infer.

The one place where skvae chooses a thread count. A training step of a small
network on a small batch gains little from a second thread, and loses ten times
or more when another process holds the cores, as every parallel region waits
for a descheduled thread (``docs/guide/devices.md`` has the measurements). So
while a network trains or infers on the CPU, a step (a batch, or a chunk of
rows at inference) below :data:`SMALL_STEP` runs on one thread, unless the
program chose a thread count itself: ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS``
in the environment, ``torch.set_num_threads`` or a threadpoolctl limit. The
limit is threadpoolctl's, on the calling thread only, and what it found is put
back on the way out.
"""

import contextlib
import os

import torch
from threadpoolctl import threadpool_limits

# Multiply-adds of one forward pass (rows x weights) below which a step runs on
# one thread. The default networks on 8x8 digits make
# 2e7 a step and on 784-pixel MNIST 1e8; neither gained from a second thread.
SMALL_STEP = 3e8

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


def threads_for(module, rows, device):
    """A context for a network's steps: one CPU thread for small steps, else torch's setting.

    Parameters
    ----------
    module : torch.nn.Module
        The network being trained.
    rows : int
        Rows per step: the batch size in training, the chunk size in inference.
    device : torch.device
        Where it computes; only the CPU is limited.

    Returns
    -------
    context : context manager
        ``threadpoolctl.threadpool_limits(1, "openmp")`` (torch's pool) when the
        policy applies, else a context that changes nothing.
    """
    if (
        torch.device(device).type != "cpu"
        or torch.get_num_threads() == 1
        or chosen_by_user()
        or step_size(module, rows) >= SMALL_STEP
    ):
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="openmp")
