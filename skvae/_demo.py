"""``python -m skvae demo``: PCA, autoencoders and a VAE on handwritten digits.

Fits four encoder/decoder pairs on the 8x8 digits bundled with scikit-learn
(no download): PCA, a linear autoencoder, a deep autoencoder and a VAE, prints
how well each reconstructs held-out digits, what each scores and how close its
samples come to real digits, and writes figures into a folder:

- ``reconstructions.png``: held-out digits and each model's reconstructions;
- ``latent_maps.png``: the 2-D codes of held-out digits under a deep
  autoencoder and a VAE, side by side, coloured by digit;
- ``latent_grids.png``: a grid of points over each 2-D latent space, decoded:
  the VAE's is a smooth map of digits, the autoencoder's shows what decoding
  between and beyond its clusters gives;
- ``samples.png``: ``sample()`` of each model, decoded without observation noise.
"""

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.stats import norm
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neighbors import NearestNeighbors

from .decomposition._pca import PCA
from .neural._autoencoder import AutoencoderTransformer
from .neural._vae import VAETransformer

FIGURES = ("reconstructions.png", "latent_maps.png", "latent_grids.png", "samples.png")


def build_parser():
    """The command line of ``python -m skvae demo``."""
    parser = argparse.ArgumentParser(
        prog="python -m skvae demo",
        description=(
            "Fit PCA, a linear autoencoder, a deep autoencoder and a VAE on scikit-learn's "
            "8x8 digits, print a table of held-out reconstruction error, score and fit time, "
            "and write figures (reconstructions, 2-D latent maps, decoded latent grids, "
            "samples) into a folder."
        ),
    )
    parser.add_argument(
        "--out",
        default="skvae_demo",
        help="folder for the figures, created if missing (default: %(default)s)",
    )
    parser.add_argument(
        "--n-components",
        type=int,
        default=8,
        help="latent size of the models in the table (default: %(default)s); "
        "the latent maps and grids always use 2",
    )
    parser.add_argument(
        "--device",
        default="cpu",
        help="torch device to train on: 'cpu', 'cuda', 'mps' or 'auto' (default: %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="random_state of every model (default: %(default)s)"
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="max_iter of the neural models (default: the estimators' own, 5 with --quick)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a few epochs only, to check that everything runs (seconds; the pictures are rough)",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="hide the training progress bars"
    )
    return parser


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise SystemExit(
            "python -m skvae demo draws its figures with matplotlib, which is not installed. "
            "Install it with: python3 -m pip install matplotlib"
        ) from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _mosaic(images, ax, title, cols=None):
    """Tile (n, 64) images in [0, 1] into one mosaic of 8x8 cells on ``ax``."""
    n = len(images)
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    canvas = np.zeros((rows * 9 - 1, cols * 9 - 1))
    for i, img in enumerate(np.clip(images, 0, 1)):
        r, c = divmod(i, cols)
        canvas[r * 9 : r * 9 + 8, c * 9 : c * 9 + 8] = img.reshape(8, 8)
    ax.imshow(canvas, cmap="gray_r", vmin=0, vmax=1)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def _decoded_samples(est, n, seed):
    """``n`` draws from ``est``'s model of X, decoded without observation noise."""
    if not isinstance(est, PCA):
        return est.sample(n, random_state=seed, observation_noise=False)
    # PCA.sample adds its isotropic noise; the noise-free part of a draw is
    # mean + U sqrt(Λ - σ²) z with z ~ N(0, I) (Tipping & Bishop 1999).
    z = np.random.default_rng(seed).standard_normal((n, est.n_components_))
    scale = np.sqrt(np.clip(est.explained_variance_ - est.noise_variance_, 0, None))
    if est.whiten:
        scale = scale / np.sqrt(est.explained_variance_)
    return est.inverse_transform((z * scale).astype(est.components_.dtype))


def _latent_grid(est, Z_train, size):
    """A ``size`` x ``size`` grid over a 2-D latent space, as (size**2, 2) codes.

    The VAE's prior is N(0, I), so its grid spans the prior's quantiles 5%..95%;
    an autoencoder's codes have no prescribed law, so its grid spans the box of
    its training codes.
    """
    if isinstance(est, VAETransformer):
        axis0 = axis1 = norm.ppf(np.linspace(0.05, 0.95, size))
    else:
        low, high = Z_train.min(axis=0), Z_train.max(axis=0)
        axis0, axis1 = np.linspace(low[0], high[0], size), np.linspace(low[1], high[1], size)
    # Rows of the picture run from high z2 (top) to low z2 (bottom).
    z1, z2 = np.meshgrid(axis0, axis1[::-1])
    return np.column_stack([z1.ravel(), z2.ravel()]).astype(Z_train.dtype)


