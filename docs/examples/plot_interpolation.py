"""
Interpolating between two digits in a VAE's latent space
========================================================

Averaging two images pixel by pixel superimposes them: halfway from a 0 to a 1
is a faint 0 with a 1 on top, an image of neither. Walking the straight line
between their codes in a VAE's latent space and decoding each point instead
moves through images the model considers plausible.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from skvae import VAETransformer

digits = load_digits()
X = (digits.data / 16).astype(np.float32)
vae = VAETransformer(n_components=8, hidden_layer_sizes=(128,), tol=1e-3, random_state=0)
vae.fit(X)
print(f"{vae.n_iter_} epochs, {vae.n_active_units_} active latent units of 8")

# %%
# Two endpoints, nine steps
# -------------------------

start, end = X[digits.target == 0][0], X[digits.target == 1][0]
t = np.linspace(0, 1, 9, dtype=np.float32)[:, None]

z_start, z_end = vae.transform(np.stack([start, end]))
through_codes = vae.inverse_transform((1 - t) * z_start + t * z_end)
through_pixels = (1 - t) * start + t * end

fig, axes = plt.subplots(2, len(t), figsize=(len(t) * 1.1, 2.8), layout="constrained")
for row, (images, label) in enumerate([(through_pixels, "pixels"), (through_codes, "VAE codes")]):
    for col, image in enumerate(images):
        ax = axes[row, col]
        ax.imshow(np.clip(image, 0, 1).reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        if row == 1:
            ax.set_xlabel(f"t={t[col, 0]:.2f}", fontsize=8)
    axes[row, 0].set_ylabel(label, fontsize=9)
fig.suptitle("From a 0 to a 1: straight lines in pixel space and in latent space")
plt.show()
