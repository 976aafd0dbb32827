"""Saving and loading: est.save / skvae.load (data only) and pickle, for the three
estimators; files that would run code are refused without running it."""

import copyreg
import io
import json
import pickle
import warnings
import zipfile

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from torch import nn

import skvae
from skvae import PCA, AutoencoderTransformer, VAETransformer
from skvae._persistence import record_to_tensor, tensor_to_record
from skvae.exceptions import InconsistentVersionWarning, PosteriorCollapseWarning

SMALL = dict(n_components=2, hidden_layer_sizes=(8,), max_iter=3, device="cpu", random_state=0)


# Module level: a saved estimator names its user classes by import path.
class Trunk(nn.Module):
    def __init__(self, width=5):
        super().__init__()
        self.layer = nn.Linear(4, width)
        self.register_buffer("scale", torch.full((width,), 0.5))

    def forward(self, x):
        return torch.tanh(self.layer(x)) * self.scale


ESTIMATORS = {
    "pca": lambda: PCA(2),
    "ae": lambda: AutoencoderTransformer(**SMALL),
    "vae": lambda: VAETransformer(**SMALL),
    "vae-custom": lambda: VAETransformer(encoder=Trunk, encoder_kwargs={"width": 6}, **SMALL),
    # decoupled weight decay: two parameter groups in the optimizer
    "ae-decay": lambda: AutoencoderTransformer(weight_decay=0.1, **SMALL),
}
CONTAINERS = {
    "float64": lambda X: X,
    "float32": lambda X: X.astype(np.float32),
    "tensor": lambda X: torch.as_tensor(X, dtype=torch.float32),
}


def quiet_fit(est, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", PosteriorCollapseWarning)
        return est.fit(X)


def as_numpy(value):
    return value.numpy() if torch.is_tensor(value) else np.asarray(value)


def outputs(est, X):
    Z = est.transform(X)
    out = {"transform": Z, "inverse_transform": est.inverse_transform(Z)}
    if hasattr(est, "score_samples"):
        out["score_samples"] = est.score_samples(X)
    if hasattr(est, "sample"):
        out["sample"] = est.sample(4, random_state=0)
    return {k: as_numpy(v) for k, v in out.items()}


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).random((50, 4))


def save_load(est, path, **kwargs):
    est.save(path)
    return skvae.load(path, **kwargs)


@pytest.mark.parametrize("container", sorted(CONTAINERS))
@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_save_load_and_pickle_round_trips_give_equal_outputs(name, container, X, tmp_path):
    Xc = CONTAINERS[container](X)
    est = quiet_fit(ESTIMATORS[name](), Xc)
    expected = outputs(est, Xc)
    trusted = [Trunk] if name == "vae-custom" else ()
    for copy in (
        save_load(est, tmp_path / "est.skvae", trusted=trusted),
        pickle.loads(pickle.dumps(est)),
    ):
        assert type(copy) is type(est)
        assert copy.get_params().keys() == est.get_params().keys()
        got = outputs(copy, Xc)
        for key in expected:
            np.testing.assert_array_equal(got[key], expected[key], err_msg=key)


@pytest.mark.parametrize("name", ["ae", "vae", "ae-decay"])
def test_a_loaded_estimator_trains_on_as_the_original_would(name, X, tmp_path):
    est = quiet_fit(ESTIMATORS[name](), X)
    loaded = save_load(est, tmp_path / "est.skvae")
    unpickled = pickle.loads(pickle.dumps(est))
    est.partial_fit(X)  # Adam's moments and step counts carried over, not restarted
    for copy in (loaded, unpickled):
        np.testing.assert_array_equal(copy.partial_fit(X).transform(X), est.transform(X))


def test_trusted_may_name_the_class_by_its_import_path(X, tmp_path):
    est = quiet_fit(ESTIMATORS["vae-custom"](), X)
    loaded = save_load(est, tmp_path / "est.skvae", trusted=[f"{__name__}.Trunk"])
    assert isinstance(loaded.module_.encoder.trunk[0], Trunk)


def test_a_user_class_that_is_not_trusted_is_refused(X, tmp_path):
    est = quiet_fit(ESTIMATORS["vae-custom"](), X)
    est.save(tmp_path / "est.skvae")
    with pytest.raises(ValueError, match=rf"does not import unless trusted: {__name__}\.Trunk"):
        skvae.load(tmp_path / "est.skvae")


def test_a_module_instance_cannot_be_saved_as_data(X, tmp_path):
    est = quiet_fit(VAETransformer(encoder=Trunk(), **SMALL), X)
    with pytest.raises(ValueError, match=r"cannot store encoder, a module instance \(Trunk\)"):
        est.save(tmp_path / "est.skvae")
    # pickle still takes it, for files one trusts
    twin = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(twin.transform(X), est.transform(X))


