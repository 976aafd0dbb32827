"""
A network of your own: a small convolutional VAE
================================================

``encoder=`` and ``decoder=`` take torch modules of your own; skvae adds the
heads it needs (here the mean and log-variance of q(z|x)) and trains them with
its one loop, behind the same scikit-learn API. ``input_shape`` says how a flat
row of X is shaped inside the networks: here, the 8x8 digits as one-channel
images. See :doc:`/custom_networks` for the contract.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from skvae import VAETransformer


class Encoder(nn.Module):
    """(batch, 1, 8, 8) images to (batch, 2 * width, 2, 2) feature maps."""

    def __init__(self, width=16):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, width, 3, stride=2, padding=1),  # (batch, width, 4, 4)
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),  # (batch, 2 width, 2, 2)
            nn.ReLU(),
        )

    def forward(self, x):
        return self.net(x)


class Decoder(nn.Module):
    """(batch, n_components) codes to (batch, 1, 8, 8) logits."""

    def __init__(self, n_components, width=16):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_components, 2 * width * 2 * 2),
            nn.ReLU(),
            nn.Unflatten(1, (2 * width, 2, 2)),
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1),  # (batch, width, 4, 4)
            nn.ReLU(),
            nn.ConvTranspose2d(width, 1, 4, stride=2, padding=1),  # (batch, 1, 8, 8)
        )

    def forward(self, z):
        return self.net(z)


digits = load_digits()
X = (digits.data / 16).astype(np.float32)  # flat rows, as scikit-learn wants them
X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)

vae = VAETransformer(
    8,
    input_shape=(1, 8, 8),
    encoder=Encoder,
    decoder=Decoder,  # called as Decoder(n_components=8)
    likelihood="bernoulli",
    learning_rate=3e-3,
    tol=1e-3,
    random_state=0,
)
vae.fit(X_train)
print(f"{vae.n_iter_} epochs, {vae.n_active_units_} active units of 8")
print(f"held-out ELBO: {vae.score(X_test):.1f} nats per digit")

# %%
# Reconstructions and samples
# ---------------------------
#
# Codes, reconstructions and samples are flat rows again: (n, 64).

reconstructions = vae.inverse_transform(vae.transform(X_test[:10]))
samples = vae.sample(10, random_state=0, observation_noise=False)

fig, axes = plt.subplots(3, 10, figsize=(8, 2.8), layout="constrained")
for row, (images, label) in enumerate(
    [(X_test[:10], "held-out"), (reconstructions, "reconstructed"), (samples, "sampled")]
):
    for ax, image in zip(axes[row], images):
        ax.imshow(image.reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[row, 0].set_ylabel(label, fontsize=8)
plt.show()
