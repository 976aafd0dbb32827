"""Peak host memory of the neural estimators' data path, against the size of X.

Each case runs in a fresh subprocess, which builds its X, measures its resident
memory, then runs the one call measured (a fit of one epoch, a transform or a
score) while a thread samples /proc/self/status every 2 ms. Printed per case:

- X: the bytes of the caller's array (on disk for a memmap);
- anon: the peak of anonymous resident memory (RssAnon: heap, numpy and torch
  buffers) during the call, above what the process held before it;
- file: the same for file-backed resident memory (RssFile: a memmap's pages,
  which the kernel can drop and read again; they count in RSS while mapped);
- traced: tracemalloc's peak during the call (numpy and Python allocations; not
  torch's own buffers), in a second fresh process.

A second table compares the scores of the float64 scoring copy of the network
(what score_samples computes with) with those of the float32 network itself, on
the digits and on MNIST, and the time of each (process CPU time, one thread).

Usage: python benchmarks/bench_memory.py [--rows 60000] [--only {fit,infer,scores}]
Needs MNIST at ../shared/data/mnist.npz (or $SKVAE_MNIST); exits with a message
when it is absent. Linux only (/proc).
"""

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MNIST = Path(os.environ.get("SKVAE_MNIST", REPO.parent / "shared" / "data" / "mnist.npz"))
MB = 2**20
FIT_CASES = ("uint8", "float32", "float64", "memmap-uint8", "memmap-float32", "memmap-float64")
INFER_CASES = ("transform", "score")


def _status():
    """RssAnon and RssFile of this process, in bytes."""
    values = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("RssAnon:", "RssFile:")):
                name, kb = line.split()[:2]
                values[name[:-1]] = int(kb) * 1024
    return values["RssAnon"], values["RssFile"]


class PeakSampler:
    """The peak of RssAnon and RssFile above their values at start, sampled every 2 ms."""

    def __enter__(self):
        gc.collect()
        self.base = _status()
        self.peak = list(self.base)
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self):
        while self.running:
            anon, file = _status()
            self.peak = [max(self.peak[0], anon), max(self.peak[1], file)]
            time.sleep(0.002)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()
        anon, file = _status()
        self.peak = [max(self.peak[0], anon), max(self.peak[1], file)]
        self.anon = self.peak[0] - self.base[0]
        self.file = self.peak[1] - self.base[1]


def _pixels(rows):
    with np.load(MNIST) as data:
        return data["x_train"][:rows].reshape(rows, 784)


def _as(pixels, dtype):
    """Pixels in [0, 1] as ``dtype`` (uint8 stays 0-255), without a wider temporary."""
    if dtype == "uint8":
        return pixels
    X = pixels.astype(dtype)
    X /= 255
    return X


def _memmap(pixels, dtype, folder):
    path = Path(folder) / f"X-{dtype}-{len(pixels)}.dat"
    X = np.memmap(path, dtype=dtype, mode="w+", shape=pixels.shape)
    for i in range(0, len(pixels), 4096):
        X[i : i + 4096] = _as(pixels[i : i + 4096], dtype)
    X.flush()
    del X
    return np.memmap(path, dtype=dtype, mode="r", shape=pixels.shape)


