"""Threads of a fit: threadpoolctl reaches torch's OpenMP pool, and skvae's thread policy.

torch's CPU kernels (and the MKL/LAPACK calls it makes) run on its OpenMP
runtime, which threadpoolctl lists as 'openmp' when torch is loaded: a
``threadpool_limits`` context then bounds torch.get_num_threads() on the
calling thread, where skvae computes, and restores it on exit (docs/scaling.md).
A small network trains on one thread unless the program chose a thread count
(docs/guide/devices.md).
"""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from threadpoolctl import threadpool_info, threadpool_limits

from skvae import PCA, AutoencoderTransformer, VAETransformer
from skvae._utils import threads as skvae_threads

X = (load_digits().data[:200] / 16).astype(np.float32)
# Every row trains (no held-out split): a step is the batch of 200 rows.
SMALL = dict(
    hidden_layer_sizes=(16,),
    max_iter=2,
    tol=0.0,
    early_stopping=False,
    device="cpu",
    random_state=0,
)


@pytest.fixture
def two_threads(monkeypatch):
    """Two threads set by the program (not torch's default), so skvae's policy keeps them."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    monkeypatch.setattr(skvae_threads, "_STARTING_THREADS", 0)
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


# ---------------------------------------------------------------- the policy
def record_training_threads(monkeypatch):
    """Record torch.get_num_threads() inside the network's forward passes during fit."""
    seen = []
    forward = torch.nn.Linear.forward

    def recording(self, x):
        if torch.is_grad_enabled():  # training steps, not the statistics after fit
            seen.append(torch.get_num_threads())
        return forward(self, x)

    monkeypatch.setattr(torch.nn.Linear, "forward", recording)
    return seen


