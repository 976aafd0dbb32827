"""skvae: scikit-learn estimators for dimensionality reduction and generative modelling."""

from . import _compat  # noqa: F401  (pickles of skvae 0.2 name its old module paths)
from ._persistence import load
from .decomposition import PCA
from .exceptions import DivergenceWarning
from .neural import AutoencoderTransformer, VAETransformer

__version__ = "0.3.0.dev0"

__all__ = [
    "AutoencoderTransformer",
    "DivergenceWarning",
    "PCA",
    "VAETransformer",
    "__version__",
    "load",
]
