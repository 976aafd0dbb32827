"""skvae on Dask: GridSearchCV on a LocalCluster and dask-ml's Incremental.

Needs the `dask` extra (dask, distributed, dask-ml; part of the `tests` extra).
One cluster of two single-threaded worker processes serves the whole module:
starting one costs seconds.
"""

import joblib
import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from sklearn.datasets import load_digits
from sklearn.decomposition import IncrementalPCA
from sklearn.model_selection import GridSearchCV

from skvae import PCA, AutoencoderTransformer, VAETransformer

da = pytest.importorskip("dask.array", reason="dask is not installed: pip install skvae[dask]")
distributed = pytest.importorskip(
    "dask.distributed", reason="distributed is not installed: pip install skvae[dask]"
)
wrappers = pytest.importorskip(
    "dask_ml.wrappers", reason="dask-ml is not installed: pip install skvae[dask]"
)

X = load_digits().data[:300] / 16  # (300, 64) in [0, 1]
SMALL = dict(hidden_layer_sizes=(32,), max_iter=300, device="cpu", random_state=0)
ESTIMATORS = {
    "PCA": (PCA(), {"n_components": [2, 10, 30]}),
    "AutoencoderTransformer": (
        AutoencoderTransformer(tol=0.05, n_iter_no_change=2, **SMALL),
        {"n_components": [1, 8]},
    ),
    # A VAE needs more epochs than the autoencoder before its posterior opens.
    "VAETransformer": (
        VAETransformer(tol=1e-2, n_iter_no_change=5, learning_rate=3e-3, **SMALL),
        {"n_components": [1, 8]},
    ),
}


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    )
    with distributed.Client(cluster) as client:
        yield client
    cluster.close()


@pytest.mark.parametrize("name", ESTIMATORS)
def test_grid_search_on_a_local_cluster_matches_serial(client, name):
    estimator, grid = ESTIMATORS[name]
    serial = GridSearchCV(estimator, grid, cv=2).fit(X)
    with distributed.get_task_stream(client) as tasks, joblib.parallel_config(backend="dask"):
        on_cluster = GridSearchCV(estimator, grid, cv=2, n_jobs=-1).fit(X)
    assert tasks.data, "no task ran on the cluster"
    assert on_cluster.best_params_ == serial.best_params_
    # The workers run one thread, as this process: the same fits, the same scores.
    assert_allclose(
        on_cluster.cv_results_["mean_test_score"],
        serial.cv_results_["mean_test_score"],
        rtol=1e-5,
    )


def test_incremental_pca_over_dask_chunks_is_partial_fit_over_the_chunks(client):
    Xd = da.from_array(X, chunks=(75, 64))
    model = wrappers.Incremental(PCA(10), shuffle_blocks=False).fit(Xd)
    local, ref = PCA(10), IncrementalPCA(10)
    for start in range(0, X.shape[0], 75):
        local.partial_fit(X[start : start + 75])
        ref.partial_fit(X[start : start + 75])
    fitted = model.estimator_
    assert fitted.n_samples_seen_ == X.shape[0]
    scale = np.abs(ref.explained_variance_).max()
    assert_allclose(fitted.explained_variance_, ref.explained_variance_, atol=1e-9 * scale)
    assert_allclose(fitted.components_, local.components_, atol=1e-9)
    Y = model.transform(Xd)
    assert isinstance(Y, da.Array)
    assert_allclose(Y.compute(), local.transform(X), atol=1e-9)


@pytest.mark.parametrize("name", ["AutoencoderTransformer", "VAETransformer"])
def test_incremental_trains_the_neural_estimators_epoch_by_chunk(client, name):
    estimator, _ = ESTIMATORS[name]
    estimator = estimator.set_params(n_components=4)
    Xd = da.from_array(X.astype(np.float32), chunks=(100, 64))
    model = wrappers.Incremental(estimator, shuffle_blocks=False).fit(Xd)
    local = estimator.__class__(**estimator.get_params())
    threads = torch.get_num_threads()  # 1 here, as on the workers
    assert threads == 1
    for start in range(0, X.shape[0], 100):
        local.partial_fit(X[start : start + 100].astype(np.float32))
    # Same seed, same chunks, one thread on both sides: the same weights.
    assert_allclose(model.transform(Xd).compute(), local.transform(X.astype(np.float32)))
