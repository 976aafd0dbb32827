"""The one training loop behind every neural estimator.

A plain function: a module, a loss and a tensor of data in; a history out.
The estimators differ in the module and the loss they pass, never in the loop.
What a step does lives in :mod:`._steps`; what watches the epochs (stopping,
best weights, divergence, rollback) in :mod:`._monitoring`.
"""

import math
import time

import torch

from .._utils.denormals import cpu_fast_math
from .._utils.threads import StepThreads
from ._monitoring import Monitor, StoppingRule, diverged, recover, rollback_on_failure
from ._progress import Progress
from ._steps import PRECISIONS, Step, check_precision, make_adam

__all__ = [
    "PRECISIONS",
    "FixedNoiseLoss",
    "check_precision",
    "make_adam",
    "squared_spread",
    "train",
]

# Rows on which the loss before training is measured when there is no validation
# set: a stable estimate, and a fraction of an epoch on large X.
_START_ROWS = 1024


def squared_spread(X, mean, rows=8192):
    """E||x - mean||² over the rows of ``X``: the summed per-feature variance.

    The null losses passed to :func:`train` need it. Computed block by block
    along the rows, where ``torch.var(X, dim=0)`` reduces down the columns of
    a row-major X, several times slower; each block's sum is taken by torch
    (pairwise) and the blocks' sums are added in float64. The blocks' differences
    go to one buffer: a fresh block-sized temporary per block costs the memory
    system more than the arithmetic.
    """
    buffer = torch.empty(min(rows, X.shape[0]), X.shape[1], dtype=X.dtype, device=X.device)
    total = 0.0
    for xb in X.split(rows):
        diff = torch.sub(xb, mean, out=buffer[: xb.shape[0]])  # (block, n_features)
        total += float(diff.square_().sum())
    return total / X.shape[0]


class FixedNoiseLoss:
    """A loss that draws the same noise at every measurement: common random numbers.

    A VAE's loss draws z (and, with dynamic binarization, the binary targets)
    at random. Measured with fresh draws, the validation losses of two epochs
    differ by the draws as much as by the weights: on a small validation set
    the noise swamps the difference, and the "best" epoch is the luckiest draw.
    Drawn from a generator put back to the same seed before every measurement,
    two epochs' losses differ by their weights alone. Deterministic losses (the
    autoencoder's) are unaffected.

    Parameters
    ----------
    make_loss : callable
        ``make_loss(generator) -> loss_fn``, the estimator's ``_make_loss``.
    seed : int
        The seed every measurement starts from.
    device : torch.device
        Where the generator draws.
    """

    def __init__(self, make_loss, seed, device):
        self.generator = torch.Generator(device=device)
        self.seed = seed
        self.loss_fn = make_loss(self.generator)

    def reset(self):
        self.generator.manual_seed(self.seed)

    def __call__(self, module, xb, epoch):
        return self.loss_fn(module, xb, epoch)


def _mean_loss(module, loss_fn, X, batch_size, epoch):
    """Loss over ``X`` without gradients, averaged per sample, as (loss, parts)."""
    total, parts_total = 0.0, {}
    for start in range(0, X.shape[0], batch_size):
        xb = X[start : start + batch_size]
        loss, parts = loss_fn(module, xb, epoch)
        total = total + loss * xb.shape[0]
        for name, value in parts.items():
            parts_total[name] = parts_total.get(name, 0.0) + value * xb.shape[0]
    n = X.shape[0]
    return float(total) / n, {k: float(v) / n for k, v in parts_total.items()}


