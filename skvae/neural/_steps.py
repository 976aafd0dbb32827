"""One optimizer step of the training loop: Adam, mixed precision and the sweep of tiny state.

:class:`Step` owns what a step does beyond ``loss.backward(); optimizer.step()``:
the low-precision working copies and gradient scaler of mixed precision, and the
periodic zeroing of optimizer state that has decayed towards the denormal range.
"""

import contextlib

import torch

from ._modules import Residual

PRECISIONS = ("float32", "bfloat16", "float16")

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


def make_adam(params, cls=torch.optim.Adam, **kwargs):
    """``torch.optim.Adam(params, **kwargs)`` with torch's fused kernel where it has one.

    The fused step updates every parameter in one kernel: the same updates as the
    default step up to float rounding (tested), in less time per step (measured in
    ``benchmarks/bench_training.py``). Devices or torch versions without a fused
    Adam get the default one. ``cls=torch.optim.AdamW`` for decoupled weight decay.
    """
    params = list(params)
    try:
        return cls(params, fused=True, **kwargs)
    except (RuntimeError, TypeError, ValueError):
        return cls(params, **kwargs)


def decayed_weights(module):
    """The weights that ``weight_decay`` shrinks: every weight matrix (or kernel), but
    the linear path beside a residual MLP (:class:`~skvae.neural._modules.Residual`).

    The default networks start at PCA in that linear path, with the MLP at zero:
    decaying the MLP alone pulls the network towards its linear model, not towards
    zero. Biases are not decayed.
    """
    kept = {
        id(p) for m in module.modules() if isinstance(m, Residual) for p in m.linear.parameters()
    }
    return [p for p in module.parameters() if p.dim() > 1 and id(p) not in kept]


def make_optimizer(module, learning_rate, weight_decay, epsilon, *, decoupled=None):
    """The optimizer of a fit: Adam; with ``weight_decay`` > 0, Adam with decoupled
    weight decay (AdamW, Loshchilov & Hutter 2019) on :func:`decayed_weights` only.

    Two parameter groups then: the decayed weights first, the rest with no decay.
    ``decoupled=True`` builds those groups whatever ``weight_decay`` is (to load
    a saved state into them).
    """
    if not (weight_decay if decoupled is None else decoupled):
        return make_adam(module.parameters(), lr=learning_rate, eps=epsilon)
    decayed = decayed_weights(module)
    ids = {id(p) for p in decayed}
    rest = [p for p in module.parameters() if id(p) not in ids]
    groups = [
        {"params": decayed, "weight_decay": weight_decay},
        {"params": rest, "weight_decay": 0.0},
    ]
    return make_adam(groups, cls=torch.optim.AdamW, lr=learning_rate, eps=epsilon)


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


class Step:
    """``step(xb, epoch)``: one optimizer step on the batch ``xb``; returns (loss, parts).

    In float32 it is ``loss.backward(); optimizer.step()``. In "bfloat16" and
    "float16" the forward and backward passes run under ``torch.autocast`` on
    :class:`_WorkingCopies` of the weights, refreshed after each step (the weights,
    their gradients and the optimizer stay float32), "float16" with a
    ``torch.amp.GradScaler``: float16's range ends at 65504 and small gradients
    underflow, so the loss is scaled up before backward and the gradients down
    before the step, which is skipped when they overflowed. bfloat16 has float32's
    range and needs no scaling. With ``max_grad_norm``, the gradients (unscaled,
    float32) are clipped to that total 2-norm before the step
    (``torch.nn.utils.clip_grad_norm_``). Every ``_SWEEP_EVERY`` steps of an epoch, and at its
    end (:meth:`end_epoch`), tiny optimizer state is zeroed (:func:`_zero_tiny_state`).
    """

    def __init__(self, module, loss_fn, optimizer, precision, device, max_grad_norm=None):
        self.module, self.loss_fn, self.optimizer = module, loss_fn, optimizer
        self.max_grad_norm = max_grad_norm
        self.params = [p for group in optimizer.param_groups for p in group["params"]]
        self.taken = False  # whether any step has changed the weights and optimizer state
        self._in_epoch = 0
        if precision == "float32":
            self.autocast, self.copies, self.scaler = contextlib.nullcontext(), None, None
            return
        dtype = torch.bfloat16 if precision == "bfloat16" else torch.float16
        # Autocast still casts the inputs of the products and keeps the ops it lists
        # (reductions, softmax, losses) in float32.
        self.autocast = torch.autocast(device.type, dtype=dtype)
        self.copies = _WorkingCopies(module, dtype)
        self.scaler = torch.amp.GradScaler(device.type) if precision == "float16" else None

    def __call__(self, xb, epoch):
        for param in self.params:  # optimizer.zero_grad(set_to_none=True), less its overhead
            param.grad = None
        if self.copies is None:
            loss, parts = self.loss_fn(self.module, xb, epoch)
            loss.backward()
            self._clip()
            self.optimizer.step()
        else:
            with self.copies.active():
                with self.autocast:
                    loss, parts = self.loss_fn(self.module, xb, epoch)
                (loss if self.scaler is None else self.scaler.scale(loss)).backward()
            self._clip()
            if self.scaler is None:
                self.optimizer.step()
            else:
                self.scaler.step(self.optimizer)  # skipped when the gradients overflowed
                self.scaler.update()
            self.copies.refresh()
        self.taken = True
        self._in_epoch += 1
        if self._in_epoch % _SWEEP_EVERY == 0:
            _zero_tiny_state(self.optimizer)
        return loss, parts

    def _clip(self):
        if self.max_grad_norm is None:
            return
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients, not scaled ones
        torch.nn.utils.clip_grad_norm_(self.params, self.max_grad_norm)

    def state_dict(self):
        return {
            "taken": self.taken,
            "scaler": None if self.scaler is None else self.scaler.state_dict(),
        }

    def load_state_dict(self, state):
        """Continue from a saved step: the optimizer and module are loaded already."""
        self.taken = state["taken"]
        if self.scaler is not None:
            self.scaler.load_state_dict(state["scaler"])
        if self.copies is not None:
            self.copies.refresh()

    def end_epoch(self):
        _zero_tiny_state(self.optimizer)  # partial_fit's epochs may be shorter than a sweep
        self._in_epoch = 0
