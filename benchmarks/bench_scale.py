"""Scaling up: memory on a memmap, partial_fit speed, GridSearchCV on joblib and Dask.

Run from the repository root::

    python benchmarks/bench_scale.py           # MNIST's 70,000 training rows
    python benchmarks/bench_scale.py --quick   # fewer rounds and epochs

Data: MNIST (``../shared/data/mnist.npz`` relative to the repository root, or
``$SKVAE_MNIST``) scaled to float32 in [0, 1]; the script exits with a message
when it is absent. Four tables:

1. Peak memory of ``fit`` then ``transform`` on a read-only float32
   ``numpy.memmap`` of all training rows, each estimator in a fresh
   subprocess: the peak of anonymous resident memory (RssAnon, sampled every
   2 ms: what the process allocates, not the file pages the kernel maps in and
   may drop again), the peak of resident memory including those file pages
   (VmHWM), and tracemalloc's peak (numpy's allocations; torch's are not
   traced), each above the level before the call, against the file's size
   and the estimator's batch.
2. ``PCA.partial_fit`` against ``IncrementalPCA.partial_fit`` on the same
   batches: process CPU time with torch and every BLAS on one thread,
   interleaved round by round, min and median; the ratio is skvae / sklearn.
3. GridSearchCV over an autoencoder with ``n_jobs=2`` against ``n_jobs=1``
   (wall clock, interleaved rounds).
4. The same grid search on a ``dask.distributed.LocalCluster`` of two
   single-threaded worker processes (skipped with a message without dask).
"""

import argparse
import json
import os
import statistics
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
MIB = 2**20
N_COMPONENTS = 50


def load_mnist():
    if not MNIST.exists():
        sys.exit(f"MNIST not found at {MNIST}: set SKVAE_MNIST to the path of mnist.npz.")
    return np.load(MNIST)["x_train"].reshape(-1, 784).astype(np.float32) / 255.0


def make_estimator(name, epochs):
    from sklearn.decomposition import IncrementalPCA

    from skvae import PCA, AutoencoderTransformer, VAETransformer

    neural = dict(n_components=N_COMPONENTS, max_iter=epochs, tol=0.0, device="cpu", random_state=0)
    return {
        "skvae PCA": lambda: PCA(N_COMPONENTS),
        "sklearn IncrementalPCA": lambda: IncrementalPCA(N_COMPONENTS),
        "AutoencoderTransformer": lambda: AutoencoderTransformer(**neural),
        "VAETransformer": lambda: VAETransformer(**neural),
    }[name]()


def batch_rows(name, estimator, n_features):
    """The rows one batch of this estimator holds."""
    if name == "skvae PCA":
        from skvae.decomposition._incremental import block_rows

        return block_rows(n_features)
    if name == "sklearn IncrementalPCA":
        return 5 * n_features  # its default batch_size
    size = estimator.batch_size
    return 200 if size == "auto" else size  # 'auto' is min(200, n_samples)


class MemoryProbe:
    """Peaks of RssAnon (sampled), VmHWM and tracemalloc above the level at ``start``."""

    @staticmethod
    def status():
        fields = {}
        with open("/proc/self/status") as f:
            for line in f:
                key, value = line.split(":", 1)
                if key in ("RssAnon", "VmRSS", "VmHWM"):
                    fields[key] = int(value.split()[0]) * 1024
        return fields

    def __enter__(self):
        try:  # reset VmHWM to the current RSS (Linux >= 4.0)
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass
        self.base = self.status()
        self.peak_anon, self.running = self.base["RssAnon"], True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        tracemalloc.start()
        return self

    def _sample(self):
        while self.running:
            self.peak_anon = max(self.peak_anon, self.status()["RssAnon"])
            time.sleep(0.002)

    def __exit__(self, *exc):
        _, traced = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        self.running = False
        self.thread.join()
        end = self.status()
        self.result = dict(
            anon=(max(self.peak_anon, end["RssAnon"]) - self.base["RssAnon"]) / MIB,
            rss=(end["VmHWM"] - self.base["VmRSS"]) / MIB,
            traced=traced / MIB,
        )


def child(name, path, n_samples, n_features, epochs):
    """Fit then transform one estimator on the memmap; print the figures as JSON."""
    import torch
    from sklearn.exceptions import ConvergenceWarning

    torch.set_num_threads(1)
    X = np.memmap(path, dtype=np.float32, mode="r", shape=(n_samples, n_features))
    estimator = make_estimator(name, epochs)
    out = dict(batch=batch_rows(name, estimator, n_features) * n_features * 4 / MIB)
    with warnings.catch_warnings():
        # A few epochs are enough to measure memory; they end before convergence.
        warnings.simplefilter("ignore", ConvergenceWarning)
        with MemoryProbe() as fit_probe:
            start = time.perf_counter()
            estimator.fit(X)
            out["fit_s"] = time.perf_counter() - start
    with MemoryProbe() as transform_probe:
        Y = estimator.transform(X)
    out["fit"], out["transform"] = fit_probe.result, transform_probe.result
    out["output"] = Y.nbytes / MIB
    print(json.dumps(out))


