"""Epoch time of skvae's training loop against a minimal hand-written torch loop.

Both train the same architecture with the same batch size, optimizer, data
(a float32 tensor already on the device) and threads, in the same process, one
after the other; the ratio skvae / reference is the figure of merit (goal <= 1.05).

* AE:  784-512-256-32 mirrored ReLU autoencoder, squared error, batch 128.
* VAE: 784-200-200-50 tanh encoder and mirrored decoder, Bernoulli likelihood, batch 100.

Both are timed per epoch (median of several). skvae's epochs run its one
training loop on the estimator's own module, loss and optimizer, as ``fit``
does; what a one-epoch ``fit`` spends besides its epoch is printed too.

On the CPU a second table compares one torch thread with two: the AE's epoch
in skvae and in the plain loop (default Adam, the flush-denormal flag left as
the process has it), the four contenders interleaved round by round so that a
change in the machine's load hits them all. It reports the minimum and median
wall time and process CPU time per epoch, and the load average before and after;
on a machine shared with other work, wall times swing several-fold, while the
CPU time of one thread barely moves. The figure of merit is skvae's two-thread /
one-thread ratio against the plain loop's.

A third table times whole fits, as users call them, interleaved round by
round on full MNIST: a bare default-Adam torch loop of 4 epochs, skvae float32
fits of 4 epochs and of 1 epoch, and skvae bfloat16 (and float16 on CUDA) of 4
epochs; each on one thread by process CPU time, and on the default threads by
wall time, with the final training loss. Goals: skvae float32 <= 0.85x the
bare loop, bfloat16 <= 0.65x at a final loss within 1% of float32's.

With ``--floor-windows N`` a table of single training steps follows the whole
fits (CPU only): bare loop, skvae float32 and bfloat16, against the same step done
all in bfloat16 (weights, loss and optimizer too): no way to train, but the
least that a bfloat16 step of the network costs with torch's kernels, which
tells whether a bfloat16 goal can be met at all.

Usage::

    python benchmarks/bench_training.py            # MNIST, 60000 rows
    python benchmarks/bench_training.py --quick    # 6000 rows, fewer repeats
    python benchmarks/bench_training.py --threads-only --rounds 5
    python benchmarks/bench_training.py --fits-only --fit-rounds 3 [--no-wall]
    python benchmarks/bench_training.py --floor-only --floor-windows 10
"""

import argparse
import math
import os
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from _results import run_meta, write_json
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from torch import nn

from skvae import AutoencoderTransformer, VAETransformer
from skvae._utils.devices import resolve_device
from skvae.exceptions import PosteriorCollapseWarning
from skvae.neural import _training
from skvae.neural._training import train

MNIST = Path(
    os.environ.get("SKVAE_MNIST", Path(__file__).resolve().parents[2] / "shared/data/mnist.npz")
)


def load(n_rows):
    if MNIST.exists():
        X = np.load(MNIST)["x_train"].reshape(-1, 784)[:n_rows].astype(np.float32) / 255.0
        return X, f"MNIST train[:{len(X)}] from {MNIST}"
    rng = np.random.default_rng(0)
    X = (rng.random((n_rows, 784)) < 0.13).astype(np.float32)
    return X, f"synthetic binary {X.shape} (MNIST not found at {MNIST}; set SKVAE_MNIST)"


def mlp(sizes, act):
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


class RefAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = mlp([784, 512, 256, 32], nn.ReLU)
        self.dec = mlp([32, 256, 512, 784], nn.ReLU)

    def loss(self, x):
        return 0.5 * ((self.dec(self.enc(x)) - x) ** 2).sum(1).mean()


class RefVAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.trunk = nn.Sequential(mlp([784, 200, 200], nn.Tanh), nn.Tanh())
        self.mean, self.logvar = nn.Linear(200, 50), nn.Linear(200, 50)
        self.dec = mlp([50, 200, 200, 784], nn.Tanh)

    def loss(self, x):
        h = self.trunk(x)
        mu, logvar = self.mean(h), self.logvar(h)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        rec = nn.functional.binary_cross_entropy_with_logits(self.dec(z), x, reduction="none")
        kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)
        return (rec.sum(1) + kl).mean()


def print_load(when):
    """The load average before or after a table's runs: other work on the machine shows there."""
    print(f"{'load average ' + when + ':':<21}{' '.join(f'{x:.2f}' for x in os.getloadavg())}",
          flush=True)  # fmt: skip


