"""
Anomaly scoring with ``score_samples``
======================================

A model of X that is a density scores how plausible each row is.
:meth:`skvae.VAETransformer.score_samples` returns each row's ELBO, a lower
bound on log p(x) in nats, and :meth:`skvae.PCA.score_samples` the exact
log-likelihood under probabilistic PCA. Both are fitted on digits; held-out
digits should then score higher than the same digits corrupted (a block of
pixels switched on, as a smudge or a scanning fault would).
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from skvae import PCA, VAETransformer

digits = load_digits()
X = (digits.data / 16).astype(np.float32)
X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)

# Corrupt a copy of the held-out digits: a random 3x3 block set to full ink.
rng = np.random.default_rng(0)
X_bad = X_test.reshape(-1, 8, 8).copy()
for image, (r, c) in zip(X_bad, rng.integers(0, 6, size=(len(X_bad), 2))):
    image[r : r + 3, c : c + 3] = 1.0
X_bad = X_bad.reshape(len(X_bad), -1)

models = {
    "PCA(8)": PCA(n_components=8),
    "VAE(8)": VAETransformer(n_components=8, hidden_layer_sizes=(128,), tol=1e-3, random_state=0),
}
scores = {}
for name, model in models.items():
    model.fit(X_train)
    normal, corrupted = model.score_samples(X_test), model.score_samples(X_bad)
    labels = np.r_[np.zeros(len(normal)), np.ones(len(corrupted))]
    auc = roc_auc_score(labels, -np.r_[normal, corrupted])  # low score: anomalous
    scores[name] = normal, corrupted, auc
    print(f"{name}: ROC AUC of -score_samples for the corrupted digits: {auc:.3f}")

# %%
# Score distributions
# -------------------

fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
for ax, (name, (normal, corrupted, auc)) in zip(axes, scores.items()):
    bins = np.linspace(min(normal.min(), corrupted.min()), max(normal.max(), corrupted.max()), 40)
    ax.hist(normal, bins=bins, alpha=0.6, label="held-out digits")
    ax.hist(corrupted, bins=bins, alpha=0.6, label="corrupted digits")
    ax.set_title(f"{name}, ROC AUC {auc:.3f}")
    ax.set_xlabel("score_samples (nats)")
    ax.set_ylabel("rows")
    ax.legend()
plt.show()

# %%
# The lowest-scoring held-out digits
# ----------------------------------
#
# Among the clean held-out digits, the VAE's lowest scores go to unusual
# writing: these are the rows to look at first.

normal = scores["VAE(8)"][0]
fig, axes = plt.subplots(1, 8, figsize=(8, 1.4), layout="constrained")
for ax, i in zip(axes, np.argsort(normal)[:8]):
    ax.imshow(X_test[i].reshape(8, 8), cmap="gray_r")
    ax.set_title(f"{normal[i]:.0f}", fontsize=8)
    ax.set_axis_off()
plt.show()