def memory_table(X, epochs):
    names = ["skvae PCA", "sklearn IncrementalPCA", "AutoencoderTransformer", "VAETransformer"]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "X.f32"
        mm = np.memmap(path, dtype=np.float32, mode="w+", shape=X.shape)
        mm[:] = X
        mm.flush()
        del mm
        size = X.nbytes / MIB
        print(f"\n1. Peak memory above the start of the call, MiB; memmap {X.shape} float32 = ")
        print(f"   {size:.0f} MiB on disk. anon: RssAnon; rss: VmHWM incl. mapped file pages;")
        print("   traced: tracemalloc (numpy only). Each estimator in a fresh process, 1 thread.")
        header = (
            f"{'estimator':24} {'batch':>6} {'fit anon':>9} {'rss':>6} {'traced':>7} "
            f"{'transform anon':>15} {'traced':>7} {'output':>7} {'fit s':>6}"
        )
        print(header)
        for name in names:
            cmd = [sys.executable, __file__, "--child", name, str(path), *map(str, X.shape)]
            run = subprocess.run(
                cmd + ["--epochs", str(epochs)], capture_output=True, text=True, check=False
            )
            if run.returncode != 0:
                print(f"{name:24} failed: {run.stderr.strip().splitlines()[-1]}")
                continue
            r = json.loads(run.stdout.strip().splitlines()[-1])
            f, t = r["fit"], r["transform"]
            print(
                f"{name:24} {r['batch']:6.1f} {f['anon']:9.1f} {f['rss']:6.0f} {f['traced']:7.1f} "
                f"{t['anon']:15.1f} {t['traced']:7.1f} {r['output']:7.1f} {r['fit_s']:6.1f}"
            )


def partial_fit_table(X, rounds):
    import torch
    from sklearn.decomposition import IncrementalPCA
    from threadpoolctl import threadpool_limits

    from skvae import PCA

    batch = 5 * X.shape[1]  # IncrementalPCA's default batch_size
    print(f"\n2. partial_fit on {X.shape[0]} rows in batches of {batch}, n_components=")
    print(f"   {N_COMPONENTS}: process CPU s at 1 thread, {rounds} interleaved rounds")
    print(f"{'dtype':8} {'skvae min':>10} {'median':>8} {'sklearn min':>12} {'median':>8} "
          f"{'ratio min':>10} {'median':>7}")  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            for dtype in (np.float32, np.float64):
                Xd = X.astype(dtype)
                times = {"skvae": [], "sklearn": []}
                for r in range(rounds):
                    order = [("skvae", PCA), ("sklearn", IncrementalPCA)]
                    for key, cls in order if r % 2 == 0 else order[::-1]:
                        model = cls(N_COMPONENTS)
                        start = time.process_time()
                        for i in range(0, Xd.shape[0], batch):
                            model.partial_fit(Xd[i : i + batch])
                        times[key].append(time.process_time() - start)
                ours, ref = times["skvae"], times["sklearn"]
                print(
                    f"{np.dtype(dtype).name:8} {min(ours):10.2f} {statistics.median(ours):8.2f} "
                    f"{min(ref):12.2f} {statistics.median(ref):8.2f} "
                    f"{min(ours) / min(ref):10.2f} "
                    f"{statistics.median(ours) / statistics.median(ref):7.2f}"
                )
    finally:
        torch.set_num_threads(threads)


def grid(n_jobs, X, epochs):
    from sklearn.model_selection import GridSearchCV

    from skvae import AutoencoderTransformer

    estimator = AutoencoderTransformer(
        hidden_layer_sizes=(64,), max_iter=epochs, tol=0.0, device="cpu", random_state=0
    )
    search = GridSearchCV(estimator, {"n_components": [2, 4, 8, 16]}, cv=3, n_jobs=n_jobs)
    start = time.perf_counter()
    search.fit(X)
    return time.perf_counter() - start, search.best_params_


def grid_tables(rounds, epochs):
    import joblib
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning

    X = (load_digits().data / 16).astype(np.float32)
    warnings.simplefilter("ignore", ConvergenceWarning)  # fixed epochs, by design
    print(f"\n3. GridSearchCV, AutoencoderTransformer on digits {X.shape}, 4 candidates x 3")
    print(f"   folds, {epochs} epochs: wall s, {rounds} interleaved rounds (torch's threads)")
    times = {1: [], 2: []}
    for r in range(rounds):
        for n_jobs in (1, 2) if r % 2 == 0 else (2, 1):
            seconds, best = grid(n_jobs, X, epochs)
            times[n_jobs].append(seconds)
    for n_jobs in (1, 2):
        t = times[n_jobs]
        print(f"   n_jobs={n_jobs}: min {min(t):.2f}  median {statistics.median(t):.2f}  {best}")
    print(f"   speed-up (min): {min(times[1]) / min(times[2]):.2f}x")

    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        print("\n4. LocalCluster: skipped, dask is not installed (pip install skvae[dask])")
        return
    start = time.perf_counter()
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    )
    with Client(cluster):
        started = time.perf_counter() - start
        seconds = []
        for _ in range(rounds):
            with joblib.parallel_config(backend="dask"):
                s, best = grid(-1, X, epochs)
            seconds.append(s)
    cluster.close()
    print("\n4. The same grid on a LocalCluster (2 worker processes x 1 thread)")
    print(f"   cluster start {started:.1f} s; grid search: min {min(seconds):.2f}  "
          f"median {statistics.median(seconds):.2f}  {best}")  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and epochs")
    parser.add_argument("--child", nargs=4, metavar=("NAME", "PATH", "ROWS", "COLS"))
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args()
    if args.child:
        name, path, rows, cols = args.child
        return child(name, path, int(rows), int(cols), args.epochs)
    rounds = 3 if args.quick else 5
    epochs = args.epochs or (1 if args.quick else 3)
    X = load_mnist()
    memory_table(X, epochs)
    partial_fit_table(X[:20_000] if args.quick else X, rounds)
    grid_tables(rounds, 10 if args.quick else 30)


if __name__ == "__main__":
    main()
