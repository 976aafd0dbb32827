"""Faults around a fit: the caller's memory changing after it, interrupts and
exceptions during it, two threads at once. The estimator ends either as it was
or fitted and consistent, and never reads the caller's data after fit returns."""

import copy
import os
import pickle
import subprocess
import sys
import textwrap
import threading
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from skvae import AutoencoderTransformer, VAETransformer
from skvae.exceptions import PosteriorCollapseWarning

# Every row trained on (no validation split), so that the statistics after training
# describe all of X.
SMALL = dict(
    n_components=2,
    hidden_layer_sizes=(8,),
    max_iter=3,
    early_stopping=False,
    device="cpu",
    random_state=0,
)
ESTIMATORS = {
    "ae": AutoencoderTransformer(**SMALL),
    "vae": VAETransformer(**SMALL),
}


def quiet_fit(est, X):
    """fit, with the warnings of a three-epoch fit left out of these tests."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", PosteriorCollapseWarning)
        return est.fit(X)


def outputs(est, X):
    """Everything a fitted estimator answers: codes, scores, samples and its pickle's scores."""
    return {
        "transform": est.transform(X),
        "score_samples": est.score_samples(X),
        "sample": est.sample(5, random_state=0),
        "pickled": pickle.loads(pickle.dumps(est)).score_samples(X),
    }


def assert_same_outputs(a, b):
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).random((60, 4)).astype(np.float32)


# ------------------------------------------------------------ owns itself
@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_outputs_do_not_change_when_the_training_array_is_overwritten(name, X):
    train = X.copy()  # float32: fit views it without a copy
    est = quiet_fit(clone(ESTIMATORS[name]), train)
    before = outputs(est, X)
    train[:] = np.nan
    assert_same_outputs(outputs(est, X), before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])  # viewed, or read in chunks
@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_outputs_do_not_change_when_the_memmap_file_is_removed(name, dtype, X, tmp_path):
    path = tmp_path / "X.dat"
    train = np.memmap(path, dtype=dtype, mode="w+", shape=X.shape)
    train[:] = X
    est = quiet_fit(clone(ESTIMATORS[name]), train)
    before = outputs(est, X)
    os.remove(path)
    assert_same_outputs(outputs(est, X), before)