@pytest.fixture
def default_threads(monkeypatch):
    """torch at its default of 2 threads, as skvae found it at import, no environment override."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    monkeypatch.setattr(skvae_threads, "_STARTING_THREADS", 2)
    monkeypatch.setattr(skvae_threads, "_measured", {})
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    yield
    torch.set_num_threads(threads)


def measured(monkeypatch, one_thread_as_fast):
    """Make the measurement before training answer ``one_thread_as_fast``; record its calls."""
    calls = []

    def answer(size, rows):
        calls.append((size, rows))
        return one_thread_as_fast

    monkeypatch.setattr(skvae_threads, "one_thread_is_as_fast", answer)
    return calls


@pytest.mark.parametrize("name", ["AutoencoderTransformer", "VAETransformer"])
def test_a_small_network_trains_on_one_thread_and_restores_the_default(
    default_threads, openmp, monkeypatch, name
):
    calls = measured(monkeypatch, False)
    seen = record_training_threads(monkeypatch)
    fit(make(name))
    assert seen and set(seen) == {1}
    assert not calls  # small steps: no measurement
    assert torch.get_num_threads() == 2  # put back on the way out


@pytest.mark.parametrize("one_thread_as_fast, expected", [(True, 1), (False, 2)])
def test_a_large_step_trains_as_the_measurement_says(
    default_threads, openmp, monkeypatch, one_thread_as_fast, expected
):
    monkeypatch.setattr(skvae_threads, "SMALL_STEP", 1)  # every step counts as large
    calls = measured(monkeypatch, one_thread_as_fast)
    seen = record_training_threads(monkeypatch)
    fit(make("AutoencoderTransformer"))
    assert seen and set(seen) == {expected}
    # measured at the step's rows: batch_size="auto" takes a quarter of these 200 rows
    assert calls and calls[0][1] == len(X) // 4
    assert torch.get_num_threads() == 2


def test_the_measurement_leaves_the_thread_count_and_answers(default_threads, openmp):
    assert skvae_threads.one_thread_is_as_fast(1e6, 100) in (True, False)
    assert torch.get_num_threads() == 2
    assert len(skvae_threads._measured) == 1  # reused for steps of this shape


def test_torch_set_num_threads_wins(default_threads, openmp, monkeypatch):
    calls = measured(monkeypatch, True)
    torch.set_num_threads(3)  # differs from what torch started with: the program chose it
    seen = record_training_threads(monkeypatch)
    fit(make("VAETransformer"))
    assert seen and set(seen) == {3}
    assert not calls
    assert torch.get_num_threads() == 3


def test_a_threadpoolctl_limit_wins(default_threads, openmp, monkeypatch):
    measured(monkeypatch, True)
    seen = record_training_threads(monkeypatch)
    with threadpool_limits(limits=3, user_api="openmp"):
        fit(make("AutoencoderTransformer"))
        assert torch.get_num_threads() == 3
    assert seen and set(seen) == {3}
    assert torch.get_num_threads() == 2


def test_the_environment_wins(default_threads, openmp, monkeypatch):
    measured(monkeypatch, True)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    seen = record_training_threads(monkeypatch)
    fit(make("AutoencoderTransformer"))
    assert seen and set(seen) == {2}


def test_an_exception_during_training_restores_the_threads(default_threads, openmp, monkeypatch):
    measured(monkeypatch, True)
    forward = torch.nn.Linear.forward

    def failing(self, x):
        if not torch.is_grad_enabled():  # building the network, before training
            return forward(self, x)
        assert torch.get_num_threads() == 1
        raise RuntimeError("boom")

    monkeypatch.setattr(torch.nn.Linear, "forward", failing)
    with pytest.raises(RuntimeError, match="boom"):
        make("AutoencoderTransformer").fit(X)
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("name", ["AutoencoderTransformer", "VAETransformer"])
def test_inference_on_small_data_runs_on_one_thread(default_threads, openmp, monkeypatch, name):
    estimator = fit(make(name))
    calls = measured(monkeypatch, False)
    seen = record_threads(monkeypatch, estimator)
    estimator.inverse_transform(estimator.transform(X))
    estimator.score(X)
    assert seen and set(seen) == {1}
    assert not calls  # small chunks: no measurement
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("one_thread_as_fast, expected", [(True, 1), (False, 2)])
def test_inference_on_large_chunks_follows_the_measurement(
    default_threads, openmp, monkeypatch, one_thread_as_fast, expected
):
    estimator = fit(make("AutoencoderTransformer"))
    monkeypatch.setattr(skvae_threads, "SMALL_STEP", 1)  # every chunk counts as large
    calls = measured(monkeypatch, one_thread_as_fast)
    seen = record_threads(monkeypatch, estimator)
    estimator.transform(X)
    assert calls and seen and set(seen) == {expected}
    assert torch.get_num_threads() == 2


def test_a_long_fit_follows_the_load_as_it_changes(default_threads, openmp, monkeypatch):
    # Every step counts as large and every measurement is stale at the next epoch:
    # the loop chooses again at each epoch, timing torch's own count each time.
    monkeypatch.setattr(skvae_threads, "SMALL_STEP", 1)
    monkeypatch.setattr(skvae_threads, "FRESH_SECONDS", 0.0)
    answers = iter([True, False, True])  # busy (the start loss), quiet (epoch 0), busy (epoch 1)
    counts_when_measured = []

    def answer(size, rows):
        counts_when_measured.append(torch.get_num_threads())
        return next(answers)

    monkeypatch.setattr(skvae_threads, "one_thread_is_as_fast", answer)
    per_epoch = []

    def note(estimator, epoch, measures):
        per_epoch.append(torch.get_num_threads())

    estimator = AutoencoderTransformer(**{**SMALL, "max_iter": 2}, callbacks=[note])
    with pytest.warns(UserWarning, match="max_iter"):
        estimator.fit(X)
    assert per_epoch == [2, 1]  # each epoch as its own measurement said
    assert counts_when_measured == [2, 2, 2]  # never timed under its own limit
    assert torch.get_num_threads() == 2


def test_a_small_fit_runs_on_one_thread_outside_its_loop_too(default_threads, openmp, monkeypatch):
    # The network's build (a dry run), the losses before training and the statistics
    # after it (the VAE's learned c, active units) run on one thread as the steps do.
    calls = measured(monkeypatch, False)
    seen = []
    forward, eigh = torch.nn.Linear.forward, torch.linalg.eigh

    def recording(self, x):
        seen.append(("forward", torch.get_num_threads()))
        return forward(self, x)

    def recording_eigh(*args, **kwargs):  # PCA's start: the covariance's eigenvectors
        seen.append(("eigh", torch.get_num_threads()))
        return eigh(*args, **kwargs)

    monkeypatch.setattr(torch.nn.Linear, "forward", recording)
    monkeypatch.setattr(torch.linalg, "eigh", recording_eigh)
    fit(make("VAETransformer"))
    assert {name for name, _ in seen} == {"forward", "eigh"}
    assert {threads for _, threads in seen} == {1}
    assert not calls
    assert torch.get_num_threads() == 2


def test_inference_inside_a_fit_times_torchs_count_not_the_fits_limit(
    default_threads, openmp, monkeypatch
):
    # A callback that transforms during fit: its chunks are timed at torch's count,
    # though the fit around them holds one thread.
    monkeypatch.setattr(skvae_threads, "SMALL_STEP", 1)
    counts_when_measured = []

    def answer(size, rows):
        counts_when_measured.append(torch.get_num_threads())
        return True  # busy: one thread

    monkeypatch.setattr(skvae_threads, "one_thread_is_as_fast", answer)

    def transform(estimator, epoch, measures):
        estimator.transform(X)

    estimator = AutoencoderTransformer(**{**SMALL, "max_iter": 1}, callbacks=[transform])
    with pytest.warns(UserWarning, match="max_iter"):
        estimator.fit(X)
    assert len(counts_when_measured) >= 2  # the training steps and the callback's chunks
    assert set(counts_when_measured) == {2}
    assert torch.get_num_threads() == 2
