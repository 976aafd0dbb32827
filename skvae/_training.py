"""The one training loop behind every neural estimator.

A plain function: a module, a loss and a tensor of data in; a history out.
The estimators differ in the module and the loss they pass, never in the loop.
"""

import copy
import math

import torch
from tqdm.auto import tqdm

from ._device import cpu_fast_math

# Optimizer-state entries smaller than _TINY in magnitude are set to zero every
# _SWEEP_EVERY steps and at the end of every epoch; see _zero_tiny_state.
_TINY = 1e-30
_SWEEP_EVERY = 50


@torch.no_grad()
def _zero_tiny_state(optimizer):
    """Set the optimizer's per-weight state entries below ``_TINY`` in magnitude to zero.

    A weight whose gradient stops (into or out of a dead ReLU unit; or, without
    the input centring the estimators do, from a pixel that is rarely non-zero)
    keeps Adam moments that decay geometrically: exp_avg by beta1 = 0.9 a step
    reaches the denormal range (below 1.2e-38 in float32) within a thousand
    steps, then stays at the smallest denormal, since 0.9 times it rounds back to
    it. Arithmetic on denormals is many times slower on x86 CPUs, and the flag that
    flushes them acts on the calling thread only, not on torch's worker threads.
    Swept at 1e-30, exp_avg never gets there between sweeps (0.9 ** 50 ~ 5e-3).
    Adam's step, lr * m_hat / (sqrt(v_hat) + eps), changes by far less than a
    weight's rounding: an |m| < 1e-30 contributes < lr * 1e-21 even with the first
    steps' bias correction, and where v < 1e-30, sqrt(v_hat) < 3.2e-14 is negligible
    beside eps = 1e-8 (and |m| is at most a few times sqrt(v) anyway).
    """
    for param, state in optimizer.state.items():
        for value in state.values():
            # Per-weight buffers (Adam's exp_avg, exp_avg_sq) have the weight's shape;
            # step counters and other scalars are left alone.
            if torch.is_tensor(value) and value.is_floating_point() and value.shape == param.shape:
                value.masked_fill_(value.abs() < _TINY, 0.0)


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
    X_val=None,
    verbose=False,
    desc="training",
    first_epoch=0,
    monitor_from=0,
):
    """Train ``module`` on ``X`` with minibatches until the loss stops improving.

    Parameters
    ----------
    module : torch.nn.Module
        Lives on ``X.device``; trained in place.
    loss_fn : callable
        ``loss_fn(module, xb, epoch) -> (loss, parts)``: the mean loss over the
        batch ``xb`` of shape (batch, n_features) as a scalar tensor, and a dict of
        named scalar tensors (parts of the loss, detached) to record per epoch.
    optimizer : torch.optim.Optimizer
        Over ``module``'s parameters; its state carries over between calls.
        State entries below 1e-30 in magnitude are set to zero, so that none
        becomes denormal.
    X : torch.Tensor of shape (n_samples, n_features)
        Training data, already on the module's device.
    generator : torch.Generator
        CPU generator that orders the batches of every epoch.
    batch_size : int
        Rows per step; the last batch of an epoch may be smaller and is still used.
    max_iter : int
        Number of epochs at most.
    tol, n_iter_no_change : float, int
        Training stops when the monitored loss has not improved by at least ``tol``
        for more than ``n_iter_no_change`` consecutive epochs (scikit-learn's MLP rule).
        The monitored loss is the validation loss when ``X_val`` is given, else the
        training loss.
    X_val : torch.Tensor of shape (n_val, n_features), default=None
        Held-out rows. When given, the weights of the best validation epoch are
        restored at the end.
    verbose : bool, default=False
        Show a progress bar with the running loss.
    desc : str
        Label of the progress bar.
    first_epoch : int, default=0
        Index of the first epoch, for losses that depend on it (KL warm-up) when
        training resumes.
    monitor_from : int, default=0
        Index of the first epoch that the stopping rule and the choice of best
        weights look at. Earlier epochs are trained and recorded but not compared:
        during a KL warm-up the objective itself changes from epoch to epoch.

    Returns
    -------
    history : dict
        ``loss`` (training loss per epoch), ``parts`` (dict of lists, per epoch),
        ``val_loss`` (per epoch, empty without ``X_val``), ``n_iter`` (epochs run)
        and ``converged`` (whether the stopping rule ended training).
    """
    n_samples = X.shape[0]
    history = {"loss": [], "parts": {}, "val_loss": [], "n_iter": 0, "converged": False}
    best, bad_epochs, best_state = math.inf, 0, None
    bar = tqdm(total=max_iter, desc=desc, disable=not verbose, leave=True, unit="epoch")
    with cpu_fast_math(X.device):
        for i in range(max_iter):
            epoch = first_epoch + i
            module.train()
            order = torch.randperm(n_samples, generator=generator).to(X.device)
            # Sums stay on the device: one host sync per epoch, not per batch.
            total = torch.zeros((), device=X.device)
            parts_total = {}
            for start in range(0, n_samples, batch_size):
                xb = X[order[start : start + batch_size]]  # (batch, n_features)
                loss, parts = loss_fn(module, xb, epoch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if (start // batch_size) % _SWEEP_EVERY == _SWEEP_EVERY - 1:
                    _zero_tiny_state(optimizer)
                total += loss.detach() * xb.shape[0]
                for name, value in parts.items():
                    parts_total[name] = parts_total.get(name, 0.0) + value * xb.shape[0]
            _zero_tiny_state(optimizer)  # partial_fit's epochs may be shorter than a sweep
            epoch_loss = total.item() / n_samples
            if not math.isfinite(epoch_loss):
                bar.close()
                raise FloatingPointError(
                    f"The training loss became {epoch_loss} at epoch {epoch + 1}. "
                    "Lower 'learning_rate', scale X (e.g. StandardScaler), or check X "
                    "for extreme values."
                )
            history["loss"].append(epoch_loss)
            for name, value in parts_total.items():
                history["parts"].setdefault(name, []).append(float(value) / n_samples)
            monitored = epoch_loss
            if X_val is not None:
                module.eval()
                with torch.no_grad():
                    monitored, _ = _mean_loss(module, loss_fn, X_val, batch_size, epoch)
                history["val_loss"].append(monitored)
            history["n_iter"] = i + 1
            bar.update(1)
            postfix = {"loss": f"{epoch_loss:.4g}"}
            if X_val is not None:
                postfix["val_loss"] = f"{monitored:.4g}"
            bar.set_postfix(postfix, refresh=False)

            if epoch < monitor_from:
                continue
            bad_epochs = bad_epochs + 1 if monitored > best - tol else 0
            if monitored < best:
                best = monitored
                if X_val is not None:
                    best_state = copy.deepcopy(module.state_dict())
            if bad_epochs > n_iter_no_change:
                history["converged"] = True
                break
    bar.close()
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    return history
