"""The one training loop behind every neural estimator.

A plain function: a module, a loss and a tensor of data in; a history out.
The estimators differ in the module and the loss they pass, never in the loop.
"""

import contextlib
import math

import torch
from tqdm.auto import tqdm

from .._utils.denormals import cpu_fast_math
from .._utils.threads import threads_for

# Rows on which the loss before training is measured when there is no validation
# set: a stable estimate, and a fraction of an epoch on large X.
_START_ROWS = 1024


# Optimizer-state entries smaller than _TINY in magnitude are set to zero every
# _SWEEP_EVERY steps and at the end of every epoch; see _zero_tiny_state.
_TINY = 1e-30
_SWEEP_EVERY = 100


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
    Swept at 1e-30, exp_avg never gets there between sweeps (0.9 ** 100 ~ 3e-5,
    so it stays above 2e-35).
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


def make_adam(params, **kwargs):
    """``torch.optim.Adam(params, **kwargs)`` with torch's fused kernel where it has one.

    The fused step updates every parameter in one kernel: the same updates as the
    default step up to float rounding (tested), in less time per step (measured in
    ``benchmarks/bench_training.py``). Devices or torch versions without a fused
    Adam get the default one.
    """
    params = list(params)
    try:
        return torch.optim.Adam(params, fused=True, **kwargs)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, **kwargs)


PRECISIONS = ("float32", "bfloat16", "float16")


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


def check_precision(precision, device, estimator_name):
    """Refuse a ``precision`` that training on ``device`` cannot honour.

    bfloat16 autocast runs on the CPU and on CUDA devices that have bfloat16;
    float16 needs gradient scaling, which skvae does on CUDA only.
    """
    if precision == "float32":
        return
    if precision == "float16" and device.type != "cuda":
        raise ValueError(
            f"precision='float16' trains with gradient scaling, which {estimator_name} "
            f"does on CUDA devices only; got device={str(device)!r}. Use "
            "precision='bfloat16' (the same speed-up without scaling) or 'float32', or "
            "device='cuda'."
        )
    if device.type not in ("cpu", "cuda"):
        raise ValueError(
            f"precision={precision!r} autocasts on the CPU and CUDA devices only; "
            f"{estimator_name} got device={str(device)!r}. Use precision='float32', "
            "or device='cpu'."
        )
    if precision == "bfloat16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError(
            f"precision='bfloat16' needs a CUDA device with bfloat16 arithmetic; "
            f"{estimator_name}'s device {str(device)!r} has none. Use precision='float16' "
            "or 'float32'."
        )


def _mixed_precision(precision, module, device):
    """The autocast context of the training steps, working copies and gradient scaler.

    None for the last two in float32.
    """
    if precision == "float32":
        return contextlib.nullcontext(), None, None
    dtype = torch.bfloat16 if precision == "bfloat16" else torch.float16
    # Autocast still casts the inputs of the products and keeps the ops it lists
    # (reductions, softmax, losses) in float32.
    autocast = torch.autocast(device.type, dtype=dtype)
    # float16's range ends at 65504 and small gradients underflow: the loss is scaled
    # up before backward, the gradients down before the step, which is skipped when
    # they overflowed. bfloat16 has float32's range and needs no scaling.
    scaler = torch.amp.GradScaler(device.type) if precision == "float16" else None
    return autocast, _WorkingCopies(module, dtype), scaler


class _WorkingCopies:
    """Low-precision copies of a module's float32 parameters for mixed-precision steps.

    Autocast alone casts every weight to the low dtype in each step's forward pass
    and every gradient back in its backward pass: one small kernel and one autograd
    node per tensor and step. Here the forward and backward passes run on copies
    made once and refreshed after each optimizer step, and their gradients come back
    to the float32 parameters in one loop. The arithmetic is autocast's: products
    of rounded weights, float32 master weights that the optimizer updates.
    Parameters already in the low dtype (or not floating point) are left alone.
    """

    def __init__(self, module, dtype):
        self.params = [p for p in module.parameters() if p.is_floating_point() and p.dtype != dtype]
        self.masters = [p.data for p in self.params]
        self.copies = [m.to(dtype) for m in self.masters]
        self.grads = [None] * len(self.params)

    @contextlib.contextmanager
    def active(self):
        """The parameters compute with the copies; their gradients come back float32."""
        for param, copy in zip(self.params, self.copies):
            param.data = copy
        try:
            yield
        finally:
            for i, (param, master) in enumerate(zip(self.params, self.masters)):
                low, param.grad = param.grad, None
                param.data = master
                if low is not None:
                    if self.grads[i] is None:
                        self.grads[i] = torch.empty_like(master)
                    param.grad = self.grads[i].copy_(low)

    @torch.no_grad()
    def refresh(self):
        """Round the float32 parameters, as the optimizer left them, into the copies."""
        for copy, master in zip(self.copies, self.masters):
            copy.copy_(master)


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


