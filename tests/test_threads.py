"""Bounding the threads of a fit: threadpoolctl reaches torch's OpenMP pool.

torch's CPU kernels (and the MKL/LAPACK calls it makes) run on its OpenMP
runtime, which threadpoolctl lists as 'openmp' when torch is loaded: a
``threadpool_limits`` context then bounds torch.get_num_threads() on the
calling thread, where skvae computes, and restores it on exit (docs/scaling.md).
"""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from threadpoolctl import threadpool_info, threadpool_limits

from skvae import PCA, AutoencoderTransformer, VAETransformer

X = (load_digits().data[:200] / 16).astype(np.float32)
SMALL = dict(hidden_layer_sizes=(16,), max_iter=2, tol=0.0, device="cpu", random_state=0)


@pytest.fixture
def two_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def openmp():
    if not any(lib["user_api"] == "openmp" for lib in threadpool_info()):
        pytest.skip(
            "threadpoolctl sees no OpenMP runtime in this torch build: bound torch "
            "with torch.set_num_threads instead"
        )


def record_threads(monkeypatch, estimator):
    """Record torch.get_num_threads() where the estimator computes."""
    seen = []
    if isinstance(estimator, PCA):
        eigh = torch.linalg.eigh

        def recording(*args, **kwargs):
            seen.append(torch.get_num_threads())
            return eigh(*args, **kwargs)

        monkeypatch.setattr(torch.linalg, "eigh", recording)
    else:
        forward = torch.nn.Linear.forward

        def recording(self, x):
            seen.append(torch.get_num_threads())
            return forward(self, x)

        monkeypatch.setattr(torch.nn.Linear, "forward", recording)
    return seen


def make(name):
    if name == "PCA":
        return PCA(5, svd_solver="covariance_eigh")
    return {"AutoencoderTransformer": AutoencoderTransformer, "VAETransformer": VAETransformer}[
        name
    ](**SMALL)


def fit(estimator):
    # A tensor takes PCA through its torch kernels; two epochs end the neural
    # fits before they converge, which they say.
    if isinstance(estimator, PCA):
        return estimator.fit(torch.from_numpy(X))
    with pytest.warns(UserWarning, match="max_iter"):
        return estimator.fit(X)


@pytest.mark.parametrize("name", ["PCA", "AutoencoderTransformer", "VAETransformer"])
def test_threadpool_limits_bounds_the_threads_of_a_fit(two_threads, openmp, monkeypatch, name):
    estimator = make(name)
    seen = record_threads(monkeypatch, estimator)
    fit(estimator)
    assert seen and set(seen) == {2}  # unbounded: torch's own setting

    seen.clear()
    with threadpool_limits(limits=1, user_api="openmp"):
        fit(estimator)
    assert seen and set(seen) == {1}
    assert torch.get_num_threads() == 2  # restored on exit


@pytest.mark.parametrize("name", ["PCA", "AutoencoderTransformer", "VAETransformer"])
def test_a_fit_leaves_every_thread_pool_as_it_found_it(two_threads, name):
    before = [(lib["filepath"], lib["num_threads"]) for lib in threadpool_info()]
    fit(make(name))
    assert torch.get_num_threads() == 2
    assert [(lib["filepath"], lib["num_threads"]) for lib in threadpool_info()] == before
