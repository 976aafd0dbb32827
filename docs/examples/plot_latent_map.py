"""
The latent map: an autoencoder's codes and a VAE's
==================================================

Both models below squeeze each 8x8 digit through two numbers. The autoencoder
places its codes wherever reconstruction is easiest: clusters of arbitrary size
and position, with empty space between them. The VAE's KL term pulls its codes
towards its N(0, I) prior, so they fill a round, known region, which is what
lets it decode random points (:meth:`skvae.VAETransformer.sample`).
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skvae import AutoencoderTransformer, VAETransformer

digits = load_digits()
X = (digits.data / 16).astype(np.float32)  # pixels in [0, 1]
X_train, X_test, y_train, y_test = train_test_split(
    X, digits.target, test_size=0.25, random_state=0, stratify=digits.target
)

# tol=1e-3 stops once an epoch gains under 0.1% of what training has gained:
# enough for a picture, in seconds.
common = dict(n_components=2, hidden_layer_sizes=(128,), tol=1e-3, random_state=0)
models = {
    "autoencoder": AutoencoderTransformer(**common).fit(X_train),
    "VAE": VAETransformer(**common).fit(X_train),
}
for name, model in models.items():
    print(f"{name}: {model.n_iter_} epochs")

# %%
# Codes of held-out digits
# ------------------------
#
# The dashed circle on the VAE's panel holds 95% of its prior's mass.

fig, axes = plt.subplots(1, 2, figsize=(10, 4.4), layout="constrained")
for ax, (name, model) in zip(axes, models.items()):
    Z = model.transform(X_test)
    points = ax.scatter(Z[:, 0], Z[:, 1], c=y_test, cmap="tab10", s=8, vmin=-0.5, vmax=9.5)
    ax.set_title(f"{name}: codes of held-out digits")
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    fig.colorbar(points, ax=ax, ticks=range(10), label="digit")
radius = np.sqrt(-2 * np.log(0.05))  # P(|z| > r) = exp(-r^2 / 2) in two dimensions
axes[1].add_patch(plt.Circle((0, 0), radius, fill=False, ls="--", color="k"))
axes[1].set_aspect("equal", adjustable="datalim")
plt.show()

# %%
# The VAE's map, decoded
# ----------------------
#
# Decoding a regular grid over the prior's 5%-95% quantiles gives a smooth
# map of digits: every point of the region the codes fill decodes to
# something digit-like, and neighbouring points to similar images.

from scipy.stats import norm  # noqa: E402

size = 12
axis = norm.ppf(np.linspace(0.05, 0.95, size))
z1, z2 = np.meshgrid(axis, axis[::-1])  # z2 increases upwards
grid = np.column_stack([z1.ravel(), z2.ravel()]).astype(np.float32)
images = models["VAE"].inverse_transform(grid).reshape(size, size, 8, 8)
# One blank pixel between cells, so that each decoded image reads on its own.
cells = np.pad(np.clip(images, 0, 1), ((0, 0), (0, 0), (0, 1), (0, 1)))
canvas = cells.transpose(0, 2, 1, 3).reshape(size * 9, size * 9)

fig, ax = plt.subplots(figsize=(5.5, 5.5), layout="constrained")
ax.imshow(canvas, cmap="gray_r", extent=(axis[0], axis[-1], axis[0], axis[-1]))
ax.set_xlabel("$z_1$")
ax.set_ylabel("$z_2$")
ax.set_title("VAE: decoded grid over its prior")
plt.show()
