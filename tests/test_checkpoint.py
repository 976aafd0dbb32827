"""Checkpoints: a killed fit continues where it stopped, and no other fit's file is used."""

import datetime
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.base import clone
from test_callbacks import fit_quietly

from skvae import AutoencoderTransformer, VAETransformer

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).random((240, 8))


def small(cls=AutoencoderTransformer, **params):
    defaults = dict(n_components=2, hidden_layer_sizes=(16,), max_iter=6, random_state=0)
    return cls(**{**defaults, **params})


def assert_same_fit(a, b, X):
    assert a.n_iter_ == b.n_iter_
    assert a.loss_curve_ == b.loss_curve_
    assert np.array_equal(a.transform(X), b.transform(X))


class Crash(Exception):
    pass


def crash_at(epoch):
    """A callback that fails once, at ``epoch``: the fit ends as a killed one would."""
    crashed = []

    def callback(estimator, at, measures):
        if at == epoch and not crashed:
            crashed.append(at)
            raise Crash

    return callback


KILLED_FIT = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np, torch
    torch.set_num_threads(1)
    from skvae import VAETransformer

    checkpoint, marker, out = sys.argv[1:4]
    X = np.random.default_rng(0).random((240, 8))

    def kill_once(estimator, epoch, measures):
        if epoch == 3 and not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)

    est = VAETransformer(2, hidden_layer_sizes=(16,), max_iter=6, random_state=0,
                         checkpoint=checkpoint, callbacks=[kill_once])
    est.fit(X)
    np.savez(out, Z=est.transform(X), loss=np.array(est.loss_curve_), n_iter=est.n_iter_)
    """
)


def run_script(tmp_path, *args):
    script = tmp_path / "fit.py"
    script.write_text(KILLED_FIT)
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(script), *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_sigkilled_fit_restarted_with_the_same_call_ends_as_an_uninterrupted_one(tmp_path):
    checkpoint, marker = tmp_path / "run.skvae", tmp_path / "killed"
    killed = run_script(tmp_path, checkpoint, marker, tmp_path / "unused.npz")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert checkpoint.exists() and marker.exists()

    resumed = run_script(tmp_path, checkpoint, marker, tmp_path / "resumed.npz")
    assert resumed.returncode == 0, resumed.stderr
    assert "continues from checkpoint=" in resumed.stderr
    assert "2 epochs of this fit were run" in resumed.stderr  # epoch 3 was lost with the kill

    # The uninterrupted fit, here on one torch thread too (conftest).
    X = np.random.default_rng(0).random((240, 8))
    reference = fit_quietly(small(VAETransformer), X)
    resumed = np.load(tmp_path / "resumed.npz")
    assert int(resumed["n_iter"]) == reference.n_iter_ == 6
    assert resumed["loss"].tolist() == reference.loss_curve_
    assert np.array_equal(resumed["Z"], reference.transform(X))


@pytest.mark.parametrize(
    "cls, params",
    [
        (AutoencoderTransformer, {}),
        (AutoencoderTransformer, {"early_stopping": True, "checkpoint_every": 2}),
        (VAETransformer, {"precision": "bfloat16", "max_grad_norm": 1.0}),
        (
            VAETransformer,
            {
                "likelihood": "bernoulli",
                "binarize": "dynamic",
                "learning_rate_schedule": "plateau",
                "tol": 1e9,
                "n_iter_no_change": 1,
            },
        ),
    ],
)
def test_a_fit_that_failed_continues_from_its_checkpoint_to_the_same_bits(X, tmp_path, cls, params):
    reference = fit_quietly(small(cls, **params), X)
    path = tmp_path / "run.skvae"
    failing = small(cls, **params, checkpoint=path, callbacks=[crash_at(5)])
    with pytest.raises(Crash):
        failing.fit(X)
    with pytest.warns(UserWarning, match=r"continues from checkpoint=.*: 4 epochs of this fit"):
        resumed = fit_quietly(clone(failing), X)
    assert_same_fit(resumed, reference, X)


def test_the_checkpoint_holds_plain_values_that_load_without_running_code(X, tmp_path):
    path = tmp_path / "run.skvae"
    # A user's encoder starts from random weights, which the first epochs improve on, so
    # a best epoch is kept; from the built-in network's start, PCA's, the start may be best.
    fit_quietly(small(checkpoint=path, early_stopping=True, encoder=torch.nn.Identity), X)
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == "skvae checkpoint"
    state = payload["state"]
    assert state["n_iter"] == 6 and len(state["history"]["loss"]) == 6
    assert set(state) >= {"module", "optimizer", "monitor", "step"}
    assert set(payload["generators"]) == {"shuffle", "noise"}
    assert state["monitor"]["weights"]["best"] is not None
    assert [p.name for p in tmp_path.iterdir()] == ["run.skvae"]  # no partial file left


def test_a_finished_checkpoint_gives_back_the_finished_fit(X, tmp_path):
    path = tmp_path / "run.skvae"
    first = fit_quietly(small(checkpoint=path, max_iter=50, tol=1e9, n_iter_no_change=2), X)
    assert first.n_iter_ < 50
    with pytest.warns(UserWarning, match=r"where training ended \(converged\)"):
        again = small(checkpoint=path, max_iter=50, tol=1e9, n_iter_no_change=2).fit(X)
    assert_same_fit(again, first, X)


def test_partial_fit_writes_no_checkpoint(X, tmp_path):
    small(checkpoint=tmp_path / "run.skvae").partial_fit(X)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(learning_rate=1e-2), r"other parameters: learning_rate=0.001 there, 0.01 here"),
        (dict(n_components=3), r"other parameters: n_components=2 there, 3 here"),
        (dict(rows=200), r"X of shape \(240, 8\); this fit's training rows have shape \(200, 8\)"),
        (dict(shift=1.0), r"other data \(the column means differ\)"),
    ],
)
def test_a_checkpoint_of_another_fit_is_refused_and_left_in_place(X, tmp_path, change, match):
    path = tmp_path / "run.skvae"
    fit_quietly(small(checkpoint=path), X)
    before = path.read_bytes()
    rows, shift = change.pop("rows", len(X)), change.pop("shift", 0.0)
    est = small(checkpoint=path, **change)
    with pytest.raises(ValueError, match=match):
        est.fit(X[:rows] + shift)
    assert path.read_bytes() == before
    assert not hasattr(est, "module_")  # the failed fit left the estimator unfitted


def test_a_vae_checkpoint_is_refused_by_an_autoencoder(X, tmp_path):
    path = tmp_path / "run.skvae"
    fit_quietly(small(VAETransformer, checkpoint=path), X)
    with pytest.raises(ValueError, match="written by VAETransformer, not by Autoenc"):
        small(checkpoint=path).fit(X)


@pytest.mark.parametrize(
    "content, match",
    [
        (b"not a checkpoint at all", r"cannot be read as a skvae checkpoint"),
        (None, r"is not a skvae checkpoint"),
        ("truncated", r"cannot be read as a skvae checkpoint"),
    ],
)
def test_a_corrupted_or_foreign_file_is_refused_and_left_in_place(X, tmp_path, content, match):
    path = tmp_path / "run.skvae"
    if content is None:
        torch.save({"weights": torch.zeros(3)}, path)  # a torch file, not a checkpoint
    elif content == "truncated":
        fit_quietly(small(checkpoint=path), X)
        path.write_bytes(path.read_bytes()[:1000])
    else:
        path.write_bytes(content)
    before = path.read_bytes()
    with pytest.raises(ValueError, match=match + r".*leaves the file as it is"):
        small(checkpoint=path).fit(X)
    assert path.read_bytes() == before


def test_a_warm_started_fit_refuses_the_checkpoint_of_the_fit_before(X, tmp_path):
    path = tmp_path / "run.skvae"
    est = fit_quietly(small(checkpoint=path, warm_start=True), X)
    with pytest.raises(ValueError, match=r"started at epoch 0; this fit starts at epoch 6"):
        est.fit(X)
    assert est.n_iter_ == 6


def test_a_checkpoint_in_a_missing_folder_is_refused_before_training(X, tmp_path):
    with pytest.raises(ValueError, match=r"in a folder that does not exist"):
        small(checkpoint=tmp_path / "absent" / "run.skvae").fit(X)


@pytest.mark.parametrize(
    "every, saved",
    [(1, 3), (2, 2), (datetime.timedelta(hours=1), None), (datetime.timedelta(microseconds=1), 3)],
)
def test_checkpoint_every_counts_epochs_or_time(X, tmp_path, every, saved):
    path = tmp_path / "run.skvae"
    with pytest.raises(Crash):
        small(checkpoint=path, checkpoint_every=every, callbacks=[crash_at(4)]).fit(X)
    if saved is None:  # an hour has not passed: nothing written before the crash
        assert not path.exists()
    else:
        assert torch.load(path, weights_only=True)["state"]["n_iter"] == saved


def test_checkpoint_every_refuses_a_zero_interval(X, tmp_path):
    est = small(checkpoint=tmp_path / "c", checkpoint_every=datetime.timedelta(0))
    with pytest.raises(ValueError, match=r"'checkpoint_every' parameter .* a positive datetime"):
        est.fit(X)