# ---------------------------------------------------------------- crafted files
class Payload:
    """Creates a file when unpickled: the proof that a load ran code."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_the_payload_runs_when_unpickled(tmp_path):
    # The control for the tests below: loaded by pickle, the payload creates its file.
    pickle.loads(pickle.dumps(Payload(tmp_path / "pwned")))
    assert (tmp_path / "pwned").exists()


def rewrite(path, change):
    """Rewrite the saved file at ``path``: ``change(manifest, archive_members)``."""
    with zipfile.ZipFile(path) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    manifest = json.loads(members["estimator.json"])
    change(manifest, members)
    members["estimator.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for n, data in members.items():
            archive.writestr(n, data)


def test_a_file_with_a_pickled_array_is_refused_without_running_it(X, tmp_path):
    path, proof = tmp_path / "est.skvae", tmp_path / "pwned"
    quiet_fit(AutoencoderTransformer(**SMALL), X).save(path)

    def plant(manifest, members):
        buffer = io.BytesIO()
        np.save(buffer, np.array([Payload(proof)], dtype=object), allow_pickle=True)
        members["arrays/evil.npy"] = buffer.getvalue()
        manifest["attributes"]["latent_mean_"] = {"__array__": "arrays/evil.npy"}

    rewrite(path, plant)
    with pytest.raises(ValueError, match=r"cannot be read as plain data.*would run code"):
        skvae.load(path)
    assert not proof.exists()


def test_a_file_naming_an_untrusted_callable_is_refused(X, tmp_path):
    path = tmp_path / "est.skvae"
    quiet_fit(AutoencoderTransformer(**SMALL), X).save(path)

    def plant(manifest, members):
        manifest["params"]["encoder"] = {"__import__": "os:system"}

    rewrite(path, plant)
    with pytest.raises(ValueError, match=r"unless trusted: os\.system"):
        skvae.load(path)


def test_a_pickle_of_the_previous_format_is_refused_without_running_it(X, tmp_path):
    proof = tmp_path / "pwned"
    state = quiet_fit(AutoencoderTransformer(**SMALL), X).__getstate__()
    for key in ("_module", "_optimizer_state", "_skvae_version"):
        del state[key]
    buffer = io.BytesIO()
    torch.save({"module_": Payload(proof)}, buffer)
    state["_torch_state"] = buffer.getvalue()  # as the previous format held the network

    class OldPickle:
        def __reduce__(self):
            return (copyreg._reconstructor, (AutoencoderTransformer, object, None), state)

    blob = pickle.dumps(OldPickle())
    with pytest.raises(ValueError, match=r"pickled by skvae 0\.3\.0\.dev0 or earlier.*Fit"):
        pickle.loads(blob)
    assert not proof.exists()


# ----------------------------------------------------------- versions and devices
def test_a_file_from_another_version_warns(X, tmp_path):
    path = tmp_path / "est.skvae"
    quiet_fit(VAETransformer(**SMALL), X).save(path)
    rewrite(path, lambda manifest, members: manifest.update(skvae_version="0.1.0"))
    with pytest.warns(InconsistentVersionWarning, match=r"saved by skvae 0\.1\.0 and is loaded"):
        skvae.load(path)


def test_a_pickle_from_another_version_warns(X):
    est = quiet_fit(AutoencoderTransformer(**SMALL), X)
    state = est.__getstate__()
    state["_skvae_version"] = "0.1.0"
    new = AutoencoderTransformer.__new__(AutoencoderTransformer)
    with pytest.warns(InconsistentVersionWarning, match=r"saved by skvae 0\.1\.0"):
        new.__setstate__(state)
    np.testing.assert_array_equal(new.transform(X), est.transform(X))


def test_a_file_saved_on_a_missing_device_loads_on_the_cpu_with_a_warning(X, tmp_path):
    path = tmp_path / "est.skvae"
    est = quiet_fit(VAETransformer(**SMALL), X)
    est.save(path)

    def on_a_gpu(manifest, members):
        manifest["attributes"]["device_"] = {"__device__": "cuda:7"}

    rewrite(path, on_a_gpu)
    with pytest.warns(UserWarning, match=r"fitted on device 'cuda:7'.*loaded on the CPU"):
        loaded = skvae.load(path)
    assert loaded.device_ == torch.device("cpu")
    np.testing.assert_array_equal(loaded.transform(X), est.transform(X))


def test_load_refuses_what_save_did_not_write(tmp_path):
    path = tmp_path / "est.pkl"
    path.write_bytes(pickle.dumps(PCA(2)))
    with pytest.raises(ValueError, match=r"not a file written by skvae's save"):
        skvae.load(path)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.int64, torch.bool])
def test_tensors_of_any_dtype_travel_as_numpy_data(dtype):
    tensor = (torch.arange(6).reshape(2, 3) % 2).to(dtype)
    for value in (tensor, tensor[0, 0]):  # a 0-d tensor too
        back = record_to_tensor(*tensor_to_record(value))
        assert back.dtype == dtype and back.shape == value.shape
        assert torch.equal(back, value)
