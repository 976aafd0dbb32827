"""Training speed against the peers a user would pick instead of skvae.

The same 784-512-256-32 MLP autoencoder (ReLU, mirrored decoder, linear output,
Adam at 1e-3, batch 128, shuffled minibatches) trained on MNIST / 255 by:

* a minimal torch loop (``bench_training.RefAE``: the loop anyone would write);
* skvae ``AutoencoderTransformer(32, hidden_layer_sizes=(512, 256))``;
* skorch ``NeuralNetRegressor`` fitted on (X, X);
* scikit-learn ``MLPRegressor`` fitted on (X, X), hidden layers (512, 256, 32, 256, 512);
* PyOD ``AutoEncoder`` (hidden_neuron_list=[512, 256, 32], no batch norm, no dropout,
  no preprocessing, no weight decay).

Each contender runs a whole fit of ``--epochs`` epochs from the numpy array,
as a user calls it, so each pays its own fixed costs (building the network,
validation; PyOD also scores the training rows once at the end of ``fit``).
The contenders are interleaved round by round, each round with its own seed;
each runs twice a round, on one torch/BLAS thread timed by process CPU time
(steady on a shared machine) and on the default threads timed by wall clock.
Reported: min and median seconds per epoch (fit time / epochs), the median's
ratio to the minimal loop, samples per second, and the training rows' mean
squared error per pixel after the fit (a check that every contender trained).
A peer that is not installed is reported as missing, not fatal
(``pip install skvae[benchmarks]`` installs them).

Goal: skvae <= 1.0x the minimal loop, and faster than every peer.

Usage::

    python benchmarks/bench_peers.py [--quick] [--data PATH] [--json PATH]
"""

import argparse
import os
import statistics
import sys
import time
import warnings

import numpy as np
import torch
from _results import mnist_path, print_table, run_meta, write_json
from bench_training import RefAE, plain_epoch
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits
from torch import nn

from skvae import AutoencoderTransformer

HIDDEN = (512, 256)
K = 32
BATCH = 128
LR = 1e-3


def minimal_loop(X, n_epochs, seed):
    torch.manual_seed(seed)
    model = RefAE()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    Xt = torch.from_numpy(X)
    for _ in range(n_epochs):
        plain_epoch(model, opt, Xt, BATCH)

    def predict(A):
        with torch.inference_mode():
            return model.dec(model.enc(torch.from_numpy(A))).numpy()

    return predict


