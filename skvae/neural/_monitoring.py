"""What watches the training loop: the stopping rule, the best weights, divergence,
and what happens to the weights when training fails or is interrupted.
"""

import contextlib
import math

import torch


class Weights:
    """Copies of a module's weights (parameters and buffers), on its own device.

    ``start``: the weights training began from; ``best``: those of the lowest
    loss so far, copied only when the loss improves. No optimizer state is copied.
    """

    def __init__(self, module):
        self.module = module
        self.start = {k: v.detach().clone() for k, v in module.state_dict().items()}
        self.best = self.start

    def save_best(self):
        if self.best is self.start:
            self.best = {k: v.clone() for k, v in self.start.items()}
        with torch.no_grad():
            for name, value in self.module.state_dict().items():
                self.best[name].copy_(value)

    def restore(self, which):
        self.module.load_state_dict(getattr(self, which))


class StoppingRule:
    """scikit-learn's MLP rule: stop after more than ``n_iter_no_change`` epochs without
    an improvement of at least ``tol * |null_loss - best|`` on the best monitored loss.

    ``tol`` is relative to what training has gained over predicting the mean, so
    that it means the same whatever the scale of X and its number of features.
    """

    def __init__(self, tol, n_iter_no_change, null_loss):
        self.tol, self.n_iter_no_change, self.null_loss = tol, n_iter_no_change, null_loss
        self.best, self.bad_epochs = math.inf, 0

    def update(self, monitored):
        """Record an epoch's monitored loss; whether training should stop."""
        scale = abs(self.null_loss - min(self.best, monitored))
        worse = monitored > self.best - self.tol * scale
        self.bad_epochs = self.bad_epochs + 1 if worse else 0
        self.best = min(self.best, monitored)
        return self.bad_epochs > self.n_iter_no_change


def diverged(history, start, diverged_above, n_iter_no_change, skip):
    """Whether the mean of the last ``n_iter_no_change + 1`` monitored losses (after the
    first ``skip`` epochs of this call) is not finite, or above both ``start`` and
    ``diverged_above``: the mean, as one noisy epoch does not make a divergence."""
    curve = history["val_loss"] if history["val_loss"] else history["loss"]
    tail = (curve[skip:] or curve)[-n_iter_no_change - 1 :]
    final = sum(tail) / len(tail)
    return not math.isfinite(final) or final > max(start, diverged_above)


def recover(weights, optimizer, history, measure, first_epoch):
    """After divergence: the best weights that measure no worse than the starting ones."""
    history["converged"] = False
    optimizer.state.clear()  # its moments hold the gradients of the diverging steps
    if weights.best is weights.start:
        weights.restore("start")
        return
    # An epoch's loss is taken while its steps are, and its last steps may already
    # diverge: the weights kept are measured again.
    weights.restore("best")
    kept = measure()
    if not kept <= history["start_loss"]:  # NaN included
        kept, history["best_epoch"] = history["start_loss"], first_epoch
        weights.restore("start")
    history["best_loss"] = kept


@contextlib.contextmanager
def rollback_on_failure(weights, optimizer, step, history):
    """Put the starting weights back when the block fails; end quietly on an interrupt
    after at least one full epoch (``history["interrupted"]``).

    The optimizer's moments no longer match the starting weights once a step was
    taken: its state is cleared then.
    """
    try:
        yield
    except KeyboardInterrupt:
        if history["n_iter"]:
            history["interrupted"] = True
            return
        _roll_back(weights, optimizer, step)
        raise
    except BaseException:
        _roll_back(weights, optimizer, step)
        raise


def _roll_back(weights, optimizer, step):
    weights.restore("start")
    if step.taken:
        optimizer.state.clear()
