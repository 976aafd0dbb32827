"""Samples in the user's units: ``sample`` under set_output, and ``sample_pipeline``."""

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, MinMaxScaler, StandardScaler

from skvae import PCA, AutoencoderTransformer, VAETransformer, sample_pipeline

pd = pytest.importorskip("pandas")

COLUMNS = ["price", "rooms", "area", "age", "floor", "rent"]
# Columns of very different scales, as raw tabular data has.
SCALES = np.array([3e5, 2.0, 80.0, 30.0, 4.0, 1e3])
X = np.random.default_rng(0).normal(size=(120, 6)) * SCALES + 10 * SCALES
SMALL = dict(hidden_layer_sizes=(8,), max_iter=3, tol=0.0, device="cpu", random_state=0)


def make(name):
    if name == "PCA":
        return PCA(3, random_state=0)
    return {"AE": AutoencoderTransformer, "VAE": VAETransformer}[name](3, **SMALL)


def fit(estimator, X):
    last = estimator[-1] if hasattr(estimator, "steps") else estimator
    if isinstance(last, PCA):
        return estimator.fit(X)
    with pytest.warns(UserWarning, match="max_iter"):  # three epochs do not converge
        return estimator.fit(X)


@pytest.mark.parametrize("name", ["PCA", "AE", "VAE"])
def test_sample_honours_set_output_with_the_input_feature_names(name):
    frame = pd.DataFrame(StandardScaler().fit_transform(X), columns=COLUMNS)
    estimator = fit(make(name).set_output(transform="pandas"), frame)
    drawn = estimator.sample(5, random_state=0)
    assert isinstance(drawn, pd.DataFrame)
    assert list(drawn.columns) == COLUMNS
    assert drawn.shape == (5, 6)
    # The same draw as without the output setting, only in a DataFrame.
    plain = estimator.set_output(transform="default").sample(5, random_state=0)
    assert isinstance(plain, np.ndarray)
    np.testing.assert_array_equal(drawn.to_numpy(), plain)


@pytest.mark.parametrize("name", ["PCA", "AE", "VAE"])
def test_sample_without_feature_names_gets_sklearns_names(name):
    estimator = fit(make(name), StandardScaler().fit_transform(X)).set_output(transform="pandas")
    assert list(estimator.sample(2, random_state=0).columns) == [f"x{i}" for i in range(6)]


@pytest.mark.parametrize("name", ["PCA", "AE", "VAE"])
def test_sample_pipeline_returns_samples_in_the_input_units(name):
    pipe = make_pipeline(StandardScaler(), make(name))
    fit(pipe, X)
    drawn = sample_pipeline(pipe, 400, random_state=0)
    assert drawn.shape == (400, 6)
    # Back through the scaler by hand: the same rows.
    by_hand = pipe[0].inverse_transform(pipe[-1].sample(400, random_state=0))
    np.testing.assert_allclose(drawn, by_hand)
    # In the columns' own units: each column's mean within a few of its scales of the data's.
    assert np.all(np.abs(drawn.mean(0) - X.mean(0)) < 3 * SCALES)


def test_sample_pipeline_with_pandas_output_names_the_input_columns():
    frame = pd.DataFrame(X, columns=COLUMNS)
    pipe = make_pipeline(StandardScaler(), MinMaxScaler(), make("PCA"))
    pipe.set_output(transform="pandas").fit(frame)
    drawn = sample_pipeline(pipe, 3, random_state=1)
    assert isinstance(drawn, pd.DataFrame)
    assert list(drawn.columns) == COLUMNS
    assert drawn["price"].abs().min() > 1e5  # prices, not standardised values


def test_sample_pipeline_passes_sample_parameters_and_accepts_an_estimator():
    vae = fit(make("VAE"), StandardScaler().fit_transform(X))
    smooth = sample_pipeline(vae, 4, random_state=0, observation_noise=False)
    np.testing.assert_array_equal(smooth, vae.sample(4, random_state=0, observation_noise=False))


def test_sample_pipeline_refuses_a_step_that_cannot_invert():
    columns = ColumnTransformer([("scale", StandardScaler(), [0, 1, 2, 3, 4, 5])])
    pipe = make_pipeline(columns, make("PCA")).fit(X)
    with pytest.raises(ValueError, match="step 'columntransformer' \\(ColumnTransformer\\) has no"):
        sample_pipeline(pipe, 2)


def test_sample_pipeline_refuses_a_function_without_its_inverse():
    pipe = make_pipeline(FunctionTransformer(np.log1p), make("PCA")).fit(np.abs(X))
    with pytest.raises(ValueError, match="'functiontransformer' .*log1p.* has no inverse_func"):
        sample_pipeline(pipe, 2)
    pipe = make_pipeline(FunctionTransformer(np.log1p, inverse_func=np.expm1), make("PCA")).fit(
        np.abs(X)
    )
    assert np.all(sample_pipeline(pipe, 50, random_state=0) > -1)


def test_sample_pipeline_refuses_a_last_step_without_sample():
    pipe = make_pipeline(StandardScaler(), MinMaxScaler()).fit(X)
    with pytest.raises(ValueError, match="last step of the pipeline, 'minmaxscaler'.*no sample"):
        sample_pipeline(pipe, 2)
