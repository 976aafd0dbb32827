from numbers import Integral, Real

import numpy as np
import pytest

from skvae import AutoencoderTransformer, VAETransformer
from skvae._utils.devices import resolve_device
from skvae._utils.validation import (
    BOOLEAN,
    RANDOM_STATE,
    Interval,
    InvalidParameterError,
    StrOptions,
    check_params,
)


class Est:
    def __init__(self, **params):
        self.__dict__.update(params)


SPECS = {
    "batch_size": [Interval(Integral, 1, None), StrOptions({"auto"})],
    "fraction": [Interval(Real, 0, 1, closed="neither")],
    "activation": [StrOptions(("relu", "tanh"))],
    "flag": [BOOLEAN],
    "random_state": [RANDOM_STATE],
}
GOOD = dict(batch_size="auto", fraction=0.5, activation="relu", flag=True, random_state=None)


def test_valid_parameters_pass_untouched():
    est = Est(**GOOD)
    check_params(est, SPECS)
    assert est.__dict__ == GOOD


@pytest.mark.parametrize(
    "name, value, match",
    [
        (
            "batch_size",
            0,
            r"The 'batch_size' parameter of Est must be an int in the range "
            r"\[1, inf\) or a str among \{'auto'\}. Got 0 instead.",
        ),
        ("batch_size", True, r"Got True instead"),
        ("fraction", 1.0, r"a float in the range \(0, 1\). Got 1.0 instead."),
        ("activation", "rleu", r"Got 'rleu' instead. Did you mean 'relu'\?"),
        ("flag", "yes", r"must be an instance of 'bool'"),
        ("random_state", -1, r"'random_state' parameter of Est must be an int"),
    ],
)
def test_bad_parameters_name_value_and_choices(name, value, match):
    est = Est(**{**GOOD, name: value})
    with pytest.raises(InvalidParameterError, match=match):
        check_params(est, SPECS)


def test_error_is_both_value_and_type_error():
    assert issubclass(InvalidParameterError, ValueError)
    assert issubclass(InvalidParameterError, TypeError)


def test_error_is_caught_as_sklearns_own():
    # Code written for scikit-learn (its check_param_validation among it) catches
    # sklearn.utils._param_validation.InvalidParameterError.
    from sklearn.utils._param_validation import InvalidParameterError as SklearnError

    assert issubclass(InvalidParameterError, SklearnError)
    with pytest.raises(SklearnError, match="The 'batch_size' parameter of Est must be"):
        check_params(Est(**{**GOOD, "batch_size": 0}), SPECS)


def test_random_state_accepts_generator_objects():
    check_params(Est(**{**GOOD, "random_state": np.random.RandomState(0)}), SPECS)


# ------------------------------------------------ the estimators' parameters (reproducer 8)
@pytest.mark.parametrize(
    "Est, name, value, match",
    [
        (
            VAETransformer,
            "beta",
            np.inf,
            r"'beta' parameter of VAETransformer must be a float "
            r"in the range \[0, inf\)\. Got inf instead",
        ),
        (
            VAETransformer,
            "noise_variance",
            1e-40,
            r"'noise_variance' parameter of "
            r"VAETransformer must be a float in the range \[1e-06, inf\) or a str among "
            r"\{'learned'\}\. Got 1e-40 instead",
        ),
        (VAETransformer, "noise_variance", np.inf, r"Got inf instead"),
        (AutoencoderTransformer, "learning_rate", np.inf, r"\(0, inf\)\. Got inf instead"),
        (AutoencoderTransformer, "weight_decay", np.inf, r"\[0, inf\)\. Got inf instead"),
        (AutoencoderTransformer, "epsilon", np.inf, r"\(0, inf\)\. Got inf instead"),
        (AutoencoderTransformer, "tol", np.inf, r"\[0, inf\)\. Got inf instead"),
        (AutoencoderTransformer, "tol", np.nan, r"Got nan instead"),
        (
            AutoencoderTransformer,
            "device",
            "cuda:abc",
            r"'device' parameter of "
            r"AutoencoderTransformer must be a str among \{'auto', 'cpu', 'cuda', 'cuda:N', "
            r"'mps'\} or a torch\.device\. Got 'cuda:abc' instead",
        ),
        (VAETransformer, "device", "auto:1", r"Got 'auto:1' instead"),
        (
            AutoencoderTransformer,
            "hidden_layer_sizes",
            (s for s in (8, 4)),
            r"'hidden_layer_sizes' parameter of AutoencoderTransformer must be a tuple of "
            r"positive ints \(possibly empty\)\. Got <generator",
        ),
    ],
)
def test_estimator_parameters_are_refused_before_training(Est, name, value, match):
    X = np.random.default_rng(0).random((20, 4))
    est = Est(**{name: value, "max_iter": 1})
    with pytest.raises(InvalidParameterError, match=match):
        est.fit(X)
    assert not hasattr(est, "n_iter_")


@pytest.mark.parametrize("device", ["cuda:abc", "auto:1", "cpu:x", "gpu"])
def test_resolve_device_refuses_malformed_names(device):
    with pytest.raises(ValueError, match=rf"must be one of .* Got '{device}' instead"):
        resolve_device(device, "VAETransformer")
