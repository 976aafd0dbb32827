"""Fits of the default networks at one thread and at torch's default, quiet or loaded.

The measurements behind skvae's thread policy (docs/guide/devices.md, Threads):
``AutoencoderTransformer(8)`` and ``VAETransformer(8)`` with default parameters
(a fixed number of epochs, ``tol=0``, so that every setting does the same work)
on digits / 16, breast cancer standardised and a 6000-row MNIST subset. Each
cell runs in a fresh process: ``1`` and ``2`` set ``OMP_NUM_THREADS`` (so
skvae's policy stands aside), ``policy`` leaves torch at its default and lets
skvae choose. ``--burn N`` keeps N extra processes
spinning on the CPU while measuring (a loaded machine); they are stopped at
the end. Seconds are wall-clock, the median of ``--repeats`` fits in the process.

Usage::

    python benchmarks/bench_threads.py [--burn 2] [--settings 1 2 policy] [--repeats 3]
"""

import argparse
import os
import subprocess
import sys
import time
import warnings

EPOCHS = {"digits": 15, "cancer": 40, "mnist": 6}


def child(data, model, setting, repeats, mnist):
    import numpy as np
    from sklearn.datasets import load_breast_cancer, load_digits
    from sklearn.preprocessing import StandardScaler

    from skvae import AutoencoderTransformer, VAETransformer

    if data == "digits":
        X = (load_digits().data / 16).astype(np.float32)
    elif data == "cancer":
        X = StandardScaler().fit_transform(load_breast_cancer().data).astype(np.float32)
    else:
        with np.load(mnist) as f:
            X = (f["x_train"][:6000].reshape(6000, -1) / 255).astype(np.float32)
    cls = AutoencoderTransformer if model == "AE" else VAETransformer
    times = []
    for seed in range(repeats):
        est = cls(8, max_iter=EPOCHS[data], tol=0, device="cpu", random_state=seed)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # max_iter reached: the point of a fixed budget
            est.fit(X)
        times.append(time.perf_counter() - start)
    print(f"{np.median(times):.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burn", type=int, default=0, help="spinning processes while measuring")
    parser.add_argument("--settings", nargs="+", default=["1", "2", "policy"])
    parser.add_argument("--data", nargs="+", default=list(EPOCHS), choices=list(EPOCHS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mnist", default=None, help="mnist.npz (default: ../shared/data)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _results import mnist_path

    mnist = str(mnist_path(args.mnist))
    if args.child:
        return child(*args.child, args.repeats, mnist)
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    burners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.burn)
    ]
    try:
        print(f"{'data':<8} {'model':<5} " + " ".join(f"{s:>8}" for s in args.settings) + "  load")
        for data in args.data:
            for model in ("AE", "VAE"):
                cells = []
                for setting in args.settings:
                    threads = {} if setting == "policy" else {"OMP_NUM_THREADS": setting}
                    out = subprocess.run(
                        [sys.executable, __file__, "--repeats", str(args.repeats),
                         "--mnist", mnist, "--child", data, model, setting],
                        capture_output=True, text=True, env={**env, **threads}, check=True,
                    ).stdout  # fmt: skip
                    cells.append(float(out.split()[-1]))
                load = " ".join(f"{x:.1f}" for x in os.getloadavg())
                print(
                    f"{data:<8} {model:<5} " + " ".join(f"{c:>8.2f}" for c in cells) + f"  {load}",
                    flush=True,
                )
    finally:
        for burner in burners:
            burner.kill()


if __name__ == "__main__":
    main()
