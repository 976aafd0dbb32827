"""Time skvae.PCA against sklearn's PCA solver by solver, and against IncrementalPCA.

Run from the repository root::

    python benchmarks/bench_pca.py              # MNIST-sized and wide data
    python benchmarks/bench_pca.py --threads 1  # process CPU time on one thread
    python benchmarks/bench_pca.py --quick      # small smoke run
    python benchmarks/bench_pca.py --rows 20000 --no-wide  # MNIST's first rows only

Data: MNIST from ``../shared/data/mnist.npz`` relative to the repository root
(or ``$SKVAE_MNIST``), scaled to float32 in [0, 1]; a synthetic matrix of the
same shape when it is absent. Four contenders, interleaved round by round in
an alternating order: scikit-learn on the numpy array, skvae on the numpy
array (its numpy/scipy kernels), skvae on a CPU tensor sharing the array's
memory (its torch kernels), and scikit-learn's own array-API path on that
tensor (``array_api_dispatch=True``, needs array-api-compat; not for
``arpack`` and ``incremental``, which it does not run on tensors, and with
``power_iteration_normalizer='QR'``, the one it runs for ``randomized``).
The row ``incremental`` feeds the same consecutive
batches to sklearn's ``IncrementalPCA.partial_fit`` and to skvae's
``PCA.partial_fit`` (IncrementalPCA's default batch, 5 x n_features rows, at
most a quarter of the rows). Ratios are skvae / sklearn (below 1 means skvae is
faster), of the minimum and of the median over the rounds; ``xp`` columns
compare skvae on the tensor with scikit-learn's array-API path on it. With ``--threads
1`` the times are process CPU times (``time.process_time``) with torch and
every BLAS held to one thread, which a busy shared machine disturbs least;
otherwise wall-clock times with the libraries' default threads.

Accuracy: the largest error of the ``k`` explained variances relative to the
exact eigenvalues of the covariance (float64), for sklearn and skvae (numpy
input); for the randomized solver averaged over seeds.
"""

import argparse
import contextlib
import importlib.util
import os

# scikit-learn's array-API dispatch needs SciPy's array-API mode, declared before
# SciPy is imported.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _results import run_meta, write_json  # noqa: E402
from sklearn import config_context, decomposition  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import skvae  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MNIST = Path(os.environ.get("SKVAE_MNIST", REPO.parent / "shared" / "data" / "mnist.npz"))
SOLVERS = ["full", "covariance_eigh", "arpack", "randomized", "auto", "incremental"]
# transform takes tens of milliseconds, where timer noise is relatively larger.
TRANSFORM_REPEATS = 5
ACCURACY_SEEDS = 3
# scikit-learn's array-API path runs on tensors only with array-api-compat.
ARRAY_API = importlib.util.find_spec("array_api_compat") is not None


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


def exact_variances(X):
    """Eigenvalues of the covariance of X in float64, descending (the smaller Gram matrix)."""
    Xc = X.astype(np.float64)
    Xc -= Xc.mean(axis=0)
    G = Xc.T @ Xc if X.shape[0] >= X.shape[1] else Xc @ Xc.T
    return np.linalg.eigvalsh(G)[::-1] / (X.shape[0] - 1)


def interleaved(fns, repeats, settle_s, clock, enough_s=10.0):
    """Times of each function over ``repeats`` rounds, the functions alternating.

    Alternating puts the contenders under the same conditions (a busy core)
    instead of one after the other; the order flips every round, and each call
    starts ``settle_s`` seconds after the one before, so that none inherits
    another's BLAS threads still spinning. A round slower than ``enough_s`` is
    not repeated.
    """
    times, outs = [[] for _ in fns], [None] * len(fns)
    for round_ in range(repeats):
        order = range(len(fns)) if round_ % 2 == 0 else reversed(range(len(fns)))
        for i in order:
            if fns[i] is None:  # a contender that does not run this case
                times[i].append(np.nan)
                continue
            time.sleep(settle_s)
            start = clock()
            outs[i] = fns[i]()
            times[i].append(clock() - start)
        if np.nanmax([t[-1] for t in times]) > enough_s:
            break
    return [np.array(t) for t in times], outs


