"""
PCA as a drop-in for scikit-learn's
===================================

:class:`skvae.PCA` takes scikit-learn's parameters and returns its attributes, with
the same numbers: change the import and nothing else. Here both fit the 8x8
digits; the spectra coincide and the components agree entry by entry (both
follow scikit-learn's sign convention).
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA as SklearnPCA

from skvae import PCA

X = load_digits().data

ours = PCA(n_components=30).fit(X)
theirs = SklearnPCA(n_components=30).fit(X)

print("largest difference in explained_variance_ratio_:", end=" ")
print(np.abs(ours.explained_variance_ratio_ - theirs.explained_variance_ratio_).max())
print("largest difference in components_:", np.abs(ours.components_ - theirs.components_).max())
print("score (mean log-likelihood, nats):", ours.score(X), theirs.score(X))

# %%
# The spectrum, and the first components as images
# -------------------------------------------------

fig = plt.figure(figsize=(9, 3.6), layout="constrained")
ax = fig.add_subplot(1, 2, 1)
k = np.arange(1, 31)
ax.plot(k, np.cumsum(theirs.explained_variance_ratio_), "o", ms=7, mfc="none", label="sklearn")
ax.plot(k, np.cumsum(ours.explained_variance_ratio_), ".", color="C1", label="skvae")
ax.set_xlabel("number of components")
ax.set_ylabel("cumulative explained variance ratio")
ax.legend()
for i in range(6):
    sub = fig.add_subplot(2, 6, 4 + (i // 3) * 6 + i % 3)
    limit = np.abs(ours.components_[i]).max()
    sub.imshow(ours.components_[i].reshape(8, 8), cmap="RdBu_r", vmin=-limit, vmax=limit)
    sub.set_title(f"component {i + 1}", fontsize=8)
    sub.set_axis_off()
plt.show()

# %%
# What skvae adds
# ---------------
#
# The same object draws from its probabilistic-PCA model, and runs on a GPU
# (``device="cuda"``) or on torch tensors, which come back as tensors.

import torch  # noqa: E402

samples = ours.sample(5, random_state=0)
codes = ours.transform(torch.as_tensor(X[:5]))
print(samples.shape, type(codes).__name__, codes.dtype)