def run_case(kind, case, rows, folder, traced):
    """One measurement, in this (fresh) process; prints a JSON line.

    tracemalloc's bookkeeping is resident memory too, so the RSS and the traced
    peak are measured in two processes.
    """
    import torch

    from skvae import AutoencoderTransformer, VAETransformer

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")  # one-epoch fits do not converge; not measured here
    pixels = _pixels(rows)
    if kind == "fit":
        dtype = case.removeprefix("memmap-")
        X = _memmap(pixels, dtype, folder) if case.startswith("memmap") else _as(pixels, dtype)
        est = VAETransformer(n_components=16, max_iter=1, device="cpu", random_state=0)
        # One small fit first: torch imports modules on first use (tens of MB).
        VAETransformer(n_components=16, max_iter=1, device="cpu").fit(_as(pixels[:256], dtype))
        call, name = (lambda: est.fit(X)), "VAE fit, 1 epoch"
    else:
        X = _memmap(pixels, "float64", folder)
        cls = AutoencoderTransformer if case.startswith("ae") else VAETransformer
        est = cls(n_components=16, max_iter=1, device="cpu", random_state=0)
        est.fit(_as(pixels[:2000], "float64"))
        if cls is VAETransformer:
            est.set_params(n_score_samples=1)  # one draw per row: the memory is the point
        method = case.split("-")[1]
        call = (lambda: est.transform(X)) if method == "transform" else (lambda: est.score(X))
        name = f"{cls.__name__[:3]} {method}, memmap float64"
        getattr(est, method)(X[:10])  # first-use imports, as above
    del pixels
    result = dict(case=f"{name}: {case}" if kind == "fit" else name, X=int(X.nbytes))
    if traced:
        tracemalloc.start()
        call()
        result["traced"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    else:
        with PeakSampler() as peak:
            start = time.perf_counter()
            call()
            seconds = time.perf_counter() - start
        result.update(anon=peak.anon, file=peak.file, seconds=seconds)
    print(json.dumps(result))


def score_precision_table(rows):
    """float64 scoring copy vs the float32 network, on digits and MNIST."""
    import torch
    from sklearn.datasets import load_digits

    from skvae import AutoencoderTransformer, VAETransformer

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    with np.load(MNIST) as data:
        mnist = data["x_train"][: min(rows, 10000)].reshape(-1, 784).astype(np.float32) / 255
    sets = {"digits": (load_digits().data / 16).astype(np.float32), "mnist": mnist}
    print("\nscore: float64 scoring copy vs float32 network (20 epochs; process CPU s, 1 thread)")
    print(
        f"{'data':8} {'model':4} {'score64':>12} {'|mean diff|':>12} {'max |row diff|':>15} "
        f"{'rel. max':>10} {'t64 s':>7} {'t32 s':>7}"
    )
    for data_name, X in sets.items():
        for cls in (AutoencoderTransformer, VAETransformer):
            est = cls(n_components=8, max_iter=20, device="cpu", random_state=0).fit(X)
            t = time.process_time()
            s64 = est.score_samples(X).astype(np.float64)
            t64 = time.process_time() - t
            t = time.process_time()
            s32 = est._map(lambda xb, e=est: e._score_samples(xb, e.module_), X, scores=True)
            t32 = time.process_time() - t
            s32 = s32.astype(np.float64)
            diff = np.abs(s64 - s32)
            print(
                f"{data_name:8} {cls.__name__[:3]:4} {s64.mean():12.4f} "
                f"{abs(s64.mean() - s32.mean()):12.2e} {diff.max():15.2e} "
                f"{(diff / np.abs(s64)).max():10.2e} {t64:7.2f} {t32:7.2f}"
            )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=60000)
    parser.add_argument(
        "--only", choices=("fit", "infer", "scores"), help="run one of the three tables"
    )
    parser.add_argument("--case", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not MNIST.exists():
        sys.exit(f"MNIST not found at {MNIST}; set SKVAE_MNIST to the mnist.npz path.")
    if args.case:
        return run_case(*args.case, args.rows, args.folder, args.traced)
    cases = [("fit", c) for c in FIT_CASES]
    cases += [("infer", f"{m}-{k}") for m in ("ae", "vae") for k in INFER_CASES]
    cases = [(kind, case) for kind, case in cases if args.only in (None, kind)]
    if args.only == "scores":
        return score_precision_table(args.rows)
    print(f"Peak host memory of one call on {args.rows} x 784 MNIST, above the memory held")
    print("before it (fresh process per case, 1 torch thread; MB = 2**20 bytes)\n")
    print(f"{'case':38} {'X MB':>8} {'anon MB':>8} {'file MB':>8} {'traced MB':>9} {'s':>6}")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with tempfile.TemporaryDirectory() as folder:
        for kind, case in cases:
            cmd = [sys.executable, __file__, "--rows", str(args.rows), "--case", kind, case]
            r = {}
            for extra in ([], ["--traced"]):
                out = subprocess.run(
                    [*cmd, "--folder", folder, *extra],
                    capture_output=True,
                    text=True,
                    env=env,
                    check=True,
                )
                r.update(json.loads(out.stdout.strip().splitlines()[-1]))
            print(
                f"{r['case']:38} {r['X'] / MB:8.1f} {r['anon'] / MB:8.1f} "
                f"{r['file'] / MB:8.1f} {r['traced'] / MB:9.1f} {r['seconds']:6.1f}",
                flush=True,
            )
    if args.only is None:
        score_precision_table(args.rows)


if __name__ == "__main__":
    main()