def train(
    module,
    loss_fn,
    optimizer,
    X,
    *,
    generator,
    batch_size,
    max_iter,
    tol,
    n_iter_no_change,
    null_loss=0.0,
    diverged_above=math.inf,
    X_val=None,
    verbose=False,
    desc="training",
    first_epoch=0,
    monitor_from=0,
    precision="float32",
    schedule=None,
    max_grad_norm=None,
    on_epoch_end=None,
    checkpoint=None,
    measure_loss_fn=None,
):
    """Train ``module`` on ``X`` with minibatches until the loss stops improving.

    The loss is first measured on the weights training starts from. Training
    then keeps a copy of the weights of its best epoch, which it restores when
    it is interrupted (KeyboardInterrupt) after at least one full epoch, when
    ``on_epoch_end`` stops training, and at the end when ``X_val`` is given. When
    the loss diverges, it restores the best
    epoch's weights if they measure no worse than the starting ones, else the
    starting ones, and clears the optimizer's state. An interrupt before the
    first epoch ends, or any other exception, puts back the starting weights,
    clears the optimizer's state if a step was taken, and propagates.

    Parameters
    ----------
    module : torch.nn.Module
        Lives on ``X.device``; trained in place.
    loss_fn : callable
        ``loss_fn(module, xb, epoch) -> (loss, parts)``: the mean loss over the
        batch ``xb`` of shape (batch, n_features) as a scalar tensor, and a dict of
        named scalar tensors (parts of the loss, detached) to record per epoch.
        Under autocast it casts the module's outputs to float32 before the
        reductions, so the loss is summed in float32 whatever ``precision``.
    optimizer : torch.optim.Optimizer
        Over ``module``'s parameters; its state carries over between calls.
    X : torch.Tensor of shape (n_samples, n_features)
        Training data, already on the module's device.
    generator : torch.Generator
        CPU generator that orders the batches of every epoch.
    batch_size : int
        Rows per step; the last batch of an epoch may be smaller and is still used.
    max_iter : int
        Number of epochs at most.
    tol, n_iter_no_change : float, int
        Training stops when the monitored loss has not improved by at least
        ``tol * |null_loss - best|`` for more than ``n_iter_no_change`` consecutive
        epochs, ``best`` being the lowest monitored loss so far: scikit-learn's MLP
        rule, with ``tol`` relative to what training has gained over predicting the
        mean, so that it means the same whatever the scale of X and its number of
        features. The monitored loss is the validation loss when ``X_val`` is
        given, else the training loss.
    null_loss : float, default=0.0
        The loss of a model that predicts the mean of X whatever its input. The
        default makes ``tol`` relative to the best loss itself.
    diverged_above : float, default=math.inf
        Training has diverged when the mean of its last ``n_iter_no_change + 1``
        monitored losses (after ``monitor_from``) is not finite, or above both this
        value and the loss it started from. A non-finite loss also ends training
        at once.
    X_val : torch.Tensor of shape (n_val, n_features), default=None
        Held-out rows. When given, the weights of the best validation epoch are
        restored at the end.
    verbose : bool, default=False
        Show a progress bar with the running loss, which says at its end why
        training stopped short of ``max_iter``.
    desc : str
        Label of the progress bar.
    first_epoch : int, default=0
        Index of the first epoch, for losses that depend on it (KL warm-up) when
        training resumes.
    monitor_from : int, default=0
        Index of the first epoch that the stopping rule and the choice of best
        weights look at. Earlier epochs are trained and recorded but not compared:
        during a KL warm-up the objective itself changes from epoch to epoch. The
        loss before training is measured with the objective of this epoch.
    precision : {"float32", "bfloat16", "float16"}, default="float32"
        Arithmetic of the training steps' forward pass: "bfloat16" and "float16"
        run it under ``torch.autocast`` on copies of the weights in that dtype,
        refreshed after each step (the weights, their gradients and the optimizer
        stay float32), "float16" with a ``torch.amp.GradScaler``. The
        loss before training and the validation loss are measured in float32.
        Check the device first with :func:`check_precision`.
    schedule : skvae.neural._schedules.Schedule, default=None
        Sets the learning rate at the start of each epoch, and may lower it
        instead of stopping when the stopping rule fires ("plateau"). None keeps
        the optimizer's rate.
    max_grad_norm : float, default=None
        Clip the gradients to this total 2-norm before each step.
    on_epoch_end : callable, default=None
        ``on_epoch_end(epoch, measures) -> reason or None``, called after every
        epoch with its number counted from 1 (``first_epoch`` + epochs run) and a
        dict of its measures (``loss``, ``val_loss`` with ``X_val``, the parts,
        ``learning_rate``, ``seconds``). A str reason ends training there, as the
        stopping rule does, with the best epoch's weights restored.
    checkpoint : skvae.neural._checkpoint.Checkpoint, default=None
        Written at the end of every ``checkpoint.every``-th epoch and of the last
        one; when it holds a state on entry, training continues from it.
    measure_loss_fn : callable, default=None
        The loss with which the weights are measured without training (the loss
        before training, the validation loss, the check after a divergence), of
        ``loss_fn``'s signature; a :class:`FixedNoiseLoss` is reset before each
        measurement. None: ``loss_fn``.

    Returns
    -------
    history : dict
        ``loss`` (training loss per epoch), ``parts`` (dict of lists, per epoch),
        ``val_loss`` (per epoch, empty without ``X_val``), ``n_iter`` (epochs run),
        ``converged`` (whether the stopping rule ended training), ``start_loss``
        (the monitored loss before the first epoch), ``best_epoch`` and
        ``best_loss`` (the epoch whose weights the module holds if they were
        restored, counted from 1, ``first_epoch`` for the starting weights, and
        their monitored loss), ``diverged``, ``interrupted`` and ``stopped_by``
        (the reason ``on_epoch_end`` gave, else None).
    """
    n_samples = X.shape[0]
    measuring = loss_fn if measure_loss_fn is None else measure_loss_fn
    history = _new_history(first_epoch)
    step = Step(module, loss_fn, optimizer, precision, X.device, max_grad_norm)
    monitor = Monitor(
        module, history, StoppingRule(tol, n_iter_no_change, null_loss), schedule, monitor_from
    )
    # index_select gathers a tensor's rows about twice as fast as X[rows]; a
    # skvae.neural._data.Rows reads them from its source.
    take = X.__getitem__ if not torch.is_tensor(X) else lambda rows: X.index_select(0, rows)

    def measure(X_eval, epoch=None):
        """The loss of the current weights, by default with the objective of the first
        monitored epoch."""
        epoch = max(first_epoch, monitor_from) if epoch is None else epoch
        if isinstance(measuring, FixedNoiseLoss):
            measuring.reset()
        module.eval()
        with torch.no_grad():
            return _mean_loss(module, measuring, X_eval, batch_size, epoch)[0]

    def end_epoch(i, sums, began):
        """Record epoch ``i`` of this call, tell the callbacks, checkpoint; whether to stop."""
        epoch_loss = monitored = sums.record(history, n_samples)
        if X_val is not None:
            if math.isfinite(epoch_loss):
                monitored = measure(X_val, first_epoch + i)
            history["val_loss"].append(monitored)
        history["n_iter"] = i + 1
        bar.epoch_done(epoch_loss, monitored if X_val is not None else None)
        stop = monitor.end_epoch(first_epoch + i, monitored)
        if on_epoch_end is not None:
            measures = _measures(history, optimizer, time.perf_counter() - began)
            reason = on_epoch_end(first_epoch + i + 1, measures)
            if reason is not None and not stop:
                monitor.stop(reason)
                stop = True
        if checkpoint is not None and (stop or checkpoint.due(i + 1, max_iter)):
            checkpoint.write(_state(history, module, optimizer, step, monitor))
        return stop

    guard = rollback_on_failure(monitor.weights, optimizer, step, history)
    with Progress(max_iter, desc, verbose) as bar:
        threads = StepThreads(module, batch_size, X.device)
        with guard, cpu_fast_math(X.device), threads:
            X_start = _start_rows(X) if X_val is None else X_val
            if checkpoint is not None and checkpoint.state is not None:
                _resume(checkpoint.resume(), module, optimizer, step, monitor, history, bar)
            else:
                history["start_loss"] = history["best_loss"] = _start_loss(measure(X_start))
            for i in range(history["n_iter"], max_iter if monitor.stop_reason is None else 0):
                began = time.perf_counter()
                threads.update()
                epoch = first_epoch + i
                if schedule is not None:
                    schedule.start_epoch(optimizer, epoch)
                module.train()
                order = torch.randperm(n_samples, generator=generator).to(X.device)
                sums = _Sums(X.device)
                for first in range(0, n_samples, batch_size):
                    xb = take(order[first : first + batch_size])  # (batch, n_features)
                    loss, parts = step(xb, epoch)
                    sums.add(loss, parts, xb.shape[0])
                step.end_epoch()
                if end_epoch(i, sums, began):
                    break
            if history["n_iter"]:
                skip = max(0, monitor_from - first_epoch)
                start, limit = history["start_loss"], diverged_above
                history["diverged"] = diverged(history, start, limit, n_iter_no_change, skip)
            if history["diverged"]:
                recover(monitor.weights, optimizer, history, lambda: measure(X_start), first_epoch)
        bar.reason = _stop_reason(history, monitor, max_iter)
    # After a divergence, recover() has chosen the weights already.
    chosen = (X_val is not None or history["stopped_by"]) and not history["diverged"]
    if history["interrupted"] or chosen:
        monitor.weights.restore("best")
    module.eval()
    return history


