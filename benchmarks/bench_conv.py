"""The built-in convolutional VAE against the MLP VAE on MNIST 28x28.

Both are VAETransformer with the same latent size, likelihood, batch size, learning
rate and number of epochs (tol=0: every fit runs all of them); they differ only in
``architecture``. For each, on held-out digits: the ELBO (``score``, with
``n_score_samples`` draws) and the importance-weighted bound on log p(x)
(``score_samples_iwae``, K draws), in nats per digit, higher is better; and the
process CPU time per training epoch at one torch thread. The fits alternate
(MLP, conv, MLP, conv, ...) over ``--seeds``, so that both see the same machine
load; the table gives the median and the minimum over the seeds.

Usage::

    python benchmarks/bench_conv.py                        # 10000 digits, 10 epochs, K=50
    python benchmarks/bench_conv.py --n-train 2000 --epochs 3 --seeds 1   # a quick look
"""

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

from skvae import VAETransformer

MNIST = Path(
    os.environ.get("SKVAE_MNIST", Path(__file__).resolve().parents[2] / "shared/data/mnist.npz")
)


def load(n_train, n_test):
    if not MNIST.exists():
        sys.exit(f"MNIST not found at {MNIST}; set SKVAE_MNIST to the mnist.npz path.")
    d = np.load(MNIST)
    X = d["x_train"][:n_train].reshape(n_train, -1).astype(np.float32) / 255.0
    X_test = d["x_test"][:n_test].reshape(n_test, -1).astype(np.float32) / 255.0
    return X, X_test


def run(architecture, seed, X, X_test, args):
    vae = VAETransformer(
        args.n_components,
        architecture=architecture,
        input_shape=(1, 28, 28),
        likelihood=args.likelihood,
        max_iter=args.epochs,
        tol=0.0,
        batch_size=args.batch_size,
        device="cpu",
        random_state=seed,
    )
    with warnings.catch_warnings():
        # tol=0 runs every epoch on purpose; that is what the warning would say.
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.process_time()
        vae.fit(X)
        seconds = time.process_time() - start
    n_params = sum(p.numel() for p in vae.module_.parameters())
    return {
        "epoch_s": seconds / vae.n_iter_,
        "elbo": vae.score(X_test),
        "iwae": float(vae.score_samples_iwae(X_test, n_importance=args.k).mean()),
        "train_elbo": vae.score(X[: len(X_test)]),
        "params": n_params,
        "active": vae.n_active_units_,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-train", type=int, default=10000)
    parser.add_argument("--n-test", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--n-components", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument(
        "--likelihood", default="bernoulli", choices=("bernoulli", "continuous_bernoulli")
    )
    parser.add_argument("--k", type=int, default=50, help="importance samples of the IWAE bound")
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    X, X_test = load(args.n_train, args.n_test)
    print(
        f"MNIST/255: {args.n_train} training and {args.n_test} test digits, "
        f"likelihood={args.likelihood!r}, n_components={args.n_components}, "
        f"{args.epochs} epochs of batch {args.batch_size}, K={args.k}, seeds 0-{args.seeds - 1}, "
        f"torch {torch.__version__}, 1 thread"
    )
    results = {"mlp": [], "conv": []}
    for seed in range(args.seeds):
        for architecture in results:
            results[architecture].append(run(architecture, seed, X, X_test, args))
    print()
    header = (
        f"{'architecture':<13}{'parameters':>11}{'epoch s (median/min)':>22}"
        f"{'test ELBO':>11}{'test IWAE':>11}{'train ELBO':>12}{'active':>8}"
    )
    print(header)
    print("-" * len(header))
    for architecture, rows in results.items():
        times = [r["epoch_s"] for r in rows]

        def med(key, rows=rows):
            return float(np.median([r[key] for r in rows]))

        print(
            f"{architecture:<13}{rows[0]['params']:>11,}"
            f"{np.median(times):>13.2f} / {min(times):<6.2f}"
            f"{med('elbo'):>11.1f}{med('iwae'):>11.1f}{med('train_elbo'):>12.1f}"
            f"{med('active'):>8.0f}"
        )
    print("\nELBO and IWAE: medians over the seeds, nats per digit (higher is better).")


if __name__ == "__main__":
    main()
