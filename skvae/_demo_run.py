"""The work of ``python -m skvae demo`` once its options are valid: fits, the table, the figures."""

import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from . import _demo_figures as figures
from ._generation import (
    ClassifierFrechet,
    latent_grid,
    midpoints,
    noise_free_samples,
    pixel_midpoints,
    standard_normal_decodes,
    summarise,
)
from ._utils.threads import chosen_by_user
from .decomposition._pca import PCA
from .neural._autoencoder import AutoencoderTransformer
from .neural._vae import VAETransformer

FIGURES = ("reconstructions.png", "samples.png", "latent_maps.png", "latent_grids.png")
DRAW_SEEDS = range(5)  # each generation measure is the mean ± sd over these draws
GRID_SIZE, MEASURED_GRID = 15, 21  # the grid drawn; the grid measured (441 points)
SCORE_MEANING = {
    "PCA": "log p(x) under probabilistic PCA: a density",
    "linear AE": "log-likelihood of the residuals: not a density",
    "deep AE": "log-likelihood of the residuals: not a density",
    "VAE": "ELBO <= log p(x): a bound on a density",
}


class Demo:
    """One run of the demo, from parsed and checked options."""

    def __init__(self, args):
        self.args = args
        self.k, self.seed = args.n_components, args.seed
        self.epochs = args.epochs if args.epochs is not None else (5 if args.quick else None)
        self.out = Path(args.out)
        self.notes = []
        self.fit_index, self.n_fits = 0, 6

    def check_device(self):
        """What the checks without torch could not tell: is the device there? None if it is."""
        device = self.args.device
        if device.startswith("cuda") and not torch.cuda.is_available():
            return f"--device {device}: torch sees no CUDA device here; use --device cpu"
        if device.startswith("cuda:") and int(device[5:]) >= torch.cuda.device_count():
            return f"--device {device}: there are {torch.cuda.device_count()} CUDA devices"
        if device == "mps" and not torch.backends.mps.is_available():
            return "--device mps: torch sees no MPS device here; use --device cpu"
        return None

    # ------------------------------------------------------------------ fitting
    def neural_params(self):
        # tol=1e-3, ten times the estimators' default, stops each fit once another
        # epoch would gain under 0.1% of what training has gained: a demo in a minute.
        params = dict(
            tol=1e-3,
            device=self.args.device,
            random_state=self.seed,
            verbose=not self.args.no_progress,
        )
        if self.epochs is not None:
            params["max_iter"] = self.epochs
        return params

    def fit(self, name, estimator, X):
        """Fit, with a line saying which model before and how it ended after."""
        self.fit_index += 1
        print(f"[{self.fit_index}/{self.n_fits}] {name}: {_describe(estimator)}", flush=True)
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            estimator.fit(X)
        seconds = time.perf_counter() - start
        stopped = [w for w in caught if "max_iter" in str(w.message)]
        self.notes += [
            f"{name}: {w.category.__name__}: {w.message}" for w in caught if w not in stopped
        ]
        if isinstance(estimator, PCA):
            ending = "closed form"
        elif stopped:
            ending = f"stopped at max_iter={estimator.max_iter} before converging"
            if self.args.quick:
                ending += " (expected with --quick)"
        else:
            ending = "converged"
        epochs = "" if isinstance(estimator, PCA) else f"{estimator.n_iter_} epochs, "
        print(f"      {epochs}{seconds:.1f} s, {ending}", flush=True)
        return seconds

    # ------------------------------------------------------------------ the run
    def run(self):
        self.user_threads = chosen_by_user()
        if self.user_threads:
            return self._run()
        # Everything here is small: one thread for numpy's BLAS as for torch, unless
        # the user chose a count (the library's policy covers the networks only).
        with threadpool_limits(limits=1):
            return self._run()

    def _run(self):
        self.out.mkdir(parents=True, exist_ok=True)
        digits = load_digits()
        X = (digits.data / 16.0).astype(np.float32)
        X_train, X_test, y_train, y_test = train_test_split(
            X, digits.target, test_size=0.25, random_state=0, stratify=digits.target
        )
        n = len(X_test)
        print(
            f"digits: {len(X_train)} training / {n} held-out images of 8x8 pixels in [0, 1]; "
            + (
                f"torch on {torch.get_num_threads()} CPU thread(s), as set"
                if self.user_threads
                else "1 CPU thread: the networks are small (set OMP_NUM_THREADS for more)"
            )
        )
        quality = ClassifierFrechet(X_train, y_train, X_test, y_test, random_state=0)
        floor = summarise(quality.real_floor(n, DRAW_SEEDS))
        print(
            f"sample quality: Fréchet distance (FD) in the hidden layer of a digit classifier "
            f"({quality.accuracy_:.1%} held-out accuracy)\n"
        )
        k, neural = self.k, self.neural_params()
        deep = dict(hidden_layer_sizes=(128,), **neural)
        models = {
            f"PCA({k})": PCA(k, random_state=self.seed),
            f"linear AE({k})": AutoencoderTransformer(
                k, hidden_layer_sizes=(), activation="identity", **neural
            ),
            f"deep AE({k})": AutoencoderTransformer(k, **deep),
            f"VAE({k})": VAETransformer(k, **deep),
        }
        pair = {
            "deep AE(2)": AutoencoderTransformer(2, **deep),
            "VAE(2)": VAETransformer(2, **deep),
        }
        seconds = {name: self.fit(name, est, X_train) for name, est in {**models, **pair}.items()}

        distance = {}

        def measure(name, kind, draw):
            values = [quality.distance(draw(seed)) for seed in DRAW_SEEDS]
            distance[name, kind] = summarise(values)

        rows = []
        for name, est in models.items():
            mse = float(((est.inverse_transform(est.transform(X_test)) - X_test) ** 2).mean())
            measure(name, "sample", lambda s, e=est: noise_free_samples(e, n, s))
            measure(name, "N(0, I)", lambda s, e=est: standard_normal_decodes(e, n, s))
            measure(name, "midpoint", lambda s, e=est: midpoints(e, X_test, n, s))
            rows.append((name, seconds[name], mse, est.score(X_test)))
        grid = latent_grid(MEASURED_GRID)
        for name, est in pair.items():
            measure(name, "sample", lambda s, e=est: noise_free_samples(e, n, s))
            measure(name, "N(0, I)", lambda s, e=est: standard_normal_decodes(e, n, s))
            distance[name, "grid"] = summarise([quality.distance(est.inverse_transform(grid))])
        self.print_table(rows, distance, quality, floor, X_test, n)
        self.draw(models, pair, distance, floor, X_test, y_test, rows)
        if self.notes:
            print("warnings while fitting:")
            for note in self.notes:
                print(f"  {note}")
        print(f"figures written to {self.out.resolve()}: {', '.join(FIGURES)}")

    def print_table(self, rows, distance, quality, floor, X_test, n):
        header = (
            f"{'model':<15} {'fit s':>6} {'test MSE':>9} {'score':>8} "
            f"{'FD sample':>14} {'FD N(0, I)':>14} {'FD midpoint':>14}"
        )
        print()
        print(header)
        print("-" * len(header))
        for name, secs, mse, score in rows:
            print(
                f"{name:<15} {secs:>6.1f} {mse:>9.4f} {score:>8.1f} {distance[name, 'sample']:>14}"
                f" {distance[name, 'N(0, I)']:>14} {distance[name, 'midpoint']:>14}"
            )
        pixels = summarise([quality.distance(pixel_midpoints(X_test, n, s)) for s in DRAW_SEEDS])
        blank = " " * 35  # the empty fit s, test MSE and score columns
        print(f"{'real digits':<15}{blank}{floor:>14}")
        print(f"{'mean digit':<15}{blank}{quality.mean_image():>14.2f}")
        print(f"{'pixel average':<15}{blank}{'':>14} {'':>14} {pixels:>14}")
        print()
        print("test MSE: mean squared error of held-out reconstructions, per pixel.")
        print("score: mean over held-out rows, in nats; each model's own quantity:")
        for name, *_ in rows:
            print(f"  {name:<15} {SCORE_MEANING[name.split('(')[0]]}")
        print("  Only PCA's and the VAE's scores compare (densities of X, or a bound on one).")
        print(
            f"FD: Fréchet distance between {n} generated images and the {n} held-out digits in\n"
            "  the classifier's features; mean ± sd over 5 draws; lower is closer. References:\n"
            f"  {n} real training digits (the floor); the mean digit repeated (no variety).\n"
            "  sample: each model's own sample() (PCA: its probabilistic model), without noise;\n"
            "  N(0, I): random latent points z ~ N(0, I) decoded; midpoint: the decoded midpoint\n"
            "  of the codes of two random held-out digits (pixel average: the two images averaged)."
        )
        print("2-D models, for the maps and grids (FD as above; grid: a 21x21 grid over the")
        print("  prior's 5%-95% quantiles, decoded):")
        for name in ("deep AE(2)", "VAE(2)"):
            print(
                f"  {name:<11} FD sample {distance[name, 'sample']}, N(0, I) "
                f"{distance[name, 'N(0, I)']}, grid {distance[name, 'grid']}"
            )
        print()

    def draw(self, models, pair, distance, floor, X_test, y_test, rows):
        k = self.k
        figures.reconstructions(
            self.out / "reconstructions.png",
            X_test,
            {
                name: est.inverse_transform(est.transform(X_test[:16]))
                for name, est in models.items()
            },
            {name: mse for name, _, mse, _ in rows},
            k,
        )
        shown = {**models, **pair}
        figures.samples(
            self.out / "samples.png",
            {name: noise_free_samples(est, 16, self.seed) for name, est in shown.items()},
            {name: standard_normal_decodes(est, 16, self.seed) for name, est in shown.items()},
            distance,
            floor,
        )
        figures.latent_maps(
            self.out / "latent_maps.png",
            {name: est.transform(X_test) for name, est in pair.items()},
            y_test,
        )
        figures.latent_grids(
            self.out / "latent_grids.png",
            {name: est.inverse_transform for name, est in pair.items()},
            GRID_SIZE,
            distance,
        )


def _describe(estimator):
    """The estimator's class and the parameters that tell the demo's models apart."""
    if isinstance(estimator, PCA):
        return f"PCA(n_components={estimator.n_components})"
    layers = estimator.hidden_layer_sizes
    return (
        f"{type(estimator).__name__}(n_components={estimator.n_components}, "
        f"hidden_layer_sizes={layers}, activation={estimator.activation!r})"
    )
