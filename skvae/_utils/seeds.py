"""Seeds: turning ``random_state`` into seeds for torch generators.

Library code never seeds or advances the global numpy or torch RNGs; every
random stream is a generator seeded from here.
"""

import numpy as np
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
