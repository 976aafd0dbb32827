"""Denormal floats: none left in the optimizer state, and the caller's flush-to-zero flag kept."""

import copy

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning

from skvae import AutoencoderTransformer

TINY = torch.finfo(torch.float32).tiny  # the smallest normal float32, ~1.18e-38
DENORMAL = 1e-39


def n_denormal(tensors):
    return sum(int(((t != 0) & (t.abs() < TINY)).sum()) for t in tensors)


def state_tensors(optimizer):
    return [v for state in optimizer.state.values() for v in state.values() if v.dim()]


def flushes_on_this_thread():
    return (torch.tensor(DENORMAL) * 1.0).item() == 0.0


@pytest.fixture
def two_threads():
    """Two torch threads whose worker was started with the flag off, as in a user's process."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    torch.ones(2**20).sum()  # a parallel region: starts the worker thread now
    yield
    torch.set_num_threads(threads)


def mnist_like(n=64, seed=0):
    """Sparse binary 28x28 'images' whose border pixels are always 0, as in MNIST."""
    rng = np.random.default_rng(seed)
    X = (rng.random((n, 28, 28)) < 0.2).astype(np.float32)
    X[:, :4], X[:, -4:], X[:, :, :4], X[:, :, -4:] = 0.0, 0.0, 0.0, 0.0
    return X.reshape(n, 784)


def fit(X, **params):
    # Denormals are a CPU hazard: pinned there even where a GPU is present.
    ae = AutoencoderTransformer(
        4, hidden_layer_sizes=(64,), batch_size=16, tol=0.0, device="cpu", **params
    )
    with pytest.warns(ConvergenceWarning):
        return ae.fit(X)


def test_training_leaves_no_denormal_in_optimizer_state_or_weights(two_threads):
    X = mnist_like()
    ae = fit(X, max_iter=2, random_state=0)
    # The weights fed by the always-zero pixels get no gradient, so their Adam moments
    # are exactly 0. Give them the moments of a weight whose gradient stopped some
    # thousand steps ago: plain Adam multiplies them by beta1 and beta2 each step and
    # never leaves the denormal range (0.9 times the smallest denormal rounds back to it).
    # The first layer (784 x 64) is large enough that torch splits its Adam update
    # between both threads.
    for state in ae.optimizer_.state.values():
        for key in ("exp_avg", "exp_avg_sq"):
            state[key][state[key] == 0] = DENORMAL
    # 784 - 20 * 20 = 384 always-zero pixels feed 64 hidden units, each weight with two moments.
    n_dead = 2 * 384 * 64
    assert n_denormal(state_tensors(ae.optimizer_)) >= n_dead
    plain = copy.deepcopy(ae)

    ae.partial_fit(X)
    assert n_denormal(state_tensors(ae.optimizer_)) == 0
    assert n_denormal(ae.module_.parameters()) == 0

    # The same steps with plain Adam keep those fed by the always-zero pixels.
    Xt = torch.from_numpy(X)
    for start in range(0, len(X), 16):
        xb = Xt[start : start + 16]
        loss = 0.5 * ((plain.module_(xb) - xb) ** 2).sum(1).mean()
        plain.optimizer_.zero_grad()
        loss.backward()
        plain.optimizer_.step()
    assert n_denormal(state_tensors(plain.optimizer_)) >= n_dead


@pytest.mark.parametrize("flush", [False, True])
def test_fit_keeps_the_callers_flush_denormal_setting(two_threads, flush):
    if not torch.set_flush_denormal(flush):
        pytest.skip("this CPU cannot flush denormals")
    try:
        X = mnist_like()
        ae = fit(X, max_iter=2, random_state=0)
        ae.partial_fit(X)
        ae.transform(X)
        assert flushes_on_this_thread() is flush
        assert torch.get_num_threads() == 2
    finally:
        torch.set_flush_denormal(False)
