"""What the default neural estimators learn on the data users have, without tuning.

For each data set the default ``AutoencoderTransformer(8)`` and ``VAETransformer(8)``
(only ``random_state`` and ``device='cpu'`` set) are fitted on a training split and
reported on the held-out split: active latent units (VAE), reconstruction error
(mean squared error per entry), score (mean per sample, nats; not comparable across
estimators, see docs/vae.md), logistic-regression accuracy on the codes against
PCA(8)'s, epochs run, and the warnings ``fit`` raised.

* digits / 16: load_digits scaled to [0, 1] (1797 x 64).
* standardised digits: load_digits through StandardScaler.
* MNIST / 255: the first ``--mnist-rows`` rows of MNIST's training set (default 10000).

Usage::

    python benchmarks/bench_defaults.py [--mnist-rows N]
"""

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from _results import run_meta, write_json
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skvae import PCA, AutoencoderTransformer, VAETransformer

MNIST = Path(
    os.environ.get("SKVAE_MNIST", Path(__file__).resolve().parents[2] / "shared/data/mnist.npz")
)


def datasets(mnist_rows):
    X, y = load_digits(return_X_y=True)
    yield "digits/16", X / 16.0, y
    yield "digits std", StandardScaler().fit_transform(X), y
    if MNIST.exists():
        d = np.load(MNIST)
        X = d["x_train"][:mnist_rows].reshape(mnist_rows, -1).astype(np.float32) / 255.0
        yield f"MNIST/255 {mnist_rows}", X, d["y_train"][:mnist_rows]
    else:
        print(f"MNIST not found at {MNIST}; skipped")


def accuracy(codes_train, y_train, codes_test, y_test):
    clf = LogisticRegression(max_iter=3000).fit(codes_train, y_train)
    return clf.score(codes_test, y_test)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist-rows", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="--mnist-rows 2000")
    parser.add_argument("--data", default=None, help="mnist.npz (default: ../shared/data)")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    global MNIST
    MNIST = Path(args.data) if args.data else MNIST
    if args.quick:
        args.mnist_rows = 2_000
    meta = run_meta(args.quick, MNIST, **{"MNIST rows": args.mnist_rows, "torch threads": 1})
    rows = []
    torch.set_num_threads(1)
    print(
        f"{'data':<16} {'estimator':<12} {'active':>6} {'test MSE':>9} {'test score':>11} "
        f"{'LR acc':>7} {'PCA acc':>7} {'epochs':>6} {'fit s':>6}  warnings"
    )
    for name, X, y in datasets(args.mnist_rows):
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
        pca = PCA(8, random_state=0).fit(X_train)
        pca_acc = accuracy(pca.transform(X_train), y_train, pca.transform(X_test), y_test)
        for est in (AutoencoderTransformer(8, random_state=0, device="cpu"),
                    VAETransformer(8, random_state=0, device="cpu")):  # fmt: skip
            start = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                est.fit(X_train)
            seconds = time.perf_counter() - start
            codes = est.transform(X_test)
            mse = float(((est.inverse_transform(codes) - X_test) ** 2).mean())
            acc = accuracy(est.transform(X_train), y_train, codes, y_test)
            active = getattr(est, "n_active_units_", "-")
            warned = ",".join(sorted({w.category.__name__ for w in caught})) or "none"
            print(
                f"{name:<16} {type(est).__name__[:12]:<12} {active!s:>6} {mse:>9.4f} "
                f"{est.score(X_test):>11.1f} {acc:>7.3f} {pca_acc:>7.3f} {est.n_iter_:>6} "
                f"{seconds:>6.0f}  {warned}",
                flush=True,
            )
            rows.append(
                {
                    "data": name,
                    "estimator": type(est).__name__,
                    "active units": active,
                    "test MSE": mse,
                    "test score": est.score(X_test),
                    "LR accuracy on codes": acc,
                    "PCA(8) LR accuracy": pca_acc,
                    "epochs": est.n_iter_,
                    "fit s": seconds,
                    "warnings": warned,
                }
            )
    losing = [
        f"{r['data']} {r['estimator']}"
        for r in rows
        if r["LR accuracy on codes"] < r["PCA(8) LR accuracy"]
    ]
    description = (
        "Every neural estimator at its defaults (k=8; only random_state and device='cpu' set), "
        "fitted on 75% of each data set, figures on the held-out 25%; torch on 1 thread. "
        "A default whose codes classify worse than PCA(8)'s loses to a simple alternative: "
        + (", ".join(losing) + "." if losing else "none here.")
        + (f" Quick size: MNIST's first {args.mnist_rows} rows." if args.quick else "")
    )
    write_json(args.json, "Defaults on digits and MNIST", description, meta, [("Defaults", rows)])


if __name__ == "__main__":
    main()