def variance_error(model, exact):
    k = model.n_components_
    return np.abs(model.explained_variance_ - exact[:k]).max() / exact[0]


def accuracy(fitted, make, X, exact, solver):
    """The error of the ``fitted`` model; for the randomized solver, averaged over seeds."""
    errors = [variance_error(fitted, exact)]
    if fitted._fit_svd_solver == "randomized":
        errors += [variance_error(make(seed).fit(X), exact) for seed in range(1, ACCURACY_SEEDS)]
    return np.mean(errors)


def incremental_batch(n_samples, n_features, n_components):
    """Rows per batch: IncrementalPCA's default 5 x n_features, at most a quarter of the
    rows (so that at least four batches merge), at least n_components."""
    return max(n_components, min(5 * n_features, n_samples // 4))


def batch_by_batch(model, X, batch):
    """``partial_fit`` on consecutive batches of ``batch`` rows, as a stream is fed."""
    for start in range(0, X.shape[0], batch):
        model.partial_fit(X[start : start + batch])
    return model


def dispatched(fn):
    """``fn`` run under scikit-learn's array-API dispatch."""

    def run():
        with config_context(array_api_dispatch=True):
            return fn()

    return run


def fit_contenders(X, T, n_components, solver):
    """sklearn, skvae on the array, skvae on the tensor and sklearn's array-API path on
    the tensor (None where it does not run): fits of one solver."""
    if solver == "incremental":
        batch = incremental_batch(*X.shape, n_components)
        return [
            lambda: batch_by_batch(decomposition.IncrementalPCA(n_components), X, batch),
            lambda: batch_by_batch(skvae.PCA(n_components), X, batch),
            lambda: batch_by_batch(skvae.PCA(n_components), T, batch),
            None,
        ]
    kw = dict(n_components=n_components, svd_solver=solver, random_state=0)
    # The normalizer sklearn's array-API path runs ('auto' warns and falls back to it).
    xp_kw = dict(kw, power_iteration_normalizer="QR")
    runs_on_tensors = ARRAY_API and solver != "arpack"
    return [
        lambda: decomposition.PCA(**kw).fit(X),
        lambda: skvae.PCA(**kw).fit(X),
        lambda: skvae.PCA(**kw).fit(T),
        dispatched(lambda: decomposition.PCA(**xp_kw).fit(T)) if runs_on_tensors else None,
    ]


def bench(X, n_components, repeats, settle_s, clock, solvers=SOLVERS):
    T = torch.from_numpy(X)  # shares X's memory
    exact = exact_variances(X)
    rows = []
    for solver in solvers:
        kwargs = dict(n_components=n_components, svd_solver=solver)
        fits, (ref, ours, ours_t, ref_t) = interleaved(
            fit_contenders(X, T, n_components, solver), repeats, settle_s, clock
        )
        transforms, (Z_ref, Z, _, _) = interleaved(
            [lambda m=model, D=D: m.transform(D) for model, D in ((ref, X), (ours, X), (ours_t, T))]
            + [dispatched(lambda m=ref_t: m.transform(T)) if ref_t is not None else None],
            TRANSFORM_REPEATS * repeats,
            settle_s,
            clock,
        )
        d_evr = np.abs(ours.explained_variance_ratio_ - ref.explained_variance_ratio_).max()
        err_ref = np.linalg.norm(ref.inverse_transform(Z_ref) - X)
        err_ours = np.linalg.norm(ours.inverse_transform(Z) - X)
        make_sk = lambda s, kw=kwargs: decomposition.PCA(**kw, random_state=s)  # noqa: E731
        make_us = lambda s, kw=kwargs: skvae.PCA(**kw, random_state=s)  # noqa: E731
        if solver == "incremental":
            acc_sk, acc_us = variance_error(ref, exact), variance_error(ours, exact)
            used = f"batches of {incremental_batch(*X.shape, n_components)} rows"
        else:
            acc_sk = accuracy(ref, make_sk, X, exact, solver)
            acc_us = accuracy(ours, make_us, X, exact, solver)
            used = ours._fit_svd_solver
        rows.append(
            dict(
                solver=solver,
                used=used,
                fits=fits,
                transforms=transforms,
                d_evr=d_evr,
                recon=err_ours / err_ref,
                acc_sk=acc_sk,
                acc_us=acc_us,
            )
        )
    return rows


def report(title, rows):
    print(f"\n{title}")
    header = (
        f"{'solver':<16}{'(auto->)':<17}{'fit sk s':>9}{'fit skvae':>10}{'ratio':>7}{'med':>6}"
        f"{'fit torch':>10}{'ratio':>7}{'fit xp':>8}{'t/xp':>6}"
        f"{'tr sk s':>9}{'tr skvae':>9}{'ratio':>7}{'med':>6}{'tr torch':>9}{'ratio':>7}"
        f"{'tr xp':>8}{'t/xp':>6}"
        f"{'max|dEVR|':>11}{'recon ratio':>12}{'err sk':>9}{'err skvae':>10}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        used = r["used"] if r["solver"] in ("auto", "incremental") else ""
        (f_sk, f_us, f_t, f_xp), (t_sk, t_us, t_t, t_xp) = r["fits"], r["transforms"]
        print(
            f"{r['solver']:<16}{used:<17}{f_sk.min():>9.3f}{f_us.min():>10.3f}"
            f"{f_us.min() / f_sk.min():>7.2f}{np.median(f_us) / np.median(f_sk):>6.2f}"
            f"{f_t.min():>10.3f}{f_t.min() / f_sk.min():>7.2f}"
            f"{f_xp.min():>8.3f}{f_t.min() / f_xp.min():>6.2f}"
            f"{t_sk.min():>9.4f}{t_us.min():>9.4f}{t_us.min() / t_sk.min():>7.2f}"
            f"{np.median(t_us) / np.median(t_sk):>6.2f}"
            f"{t_t.min():>9.4f}{t_t.min() / t_sk.min():>7.2f}"
            f"{t_xp.min():>8.4f}{t_t.min() / t_xp.min():>6.2f}"
            f"{r['d_evr']:>11.1e}{r['recon']:>12.6f}{r['acc_sk']:>9.1e}{r['acc_us']:>10.1e}"
        )


def json_rows(rows, clock_name):
    """The rows of ``report`` for the results page: min and median seconds and their ratios."""
    out = []
    for r in rows:
        (f_sk, f_us, f_t, f_xp), (t_sk, t_us, t_t, t_xp) = r["fits"], r["transforms"]
        out.append(
            {
                "solver": {
                    "auto": f"auto (-> {r['used']})",
                    "incremental": f"incremental: partial_fit on {r['used']}",
                }.get(r["solver"], r["solver"]),
                f"fit sklearn s min ({clock_name})": f_sk.min(),
                "fit skvae s min": f_us.min(),
                "fit skvae/sklearn min": f_us.min() / f_sk.min(),
                "fit skvae/sklearn median": np.median(f_us) / np.median(f_sk),
                "fit skvae tensor/sklearn min": f_t.min() / f_sk.min(),
                "fit sklearn array-API tensor s min": f_xp.min(),
                "fit skvae tensor/sklearn array-API tensor min": f_t.min() / f_xp.min(),
                "transform sklearn s min": t_sk.min(),
                "transform skvae/sklearn min": t_us.min() / t_sk.min(),
                "transform skvae/sklearn median": np.median(t_us) / np.median(t_sk),
                "transform skvae tensor/sklearn min": t_t.min() / t_sk.min(),
                "transform skvae tensor/sklearn array-API tensor min": t_t.min() / t_xp.min(),
                "max abs diff EVR": r["d_evr"],
                "reconstruction error skvae/sklearn": r["recon"],
                "variance error sklearn": r["acc_sk"],
                "variance error skvae": r["acc_us"],
            }
        )
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument(
        "--rows", type=int, default=None, help="MNIST rows (default: 60000, 2000 with --quick)"
    )
    parser.add_argument("--no-wide", action="store_true", help="skip the wide matrix")
    parser.add_argument("--data", default=None, help="mnist.npz (default: ../shared/data)")
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--repeats", type=int, default=None, help="timing rounds")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="BLAS/OpenMP threads for both libraries (default: library defaults). 1 also "
        "switches to process CPU time, the steadiest figure on a machine shared with other jobs.",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=0.3,
        help="seconds of idle before each timed call, so that no call pays for the spinning "
        "threads of the one before (0: back to back)",
    )
    parser.add_argument(
        "--solvers",
        default=",".join(SOLVERS),
        help="comma-separated solvers to time (default: all: %(default)s)",
    )
    args = parser.parse_args()
    if args.data:
        global MNIST
        MNIST = Path(args.data)
    solvers = args.solvers.split(",")
    unknown = sorted(set(solvers) - set(SOLVERS))
    if unknown:
        parser.error(f"unknown solvers {unknown}; choose among {SOLVERS}")
    limits = contextlib.nullcontext()
    if args.threads is not None:
        # This script's own process only; the library never changes these settings.
        torch.set_num_threads(args.threads)
        limits = threadpool_limits(args.threads)  # numpy/scipy BLAS and OpenMP
    clock = time.process_time if args.threads == 1 else time.perf_counter
    clock_name = "process CPU, 1 thread" if args.threads == 1 else "wall"
    repeats = args.repeats or (1 if args.quick else 3)
    with limits:
        print(
            f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
            f"{'process CPU' if args.threads == 1 else 'wall-clock'} time; min and median of "
            f"{repeats} rounds (transform: {TRANSFORM_REPEATS * repeats}), {args.settle} s idle "
            "before each call, sklearn / skvae numpy / skvae CPU tensor / sklearn array-API "
            "tensor interleaved"
            + ("" if ARRAY_API else " (no array-api-compat: the last one is skipped)")
        )
        meta = run_meta(
            args.quick, MNIST, **{"threads (BLAS and torch)": args.threads or "default"}
        )
        n_mnist = args.rows or (2_000 if args.quick else 60_000)
        X, source = mnist_like(n_mnist)
        tables = []
        for title, data in (
            (f"{X.shape[0]}x{X.shape[1]} float32, k=50, data: {source}", X),
            (None, wide(200, 2_000) if args.quick else wide(1_000, 10_000)),
        )[: 1 if args.no_wide else 2]:
            title = title or f"wide {data.shape[0]}x{data.shape[1]} float32, k=50"
            rows = bench(data, 50, repeats, args.settle, clock, solvers)
            report(title, rows)
            tables.append((title, json_rows(rows, clock_name)))
    description = (
        f"skvae.PCA against sklearn.decomposition.PCA per solver, {repeats} interleaved "
        f"round(s), {clock_name} time, {args.settle} s idle before each call. Ratios below 1: "
        "skvae faster. 'tensor': skvae on a CPU tensor sharing the array's memory (its torch "
        "kernels). 'sklearn array-API tensor': sklearn's own PCA on that tensor under "
        "array_api_dispatch=True (randomized with the QR normalizer it runs; none for arpack "
        "and incremental). 'incremental': sklearn's IncrementalPCA against skvae.PCA, both fed the "
        "same consecutive batches through partial_fit (IncrementalPCA's default batch of "
        "5 x n_features rows, at most a quarter of the rows so that at least four batches "
        "merge); the 'sklearn' columns of that row are IncrementalPCA's. Variance error: "
        "largest error of the explained variances relative to the exact eigenvalues "
        "(float64), divided by the largest."
        + (
            " Quick size: 2000 MNIST rows and a 200x2000 wide matrix, one round."
            if args.quick
            else ""
        )
        + (f" {n_mnist} MNIST rows." if args.rows else "")
        + (" The wide matrix was skipped." if args.no_wide else "")
    )
    write_json(args.json, "PCA speed against scikit-learn", description, meta, tables)


if __name__ == "__main__":
    main()
