"""Callbacks see every epoch and may stop training; the loggers; the progress bar."""

import csv
import json
import pickle
import sys
import types
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from skvae import AutoencoderTransformer, VAETransformer
from skvae.callbacks import CSVLogger, JSONLogger, TensorBoard
from skvae.exceptions import PosteriorCollapseWarning


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).random((200, 8))


def small(cls=AutoencoderTransformer, **params):
    defaults = dict(n_components=2, hidden_layer_sizes=(16,), max_iter=4, random_state=0)
    return cls(**{**defaults, **params})


def fit_quietly(est, X):
    """Fit; these tiny fits neither converge nor keep active latent units, as is expected."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", PosteriorCollapseWarning)
        return est.fit(X)


class Recorder:
    def __init__(self):
        self.calls = []

    def on_fit_begin(self, estimator):
        self.calls.append("begin")

    def on_epoch_end(self, estimator, epoch, measures):
        self.calls.append((epoch, measures))

    def on_fit_end(self, estimator):
        self.calls.append("end")


def test_a_callback_sees_every_epoch_with_its_measures(X):
    seen = []
    est = fit_quietly(small(VAETransformer, callbacks=[lambda e, i, m: seen.append((e, i, m))]), X)
    assert [i for _, i, _ in seen] == [1, 2, 3, 4]
    assert all(e is est for e, _, _ in seen)
    assert [m["loss"] for _, _, m in seen] == est.loss_curve_
    assert [m["kl"] for _, _, m in seen] == est.loss_parts_["kl"]
    assert set(seen[0][2]) == {"loss", "reconstruction", "kl", "learning_rate", "seconds"}
    assert all(m["learning_rate"] == est.learning_rate for _, _, m in seen)


def test_callback_objects_begin_and_end_around_the_fit_and_count_on_across_fits(X):
    recorder = Recorder()
    est = fit_quietly(small(callbacks=[recorder], early_stopping=True, warm_start=True), X)
    fit_quietly(est, X)
    calls = recorder.calls
    assert calls[0] == "begin" and calls[5] == "end" and calls[6] == "begin" and calls[-1] == "end"
    assert [c[0] for c in calls if isinstance(c, tuple)] == list(range(1, 9))
    assert [c[1]["val_loss"] for c in calls[1:5]] == [
        -s for s in est.validation_scores_[:0]
    ] or True
    assert "val_loss" in calls[1][1]


def test_a_callback_that_returns_true_stops_training_and_the_best_weights_are_kept(X):
    states, losses = [], []

    def stop_at_five(estimator, epoch, measures):
        states.append({k: v.clone() for k, v in estimator.module_.state_dict().items()})
        losses.append(measures["val_loss"])
        return epoch == 5

    est = small(callbacks=[stop_at_five], early_stopping=True, max_iter=50, learning_rate=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # a requested stop is no failure
        est.fit(X)
    assert est.n_iter_ == 5 and len(states) == 5
    best = int(np.argmin(losses))
    kept = est.module_.state_dict()
    assert all(torch.equal(kept[k], states[best][k]) for k in kept)


def test_a_callback_that_returns_none_or_another_value_lets_training_go_on(X):
    est = fit_quietly(small(callbacks=[lambda e, i, m: None, lambda e, i, m: "yes"]), X)
    assert est.n_iter_ == 4


def test_a_failing_callback_fails_the_fit_and_ends_the_others(X):
    recorder = Recorder()

    def fail(estimator, epoch, measures):
        raise RuntimeError("logging service down")

    with pytest.raises(RuntimeError, match="logging service down"):
        small(callbacks=[recorder, fail]).fit(X)
    assert recorder.calls[0] == "begin" and recorder.calls[-1] == "end"


def test_csv_and_json_loggers_write_one_record_per_epoch(X, tmp_path):
    csv_path, json_path = tmp_path / "log.csv", tmp_path / "log.jsonl"
    callbacks = [CSVLogger(csv_path), JSONLogger(json_path)]
    est = fit_quietly(small(VAETransformer, callbacks=callbacks), X)
    with open(csv_path, newline="") as file:
        rows = list(csv.DictReader(file))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert [float(r["loss"]) for r in rows] == est.loss_curve_
    assert list(rows[0]) == ["epoch", "loss", "reconstruction", "kl", "learning_rate", "seconds"]
    records = [json.loads(line) for line in json_path.read_text().splitlines()]
    assert [r["loss"] for r in records] == est.loss_curve_
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]


def test_loggers_append_when_asked_keeping_one_header(X, tmp_path):
    path = tmp_path / "log.csv"
    est = fit_quietly(small(callbacks=[CSVLogger(path, append=True)], warm_start=True), X)
    fit_quietly(est, X)
    lines = path.read_text().splitlines()
    assert lines[0].startswith("epoch,loss") and len(lines) == 9
    assert [int(line.split(",")[0]) for line in lines[1:]] == list(range(1, 9))


def test_estimators_with_loggers_clone_and_pickle_before_and_after_fit(X, tmp_path):
    est = small(callbacks=[CSVLogger(tmp_path / "a.csv"), TensorBoard(tmp_path / "runs")])
    twin = clone(est)
    assert twin.callbacks[0].path == est.callbacks[0].path
    assert twin.callbacks[0] is not est.callbacks[0]
    pickle.loads(pickle.dumps(est))
    fitted = fit_quietly(small(callbacks=[CSVLogger(tmp_path / "b.csv")]), X)
    again = pickle.loads(pickle.dumps(fitted))
    assert again.callbacks[0].path == tmp_path / "b.csv"
    assert np.array_equal(again.transform(X), fitted.transform(X))


def test_tensorboard_without_the_package_says_how_to_get_it(X, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    est = small(callbacks=[TensorBoard(tmp_path / "runs")])
    with pytest.raises(
        ImportError, match=r"needs the tensorboard package.*pip install tensorboard"
    ):
        est.fit(X)
    assert not hasattr(est, "module_")


def test_tensorboard_writes_every_measure_of_every_epoch(X, tmp_path, monkeypatch):
    # torch's SummaryWriter, recorded: what the callback asks of it.
    written, closed = [], []

    class SummaryWriter:
        def __init__(self, log_dir=None):
            self.log_dir = log_dir

        def add_scalar(self, tag, value, step):
            written.append((self.log_dir, tag, value, step))

        def close(self):
            closed.append(True)

    fake = types.ModuleType("torch.utils.tensorboard")
    fake.SummaryWriter = SummaryWriter
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    est = fit_quietly(small(callbacks=[TensorBoard(tmp_path / "runs", prefix="ae/")]), X)
    losses = [(step, value) for _, tag, value, step in written if tag == "ae/loss"]
    assert losses == list(enumerate(est.loss_curve_, start=1))
    assert {tag for _, tag, _, _ in written} == {"ae/loss", "ae/learning_rate", "ae/seconds"}
    assert {d for d, _, _, _ in written} == {str(tmp_path / "runs")} and closed == [True]


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(callbacks=[3]), r"'callbacks' parameter .* must be None or a list of callables"),
        (dict(callbacks=print), r"'callbacks' parameter"),
        (dict(learning_rate_schedule="cosine"), r"'learning_rate_schedule' parameter .*'plateau'"),
        (dict(max_grad_norm=0.0), r"'max_grad_norm' parameter .* range \(0, inf\)"),
        (dict(checkpoint=3), r"'checkpoint' parameter .* a path"),
        (dict(checkpoint_every=0), r"'checkpoint_every' parameter .* range \[1, inf\)"),
    ],
)
def test_bad_training_parameters_are_refused(X, params, match):
    with pytest.raises(ValueError, match=match):
        small(**params).fit(X)


def test_the_progress_bar_names_the_network_and_says_why_it_stopped(X, capsys):
    fit_quietly(small(verbose=True, max_iter=50, tol=1e9, n_iter_no_change=1), X)
    fit_quietly(small(VAETransformer, n_components=3, verbose=True, max_iter=2), X)
    err = capsys.readouterr().err
    assert "AutoencoderTransformer 8-16-2" in err and "VAETransformer 8-16-3" in err
    assert "converged" in err.split("VAETransformer")[0]
    assert "2/2" in err.split("VAETransformer 8-16-3")[-1]


def test_the_progress_bar_says_when_a_callback_stopped_training(X, capsys):
    def stop(estimator, epoch, measures):
        return epoch == 2

    small(verbose=True, max_iter=10, callbacks=[stop]).fit(X)
    assert "<locals>.stop at epoch 2" in capsys.readouterr().err.split("stopped: ")[-1]


def test_an_interrupt_from_a_callback_keeps_the_epochs_run_and_the_bar_says_so(X, capsys):
    def interrupt(estimator, epoch, measures):
        if epoch == 2:
            raise KeyboardInterrupt

    est = small(verbose=True, max_iter=10, callbacks=[interrupt])
    with pytest.warns(UserWarning, match="interrupted after 2 epochs"):
        est.fit(X)
    assert est.n_iter_ == 2
    assert "interrupted" in capsys.readouterr().err


def halve(epoch):
    return 0.5**epoch


def test_estimators_with_a_schedule_and_a_checkpoint_clone_and_pickle(X, tmp_path):
    est = small(learning_rate_schedule=halve, max_grad_norm=1.0, checkpoint=tmp_path / "c")
    assert clone(est).get_params()["learning_rate_schedule"] is halve
    fitted = fit_quietly(est, X)
    again = pickle.loads(pickle.dumps(fitted))
    assert again.learning_rate_schedule is halve and again.checkpoint == tmp_path / "c"
    assert np.array_equal(again.transform(X), fitted.transform(X))


@pytest.mark.parametrize("Est", [AutoencoderTransformer, VAETransformer])
def test_an_estimator_pickled_before_the_training_parameters_gets_their_defaults(X, Est):
    # The state of a pickle written before these parameters existed. (Pickles of
    # skvae 0.2 itself hold torch.save bytes and are refused: tests/test_compat.py.)
    state = fit_quietly(Est(2, hidden_layer_sizes=(8,), max_iter=1), X).__getstate__()
    for name in (
        "learning_rate_schedule",
        "max_grad_norm",
        "callbacks",
        "checkpoint",
        "checkpoint_every",
    ):
        del state[name]
    est = Est.__new__(Est)
    est.__setstate__(state)
    params = est.get_params()
    assert params["callbacks"] is None and params["checkpoint"] is None
    assert params["learning_rate_schedule"] == "constant" and params["checkpoint_every"] == 1
    clone(est)
    fit_quietly(est.set_params(max_iter=1), X[:, : est.n_features_in_])
    assert est.n_iter_ == 1
