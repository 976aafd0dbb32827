"""skvae: scikit-learn estimators for dimensionality reduction and generative modelling."""

from . import _compat
from ._persistence import load
from .decomposition import PCA
from .exceptions import DivergenceWarning
from .neural import AutoencoderTransformer, VAETransformer

__version__ = "0.3.0.dev0"

# Pickles written by skvae 0.2 name its old module paths.
_compat.install()

__all__ = [
    "AutoencoderTransformer",
    "DivergenceWarning",
    "PCA",
    "VAETransformer",
    "__version__",
    "load",
]
