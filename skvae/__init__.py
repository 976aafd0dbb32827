"""skvae: scikit-learn estimators for dimensionality reduction and generative modelling."""

import importlib

from . import _compat

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
    "sample_pipeline",
]

# Each public name and the module it lives in, imported on first use: torch takes
# seconds to load, and `python -m skvae demo --help` should not wait for it.
_HOMES = {
    "AutoencoderTransformer": ".neural",
    "DivergenceWarning": ".exceptions",
    "PCA": ".decomposition",
    "VAETransformer": ".neural",
    "load": "._persistence",
    "sample_pipeline": "._sampling",
}


def __getattr__(name):
    if name not in _HOMES:
        raise AttributeError(f"module 'skvae' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name], __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