def test_outputs_survive_a_truncated_memmap(tmp_path):
    # Reading a truncated file's mapping kills the process (SIGBUS): in a child, so
    # that a regression fails this test instead of the test run.
    script = textwrap.dedent(
        f"""
        import os, pickle, warnings
        import numpy as np
        from sklearn.exceptions import ConvergenceWarning
        from skvae import AutoencoderTransformer, VAETransformer
        from skvae.exceptions import PosteriorCollapseWarning
        # Three epochs neither converge nor keep a unit active, as expected.
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", PosteriorCollapseWarning)
        X = np.random.default_rng(0).random((60, 4))
        for Est in (AutoencoderTransformer, VAETransformer):
            for dtype in ("float32", "float64"):  # viewed, or read in chunks
                path = os.path.join({str(tmp_path)!r}, Est.__name__ + dtype)
                train = np.memmap(path, dtype=dtype, mode="w+", shape=X.shape)
                train[:] = X
                est = Est(2, hidden_layer_sizes=(8,), max_iter=3, device="cpu", random_state=0)
                est.fit(train)
                before = est.score_samples(X), est.sample(3, random_state=0)
                os.truncate(path, 0)
                after = est.score_samples(X), est.sample(3, random_state=0)
                pickle.loads(pickle.dumps(est))
                assert all(np.array_equal(a, b) for a, b in zip(before, after))
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


# ---------------------------------------------------------------- interrupts and errors
# Faults are raised from inside training, where a user's Ctrl-C lands: at the k-th step.
_ADAM_STEP = torch.optim.Adam.step


def fault_at_step(monkeypatch, k, fault=KeyboardInterrupt):
    steps = []

    def step(self, *args, **kwargs):
        steps.append(1)
        if len(steps) == k:
            raise fault
        return _ADAM_STEP(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step)


def state_of(est):
    """What a fit may change: weights, optimizer moments, counters, curves, statistics."""
    optimizer = est.optimizer_.state_dict()["state"]
    return {
        "weights": {k: v.clone() for k, v in est.module_.state_dict().items()},
        "moments": {(i, k): v.clone() for i, s in optimizer.items() for k, v in s.items()},
        "attributes": {k: copy.deepcopy(v) for k, v in vars(est).items() if k.endswith("_")}
        | {"n_fit_calls": est._n_fit_calls},
    }


def assert_same_state(a, b):
    for part in ("weights", "moments"):
        assert a[part].keys() == b[part].keys(), part
        for key in a[part]:
            torch.testing.assert_close(a[part][key], b[part][key], rtol=0, atol=0, msg=str(key))
    for key, value in a["attributes"].items():
        if key not in ("module_", "optimizer_"):
            np.testing.assert_equal(value, b["attributes"][key], err_msg=key)


def assert_consistent(est, X):
    """A fitted estimator whose curves, counters and statistics describe its weights."""
    assert len(est.loss_curve_) == est.n_iter_
    residual = est.inverse_transform(est.transform(X)) - X
    if isinstance(est, AutoencoderTransformer):  # the statistics are the kept weights'
        np.testing.assert_allclose(est.noise_variance_, (residual**2).mean(), rtol=1e-5)


MODES = {
    "fit": lambda est, X: est.set_params(warm_start=False).fit(X),
    "warm_start": lambda est, X: est.set_params(warm_start=True).fit(X),
    "partial_fit": lambda est, X: est.partial_fit(X),
}


@pytest.mark.parametrize("step", [1, 2, 4, 8])
@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_an_interrupt_at_any_step_leaves_the_estimator_as_it_was_or_consistent(
    name, mode, step, X, monkeypatch
):
    est = quiet_fit(clone(ESTIMATORS[name]).set_params(batch_size=20), X)  # 3 steps an epoch
    before = state_of(est)
    fault_at_step(monkeypatch, step)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", PosteriorCollapseWarning)
            warnings.filterwarnings("ignore", r".*training was interrupted", UserWarning)
            MODES[mode](est, X)
    except KeyboardInterrupt:
        assert_same_state(state_of(est), before)  # in the first epoch: as it was
        assert step <= 3
    else:
        assert step > 3  # kept from the second epoch on (partial_fit has one epoch)
        monkeypatch.undo()
        assert_consistent(est, X)


@pytest.mark.parametrize("mode", ["warm_start", "partial_fit"])
def test_a_warning_made_an_error_after_training_puts_the_weights_back(mode, X):
    # Reproducer 4: a warm start whose ConvergenceWarning is an error trained the
    # network in place, then rolled back the counters but not the weights.
    ae = quiet_fit(AutoencoderTransformer(**SMALL), X)
    before = state_of(ae)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ConvergenceWarning, match=r"stopped after max_iter=3"):
            ae.set_params(warm_start=True).fit(X)
    assert_same_state(state_of(ae), before)

    # and an error in the statistics pass after training
    def fail(Xt, incremental, kept_start=False):
        raise RuntimeError("statistics failed")

    ae.__dict__["_after_fit"] = fail
    with pytest.raises(RuntimeError, match="statistics failed"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        MODES[mode](ae, X)
    del ae.__dict__["_after_fit"]
    assert_same_state(state_of(ae), before)


def test_an_interrupt_during_kl_warmup_keeps_the_epochs_run(X, monkeypatch):
    # Reproducer 5: kl_warmup=40 interrupted at epoch 7 kept the initial weights.
    params = {**SMALL, "batch_size": 20, "kl_warmup": 40, "tol": 0.0}
    six = quiet_fit(VAETransformer(**{**params, "max_iter": 6}), X)
    vae = VAETransformer(**{**params, "max_iter": 100})
    fault_at_step(monkeypatch, 6 * 3 + 2)  # in the seventh epoch
    with (
        warnings.catch_warnings(),
        pytest.warns(
            UserWarning,
            match=r"interrupted after 6 epochs\. It keeps the weights of epoch 6 .*"
            r"KL warm-up was at epoch 6 of 40: training further continues it there",
        ),
    ):
        warnings.simplefilter("ignore", PosteriorCollapseWarning)
        vae.fit(X)
    assert vae.n_iter_ == 6
    np.testing.assert_array_equal(vae.transform(X), six.transform(X))
    assert vae.kl_per_dimension_.tolist() == six.kl_per_dimension_.tolist()


def test_an_interrupt_in_the_first_fit_of_a_process_breaks_no_later_fit():
    # Reproducer 3: torch imports sympy and torch._dynamo on first use, while the first
    # network and optimizer are built; Ctrl-C in the middle left them half-imported.
    # The signal arrives as sympy imports sympy.printing, which left the process
    # failing every later fit with "module 'sympy' has no attribute 'core'".
    script = textwrap.dedent(
        """
        import os, signal, sys, warnings
        # Python's own Ctrl-C handling, whatever this process inherited (a parent that
        # ignores SIGINT passes SIG_IGN on, and the signal below would then do nothing).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        import numpy as np
        from sklearn.exceptions import ConvergenceWarning
        from skvae import AutoencoderTransformer
        warnings.simplefilter("ignore", ConvergenceWarning)  # one or two epochs, as expected

        class Interrupt:
            sent = False
            def find_spec(self, name, path=None, target=None):
                if not self.sent and name == "sympy.printing":
                    self.sent = True
                    os.kill(os.getpid(), signal.SIGINT)
                return None

        hook = Interrupt()
        sys.meta_path.insert(0, hook)
        X = np.random.default_rng(0).random((40, 4))
        ae = AutoencoderTransformer(2, hidden_layer_sizes=(8,), max_iter=2, device="cpu")
        try:
            ae.fit(X)
            print("completed")
        except KeyboardInterrupt:
            assert not hasattr(ae, "module_")
            print("interrupted")
        assert hook.sent
        AutoencoderTransformer(2, hidden_layer_sizes=(8,), max_iter=1, device="cpu").fit(X)
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["interrupted", "ok"]


# ---------------------------------------------------------------------------- threads
def test_a_second_fit_of_the_same_estimator_meanwhile_is_refused(X, monkeypatch):
    # Reproducer 10: two threads fitting one estimator ended half-fitted, or crashed.
    ae = AutoencoderTransformer(**SMALL)
    inside, release = threading.Event(), threading.Event()
    original = AutoencoderTransformer._reference_losses

    def held(self, Xt, mean):
        inside.set()
        release.wait(30)
        return original(self, Xt, mean)

    monkeypatch.setattr(AutoencoderTransformer, "_reference_losses", held)
    first = threading.Thread(target=quiet_fit, args=(ae, X))
    first.start()
    assert inside.wait(30)
    try:
        with pytest.raises(RuntimeError, match=r"already being fitted.*fit a clone"):
            ae.fit(X)
    finally:
        release.set()
        first.join()
    assert ae.n_iter_ == 3  # the first fit, undisturbed
    monkeypatch.undo()
    quiet_fit(ae, X)  # and the estimator fits again afterwards