def skvae_fit(X, n_epochs, seed):
    est = AutoencoderTransformer(
        K,
        hidden_layer_sizes=HIDDEN,
        batch_size=BATCH,
        learning_rate=LR,
        max_iter=n_epochs,
        tol=0.0,
        n_iter_no_change=10**6,
        device="cpu",
        random_state=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a fixed epoch budget, by design
        est.fit(X)
    return lambda A: est.inverse_transform(est.transform(A))


def skorch_fit(X, n_epochs, seed):
    from skorch import NeuralNetRegressor

    torch.manual_seed(seed)
    ref = RefAE()
    net = NeuralNetRegressor(
        nn.Sequential(ref.enc, ref.dec),
        max_epochs=n_epochs,
        lr=LR,
        optimizer=torch.optim.Adam,
        batch_size=BATCH,
        iterator_train__shuffle=True,
        train_split=None,
        verbose=0,
    )
    net.fit(X, X)
    return net.predict


def mlp_fit(X, n_epochs, seed):
    from sklearn.neural_network import MLPRegressor

    est = MLPRegressor(
        hidden_layer_sizes=HIDDEN + (K,) + HIDDEN[::-1],
        solver="adam",
        learning_rate_init=LR,
        batch_size=BATCH,
        max_iter=n_epochs,
        tol=0.0,
        n_iter_no_change=10**6,
        shuffle=True,
        random_state=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, X)
    return est.predict


def pyod_fit(X, n_epochs, seed):
    from pyod.models.auto_encoder import AutoEncoder

    est = AutoEncoder(
        hidden_neuron_list=[*HIDDEN, K],
        batch_norm=False,
        dropout_rate=0.0,
        preprocessing=False,
        optimizer_params={"weight_decay": 0.0},
        epoch_num=n_epochs,
        batch_size=BATCH,
        lr=LR,
        device="cpu",
        random_state=seed,
        verbose=0,
    )
    est.fit(X)

    def predict(A):
        est.model.eval()
        with torch.inference_mode():
            return est.model(torch.from_numpy(A)).numpy()

    return predict


CONTENDERS = {
    "minimal torch loop": (minimal_loop, None),
    "skvae AutoencoderTransformer": (skvae_fit, None),
    "skorch NeuralNetRegressor": (skorch_fit, "skorch"),
    "sklearn MLPRegressor": (mlp_fit, None),
    "PyOD AutoEncoder": (pyod_fit, "pyod"),
}


def available():
    found, missing = {}, {}
    for name, (fit, module) in CONTENDERS.items():
        if module is None:
            found[name] = fit
            continue
        try:
            mod = __import__(module)
            found[name] = fit
            print(f"{name}: {module} {mod.__version__}")
        except ImportError as exc:
            missing[name] = f"not installed ({exc}); pip install skvae[benchmarks]"
    return found, missing


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="6000 rows, 2 epochs, 5 rounds")
    parser.add_argument("--data", default=None, help="mnist.npz (default: ../shared/data)")
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args()
    n_rows, n_epochs, n_rounds = (6000, 2, 5) if args.quick else (60000, 3, 5)
    n_rows, n_epochs = args.rows or n_rows, args.epochs or n_epochs
    n_rounds = args.rounds or n_rounds
    path = mnist_path(args.data)
    if not path.exists():
        sys.exit(f"MNIST not found at {path}; pass --data or set SKVAE_MNIST. Skipped.")
    meta = run_meta(args.quick, path, rows=n_rows, epochs=n_epochs, rounds=n_rounds)
    X = np.load(path)["x_train"][:n_rows].reshape(n_rows, -1).astype(np.float32) / 255.0
    found, missing = available()
    threads = torch.get_num_threads()
    for fit in found.values():  # warm-up: imports, kernels, lazy initialisations; not timed
        fit(X[:512], 1, 0)
    cpu = {name: [] for name in found}
    wall = {name: [] for name in found}
    mse = {}
    for round_ in range(n_rounds):
        for name, fit in found.items():
            torch.set_num_threads(1)
            with threadpool_limits(1):
                start = time.process_time()
                predict = fit(X, n_epochs, round_)
                cpu[name].append(time.process_time() - start)
            torch.set_num_threads(threads)
            start = time.perf_counter()
            fit(X, n_epochs, round_)
            wall[name].append(time.perf_counter() - start)
            mse[name] = float(((predict(X[:2000]) - X[:2000]) ** 2).mean())
            print(
                f"round {round_ + 1} {name}: cpu {cpu[name][-1]:.2f} s, "
                f"wall {wall[name][-1]:.2f} s, train MSE/pixel {mse[name]:.4f}",
                flush=True,
            )
    meta["load average after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    ref = "minimal torch loop"
    rows = []
    for name in found:
        cpu_med, wall_med = statistics.median(cpu[name]), statistics.median(wall[name])
        rows.append(
            {
                "contender": name,
                "cpu s/epoch min": min(cpu[name]) / n_epochs,
                "cpu s/epoch med": cpu_med / n_epochs,
                "cpu x minimal loop": cpu_med / statistics.median(cpu[ref]),
                "cpu samples/s": n_rows * n_epochs / cpu_med,
                f"wall s/epoch min ({threads} threads)": min(wall[name]) / n_epochs,
                "wall s/epoch med": wall_med / n_epochs,
                "wall x minimal loop": wall_med / statistics.median(wall[ref]),
                "train MSE/pixel": mse[name],
            }
        )
    for name, why in missing.items():
        rows.append({"contender": name, "cpu s/epoch min": why})
    title = f"AE 784-512-256-32, batch {BATCH}, {n_rows} MNIST rows, {n_epochs}-epoch fits"
    print_table(title, rows)

    ours = next(r for r in rows if r["contender"].startswith("skvae"))
    verdicts = []
    ratio = ours["cpu x minimal loop"]
    verdicts.append(
        f"skvae / minimal loop (CPU time, 1 thread): {ratio:.2f}x, goal <= 1.0x: "
        + ("met." if ratio <= 1.0 else "MISSED.")
    )
    slower = [
        r["contender"]
        for r in rows
        if "cpu x minimal loop" in r
        and r["contender"] not in (ours["contender"], ref)
        and r["cpu x minimal loop"] <= ratio
    ]
    peers = [r["contender"] for r in rows if r["contender"] not in (ours["contender"], ref)]
    verdicts.append(
        "faster than every peer: "
        + ("met." if not slower else f"MISSED (not faster than {', '.join(slower)}).")
    )
    if missing:
        verdicts.append(f"missing peers: {', '.join(missing)}.")
    print("\n".join(verdicts))
    description = (
        f"Whole fits of {n_epochs} epochs on {n_rows} rows of MNIST/255, {n_rounds} rounds with "
        "the contenders interleaved; s/epoch = fit time / epochs (each contender's fixed costs "
        "included; PyOD's fit also scores the training rows once). cpu: process CPU time with "
        f"torch and BLAS on 1 thread; wall: wall time on the default {threads} threads. "
        "MLPRegressor and PyOD put a ReLU on the 32-unit code too (neither has a linear "
        "bottleneck option); the others keep it linear. "
        f"Peers compared: {', '.join(peers)}. "
        + " ".join(verdicts)
        + (" Quick size: a subset and few epochs, not the published figures." if args.quick else "")
    )
    write_json(args.json, "Training speed against the peers", description, meta, [(title, rows)])


if __name__ == "__main__":
    main()
