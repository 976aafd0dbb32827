"""The linear answer: PCA, its probabilistic model, incremental updates, and the
linear-algebra kernels (with the BLAS helpers only they use)."""

from ._pca import PCA

__all__ = ["PCA"]
