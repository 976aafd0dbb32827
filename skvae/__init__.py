"""skvae: scikit-learn estimators for dimensionality reduction and generative modelling."""

from ._autoencoder import AutoencoderTransformer
from ._pca import PCA
from ._vae import VAETransformer
from .exceptions import DivergenceWarning

__version__ = "0.1.0.dev0"

__all__ = ["AutoencoderTransformer", "DivergenceWarning", "PCA", "VAETransformer", "__version__"]
