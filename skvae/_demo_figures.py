"""The figures of ``python -m skvae demo``: each panel says what it shows and the measure of it."""

import numpy as np

from ._generation import latent_grid

# The N(0, I) prior of a 2-D latent space: a circle of radius r holds 1 - exp(-r^2 / 2)
# of its mass; radius 2 holds 86%.
PRIOR_RADIUS = 2.0
PRIOR_MASS = 1 - np.exp(-(PRIOR_RADIUS**2) / 2)


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def mosaic(images, ax, title, cols=None):
    """Tile (n, 64) images in [0, 1] into one mosaic of 8x8 cells on ``ax``."""
    n = len(images)
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    canvas = np.zeros((rows * 9 - 1, cols * 9 - 1))
    for i, img in enumerate(np.clip(np.asarray(images), 0, 1)):
        r, c = divmod(i, cols)
        canvas[r * 9 : r * 9 + 8, c * 9 : c * 9 + 8] = img.reshape(8, 8)
    ax.imshow(canvas, cmap="gray_r", vmin=0, vmax=1)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def reconstructions(path, X_test, reconstructed, mse, k):
    """Held-out digits and each model's reconstructions, titled with its held-out MSE."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(reconstructed) + 1, figsize=(3 * (len(reconstructed) + 1), 4.0))
    mosaic(X_test[:16], axes[0], "16 held-out digits")
    for ax, (name, images) in zip(axes[1:], reconstructed.items()):
        mosaic(images, ax, f"{name}\nheld-out MSE {mse[name]:.4f}")
    fig.suptitle(
        f"Reconstructions through a {k}-D code; MSE: mean squared error per pixel "
        "over all 450 held-out digits"
    )
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def samples(path, own, standard, distances, floor):
    """Row 1: each model's ``sample``; row 2: points z ~ N(0, I) decoded. Titled with their FD."""
    plt = pyplot()
    names = list(own)
    fig, axes = plt.subplots(2, len(names), figsize=(3 * len(names), 7.8))
    for col, name in enumerate(names):
        mosaic(own[name], axes[0, col], f"{name}: sample()\nFD {distances[name, 'sample']}")
        mosaic(
            standard[name],
            axes[1, col],
            f"{name}: decode z ~ N(0, I)\nFD {distances[name, 'N(0, I)']}",
        )
    fig.suptitle(
        "Top: each model's own sample(). Bottom: random latent points z ~ N(0, I), decoded.\n"
        "FD: Fréchet distance to held-out digits in a digit classifier's features, "
        f"mean ± sd over 5 draws of 450 (lower is closer; 450 real digits: {floor})",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.92), h_pad=2.5)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _inside(Z):
    return float(np.mean(np.hypot(Z[:, 0], Z[:, 1]) <= PRIOR_RADIUS))


def latent_maps(path, codes, y):
    """2-D codes of held-out digits on shared axes, with the prior's 86% circle."""
    plt = pyplot()
    fig, axes = plt.subplots(
        1, len(codes), figsize=(5.2 * len(codes), 5.4), sharex=True, sharey=True
    )
    every = np.concatenate(list(codes.values()))
    # Square axes that hold 99% of every model's codes and the prior's circle.
    low, high = np.percentile(every, [0.5, 99.5], axis=0)
    low, high = np.minimum(low, -PRIOR_RADIUS), np.maximum(high, PRIOR_RADIUS)
    span = max(high - low) / 2 * 1.05
    centre = (high + low) / 2
    circle = np.linspace(0, 2 * np.pi, 200)
    for ax, (name, Z) in zip(axes, codes.items()):
        points = ax.scatter(Z[:, 0], Z[:, 1], c=y, cmap="tab10", s=7, vmin=-0.5, vmax=9.5)
        ax.plot(
            PRIOR_RADIUS * np.cos(circle),
            PRIOR_RADIUS * np.sin(circle),
            "k--",
            lw=1,
            label=f"N(0, I): {PRIOR_MASS:.0%} inside",
        )
        sd = Z.std(0)
        ax.set_title(
            f"{name}: codes of held-out digits\nsd of z1, z2: {sd[0]:.2f}, {sd[1]:.2f}; "
            f"{_inside(Z):.0%} inside the circle",
            fontsize=10,
        )
        ax.set_xlabel("$z_1$")
        ax.set_ylabel("$z_2$")
        ax.set_aspect("equal")
        ax.legend(loc="upper right", fontsize=8)
    axes[0].set_xlim(centre[0] - span, centre[0] + span)
    axes[0].set_ylim(centre[1] - span, centre[1] + span)
    bar = fig.colorbar(points, ax=list(axes), ticks=range(10), shrink=0.8)
    bar.set_label("digit")
    fig.suptitle(
        "2-D latent spaces on the same axes; dashed: the circle holding "
        f"{PRIOR_MASS:.0%} of the VAE's N(0, I) prior"
    )
    fig.savefig(path, dpi=110)
    plt.close(fig)


def latent_grids(path, decoders, size, distances):
    """Each 2-D model decoding the same grid of latent points, with tick values."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(decoders), figsize=(5.8 * len(decoders), 6.2))
    grid = latent_grid(size)
    axis = np.unique(grid[:, 0])
    ticks = list(range(0, size, max(1, size // 4)))
    for ax, (name, decode) in zip(axes, decoders.items()):
        mosaic(decode(grid), ax, "", cols=size)
        ax.set_title(f"{name}: decoded grid\nFD {distances[name, 'grid']}", fontsize=10)
        ax.set_xticks([9 * i + 3.5 for i in ticks], [f"{axis[i]:.2f}" for i in ticks])
        ax.set_yticks([9 * i + 3.5 for i in ticks], [f"{axis[::-1][i]:.2f}" for i in ticks])
        ax.set_xlabel("$z_1$")
        ax.set_ylabel("$z_2$")
    fig.suptitle(
        f"The same {size}x{size} grid of latent points over [{axis[0]:.2f}, {axis[-1]:.2f}]^2 "
        "(the prior's 5%-95% quantiles), decoded\nFD: as in samples.png, of a 21x21 grid "
        "over the same range",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
