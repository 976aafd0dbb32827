"""skvae: scikit-learn estimators for dimensionality reduction and generative modelling."""

from ._autoencoder import AutoencoderTransformer
from ._pca import PCA

__version__ = "0.1.0.dev0"

__all__ = ["AutoencoderTransformer", "PCA", "__version__"]
