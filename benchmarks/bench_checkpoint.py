"""What a checkpoint costs: one save's time as a fraction of an epoch, on full MNIST.

The two networks of ``bench_training.py``: the 784-512-256-32 ReLU autoencoder
(batches of 128) and Burda's 784-200-200-50 tanh Bernoulli VAE (batches of 100),
each fitted for a few epochs with ``checkpoint=`` saving after every epoch. An
epoch's time is the ``seconds`` measure the callbacks receive (the epoch's steps
and its loss, not the save); a save's time is the wall time of
``Checkpoint.write``: building the payload, ``torch.save``, ``fsync`` and the
rename. Wall time, since the fsync waits for the disk.

Usage::

    python benchmarks/bench_checkpoint.py                 # 60000 rows, 3 epochs each
    python benchmarks/bench_checkpoint.py --quick         # 6000 rows, 2 epochs
"""

import argparse
import os
import statistics
import tempfile
import time
import warnings

import numpy as np
import torch
from _results import mnist_path, print_table, run_meta, write_json
from sklearn.exceptions import ConvergenceWarning

from skvae import AutoencoderTransformer, VAETransformer
from skvae.neural import _checkpoint


def cases(epochs):
    common = dict(max_iter=epochs, tol=0.0, n_iter_no_change=10**6, random_state=0)
    return [
        (
            "AE 784-512-256-32 relu, batch 128",
            AutoencoderTransformer(32, hidden_layer_sizes=(512, 256), batch_size=128, **common),
        ),
        (
            "VAE 784-200-200-50 tanh bernoulli, batch 100",
            VAETransformer(
                50,
                hidden_layer_sizes=(200, 200),
                activation="tanh",
                likelihood="bernoulli",
                batch_size=100,
                **common,
            ),
        ),
    ]


def measure(est, X, folder):
    """Epoch seconds, save seconds and the file's size for one fit saving every epoch."""
    saves, epochs = [], []
    write = _checkpoint.Checkpoint.write

    def timed_write(self, state):
        start = time.perf_counter()
        write(self, state)
        saves.append(time.perf_counter() - start)

    path = os.path.join(folder, "run.skvae")
    est.set_params(checkpoint=path, callbacks=[lambda e, i, m: epochs.append(m["seconds"])])
    _checkpoint.Checkpoint.write = timed_write
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X)
    finally:
        _checkpoint.Checkpoint.write = write
    size = os.path.getsize(path)
    os.remove(path)
    return epochs, saves, size


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="6000 rows, 2 epochs")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--mnist", default=None)
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()
    epochs = args.epochs or (2 if args.quick else 3)
    torch.set_num_threads(args.threads)
    X = np.load(mnist_path(args.mnist))["x_train"].reshape(-1, 784).astype(np.float32) / 255
    if args.quick:
        X = X[:6000]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, est in cases(epochs):
            epoch_s, save_s, size = measure(est, X, folder)
            epoch, save = statistics.median(epoch_s), statistics.median(save_s)
            rows.append(
                {
                    "model": name,
                    "rows": len(X),
                    "epochs": len(epoch_s),
                    "epoch s (median)": round(epoch, 3),
                    "save ms (median)": round(save * 1e3, 1),
                    "save ms (max)": round(max(save_s) * 1e3, 1),
                    "file MB": round(size / 2**20, 2),
                    "save / epoch": f"{save / epoch:.2%}",
                }
            )
    title = f"One checkpoint save against one epoch, MNIST ({len(X)} rows, {args.threads} thread)"
    print_table(title, rows)
    if args.json:
        meta = run_meta(args.quick, data=f"MNIST {len(X)} rows", threads=args.threads)
        write_json(args.json, "Checkpoint cost", __doc__.splitlines()[0], meta, [(title, rows)])


if __name__ == "__main__":
    main()
