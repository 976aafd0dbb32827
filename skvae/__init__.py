"""skvae: scikit-learn estimators for dimensionality reduction and generative modelling."""

__version__ = "0.1.0.dev0"

__all__ = ["__version__"]
