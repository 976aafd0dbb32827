"""Seeds: turning ``random_state`` into seeds for torch generators.

Library code never seeds or advances the global numpy or torch RNGs; every
random stream is a generator seeded from here.
"""

import contextlib

import numpy as np
import torch
from sklearn.utils import check_random_state


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


@contextlib.contextmanager
def forked_global_rng(seed, device):
    """Run the block with torch's global RNG of the CPU (and of ``device``, a CUDA
    or MPS device) seeded from ``seed``, and put back after it what was there before.

    What draws from the global RNG inside (``nn.Dropout`` in a user's module, say)
    is then reproducible from the estimator's seed, and the caller's global
    streams are neither read nor advanced.
    """
    device = torch.device(device)
    kind = device.type if device.type in ("cuda", "mps") else None
    index = device.index if device.index is not None else 0
    with torch.random.fork_rng(devices=[index] if kind else [], device_type=kind or "cuda"):
        torch.default_generator.manual_seed(seed)
        if kind == "cuda":
            torch.cuda.default_generators[index].manual_seed(seed)
        elif kind == "mps":
            torch.mps.manual_seed(seed)
        yield
