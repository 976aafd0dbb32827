"""Checkpoints of a fit: written atomically every few epochs, continued from by a
``fit`` with the same parameters and data.

A checkpoint is a ``torch.save`` of plain values only (dicts, lists, tuples, str,
numbers, None and tensors), read back with ``torch.load(weights_only=True)``:
loading one runs no code. It holds what the loop needs to go on exactly as an
uninterrupted fit would: the weights, the optimizer's state, the epochs run and
their curves, the best and starting weights, the stopping rule's and the
schedule's state, and the random generators' states.
"""

import datetime
import os
import re
import time
import warnings

import torch

from .._utils.validation import Constraint

FORMAT = "skvae checkpoint"
VERSION = 1

# The constraints of the estimators' ``checkpoint`` (besides None) and
# ``checkpoint_every`` (besides an int of epochs) parameters.
PATH = Constraint(lambda v: isinstance(v, str | os.PathLike), "a path")
TIME_INTERVAL = Constraint(
    lambda v: isinstance(v, datetime.timedelta) and v > datetime.timedelta(0),
    "a positive datetime.timedelta",
)

# Parameters that do not change what a fit computes: a checkpoint written with
# other values of them is continued all the same.
_FREE = ("verbose", "callbacks", "checkpoint", "checkpoint_every")


def _describe(value):
    """A parameter's value as text that is the same in every process."""
    if isinstance(value, type) or (callable(value) and hasattr(value, "__qualname__")):
        return f"{getattr(value, '__module__', '?')}.{value.__qualname__}"
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))  # no memory addresses


def open_checkpoint(estimator, Xt, mean, generators):
    """The :class:`Checkpoint` of this ``fit``, read if its file exists; None without one.

    Raises ValueError when the file is not a checkpoint, or one of another fit.
    """
    if estimator.checkpoint is None:
        return None
    path = os.fspath(estimator.checkpoint)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(
            f"checkpoint={path!r} is in a folder that does not exist, {folder!r}. Create "
            "the folder, or pass another checkpoint path."
        )
    params = estimator.get_params(deep=False)
    identity = {
        "estimator": type(estimator).__name__,
        "params": {k: _describe(v) for k, v in sorted(params.items()) if k not in _FREE},
        "X shape": tuple(int(s) for s in Xt.shape),
        "first epoch": int(estimator.n_iter_),
    }
    checkpoint = Checkpoint(
        path,
        estimator.checkpoint_every,
        identity,
        mean.detach().to("cpu", torch.float32),
        generators,
        type(estimator).__name__,
    )
    checkpoint.read()
    return checkpoint


def _sync_folder(folder):
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class Checkpoint:
    """The checkpoint file of one fit: ``read`` once, then ``write`` after some epochs.

    ``state`` is the training loop's state read from the file (None when there
    was none); :meth:`resume` restores the generators in ``generators``.
    """

    def __init__(self, path, every, identity, data_mean, generators, estimator_name):
        self.path, self.every, self.identity = path, every, identity
        self._written = time.monotonic()  # a fit's start counts as a save for the clock
        self.data_mean, self.generators, self.name = data_mean, generators, estimator_name
        self.state = None

    def due(self, n_iter, max_iter):
        """Whether the end of epoch ``n_iter`` of this call is written: every
        ``every`` epochs, or once ``every`` (a timedelta) has passed since the last save."""
        if n_iter == max_iter:
            return True
        if isinstance(self.every, datetime.timedelta):
            return time.monotonic() - self._written >= self.every.total_seconds()
        return n_iter % self.every == 0

    def write(self, state):
        """Write ``state`` to a file beside the checkpoint, then rename it over it:
        a process killed while writing leaves the previous checkpoint whole."""
        payload = {
            "format": FORMAT,
            "version": VERSION,
            "identity": self.identity,
            "data_mean": self.data_mean,
            "generators": {name: g.get_state() for name, g in self.generators.items()},
            "state": state,
        }
        folder = os.path.dirname(os.path.abspath(self.path))
        partial = os.path.join(folder, f".{os.path.basename(self.path)}.{os.getpid()}.partial")
        try:
            with open(partial, "wb") as file:
                torch.save(payload, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(partial, self.path)
            _sync_folder(folder)
            self._written = time.monotonic()
        except BaseException:
            if os.path.exists(partial):
                os.remove(partial)
            raise

    def read(self):
        """Read the file if there is one, check that it is this fit's, restore the generators."""
        if not os.path.exists(self.path):
            return
        try:
            payload = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:
            # torch's own message would suggest weights_only=False: never for a file
            # that may be anyone's.
            self._refuse(f"cannot be read as a skvae checkpoint ({type(exc).__name__})")
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            self._refuse("is not a skvae checkpoint")
        if payload.get("version") != VERSION:
            self._refuse(
                f"has checkpoint format version {payload.get('version')!r}, and this "
                f"skvae reads version {VERSION}"
            )
        self._check_identity(payload["identity"], payload["data_mean"])
        self._generator_states = payload["generators"]
        self.state = payload["state"]
        self._announce()

    def resume(self):
        """The loop's saved state, with the generators put where they were.

        Called when training starts: what ``fit`` draws before (the split of
        ``early_stopping``) draws as it did the first time.
        """
        for name, generator in self.generators.items():
            generator.set_state(self._generator_states[name])
        return self.state

    def _check_identity(self, saved, data_mean):
        here = self.identity
        if saved["estimator"] != here["estimator"]:
            self._refuse(f"was written by {saved['estimator']}, not by {here['estimator']}")
        changed = [
            f"{name}={saved['params'].get(name, '<absent>')} there, {value} here"
            for name, value in here["params"].items()
            if saved["params"].get(name) != value
        ]
        if changed:
            self._refuse("was written by a fit with other parameters: " + "; ".join(changed))
        if tuple(saved["X shape"]) != here["X shape"]:
            self._refuse(
                f"was written by a fit on X of shape {tuple(saved['X shape'])}; this fit's "
                f"training rows have shape {here['X shape']}"
            )
        if saved["first epoch"] != here["first epoch"]:
            self._refuse(
                f"was written by a fit that started at epoch {saved['first epoch']}; this "
                f"fit starts at epoch {here['first epoch']} (warm_start)"
            )
        # The column means, not their bits: they may differ in the last places
        # between thread counts.
        if not torch.allclose(data_mean, self.data_mean, rtol=1e-4, atol=1e-6):
            self._refuse("was written by a fit on other data (the column means differ)")

    def _refuse(self, problem):
        raise ValueError(
            f"checkpoint={self.path!r} {problem}. {self.name} leaves the file as it is: "
            "delete or move it to train afresh, or pass another checkpoint path."
        )

    def _announce(self):
        from ._base import caller_stacklevel  # the base imports this module

        history = self.state["history"]
        n_iter = self.state["n_iter"]
        done = self.state["monitor"]["stop_reason"]
        ended = f", where training ended ({done})" if done else ""
        last = f" (loss {history['loss'][-1]:.4g})" if history["loss"] else ""
        warnings.warn(
            f"{self.name} continues from checkpoint={self.path!r}: {n_iter} epochs of this "
            f"fit were run{last}{ended}.",
            UserWarning,
            stacklevel=caller_stacklevel(),
        )
