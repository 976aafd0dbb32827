"""The networks: the shared estimator base, the autoencoder and the VAE, their
objectives and likelihoods, the modules and how they are built, the one training
loop, batched inference, and the one entrance that turns X into training rows."""

from ._autoencoder import AutoencoderTransformer
from ._vae import VAETransformer

__all__ = ["AutoencoderTransformer", "VAETransformer"]
