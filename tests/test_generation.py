"""The sample-quality measure of the demo and bench_generation: a Fréchet distance."""

import numpy as np
import pytest
from sklearn.datasets import load_digits

from skvae import PCA
from skvae._generation import ClassifierFrechet, frechet_distance, latent_grid


def test_frechet_distance_matches_the_closed_forms():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(5, 5))
    cov = A @ A.T + np.eye(5)
    mean = rng.normal(size=5)
    assert frechet_distance(mean, cov, mean, cov) == pytest.approx(0, abs=1e-9)
    # Same covariance: only the means differ.
    assert frechet_distance(mean, cov, mean + 2, cov) == pytest.approx(4 * 5)
    # Commuting (diagonal) covariances: sum of (sqrt(a) - sqrt(b))^2.
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    expected = ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(np.zeros(3), np.diag(a), np.zeros(3), np.diag(b)) == pytest.approx(
        expected
    )


def test_real_images_are_closer_than_a_model_and_the_mean_image_is_far():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    quality = ClassifierFrechet(X[:1300], y[:1300], X[1300:], y[1300:])
    assert quality.accuracy_ > 0.85
    assert quality.distance(X[1300:]) == pytest.approx(0, abs=1e-4)
    floor = quality.real_floor(seeds=[0, 1]).mean()
    pca = PCA(2, random_state=0).fit(X[:1300])
    model = quality.distance(pca.sample(len(X) - 1300, random_state=0))
    assert floor < model < quality.mean_image()
    assert np.isnan(quality.distance(np.full((3, 64), np.nan)))


def test_latent_grid_spans_the_priors_quantiles_top_row_first():
    grid = latent_grid(3)
    assert grid.shape == (9, 2)
    np.testing.assert_allclose(grid[0], [-1.645, 1.645], rtol=1e-6)
    np.testing.assert_allclose(grid[-1], [1.645, -1.645], rtol=1e-6)