def run(argv=None):
    """Run the demo; returns the folder the figures were written to."""
    args = build_parser().parse_args(argv)
    if args.n_components < 1:
        raise SystemExit(f"--n-components must be at least 1; got {args.n_components}.")
    epochs = args.epochs if args.epochs is not None else (5 if args.quick else None)
    if epochs is not None and epochs < 1:
        raise SystemExit(f"--epochs must be at least 1; got {epochs}.")
    plt = _pyplot()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    digits = load_digits()
    X = (digits.data / 16.0).astype(np.float32)
    X_train, X_test, y_train, y_test = train_test_split(
        X, digits.target, test_size=0.25, random_state=0, stratify=digits.target
    )
    k, seed = args.n_components, args.seed
    # tol=1e-3, ten times the estimators' default, stops each fit once another
    # epoch would gain under 0.1% of what training has gained: a demo in a minute.
    neural = dict(tol=1e-3, device=args.device, random_state=seed, verbose=not args.no_progress)
    if epochs is not None:
        neural["max_iter"] = epochs
    deep = dict(hidden_layer_sizes=(128,), **neural)
    models = {
        f"PCA({k})": PCA(k, random_state=seed),
        f"linear AE({k})": AutoencoderTransformer(
            k, hidden_layer_sizes=(), activation="identity", **neural
        ),
        f"deep AE({k})": AutoencoderTransformer(k, **deep),
        f"VAE({k})": VAETransformer(k, **deep),
    }
    meaning = {
        "PCA": "log p(x) under probabilistic PCA: a density",
        "linear AE": "log-likelihood of the residuals: not a density",
        "deep AE": "log-likelihood of the residuals: not a density",
        "VAE": "ELBO <= log p(x): a bound on a density",
    }
    nearest = NearestNeighbors(n_neighbors=1).fit(X_train)
    real_distance = nearest.kneighbors(X_test)[0].mean()

    print(
        f"digits: {len(X_train)} training / {len(X_test)} held-out images of 8x8 pixels in [0, 1]"
    )
    rows, notes = [], []
    for name, est in models.items():
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est.fit(X_train)
        seconds = time.perf_counter() - start
        notes += [f"{name}: {w.category.__name__}: {w.message}" for w in caught]
        mse = float(((est.inverse_transform(est.transform(X_test)) - X_test) ** 2).mean())
        drawn = _decoded_samples(est, 500, seed)
        distance = nearest.kneighbors(drawn)[0].mean() / real_distance
        rows.append((name, seconds, mse, est.score(X_test), distance, str(est.device_)))

    header = f"{'model':<14} {'fit s':>6} {'test MSE':>9} {'score':>8} {'sample dist':>11}  device"
    print(header)
    print("-" * len(header))
    for name, seconds, mse, score, distance, device in rows:
        print(f"{name:<14} {seconds:>6.1f} {mse:>9.4f} {score:>8.1f} {distance:>11.2f}  {device}")
    print()
    print("test MSE: mean squared error of held-out reconstructions, per pixel.")
    print("score: mean over held-out rows, in nats; each model's own quantity:")
    for name, _, _, _, _, _ in rows:
        print(f"  {name:<14} {meaning[name.split('(')[0]]}")
    print("  Only PCA's and the VAE's scores compare (both are densities of X, or a bound on one).")
    print(
        "sample dist: mean distance from 500 decoded samples to their nearest training digit,\n"
        "  divided by that of held-out real digits (1.00: as close as unseen real digits)."
    )

    # The figures.
    fig, axes = plt.subplots(1, len(models) + 1, figsize=(3 * (len(models) + 1), 3.4))
    _mosaic(X_test[:16], axes[0], "held-out digits")
    for ax, (name, est) in zip(axes[1:], models.items()):
        _mosaic(est.inverse_transform(est.transform(X_test[:16])), ax, f"{name}: reconstruction")
    fig.suptitle(f"Reconstructions of held-out digits through a {k}-D code")
    fig.tight_layout()
    fig.savefig(out / "reconstructions.png", dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, len(models), figsize=(3 * len(models), 3.4))
    for ax, (name, est) in zip(axes, models.items()):
        _mosaic(_decoded_samples(est, 16, seed), ax, f"{name}: sample(16)")
    fig.suptitle("sample(): draws from each model, decoded without observation noise")
    fig.tight_layout()
    fig.savefig(out / "samples.png", dpi=110)
    plt.close(fig)

    pair = {
        "deep AE(2)": AutoencoderTransformer(2, **deep),
        "VAE(2)": VAETransformer(2, **deep),
    }
    codes = {}
    for name, est in pair.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est.fit(X_train)
        notes += [f"{name}: {w.category.__name__}: {w.message}" for w in caught]
        codes[name] = (est.transform(X_train), est.transform(X_test))

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    for ax, (name, (_, Z_test)) in zip(axes, codes.items()):
        points = ax.scatter(
            Z_test[:, 0], Z_test[:, 1], c=y_test, cmap="tab10", s=8, vmin=-0.5, vmax=9.5
        )
        ax.set_title(f"{name}: codes of held-out digits", fontsize=10)
        ax.set_xlabel("$z_1$")
        ax.set_ylabel("$z_2$")
        bar = fig.colorbar(points, ax=ax, ticks=range(10))
        bar.set_label("digit")
    fig.suptitle("2-D latent spaces: the VAE's codes follow its N(0, I) prior")
    fig.tight_layout()
    fig.savefig(out / "latent_maps.png", dpi=110)
    plt.close(fig)

    size = 15
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.8))
    for ax, (name, est) in zip(axes, pair.items()):
        grid = _latent_grid(est, codes[name][0], size)
        _mosaic(est.inverse_transform(grid), ax, "", cols=size)
        if isinstance(est, VAETransformer):
            ax.set_title(f"{name}: decoded grid over the prior's 5%-95% quantiles", fontsize=10)
        else:
            ax.set_title(f"{name}: decoded grid over the box of its training codes", fontsize=10)
        ax.set_xlabel("$z_1$ increasing to the right")
        ax.set_ylabel("$z_2$ increasing upwards")
    fig.suptitle("Decoding a regular grid of latent points")
    fig.tight_layout()
    fig.savefig(out / "latent_grids.png", dpi=110)
    plt.close(fig)

    if notes:
        print("warnings while fitting:")
        for note in notes:
            print(f"  {note}")
    print(f"figures written to {out.resolve()}: {', '.join(FIGURES)}")
    return out


def main(argv=None):
    run(argv)
