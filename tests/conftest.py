import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings

from skvae._utils.devices import accelerators

REPO = Path(__file__).resolve().parents[1]
MNIST_PATH = Path(os.environ.get("SKVAE_MNIST", REPO.parent / "shared" / "data" / "mnist.npz"))

# Property-based tests: a fixed, bounded set of examples in CI (the same on every
# run, no example database written); HYPOTHESIS_PROFILE=explore searches afresh.
settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("explore", max_examples=20000, deadline=None, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Run the suite on one torch thread.

    The test data are small, so a second thread only adds synchronisation, and
    when another process shares the cores every parallel region waits for the
    descheduled thread: epochs measured 10-60x slower with two threads than one.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_collection_modifyitems(config, items):
    if accelerators():
        return
    skip = pytest.mark.skip(reason="no CUDA or MPS device on this machine")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def mnist():
    """MNIST scaled to [0, 1] as float32 rows: (X_train, y_train, X_test, y_test)."""
    if not MNIST_PATH.exists():
        pytest.skip(f"MNIST not found at {MNIST_PATH}; set SKVAE_MNIST to the mnist.npz path")
    d = np.load(MNIST_PATH)
    X_train = d["x_train"].reshape(-1, 784).astype(np.float32) / 255.0
    X_test = d["x_test"].reshape(-1, 784).astype(np.float32) / 255.0
    return X_train, d["y_train"], X_test, d["y_test"]
