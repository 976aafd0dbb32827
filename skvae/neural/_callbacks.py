"""Callbacks: user code called at the end of every epoch, and the loggers skvae ships.

A callback is a callable ``callback(estimator, epoch, measures)``, or an object
with a method ``on_epoch_end(estimator, epoch, measures)`` and optionally
``on_fit_begin(estimator)`` and ``on_fit_end(estimator)``. ``epoch`` counts the
estimator's epochs from 1, continued fits included; ``measures`` is a dict of
floats: ``loss``, ``val_loss`` (with ``early_stopping``), the parts of the loss
(``reconstruction`` and ``kl`` for a VAE), ``learning_rate`` and ``seconds``
(the epoch's time). Returning True stops training after this epoch, as the
stopping rule does: the best epoch's weights are kept.

The loggers store only their arguments until a fit begins, so estimators that
hold them still clone and pickle.
"""

import contextlib
import csv
import json
import os

import numpy as np

from .._utils.validation import Constraint


def _callback_name(callback):
    return getattr(callback, "__qualname__", type(callback).__name__)


@contextlib.contextmanager
def run_callbacks(estimator, callbacks):
    """``on_epoch_end(epoch, measures) -> reason or None`` for the training loop, None
    without callbacks; the callbacks' ``on_fit_begin`` before, ``on_fit_end`` after,
    even when the fit fails."""
    callbacks = list(callbacks or ())
    if not callbacks:
        yield None
        return
    begun = []
    try:
        for callback in callbacks:
            if hasattr(callback, "on_fit_begin"):
                callback.on_fit_begin(estimator)
            begun.append(callback)

        def on_epoch_end(epoch, measures):
            stop = None
            for callback in callbacks:
                call = getattr(callback, "on_epoch_end", callback)
                asked = call(estimator, epoch, dict(measures))
                if isinstance(asked, bool | np.bool_) and asked and stop is None:
                    stop = f"{_callback_name(callback)} at epoch {epoch}"
            return stop

        yield on_epoch_end
    finally:
        for callback in begun:
            if hasattr(callback, "on_fit_end"):
                callback.on_fit_end(estimator)


def is_callback(value):
    """Whether ``value`` is a callable or an object with an ``on_epoch_end`` method."""
    return callable(value) or callable(getattr(value, "on_epoch_end", None))


# The constraint of the estimators' ``callbacks`` parameter (besides None).
CALLBACKS = Constraint(
    lambda v: isinstance(v, list | tuple) and all(map(is_callback, v)),
    "a list of callables or of objects with an on_epoch_end method",
)


class _FileLogger:
    """One record per epoch appended to a file; opened when a fit begins."""

    def __init__(self, path, append=False):
        self.path = path
        self.append = append

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_file", None)  # an open file neither pickles nor clones
        return state

    def on_fit_begin(self, estimator):
        mode = "a" if self.append else "w"
        self._file = open(self.path, mode, newline="", encoding="utf-8")  # noqa: SIM115

    def on_fit_end(self, estimator):
        file = self.__dict__.pop("_file", None)
        if file is not None:
            file.close()


class CSVLogger(_FileLogger):
    """Write each epoch's measures as a row of a CSV file.

    Parameters
    ----------
    path : str or os.PathLike
        The file. Its columns are ``epoch`` and the measures of the first epoch
        logged.
    append : bool, default=False
        Add rows to an existing file (its header is kept) instead of starting a
        new one: for fits that continue from a checkpoint.

    Examples
    --------
    >>> from skvae import AutoencoderTransformer
    >>> from skvae.callbacks import CSVLogger
    >>> ae = AutoencoderTransformer(callbacks=[CSVLogger("losses.csv")])  # doctest: +SKIP
    """

    def on_fit_begin(self, estimator):
        has_rows = self.append and os.path.exists(self.path) and os.path.getsize(self.path) > 0
        super().on_fit_begin(estimator)
        self._writer = None
        self._header_written = has_rows

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_writer", None)
        return state

    def on_epoch_end(self, estimator, epoch, measures):
        row = {"epoch": epoch, **measures}
        if self._writer is None:
            self._writer = csv.DictWriter(self._file, fieldnames=list(row), extrasaction="ignore")
            if not self._header_written:
                self._writer.writeheader()
        self._writer.writerow(row)
        self._file.flush()


class JSONLogger(_FileLogger):
    """Write each epoch's measures as one JSON object per line (JSON Lines).

    Parameters
    ----------
    path : str or os.PathLike
        The file; each line is ``{"epoch": ..., "loss": ..., ...}``.
    append : bool, default=False
        Add lines to an existing file instead of starting a new one: for fits
        that continue from a checkpoint.
    """

    def on_epoch_end(self, estimator, epoch, measures):
        self._file.write(json.dumps({"epoch": epoch, **measures}) + "\n")
        self._file.flush()


class TensorBoard:
    """Write each epoch's measures as TensorBoard scalars, through torch's ``SummaryWriter``.

    Needs the ``tensorboard`` package (``pip install tensorboard``, or the
    ``skvae[tensorboard]`` extra).

    Parameters
    ----------
    log_dir : str or os.PathLike, default=None
        The run's folder; None lets ``SummaryWriter`` choose ``runs/<date>_<host>``.
    prefix : str, default=""
        Put before every scalar's name, e.g. "vae/" to tell runs logged to one
        folder apart.
    """

    def __init__(self, log_dir=None, prefix=""):
        self.log_dir = log_dir
        self.prefix = prefix

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_writer", None)
        return state

    def on_fit_begin(self, estimator):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise ImportError(
                f"The TensorBoard callback of {type(estimator).__name__} writes through "
                "torch.utils.tensorboard, which needs the tensorboard package: install it "
                "with `pip install tensorboard` (or `pip install skvae[tensorboard]`), or "
                "log with skvae.callbacks.CSVLogger instead."
            ) from exc
        self._writer = SummaryWriter(log_dir=None if self.log_dir is None else str(self.log_dir))

    def on_epoch_end(self, estimator, epoch, measures):
        for name, value in measures.items():
            self._writer.add_scalar(self.prefix + name, value, epoch)

    def on_fit_end(self, estimator):
        writer = self.__dict__.pop("_writer", None)
        if writer is not None:
            writer.close()
