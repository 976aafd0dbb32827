"""Peak memory and time of VAETransformer.score_samples_iwae as n_samples and K grow.

A default VAETransformer(8) is fitted for a few epochs on MNIST/255 (the weights do
not change the cost), pickled, and each (n_samples, K) is scored in a fresh
subprocess, which resets its resident-set high-water mark (Linux's VmHWM, through
/proc/self/clear_refs) just before the call and reads it after: the difference
from the resident memory before the call is what scoring added. tracemalloc
does not see torch's allocations, hence the subprocesses.

Usage::

    python benchmarks/bench_scoring.py                 # the default grid
    python benchmarks/bench_scoring.py --runs 1000x50 3000x50 200x5000
"""

import argparse
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

MNIST = Path(
    os.environ.get("SKVAE_MNIST", Path(__file__).resolve().parents[2] / "shared/data/mnist.npz")
)


def data(n):
    if MNIST.exists():
        X = np.load(MNIST)["x_train"][:n].reshape(n, -1)
        return X.astype(np.float32) / 255.0
    return np.random.RandomState(0).rand(n, 784).astype(np.float32)  # same shape


def child(model_path, n, k):
    torch.set_num_threads(1)
    with open(model_path, "rb") as f:
        vae = pickle.load(f)
    X = data(n)
    vae.score_samples_iwae(X[:2], n_importance=2)  # load the kernels first
    before = reset_peak()
    start = time.process_time()
    vae.score_samples_iwae(X, n_importance=k)
    seconds = time.process_time() - start
    after = peak()
    print(f"{n:>7} {k:>6} {before / 1024:>10.0f} {after / 1024:>10.0f} "
          f"{(after - before) / 1024:>9.0f} {seconds:>8.1f}")  # fmt: skip


def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def reset_peak():
    """Current resident memory in KB, after resetting the peak where Linux allows it.

    Writing 5 to /proc/self/clear_refs resets VmHWM, so that the peak measured next
    is the call's own and not one left by loading the data or the model.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _status_kb("VmRSS")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def peak():
    """Peak resident memory in KB since :func:`reset_peak`."""
    try:
        return _status_kb("VmHWM")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", default=["1000x50", "3000x50", "1000x500", "200x5000"])
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child[0], int(args.child[1]), int(args.child[2]))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from skvae import VAETransformer

    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae = VAETransformer(8, max_iter=2, random_state=0, device="cpu").fit(data(2000))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "vae.pkl")
        with open(path, "wb") as f:
            pickle.dump(vae, f)
        print("score_samples_iwae on MNIST rows, default VAETransformer(8), one thread (CPU s)")
        print(f"{'n':>7} {'K':>6} {'RSS0 MB':>10} {'peak MB':>10} {'added MB':>9} {'CPU s':>8}")
        for run in args.runs:
            n, k = run.split("x")
            env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
            cmd = [sys.executable, __file__, "--child", path, n, k]
            subprocess.run(cmd, check=True, env=env)


if __name__ == "__main__":
    main()
