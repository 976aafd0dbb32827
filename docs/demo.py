"""skvae in one picture: PCA, an autoencoder and a VAE on handwritten digits.

Fits the three estimators on 8x8 digits scaled to [0, 1], prints how well each
reconstructs held-out digits, what it scores and how close its samples come to
real digits, and saves a figure with
reconstructions, decoded random draws ("samples") and the VAE's 2-D latent space.

Run it with ``python docs/demo.py`` (add ``--out FILE`` to choose the PNG path).
"""

import argparse
import time
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.neighbors import NearestNeighbors  # noqa: E402

from skvae import PCA, AutoencoderTransformer, VAETransformer  # noqa: E402


def grid(images, ax, title):
    """Tile (n, 64) images into one 8x8-cell mosaic on ``ax``."""
    n = len(images)
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    canvas = np.zeros((rows * 9, cols * 9))  # white under gray_r
    for i, img in enumerate(np.clip(images, 0, 1)):
        r, c = divmod(i, cols)
        canvas[r * 9 : r * 9 + 8, c * 9 : c * 9 + 8] = img.reshape(8, 8)
    ax.imshow(canvas, cmap="gray_r", vmin=0, vmax=1)
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def decoded_samples(est, n):
    """``n`` prior draws decoded without observation noise, for any of the three models."""
    if not isinstance(est, PCA):
        return est.sample(n, random_state=0, observation_noise=False)
    # PCA.sample always adds its isotropic noise; its noise-free part is
    # mean + U sqrt(Λ - σ²) z with z ~ N(0, I), decoded by inverse_transform.
    z = np.random.RandomState(0).randn(n, est.n_components_)
    scale = np.sqrt(np.clip(est.explained_variance_ - est.noise_variance_, 0, None))
    return est.inverse_transform((z * scale).astype(est.components_.dtype))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="skvae_demo.png", help="where to save the figure")
    parser.add_argument("--n-components", type=int, default=8)
    args = parser.parse_args()

    digits = load_digits()
    X = digits.data.astype(np.float32) / 16.0
    X_train, X_test, y_train, y_test = train_test_split(
        X, digits.target, test_size=0.25, random_state=0
    )
    k = args.n_components
    models = {
        f"PCA({k})": PCA(k, random_state=0),
        f"Autoencoder({k})": AutoencoderTransformer(k, hidden_layer_sizes=(128,), random_state=0),
        f"VAE({k})": VAETransformer(k, hidden_layer_sizes=(128,), random_state=0),
    }
    # What each score is: only the two densities compare with each other.
    meaning = {
        f"PCA({k})": "log p(x), probabilistic PCA (a density)",
        f"Autoencoder({k})": "reconstruction log-likelihood (not a density)",
        f"VAE({k})": "ELBO <= log p(x) (a bound on a density)",
    }
    # How far a point lies from its nearest training digit, relative to held-out real digits.
    nearest = NearestNeighbors(n_neighbors=1).fit(X_train)
    real_distance = nearest.kneighbors(X_test)[0].mean()
    print(f"digits: {X_train.shape[0]} train / {X_test.shape[0]} test rows, {X.shape[1]} pixels")
    print(f"{'model':<18} {'fit s':>6} {'test MSE':>9} {'sample distance':>16}  device")
    recon, samples, scores = {}, {}, {}
    for name, est in models.items():
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X_train)
        seconds = time.perf_counter() - start
        recon[name] = est.inverse_transform(est.transform(X_test[:16]))
        mse = float(((est.inverse_transform(est.transform(X_test)) - X_test) ** 2).mean())
        # The decoded points, without observation noise, for all three alike.
        drawn = decoded_samples(est, 500)
        samples[name] = drawn[:16]
        distance = nearest.kneighbors(drawn)[0].mean() / real_distance
        scores[name] = est.score(X_test)
        print(f"{name:<18} {seconds:>6.1f} {mse:>9.4f} {distance:>16.2f}  {est.device_}")
    print(
        "Sample distance: mean distance from 500 samples (decoded, no observation noise) "
        "to their nearest training digit, divided by that of the held-out digits "
        "(1.00: as close as real unseen digits)."
    )
    print("Held-out score per sample, in nats; each model's own quantity:")
    for name, value in scores.items():
        print(f"  {name:<18} {value:>8.1f}  {meaning[name]}")

    vae2 = VAETransformer(2, hidden_layer_sizes=(128,), random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        Z = vae2.fit(X_train).transform(X_test)

    fig, axes = plt.subplots(2, 4, figsize=(13, 6.5))
    grid(X_test[:16], axes[0, 0], "held-out digits")
    for ax, (name, images) in zip(axes[0, 1:], recon.items()):
        grid(images, ax, f"{name}: reconstructions")
    for ax, (name, images) in zip(axes[1, :3], samples.items()):
        grid(images, ax, f"{name}: sample(16)")
    scatter = axes[1, 3].scatter(Z[:, 0], Z[:, 1], c=y_test, cmap="tab10", s=6)
    axes[1, 3].set_title("VAE(2) latent space of test digits", fontsize=9)
    fig.colorbar(scatter, ax=axes[1, 3], ticks=range(10))
    fig.suptitle("skvae: the encoder/decoder pair, linear, deep and variational")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"figure saved to {args.out}")


if __name__ == "__main__":
    main()
