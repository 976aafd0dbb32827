"""How close generated images come to real ones: a Fréchet distance in a classifier's features.

The measure of Heusel et al. (2017, "GANs trained by a two time-scale update
rule converge to a local Nash equilibrium"), with the Inception network replaced
by a small scikit-learn :class:`~sklearn.neural_network.MLPClassifier` trained
on the same data: images are mapped to its hidden layer, a Gaussian is fitted
to the features of the generated images and one to those of held-out real
images, and the distance between the two Gaussians is

    FD = |mu_g - mu_r|^2 + Tr(S_g + S_r - 2 (S_g S_r)^(1/2)).

0 means the same feature statistics; finite sets of real images do not reach
it, so :meth:`ClassifierFrechet.real_floor` measures real images against the
held-out ones at the same size, and :meth:`ClassifierFrechet.mean_image` scores
the trivial generator that always returns the average training image. Used by
``python -m skvae demo`` and ``benchmarks/bench_generation.py``; it reads only
the estimators' public methods (``transform``, ``inverse_transform``,
``sample``), whatever networks they hold.
"""

import numpy as np
from sklearn.neural_network import MLPClassifier


def frechet_distance(mean_a, cov_a, mean_b, cov_b):
    """Fréchet (2-Wasserstein) distance between N(mean_a, cov_a) and N(mean_b, cov_b).

    Tr((A B)^(1/2)) is computed as the sum of the square roots of the
    eigenvalues of A^(1/2) B A^(1/2), a symmetric matrix with the same spectrum.
    """
    w, V = np.linalg.eigh(cov_a)
    root_a = (V * np.sqrt(np.clip(w, 0, None))) @ V.T
    cross = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_root = np.sqrt(np.clip(cross, 0, None)).sum()
    distance = ((mean_a - mean_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root
    return float(max(distance, 0.0))  # rounding can take equal Gaussians a hair below 0


def _moments(F):
    return F.mean(0), np.cov(F, rowvar=False)


class ClassifierFrechet:
    """Fréchet distance to held-out real images in the hidden layer of a classifier of the data.

    Parameters
    ----------
    X_train, y_train : ndarray
        Images (rows of pixels) and their labels, to train the classifier on.
    X_real : ndarray
        Held-out real images: the reference the generated images are compared with.
    hidden : int, default=64
        Width of the classifier's hidden layer, the feature space.
    random_state : int, default=0
        Seeds the classifier.

    Attributes
    ----------
    accuracy_ : float
        The classifier's accuracy on ``X_real`` (with ``y_real`` when given to
        :meth:`__init__`), or None.
    """

    def __init__(self, X_train, y_train, X_real, y_real=None, hidden=64, random_state=0):
        # Full-batch L-BFGS: a tenth of Adam's time on digits, at a similar accuracy.
        self.classifier = MLPClassifier(
            hidden_layer_sizes=(hidden,), solver="lbfgs", max_iter=1000, random_state=random_state
        )
        self.classifier.fit(np.asarray(X_train, dtype=np.float64), y_train)
        self.X_train = np.asarray(X_train)
        self.n_real = len(X_real)
        self.real = _moments(self.features(X_real))
        self.accuracy_ = None if y_real is None else self.classifier.score(X_real, y_real)

    def features(self, X):
        """The classifier's hidden-layer activations (ReLU) of images X, shape (n, hidden)."""
        X = np.asarray(X, dtype=np.float64)
        return np.maximum(X @ self.classifier.coefs_[0] + self.classifier.intercepts_[0], 0)

    def distance(self, X):
        """FD between images X and the held-out real images."""
        X = np.asarray(X, dtype=np.float64)
        if not np.all(np.isfinite(X)):
            return float("nan")
        return frechet_distance(*_moments(self.features(X)), *self.real)

    def real_floor(self, n=None, seeds=range(5)):
        """FD of ``n`` real training images (default: as many as held out), per seed."""
        n = n or self.n_real
        out = []
        for seed in seeds:
            rows = np.random.default_rng(seed).choice(len(self.X_train), n, replace=False)
            out.append(self.distance(self.X_train[rows]))
        return np.array(out)

    def mean_image(self):
        """FD of a generator that always returns the mean training image (no spread at all)."""
        mean = self.X_train.mean(0, keepdims=True)
        # One image repeated: its covariance is zero. Computed directly, not from copies.
        return frechet_distance(self.features(mean)[0], np.zeros_like(self.real[1]), *self.real)


def noise_free_samples(estimator, n, seed):
    """``n`` draws of ``estimator``'s model of X, without observation noise (the decoder's mean).

    PCA's ``sample`` adds its isotropic noise; the noise-free part of a draw is
    mean + U sqrt(Λ - σ²) z with z ~ N(0, I) (Tipping & Bishop 1999).
    """
    if hasattr(estimator, "noise_variance_") and hasattr(estimator, "explained_variance_"):
        z = np.random.default_rng(seed).standard_normal((n, estimator.n_components_))
        scale = np.sqrt(np.clip(estimator.explained_variance_ - estimator.noise_variance_, 0, None))
        if estimator.whiten:
            scale = scale / np.sqrt(estimator.explained_variance_)
        return estimator.inverse_transform((z * scale).astype(estimator.components_.dtype))
    return estimator.sample(n, random_state=seed, observation_noise=False)


def standard_normal_decodes(estimator, n, seed, dtype=np.float32):
    """``n`` points z ~ N(0, I) of the latent space, decoded: "random latent points"."""
    z = np.random.default_rng(seed).standard_normal((n, _latent_size(estimator)))
    z = z.astype(dtype)  # (n, n_components)
    return estimator.inverse_transform(z)


def _latent_size(estimator):
    for name in ("n_components_", "n_components"):
        value = getattr(estimator, name, None)
        if isinstance(value, (int, np.integer)):
            return int(value)
    raise ValueError(f"{type(estimator).__name__} has no integer n_components.")


def midpoints(estimator, X, n, seed):
    """Decoded midpoints of the latent segments between ``n`` random pairs of rows of X."""
    rng = np.random.default_rng(seed)
    a, b = rng.choice(len(X), n), rng.choice(len(X), n)
    Z = estimator.transform(X)
    return estimator.inverse_transform(((Z[a] + Z[b]) / 2).astype(Z.dtype))


def pixel_midpoints(X, n, seed):
    """The same pairs' averages in pixel space: what interpolating without a model gives."""
    rng = np.random.default_rng(seed)
    a, b = rng.choice(len(X), n), rng.choice(len(X), n)
    return (X[a] + X[b]) / 2


def latent_grid(size, low=-1.645, high=1.645, dtype=np.float32):
    """A ``size`` x ``size`` grid of 2-D latent points, rows from high z2 (top) to low z2.

    The default range is the standard normal's 5%..95% quantiles on each axis.
    """
    axis = np.linspace(low, high, size)
    z1, z2 = np.meshgrid(axis, axis[::-1])
    return np.column_stack([z1.ravel(), z2.ravel()]).astype(dtype)


def summarise(values):
    """'mean ± sd' of repeated measurements (the sd over seeds)."""
    values = np.asarray(values, dtype=float)
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{values.mean():.2f} ± {values.std(ddof=1):.2f}"