def _state(history, module, optimizer, step, monitor):
    """What a checkpoint holds of this call, besides the random generators."""
    return {
        "n_iter": history["n_iter"],
        "history": history,
        "module": module.state_dict(),
        "optimizer": optimizer.state_dict(),
        "step": step.state_dict(),
        "monitor": monitor.state_dict(),
    }


def _resume(state, module, optimizer, step, monitor, history, bar):
    """Put the loop where a checkpoint left it; the generators are restored already."""
    module.load_state_dict(state["module"])
    optimizer.load_state_dict(state["optimizer"])
    step.load_state_dict(state["step"])
    monitor.load_state_dict(state["monitor"])
    history.update(state["history"])
    bar.skip(history["n_iter"])


def _measures(history, optimizer, seconds):
    """An epoch's measures for the callbacks: its losses, their parts, its rate and time."""
    measures = {"loss": history["loss"][-1]}
    if history["val_loss"]:
        measures["val_loss"] = history["val_loss"][-1]
    measures.update({name: values[-1] for name, values in history["parts"].items()})
    measures["learning_rate"] = optimizer.param_groups[0]["lr"]
    measures["seconds"] = seconds
    return measures


def _stop_reason(history, monitor, max_iter):
    """Why training ended short of ``max_iter``, for the progress bar; None when it did not."""
    if history["interrupted"]:
        return "interrupted"
    if history["diverged"]:
        return "diverged"
    if history["stopped_by"]:
        return f"stopped: {history['stopped_by']}"
    if monitor.stop_reason is not None and history["n_iter"] < max_iter:
        return monitor.stop_reason
    return None


