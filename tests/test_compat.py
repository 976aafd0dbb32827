"""Estimators pickled by skvae 0.2, whose modules sat in one flat folder, still load."""

import pickle
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.datasets import load_iris

import skvae

DATA = Path(__file__).parent / "data"
X = load_iris().data


def test_public_names_are_unchanged():
    from skvae import PCA, AutoencoderTransformer, DivergenceWarning, VAETransformer

    assert PCA is skvae.decomposition.PCA
    assert AutoencoderTransformer is skvae.neural.AutoencoderTransformer
    assert VAETransformer is skvae.neural.VAETransformer
    assert issubclass(DivergenceWarning, Warning)


@pytest.mark.parametrize("name", ["pca"])
def test_a_pickle_of_skvae_0_2_loads_and_transforms_as_before(name):
    # Files written by skvae 0.2 (iris, fitted with random_state=0), with their transform.
    with open(DATA / f"{name}_0.2.pkl", "rb") as f:
        est = pickle.load(f)
    assert type(est).__module__.startswith(("skvae.decomposition.", "skvae.neural."))
    assert_allclose(est.transform(X), np.load(DATA / f"{name}_0.2_transform.npy"), rtol=1e-6)


@pytest.mark.parametrize("name", ["autoencoder", "vae"])
def test_a_neural_pickle_of_skvae_0_2_is_refused_with_the_way_out(name):
    # They hold the network as torch.save bytes, which load only by running code
    # from the file: refused, before any of it is read.
    with (
        open(DATA / f"{name}_0.2.pkl", "rb") as f,
        pytest.raises(
            ValueError, match=r"pickled by skvae 0\.3\.0\.dev0 or earlier.*Fit the estimator again"
        ),
    ):
        pickle.load(f)
