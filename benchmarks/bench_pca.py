"""Time skvae.PCA against sklearn.decomposition.PCA, solver by solver.

Run from the repository root::

    python benchmarks/bench_pca.py            # MNIST-sized and wide data
    python benchmarks/bench_pca.py --quick    # small smoke run

Data: MNIST from ``../shared/data/mnist.npz`` relative to the repository root
(or ``$SKVAE_MNIST``), scaled to float32 in [0, 1]; a synthetic matrix of the
same shape when it is absent. Ratios are skvae / sklearn (below 1 means skvae
is faster), best of a few repeats (five times as many for transform, which takes
milliseconds), both measured in the same run.
"""

import argparse
import os
import time
from pathlib import Path

import numpy as np
from sklearn import decomposition

import skvae

REPO = Path(__file__).resolve().parents[1]
MNIST = Path(os.environ.get("SKVAE_MNIST", REPO.parent / "shared" / "data" / "mnist.npz"))
SOLVERS = ["full", "covariance_eigh", "arpack", "randomized", "auto"]
# transform takes tens of milliseconds, where timer noise is relatively larger.
TRANSFORM_REPEATS = 5


def mnist_like(n_samples):
    if MNIST.exists():
        X = np.load(MNIST)["x_train"].reshape(-1, 784)[:n_samples]
        return X.astype(np.float32) / 255.0, f"MNIST ({MNIST})"
    rng = np.random.default_rng(0)
    # Low-rank structure plus noise, clipped to [0, 1] like pixel intensities.
    X = rng.standard_normal((n_samples, 50)) @ rng.standard_normal((50, 784)) * 0.1 + 0.2
    return np.clip(X, 0, 1).astype(np.float32), "synthetic (MNIST not found)"


def wide(n_samples, n_features):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((n_samples, 100)) @ rng.standard_normal((100, n_features))
    return (X + 0.1 * rng.standard_normal((n_samples, n_features))).astype(np.float32)


def interleaved_best(fns, repeats, settle_s, enough_s=10.0):
    """Best time of each function over ``repeats`` rounds, the functions alternating.

    Alternating puts both libraries under the same conditions (a busy core) instead
    of one after the other; the order flips every round, and each call starts
    ``settle_s`` seconds after the one before, so that neither inherits the
    other's BLAS threads still spinning (OpenBLAS's and OpenMP's threads
    busy-wait for a while after a call and compete with whatever runs next).
    A round slower than ``enough_s`` is not repeated.
    """
    times, outs = [[] for _ in fns], [None] * len(fns)
    for round_ in range(repeats):
        order = range(len(fns)) if round_ % 2 == 0 else reversed(range(len(fns)))
        for i in order:
            time.sleep(settle_s)
            start = time.perf_counter()
            outs[i] = fns[i]()
            times[i].append(time.perf_counter() - start)
        if max(t[-1] for t in times) > enough_s:
            break
    return [min(t) for t in times], outs


def bench(X, n_components, repeats, settle_s):
    rows = []
    for solver in SOLVERS:
        kwargs = dict(n_components=n_components, svd_solver=solver, random_state=0)
        (fit_sk, fit_us), (ref, ours) = interleaved_best(
            [
                lambda kw=kwargs: decomposition.PCA(**kw).fit(X),
                lambda kw=kwargs: skvae.PCA(**kw, device="cpu").fit(X),
            ],
            repeats,
            settle_s,
        )
        (tr_sk, tr_us), (Z_ref, Z) = interleaved_best(
            [lambda m=ref: m.transform(X), lambda m=ours: m.transform(X)],
            TRANSFORM_REPEATS * repeats,
            settle_s,
        )
        # Accuracy: explained variance ratios, and the reconstruction error of each model.
        d_evr = np.abs(ours.explained_variance_ratio_ - ref.explained_variance_ratio_).max()
        err_ref = np.linalg.norm(ref.inverse_transform(Z_ref) - X)
        err_ours = np.linalg.norm(ours.inverse_transform(Z) - X)
        rows.append(
            (solver, ours._fit_svd_solver, fit_sk, fit_us, tr_sk, tr_us, d_evr, err_ours / err_ref)
        )
    return rows


def report(title, rows):
    print(f"\n{title}")
    header = (
        f"{'solver':<16}{'(auto->)':<17}{'fit sk s':>9}{'fit skvae':>10}{'ratio':>7}"
        f"{'tr sk s':>9}{'tr skvae':>9}{'ratio':>7}{'max|dEVR|':>11}{'recon ratio':>12}"
    )
    print(header)
    print("-" * len(header))
    for solver, used, f_sk, f_us, t_sk, t_us, d_evr, recon in rows:
        used = used if solver == "auto" else ""
        print(
            f"{solver:<16}{used:<17}{f_sk:>9.3f}{f_us:>10.3f}{f_us / f_sk:>7.2f}"
            f"{t_sk:>9.4f}{t_us:>9.4f}{t_us / t_sk:>7.2f}{d_evr:>11.1e}{recon:>12.6f}"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--repeats", type=int, default=None, help="timing repeats (best of)")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="BLAS/OpenMP threads for both libraries (default: library defaults). On a "
        "machine shared with other jobs, 1 avoids spinning threads and gives stable timings.",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=0.3,
        help="seconds of idle before each timed call, so that no call pays for the spinning "
        "threads of the one before (0: back to back)",
    )
    args = parser.parse_args()
    import torch
    from threadpoolctl import threadpool_limits

    if args.threads is not None:
        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)  # numpy/scipy BLAS used by sklearn
    repeats = args.repeats or (1 if args.quick else 3)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; best of {repeats} "
        f"(transform: {TRANSFORM_REPEATS * repeats}), "
        f"{args.settle} s idle before each call, sklearn and skvae alternating"
    )
    n_mnist = 2_000 if args.quick else 60_000
    X, source = mnist_like(n_mnist)
    report(
        f"{X.shape[0]}x{X.shape[1]} float32, k=50, data: {source}",
        bench(X, 50, repeats, args.settle),
    )
    Xw = wide(200, 2_000) if args.quick else wide(1_000, 10_000)
    report(f"wide {Xw.shape[0]}x{Xw.shape[1]} float32, k=50", bench(Xw, 50, repeats, args.settle))


if __name__ == "__main__":
    main()