def _new_history(first_epoch):
    return {
        "loss": [],
        "parts": {},
        "val_loss": [],
        "n_iter": 0,
        "converged": False,
        "start_loss": None,
        "best_epoch": first_epoch,
        "best_loss": None,
        "diverged": False,
        "interrupted": False,
        "stopped_by": None,
    }


def _start_rows(X):
    """Evenly spaced rows of X to measure the loss before training on: no draw from
    the generator, so the batch order is the same as a loop without this
    measurement would take."""
    step = max(1, X.shape[0] // _START_ROWS)
    return X[::step][:_START_ROWS]


def _start_loss(loss):
    if not math.isfinite(loss):
        raise FloatingPointError(
            f"The loss is {loss} before training, on the network's starting "
            "weights. Scale X (e.g. StandardScaler), or check X for extreme values."
        )
    return loss


class _Sums:
    """An epoch's loss and parts, summed over its batches weighted by their rows.

    The sums stay on the device: one host sync per epoch, not per batch.
    """

    def __init__(self, device):
        self.total = torch.zeros((), device=device)
        self.parts = {}

    def add(self, loss, parts, rows):
        # One in-place kernel per sum and step: add_(value, alpha=rows).
        self.total.add_(loss.detach(), alpha=rows)
        for name, value in parts.items():
            if name not in self.parts:
                self.parts[name] = torch.zeros_like(value)
            self.parts[name].add_(value, alpha=rows)

    def record(self, history, n_samples):
        """Append the epoch's means to ``history``; the mean loss."""
        epoch_loss = self.total.item() / n_samples
        history["loss"].append(epoch_loss)
        for name, value in self.parts.items():
            history["parts"].setdefault(name, []).append(float(value) / n_samples)
        return epoch_loss
