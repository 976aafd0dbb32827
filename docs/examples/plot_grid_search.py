"""
Choosing ``n_components`` with a Pipeline and GridSearchCV
==========================================================

A VAE's :meth:`~skvae.VAETransformer.score` is its held-out ELBO, so
``GridSearchCV`` without a ``scoring`` argument picks the latent size that
models unseen data best. PCA's score, the exact
probabilistic-PCA log-likelihood, is on the same scale (nats per digit) and is
searched the same way. (An autoencoder's score is not a density and rises with
``n_components``; it cannot choose a width this way.)

The pipelines scale the pixels with ``MinMaxScaler(clip=True)``; ``clip``
keeps held-out pixels inside the training range.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from skvae import PCA, VAETransformer

X = load_digits().data.astype(np.float32)
n_components = [2, 4, 8, 16]

vae = make_pipeline(
    MinMaxScaler(clip=True),
    VAETransformer(hidden_layer_sizes=(128,), tol=1e-3, learning_rate=3e-3, random_state=0),
)
pca = make_pipeline(MinMaxScaler(clip=True), PCA())

searches = {
    "VAE": GridSearchCV(vae, {"vaetransformer__n_components": n_components}, cv=3),
    "PCA": GridSearchCV(pca, {"pca__n_components": n_components}, cv=3),
}
for name, search in searches.items():
    search.fit(X)
    print(f"{name}: best {search.best_params_}, held-out score {search.best_score_:.1f} nats")

# %%
# Held-out score against the latent size
# --------------------------------------

fig, ax = plt.subplots(figsize=(5.5, 3.8), layout="constrained")
for name, search in searches.items():
    mean = search.cv_results_["mean_test_score"]
    std = search.cv_results_["std_test_score"]
    ax.errorbar(n_components, mean, yerr=std, marker="o", capsize=3, label=name)
ax.set_xscale("log", base=2)
ax.set_xticks(n_components, [str(k) for k in n_components])
ax.set_xlabel("n_components")
ax.set_ylabel("mean held-out score (nats per digit)")
ax.legend()
plt.show()

# %%
# Both scores still rise at the largest size tried: when the best value sits
# at the edge of the grid, widen the grid before trusting it. The chosen
# pipeline is refitted on all the data and can be used directly; its active
# units say how many of the latent dimensions the VAE actually uses.

best = searches["VAE"].best_estimator_
print("active latent units:", best[-1].n_active_units_, "of", best[-1].n_components)
