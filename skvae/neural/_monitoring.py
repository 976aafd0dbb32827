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

    def state_dict(self):
        return {"start": self.start, "best": None if self.best is self.start else self.best}

    def load_state_dict(self, state):
        with torch.no_grad():
            for name, value in state["start"].items():
                self.start[name].copy_(value)
            if state["best"] is not None:
                self.best = {k: v.clone() for k, v in self.start.items()}
                for name, value in state["best"].items():
                    self.best[name].copy_(value)


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

    def state_dict(self):
        return {"best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state):
        self.best, self.bad_epochs = state["best"], state["bad_epochs"]


class Monitor:
    """What an epoch's end decides: the best weights, and whether training stops.

    Epochs before ``monitor_from`` are recorded but not compared: during a KL
    warm-up the objective itself changes from epoch to epoch. When the stopping
    rule fires, a ``"plateau"`` schedule may lower the learning rate instead.
    ``stop_reason`` says why training stopped, None while it goes on.
    """

    def __init__(self, module, history, rule, schedule, monitor_from):
        self.history, self.rule, self.schedule = history, rule, schedule
        self.weights = Weights(module)
        self.monitor_from = monitor_from
        self.stop_reason = None

    def end_epoch(self, epoch, monitored):
        """Judge epoch ``epoch`` by its monitored loss; whether training stops."""
        history = self.history
        if not math.isfinite(monitored):
            self.stop_reason = f"the loss became {monitored}"
        elif epoch < self.monitor_from:
            # KL warm-up: the objective changes every epoch, so these losses do not
            # compare; the weights kept (on an interrupt, say) are the last warm-up
            # epoch's, until a later epoch beats the starting loss.
            history["best_epoch"] = epoch + 1
            self.weights.save_best()
        else:
            if monitored < history["best_loss"]:
                history["best_loss"], history["best_epoch"] = monitored, epoch + 1
                self.weights.save_best()
            if self.rule.update(monitored):
                if self.schedule is not None and self.schedule.on_plateau():
                    self.rule.bad_epochs = 0
                else:
                    history["converged"] = True
                    self.stop_reason = "converged"
        return self.stop_reason is not None

    def stop(self, reason):
        """End training at this epoch's end for ``reason`` (a callback asked)."""
        self.stop_reason = reason
        self.history["stopped_by"] = reason

    def state_dict(self):
        return {
            "weights": self.weights.state_dict(),
            "rule": self.rule.state_dict(),
            "schedule": None if self.schedule is None else self.schedule.state_dict(),
            "stop_reason": self.stop_reason,
        }

    def load_state_dict(self, state):
        self.weights.load_state_dict(state["weights"])
        self.rule.load_state_dict(state["rule"])
        if self.schedule is not None:
            self.schedule.load_state_dict(state["schedule"])
        self.stop_reason = state["stop_reason"]


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