class _Weights:
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
):
    """Train ``module`` on ``X`` with minibatches until the loss stops improving.

    The loss is first measured on the weights training starts from. Training
    then keeps a copy of the weights of its best epoch, which it restores when
    it is interrupted (KeyboardInterrupt) after at least one full epoch, and at
    the end when ``X_val`` is given. When the loss diverges, it restores the best
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
        Show a progress bar with the running loss.
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

    Returns
    -------
    history : dict
        ``loss`` (training loss per epoch), ``parts`` (dict of lists, per epoch),
        ``val_loss`` (per epoch, empty without ``X_val``), ``n_iter`` (epochs run),
        ``converged`` (whether the stopping rule ended training), ``start_loss``
        (the monitored loss before the first epoch), ``best_epoch`` and
        ``best_loss`` (the epoch whose weights the module holds if they were
        restored, counted from 1, ``first_epoch`` for the starting weights, and
        their monitored loss), ``diverged`` and ``interrupted``.
    """
    n_samples = X.shape[0]
    history = {
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
    }
    weights = _Weights(module)
    # index_select gathers a tensor's rows about twice as fast as X[rows]; a
    # skvae.neural._data.Rows reads them from its source.
    take = X.__getitem__ if not torch.is_tensor(X) else lambda rows: X.index_select(0, rows)
    autocast, copies, scaler = _mixed_precision(precision, module, X.device)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    stepped = False
    bar = tqdm(total=max_iter, desc=desc, disable=not verbose, leave=True, unit="epoch")

    def measure(X_eval):
        """The loss of the current weights, with the objective of the first monitored epoch."""
        module.eval()
        with torch.no_grad():
            loss, _ = _mean_loss(
                module, loss_fn, X_eval, batch_size, max(first_epoch, monitor_from)
            )
        return loss

    try:
        with cpu_fast_math(X.device), threads_for(module, batch_size, X.device):
            if X_val is None:
                # Evenly spaced rows: no draw from the generator, so the batch order
                # is the same as a loop without this measurement would take.
                step = max(1, n_samples // _START_ROWS)
                X_start = X[::step][:_START_ROWS]
            else:
                X_start = X_val
            start = measure(X_start)
            if not math.isfinite(start):
                raise FloatingPointError(
                    f"The loss is {start} before training, on the network's starting "
                    "weights. Scale X (e.g. StandardScaler), or check X for extreme values."
                )
            history["start_loss"] = history["best_loss"] = start
            best, bad_epochs = math.inf, 0
            for i in range(max_iter):
                epoch = first_epoch + i
                module.train()
                order = torch.randperm(n_samples, generator=generator).to(X.device)
                # Sums stay on the device: one host sync per epoch, not per batch.
                total = torch.zeros((), device=X.device)
                parts_total = {}
                for start_row in range(0, n_samples, batch_size):
                    xb = take(order[start_row : start_row + batch_size])  # (batch, n_features)
                    for param in params:  # optimizer.zero_grad(set_to_none=True), less its overhead
                        param.grad = None
                    if copies is None:
                        loss, parts = loss_fn(module, xb, epoch)
                        loss.backward()
                        optimizer.step()
                    else:
                        with copies.active():
                            with autocast:
                                loss, parts = loss_fn(module, xb, epoch)
                            (loss if scaler is None else scaler.scale(loss)).backward()
                        if scaler is None:
                            optimizer.step()
                        else:
                            scaler.step(optimizer)  # skipped when the gradients overflowed
                            scaler.update()
                        copies.refresh()
                    stepped = True
                    if (start_row // batch_size) % _SWEEP_EVERY == _SWEEP_EVERY - 1:
                        _zero_tiny_state(optimizer)
                    # One in-place kernel per sum and step: add_(value, alpha=rows).
                    total.add_(loss.detach(), alpha=xb.shape[0])
                    for name, value in parts.items():
                        if name not in parts_total:
                            parts_total[name] = torch.zeros_like(value)
                        parts_total[name].add_(value, alpha=xb.shape[0])
                _zero_tiny_state(optimizer)  # partial_fit's epochs may be shorter than a sweep
                epoch_loss = total.item() / n_samples
                history["loss"].append(epoch_loss)
                for name, value in parts_total.items():
                    history["parts"].setdefault(name, []).append(float(value) / n_samples)
                monitored = epoch_loss
                if X_val is not None:
                    if math.isfinite(epoch_loss):
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

                if not math.isfinite(monitored):
                    break
                if epoch < monitor_from:
                    continue
                if monitored < history["best_loss"]:
                    history["best_loss"], history["best_epoch"] = monitored, epoch + 1
                    weights.save_best()
                scale = abs(null_loss - min(best, monitored))
                bad_epochs = bad_epochs + 1 if monitored > best - tol * scale else 0
                best = min(best, monitored)
                if bad_epochs > n_iter_no_change:
                    history["converged"] = True
                    bar.total = bar.n  # the bar ends at 100% of the epochs run, and says why
                    bar.set_postfix({**postfix, "stopped": "converged"}, refresh=False)
                    break
            if history["n_iter"]:
                # The mean of the last epochs, as one noisy epoch does not make a divergence.
                curve = history["val_loss" if X_val is not None else "loss"]
                tail = (curve[max(0, monitor_from - first_epoch) :] or curve)[
                    -n_iter_no_change - 1 :
                ]
                final = sum(tail) / len(tail)
                history["diverged"] = not math.isfinite(final) or final > max(start, diverged_above)
            if history["diverged"]:
                _recover(weights, optimizer, history, lambda: measure(X_start), first_epoch)
    except KeyboardInterrupt:
        if not history["n_iter"]:
            _roll_back(weights, optimizer, stepped)
            raise
        history["interrupted"] = True
    except BaseException:
        _roll_back(weights, optimizer, stepped)
        raise
    finally:
        bar.close()
    if history["interrupted"] or (X_val is not None and not history["diverged"]):
        weights.restore("best")
    module.eval()
    return history


def _recover(weights, optimizer, history, measure, first_epoch):
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


def _roll_back(weights, optimizer, stepped):
    """Put the starting weights back; the optimizer's moments no longer match them."""
    weights.restore("start")
    if stepped:
        optimizer.state.clear()