def print_header(header):
    print(header)
    print("-" * len(header))


def plain_epoch(model, opt, X, batch_size):
    """One epoch of the plain reference loop: shuffled minibatches, default Adam.

    Returns the epoch's mean training loss as a tensor (summed on the device).
    """
    order = torch.randperm(len(X), device=X.device)
    total = torch.zeros((), device=X.device)
    for i in range(0, len(X), batch_size):
        xb = X[order[i : i + batch_size]]
        loss = model.loss(xb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.detach() * len(xb)
    return total / len(X)


def reference_epoch(model_cls, X, batch_size, n_epochs, flush_denormal):
    """Seconds per epoch of the plain loop anyone would write."""
    torch.manual_seed(0)
    model = model_cls().to(X.device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    torch.set_flush_denormal(flush_denormal)
    times = []
    for _ in range(n_epochs):
        start = time.perf_counter()
        plain_epoch(model, opt, X, batch_size)
        if X.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    torch.set_flush_denormal(False)
    return statistics.median(times)


def skvae_epoch(make, X_np, n_epochs):
    """Median seconds per epoch of skvae's training loop, and the rest of a fit.

    The epochs run :func:`skvae.neural._training.train` on the estimator's own module,
    loss and optimizer, exactly as ``fit`` calls it; the remainder is what a
    one-epoch ``fit`` spends outside its epoch (validation, building the network,
    the fitted attributes at the end).
    """
    est = make(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        est.fit(X_np)
        fit_seconds = time.perf_counter() - start
    X = torch.from_numpy(X_np).to(est.device_)
    order = torch.Generator().manual_seed(0)
    noise = torch.Generator(device=est.device_).manual_seed(1)
    times = []
    for epoch in range(n_epochs):
        start = time.perf_counter()
        one_skvae_epoch(est, X, order, noise, epoch)
        if X.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    epoch_seconds = statistics.median(times)
    return epoch_seconds, fit_seconds - epoch_seconds


def one_skvae_epoch(est, X, order, noise, epoch):
    """One epoch of skvae's training loop on a fitted estimator's module and optimizer."""
    train(
        est.module_,
        est._make_loss(noise),
        est.optimizer_,
        X,
        generator=order,
        batch_size=est.batch_size,
        max_iter=1,
        tol=0.0,
        n_iter_no_change=1,
        first_epoch=epoch,
    )


def plain_ae_epochs(X, batch_size):
    """One epoch per call of the plain AE loop; keeps its model and optimizer between calls."""
    torch.manual_seed(0)
    model = RefAE().to(X.device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    while True:
        plain_epoch(model, opt, X, batch_size)
        yield opt


def skvae_ae_epochs(make, X_np):
    """One epoch per call of skvae's training loop on a fitted AE's module and optimizer."""
    est = make(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X_np)
    X = torch.from_numpy(X_np).to(est.device_)
    order = torch.Generator().manual_seed(0)
    noise = torch.Generator(device=est.device_).manual_seed(1)
    epoch = 1
    while True:
        one_skvae_epoch(est, X, order, noise, epoch)
        epoch += 1
        yield est.optimizer_


def n_denormal_state(optimizer):
    tiny = torch.finfo(torch.float32).tiny
    return sum(
        int(((v != 0) & (v.abs() < tiny)).sum())
        for state in optimizer.state.values()
        for v in state.values()
        if v.dim()
    )


def thread_scaling(make, X_np, n_rounds):
    """Epoch times of skvae and the plain AE loop at 1 and 2 torch threads, interleaved."""
    X = torch.from_numpy(X_np)
    threads = torch.get_num_threads()
    contenders = {}
    for n_threads in (1, 2):
        torch.set_num_threads(n_threads)
        contenders["skvae", n_threads] = skvae_ae_epochs(make, X_np)
        contenders["plain", n_threads] = plain_ae_epochs(X, 128)
    wall = {key: [] for key in contenders}
    cpu = {key: [] for key in contenders}
    optimizers = {}
    print_load("before")
    for round_ in range(n_rounds + 1):  # round 0 is a warm-up, not timed
        for (name, n_threads), epochs in contenders.items():
            torch.set_num_threads(n_threads)
            start, start_cpu = time.perf_counter(), time.process_time()
            optimizers[name, n_threads] = next(epochs)
            if round_:
                wall[name, n_threads].append(time.perf_counter() - start)
                cpu[name, n_threads].append(time.process_time() - start_cpu)
        if round_:
            times = ", ".join(f"{name} {n}t {wall[name, n][-1]:.2f}" for name, n in contenders)
            print(f"round {round_} wall s: {times}", flush=True)
    torch.set_num_threads(threads)
    print_load("after")

    header = (
        f"{'AE 784-512-256-32 relu, batch 128':<34} {'threads':>7} {'wall min':>9} "
        f"{'wall med':>9} {'cpu min':>8} {'cpu med':>8} {'denormals in Adam state':>24}"
    )
    print_header(header)
    for name, n_threads in contenders:
        key = (name, n_threads)
        print(
            f"{name:<34} {n_threads:>7} {min(wall[key]):>9.2f} "
            f"{statistics.median(wall[key]):>9.2f} {min(cpu[key]):>8.2f} "
            f"{statistics.median(cpu[key]):>8.2f} {n_denormal_state(optimizers[key]):>24}"
        )
    for name in ("skvae", "plain"):
        one, two = (name, 1), (name, 2)
        print(
            f"{name}: 2 threads / 1 thread, wall min {min(wall[two]) / min(wall[one]):.2f}, "
            f"wall median {statistics.median(wall[two]) / statistics.median(wall[one]):.2f}"
        )
    print(
        f"seconds per epoch over {n_rounds} interleaved rounds after a warm-up epoch, "
        f"{len(X_np)} rows; goal: skvae's 2/1 ratio no worse than the plain loop's"
    )


def plain_fit(model_cls, X, batch_size, n_epochs, seed):
    """The bare loop's whole fit: a fresh model and default Adam, ``n_epochs`` epochs."""
    torch.manual_seed(seed)
    model = model_cls().to(X.device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(n_epochs):
        loss = plain_epoch(model, opt, X, batch_size)
    return float(loss)


def skvae_fit(make, X_np, n_epochs, seed, precision):
    """A whole skvae fit from the numpy array; the last epoch's training loss."""
    est = make(n_epochs).set_params(random_state=seed, precision=precision)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X_np)
    return est.loss_curve_[-1]


def fit_table(cases, X_np, device, n_rounds, n_epochs=4, with_wall=True):
    """Whole fits of the bare loop and of skvae, interleaved round by round.

    Each contender runs twice a round: on one torch thread, timed by process CPU
    time, and on the default threads, timed by wall clock. Every round has its
    own seed, the same for all contenders. ``with_wall=False`` skips the second
    run (its columns print nan): on a CPU that other work shares, several threads'
    wall time measures that work more than the fit.
    """
    X = torch.from_numpy(X_np).to(device)
    # On an accelerator skvae gets the rows where the bare loop has them, on the device.
    data = X_np if device.type == "cpu" else X
    threads = torch.get_num_threads()
    precisions = ["float32", "bfloat16"] + (["float16"] if device.type == "cuda" else [])
    contenders = []
    for name, ref_cls, batch, make in cases:
        model = name.split()[0]
        contenders.append(
            (
                model,
                f"bare loop, default Adam, {n_epochs} epochs",
                "bare",
                None,
                lambda seed, c=ref_cls, b=batch: plain_fit(c, X, b, n_epochs, seed),
            )
        )
        for precision in precisions:
            for epochs in (n_epochs, 1) if precision == "float32" else (n_epochs,):
                contenders.append(
                    (
                        model,
                        f"skvae {precision} fit, {epochs} epoch{'s' * (epochs > 1)}",
                        precision,
                        epochs,
                        lambda seed, m=make, e=epochs, p=precision: skvae_fit(m, data, e, seed, p),
                    )
                )
    # Warm-up on a few rows: kernels loaded, lazy initialisations done, not timed.
    X_small = X_np[:1000]
    for _name, ref_cls, batch, make in cases:
        plain_fit(ref_cls, X[:1000], batch, 1, 0)
        for precision in precisions:
            skvae_fit(make, X_small, 1, 0, precision)
    cpu = {c[:2]: [] for c in contenders}
    wall = {c[:2]: [] for c in contenders}
    loss = {c[:2]: [] for c in contenders}
    print_load("before")
    on_gpu = device.type == "cuda"
    for round_ in range(n_rounds):
        for model, label, _, _, run in contenders:
            if on_gpu:
                # One run a round: the host only queues the GPU's work, so the
                # synchronised wall clock is the figure; its process CPU time beside it.
                start, start_cpu = time.perf_counter(), time.process_time()
                loss[model, label].append(run(round_))
                torch.cuda.synchronize()
                wall[model, label].append(time.perf_counter() - start)
                cpu[model, label].append(time.process_time() - start_cpu)
                print(
                    f"round {round_ + 1} {model} {label}: wall {wall[model, label][-1]:.2f} s, "
                    f"cpu {cpu[model, label][-1]:.2f} s, loss {loss[model, label][-1]:.4f}",
                    flush=True,
                )
                continue
            torch.set_num_threads(1)
            start = time.process_time()
            loss[model, label].append(run(round_))
            cpu[model, label].append(time.process_time() - start)
            torch.set_num_threads(threads)
            wall[model, label].append(math.nan)
            if with_wall:
                start = time.perf_counter()
                run(round_)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                wall[model, label][-1] = time.perf_counter() - start
            print(
                f"round {round_ + 1} {model} {label}: cpu {cpu[model, label][-1]:.2f} s, "
                f"wall {wall[model, label][-1]:.2f} s, loss {loss[model, label][-1]:.4f}",
                flush=True,
            )
    torch.set_num_threads(threads)
    print_load("after")
    header = (
        f"{'model':<5} {'contender':<36} {'cpu min':>8} {'cpu med':>8} {'x bare':>7} "
        f"{'wall min':>9} {'wall med':>9} {'x bare':>7} {'final loss':>11} {'vs f32':>7}"
    )
    print_header(header)
    rows = []
    for model, label, kind, epochs, _ in contenders:
        key = (model, label)
        bare = next(k for k in cpu if k[0] == model and k[1].startswith("bare"))
        f32 = next(
            k for k in cpu if k[0] == model and k[1] == f"skvae float32 fit, {n_epochs} epochs"
        )
        med_loss = statistics.median(loss[key])
        rel = (
            ""
            if kind == "bare" or epochs != n_epochs
            else (f"{med_loss / statistics.median(loss[f32]) - 1:+.2%}")
        )
        print(
            f"{model:<5} {label:<36} {min(cpu[key]):>8.2f} {statistics.median(cpu[key]):>8.2f} "
            f"{statistics.median(cpu[key]) / statistics.median(cpu[bare]):>7.2f} "
            f"{min(wall[key]):>9.2f} {statistics.median(wall[key]):>9.2f} "
            f"{statistics.median(wall[key]) / statistics.median(wall[bare]):>7.2f} "
            f"{med_loss:>11.4f} {rel:>7}"
        )
        rows.append(
            {
                "model": model,
                "contender": label,
                "cpu s min (host)" if on_gpu else "cpu s min (1 thread)": min(cpu[key]),
                "cpu s median": statistics.median(cpu[key]),
                "cpu x bare": statistics.median(cpu[key]) / statistics.median(cpu[bare]),
                f"wall s min ({threads} threads)": min(wall[key]),
                "wall s median": statistics.median(wall[key]),
                "wall x bare": statistics.median(wall[key]) / statistics.median(wall[bare]),
                "final loss": med_loss,
                "loss vs float32": rel,
            }
        )
    print(
        f"{len(X_np)} rows, {n_rounds} interleaved rounds; cpu: process CPU time on "
        + ("the host, the same run as wall; " if on_gpu else "1 thread; ")
        + f"wall: wall time on {threads} threads; 'x bare': median / the bare loop's median; "
        "final loss: the last epoch's mean training loss (median over rounds), 'vs f32' "
        f"against skvae float32's at {n_epochs} epochs. Goals: skvae float32 whole fit "
        "<= 0.85x the bare loop, bfloat16 <= 0.65x at a final loss within 1%."
    )
    return rows


def step_floor(cases, X_np, n_windows, n_steps):
    """Training steps per precision against the floor of a step done all in bfloat16 (CPU).

    Four contenders per model, interleaved window by window, each window
    ``n_steps`` training steps on one torch thread, timed by process CPU time:
    the bare loop (float32, default Adam); skvae's training loop in float32
    and in bfloat16, each window one call of :func:`skvae.neural._training.train` on the
    estimator's own module, loss and optimizer, as ``fit`` makes it (each window
    also pays the loop's per-call work, a copy of the weights and the loss before
    training, measured here on one batch's rows instead of 1024 so that it stays
    under 1% of a window); and the bare model with its data, its
    weights, its loss and its (fused) Adam all in bfloat16, which rounds its
    updates away and is no way to train, but does a step's work with the fewest
    bytes and no casts at all: with torch's kernels, the least any bfloat16
    step can cost here. Returns the table's rows.
    """
    contenders = []
    for name, ref_cls, batch, make in cases:
        model = name.split()[0]
        rows = n_steps * batch
        X = torch.from_numpy(X_np[:rows])
        torch.manual_seed(0)
        bare = ref_cls()
        bare_opt = torch.optim.Adam(bare.parameters(), lr=1e-3)
        torch.manual_seed(0)
        floor = ref_cls().to(torch.bfloat16)
        floor_opt = torch.optim.Adam(floor.parameters(), lr=1e-3, fused=True)
        X_bf16 = X.to(torch.bfloat16)
        contenders.append(
            (model, "bare loop, float32, default Adam",
             lambda m=bare, o=bare_opt, x=X, b=batch: plain_epoch(m, o, x, b))
        )  # fmt: skip
        for precision in ("float32", "bfloat16"):
            est = make(1).set_params(precision=precision)
            with warnings.catch_warnings():
                # Ten batches that only build the module and optimizer the windows
                # train: what they converge or collapse to is not measured.
                warnings.simplefilter("ignore", ConvergenceWarning)
                warnings.simplefilter("ignore", PosteriorCollapseWarning)
                est.fit(X_np[: 10 * batch])
            order = torch.Generator().manual_seed(0)
            noise = torch.Generator().manual_seed(1)
            contenders.append(
                (model, f"skvae {precision}",
                 lambda e=est, x=X, o=order, n=noise, p=precision: train(
                     e.module_, e._make_loss(n), e.optimizer_, x, generator=o,
                     batch_size=e.batch_size, max_iter=1, tol=0.0, n_iter_no_change=1,
                     first_epoch=1, precision=p))
            )  # fmt: skip
        contenders.append(
            (model, "all bfloat16: weights, loss, Adam (floor)",
             lambda m=floor, o=floor_opt, x=X_bf16, b=batch: plain_epoch(m, o, x, b))
        )  # fmt: skip
    threads, start_rows = torch.get_num_threads(), _training._START_ROWS
    torch.set_num_threads(1)
    _training._START_ROWS = min(case[2] for case in cases)
    cpu = {c[:2]: [] for c in contenders}
    print_load("before")
    try:
        for window in range(n_windows + 1):  # window 0 warms up, not timed
            for model, label, run in contenders:
                start = time.process_time()
                run()
                if window:
                    cpu[model, label].append((time.process_time() - start) / n_steps * 1e3)
    finally:
        torch.set_num_threads(threads)
        _training._START_ROWS = start_rows
    print_load("after")
    header = (
        f"{'model':<5} {'contender':<42} {'ms/step min':>11} {'ms/step med':>11} "
        f"{'x bare min':>10} {'x bare med':>10}"
    )
    print_header(header)
    rows = []
    for model, label, _ in contenders:
        bare = cpu[model, "bare loop, float32, default Adam"]
        times = cpu[model, label]
        row = {
            "model": model,
            "contender": label,
            "cpu ms/step min (1 thread)": min(times),
            "cpu ms/step median": statistics.median(times),
            "x bare (min)": min(times) / min(bare),
            "x bare (median)": statistics.median(times) / statistics.median(bare),
        }
        rows.append(row)
        print(
            f"{model:<5} {label:<42} {min(times):>11.2f} {statistics.median(times):>11.2f} "
            f"{row['x bare (min)']:>10.2f} {row['x bare (median)']:>10.2f}"
        )
    print(
        f"{n_windows} interleaved windows of {n_steps} steps after a warm-up window; process "
        "CPU time on 1 thread per training step. The all-bfloat16 row is a floor, not a "
        "way to train: with torch's kernels, no bfloat16 step with float32 weights, loss "
        "and optimizer can cost less."
    )
    return rows


def grid_search_seconds(X, n_jobs):
    """Wall time of a small GridSearchCV over the autoencoder with ``n_jobs`` workers."""
    search = GridSearchCV(
        AutoencoderTransformer(hidden_layer_sizes=(256,), max_iter=3, tol=0.0, random_state=0),
        {"n_components": [8, 16]},
        cv=2,
        n_jobs=n_jobs,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        search.fit(X)
    return time.perf_counter() - start


def write_fit_json(args, meta, rows, source, n_rows, floor_rows=None):
    """The whole-fit table as a results file, with a plain verdict on each goal.

    ``floor_rows``, from :func:`step_floor`, become a second table.
    """
    if args.json is None:
        return
    on_gpu = meta.get("device", "cpu").startswith("cuda")
    # The goals are about the CPU's work on the CPU; on a GPU, about the wall clock.
    ratio, clock = ("wall x bare", "wall time") if on_gpu else ("cpu x bare", "CPU time")
    verdicts = []
    for model in dict.fromkeys(r["model"] for r in rows):
        for r in rows:
            goal = {"float32": 0.85, "bfloat16": 0.65}.get(r["contender"].split()[1].rstrip(","))
            if r["model"] != model or goal is None or "4 epochs" not in r["contender"]:
                continue
            ok = r[ratio] <= goal and (
                not r["loss vs float32"] or abs(float(r["loss vs float32"].rstrip("%"))) <= 1
            )
            verdicts.append(
                f"{model} {r['contender']}: {r[ratio]:.2f}x the bare loop ({clock}), "
                f"goal <= {goal}x"
                + (" at a loss within 1%" if "bfloat16" in r["contender"] else "")
                + (": met." if ok else ": MISSED.")
            )
    description = (
        f"Whole fits as users call them, on {n_rows} rows ({source}), {args.fit_rounds} rounds "
        + (
            "interleaved, on the GPU; wall: synchronised wall time, cpu: the host's process CPU "
            "time of the same run. "
            if on_gpu
            else "interleaved; cpu: process CPU time on 1 torch thread; wall: the default threads. "
        )
        + "x bare: median / the bare loop's median. AE 784-512-256-32 (batch 128) and VAE "
        "784-200-200-50 Bernoulli (batch 100), default Adam. "
        + " ".join(verdicts)
        + (" Quick size: a subset of MNIST." if args.quick else "")
    )
    tables = [("Whole fits: bare loop vs skvae per precision", rows)]
    if floor_rows:
        floors = [
            f"{r['model']}: {r['x bare (min)']:.2f}x (min) / {r['x bare (median)']:.2f}x (median)"
            for r in floor_rows
            if r["contender"].startswith("all bfloat16")
        ]
        description += (
            f" Second table: CPU time per training step, {args.floor_windows} interleaved "
            f"windows of {args.floor_steps} steps, 1 thread, against a step done all in "
            "bfloat16 (weights, loss and Adam; no way to train, the least a bfloat16 step "
            "costs with torch's kernels), which runs at "
            + "; ".join(floors)
            + " the bare loop's step."
        )
        tables.append(("Training steps: the all-bfloat16 floor", floor_rows))
    write_json(args.json, "Training speed against a bare torch loop", description, meta, tables)


def make_cases(device):
    """The AE and the Burda VAE, as (name, bare model class, batch, estimator for n epochs)."""
    common = dict(
        tol=0.0, n_iter_no_change=10**6, device=device, random_state=0, learning_rate=1e-3
    )
    return [
        (
            "AE 784-512-256-32 relu, batch 128",
            RefAE,
            128,
            lambda e: AutoencoderTransformer(
                32, hidden_layer_sizes=(512, 256), batch_size=128, max_iter=e, **common
            ),
        ),
        (
            "VAE 784-200-200-50 tanh bernoulli, batch 100",
            RefVAE,
            100,
            lambda e: VAETransformer(
                50,
                hidden_layer_sizes=(200, 200),
                activation="tanh",
                likelihood="bernoulli",
                batch_size=100,
                max_iter=e,
                **common,
            ),
        ),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--threads-only", action="store_true", help="only the 1- vs 2-thread table (CPU)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds of that table")
    parser.add_argument(
        "--fits-only", action="store_true", help="only the table of whole fits per precision"
    )
    parser.add_argument("--fit-rounds", type=int, default=3, help="rounds of that table")
    parser.add_argument(
        "--no-wall", action="store_true", help="that table without the default-threads runs"
    )
    parser.add_argument(
        "--floor-windows",
        type=int,
        default=0,
        help="after the whole fits, time training steps against an all-bfloat16 step in "
        "this many interleaved windows (CPU; 0: skip)",
    )
    parser.add_argument("--floor-steps", type=int, default=100, help="steps per window")
    parser.add_argument(
        "--floor-only", action="store_true", help="only that table (CPU); needs --floor-windows"
    )
    parser.add_argument("--data", default=None, help="mnist.npz (default: ../shared/data)")
    parser.add_argument("--json", default=None, help="write the whole-fit table here")
    args = parser.parse_args()
    global MNIST
    MNIST = Path(args.data) if args.data else MNIST
    meta = run_meta(args.quick, MNIST)

    n_rows, n_epochs = (6000, 3) if args.quick else (60000, 5)
    device = resolve_device(args.device)
    meta["device"] = str(device) + (
        f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    )
    X_np, source = load(n_rows)
    X = torch.from_numpy(X_np).to(device)
    print(f"data: {source}")
    print(f"device: {device}, torch {torch.__version__}, threads: {torch.get_num_threads()}")

    cases = make_cases(device)
    if (args.floor_windows or args.floor_only) and device.type != "cpu":
        parser.error("--floor-windows times bfloat16 on the CPU; use --device cpu")
    if args.floor_only:
        if not args.floor_windows:
            parser.error("--floor-only needs --floor-windows N")
        step_floor(cases, X_np, args.floor_windows, args.floor_steps)
        return
    if args.fits_only or not args.threads_only:
        if not MNIST.exists() and not args.quick:
            parser.exit(1, f"MNIST not found at {MNIST}; set SKVAE_MNIST to mnist.npz.\n")
        rows = fit_table(cases, X_np, device, args.fit_rounds, with_wall=not args.no_wall)
        floor_rows = None
        if args.floor_windows:
            floor_rows = step_floor(cases, X_np, args.floor_windows, args.floor_steps)
        write_fit_json(args, meta, rows, source, len(X_np), floor_rows)
        if args.fits_only:
            return
    if args.threads_only:
        if device.type != "cpu":
            parser.error("--threads-only compares CPU threads; use --device cpu")
        thread_scaling(cases[0][3], X_np, args.rounds)
        return
    header = (
        f"{'model':<46} {'ref s/epoch':>11} {'ref+FTZ':>9} {'skvae':>9} "
        f"{'ratio':>7} {'ratio vs FTZ':>12} {'ref rows/s':>11} {'skvae rows/s':>12} "
        f"{'fit overhead s':>15}"
    )
    print_header(header)
    for name, ref_cls, batch, make in cases:
        ref = reference_epoch(ref_cls, X, batch, n_epochs, flush_denormal=False)
        ref_ftz = reference_epoch(ref_cls, X, batch, n_epochs, flush_denormal=True)
        ours, overhead = skvae_epoch(make, X_np, n_epochs)
        print(
            f"{name:<46} {ref:>11.3f} {ref_ftz:>9.3f} {ours:>9.3f} "
            f"{ours / ref:>7.3f} {ours / ref_ftz:>12.3f} {len(X) / ref:>11.0f} "
            f"{len(X) / ours:>12.0f} {overhead:>15.3f}"
        )
    print(
        "ratio = skvae epoch time / plain reference loop (goal <= 1.05); "
        "'ref+FTZ' is the reference with denormals flushed, as skvae does on the CPU; "
        f"rows/s: training samples per second of an epoch on {device}, median epoch."
    )

    if device.type == "cpu":
        thread_scaling(cases[0][3], X_np, args.rounds)
        # Oversubscription check: joblib's workers each get cores // n_jobs torch threads,
        # so n_jobs=2 on 2 cores should take no longer than n_jobs=1, not 10-100x longer.
        X_small = X_np[: min(len(X_np), 6000)]
        grid_search_seconds(X_small, 2)  # start joblib's workers (and import torch there)
        serial = grid_search_seconds(X_small, 1)
        parallel = grid_search_seconds(X_small, 2)
        print(
            f"GridSearchCV (4 fits + refit, {len(X_small)} rows): n_jobs=1 {serial:.2f} s, "
            f"n_jobs=2 {parallel:.2f} s, ratio {parallel / serial:.2f} (oversubscription >> 1)"
        )


if __name__ == "__main__":
    main()
