"""Parameter validation shared by every skvae estimator.

Errors read like scikit-learn's::

    The 'batch_size' parameter of AutoencoderTransformer must be an int in the range
    [1, inf) or a str among {'auto'}. Got 0 instead.

and a misspelt option is answered with the closest valid one.
"""

import difflib
import math
import re
from numbers import Integral, Real

import numpy as np
import torch
from sklearn import get_config
from sklearn.utils import assert_all_finite

try:  # private in scikit-learn: imported only to subclass it
    from sklearn.utils._param_validation import InvalidParameterError as _SklearnError
except ImportError:  # pragma: no cover - a scikit-learn that moved it

    class _SklearnError(ValueError, TypeError):
        pass


class InvalidParameterError(_SklearnError):
    """Raised when an estimator's parameter has the wrong type or value.

    A subclass of scikit-learn's ``InvalidParameterError``, so code that catches
    scikit-learn's error (``check_param_validation`` among it) catches skvae's;
    like it, a ``ValueError`` and a ``TypeError``.
    """


def _finite(value):
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


class Interval:
    """Numbers of ``kind`` (``Integral`` or ``Real``) between ``left`` and ``right``.

    ``None`` for a bound means unbounded; ``closed`` is one of "both", "left",
    "right" or "neither".
    """

    def __init__(self, kind, left, right, closed="both"):
        self.kind, self.left, self.right, self.closed = kind, left, right, closed

    def __call__(self, value):
        if isinstance(value, bool | np.bool_) or not isinstance(value, self.kind):
            return False
        # An unbounded side is open, as scikit-learn's: [0, inf) holds no inf, and no
        # interval holds NaN.
        if self.kind is Real and not _finite(value):
            return False
        lo_ok = self.left is None or (
            value >= self.left if self.closed in ("both", "left") else value > self.left
        )
        hi_ok = self.right is None or (
            value <= self.right if self.closed in ("both", "right") else value < self.right
        )
        return bool(lo_ok and hi_ok)

    def __str__(self):
        noun = "an int" if self.kind is Integral else "a float"
        lb = "[" if self.closed in ("both", "left") and self.left is not None else "("
        rb = "]" if self.closed in ("both", "right") and self.right is not None else ")"
        lo = "-inf" if self.left is None else self.left
        hi = "inf" if self.right is None else self.right
        return f"{noun} in the range {lb}{lo}, {hi}{rb}"


class StrOptions:
    """One of a fixed set of strings."""

    def __init__(self, options):
        self.options = tuple(options)

    def __call__(self, value):
        return isinstance(value, str) and value in self.options

    def __str__(self):
        return "a str among {" + ", ".join(repr(o) for o in self.options) + "}"


class Constraint:
    """Any other constraint: a predicate and the words that describe it."""

    def __init__(self, predicate, description):
        self.predicate, self.description = predicate, description

    def __call__(self, value):
        return bool(self.predicate(value))

    def __str__(self):
        return self.description


BOOLEAN = Constraint(lambda v: isinstance(v, bool | np.bool_), "an instance of 'bool'")
NONE = Constraint(lambda v: v is None, "None")
RANDOM_STATE = Constraint(
    lambda v: (
        v is None
        or (isinstance(v, Integral) and not isinstance(v, bool) and 0 <= v < 2**32)
        or isinstance(v, np.random.RandomState)
    ),
    "an int in the range [0, 2**32 - 1], an instance of 'numpy.random.RandomState' or None",
)
# 'auto', or a device type with an optional index: what torch.device parses, of the
# kinds skvae computes on.
DEVICE_PATTERN = re.compile(r"auto|(cpu|cuda|mps)(:\d+)?")
DEVICE = Constraint(
    lambda v: isinstance(v, torch.device) or (isinstance(v, str) and DEVICE_PATTERN.fullmatch(v)),
    "a str among {'auto', 'cpu', 'cuda', 'cuda:N', 'mps'} or a torch.device",
)


def _join(descriptions):
    descriptions = [str(d) for d in descriptions]
    if len(descriptions) == 1:
        return descriptions[0]
    return ", ".join(descriptions[:-1]) + " or " + descriptions[-1]


def check_params(estimator, constraints):
    """Check ``estimator``'s parameters against ``{name: [constraint, ...]}``.

    A parameter is valid when it satisfies at least one of its constraints.
    Parameters are read, never changed.
    """
    cls = type(estimator).__name__
    for name, allowed in constraints.items():
        value = getattr(estimator, name)
        if any(c(value) for c in allowed):
            continue
        message = (
            f"The {name!r} parameter of {cls} must be {_join(allowed)}. Got {value!r} instead."
        )
        if isinstance(value, str):
            options = [o for c in allowed if isinstance(c, StrOptions) for o in c.options]
            close = difflib.get_close_matches(value, options, n=1)
            if close:
                message += f" Did you mean {close[0]!r}?"
        raise InvalidParameterError(message)


# Floor of a Gaussian noise variance (the least ``noise_variance`` a VAE takes), and,
# relative to X's mean column variance, of a learned one (:func:`noise_floor`): a
# perfect reconstruction would otherwise give a log-likelihood of +inf.
MIN_NOISE_VARIANCE = 1e-6


def noise_floor(variance):
    """The least noise variance a neural estimator learns on X whose columns have a
    mean variance of ``variance``: :data:`MIN_NOISE_VARIANCE` times it (1e-6 on
    standardised X), so that the floor scales with X, and at least 1e-30.

    An absolute floor of 1e-6 held X scaled by 1e-6 (noise variance near 4e-13)
    millions of times above its noise: the VAE's held-out bound fell 52 nats per
    row below PPCA's, where X at unit scale gave the same fit as PPCA.
    """
    return max(MIN_NOISE_VARIANCE * float(variance), 1e-30)


def check_tensor(X, estimator_name, ensure_min_features=1, ensure_finite=True):
    """Check a torch tensor as ``check_array`` checks an array; return its numpy float dtype.

    Dense (strided) layout, real, two dimensions, at least one sample and
    ``ensure_min_features`` features, and, with ``ensure_finite`` (skipped under
    ``sklearn.set_config(assume_finite=True)``), only finite values. float32 and
    narrower floats map to float32, anything else to float64, the dtype results
    are returned in.
    """
    if X.layout != torch.strided:
        raise TypeError(
            f"A sparse tensor (layout={X.layout}) was passed for X, but {estimator_name} "
            "needs dense data. Convert it with X.to_dense(), or pass a scipy.sparse "
            "matrix where the estimator accepts one."
        )
    if X.is_complex():
        raise ValueError(
            f"Complex data not supported: X is a {X.dtype} tensor. Pass its real part "
            "(X.real) or its modulus (X.abs()), whichever the model should see."
        )
    if X.ndim != 2:
        raise ValueError(
            f"Expected a 2D tensor of shape (n_samples, n_features), got shape "
            f"{tuple(X.shape)}. Reshape your data with X.reshape(-1, 1) if it has "
            "a single feature or X.reshape(1, -1) if it has a single sample."
        )
    if X.shape[0] < 1:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={tuple(X.shape)}) while a "
            f"minimum of 1 is required by {estimator_name}."
        )
    if X.shape[1] < ensure_min_features:
        raise ValueError(
            f"Found array with {X.shape[1]} feature(s) (shape={tuple(X.shape)}) while a "
            f"minimum of {ensure_min_features} is required by {estimator_name}."
        )
    narrow = (torch.float32, torch.float16, torch.bfloat16)
    np_dtype = np.dtype(np.float32 if X.dtype in narrow else np.float64)
    # check_array's test: the sum is finite when every entry is (one pass, no
    # temporary); only a non-finite sum, possibly an overflow, looks further.
    if (
        ensure_finite
        and not get_config()["assume_finite"]
        and X.is_floating_point()
        and not bool(torch.isfinite(X.sum()))
        and not bool(X.isfinite().all())
    ):
        # Only on failure: scikit-learn's own test on a host copy, for its message.
        host = X.detach().to("cpu", torch.float64 if np_dtype == np.float64 else torch.float32)
        assert_all_finite(host.numpy(), estimator_name=estimator_name, input_name="X")
    return np_dtype


def check_float32_values(X, Xt, estimator_name):
    """Raise when ``Xt``, the float32 tensor computed from X, holds NaN or inf.

    ``X`` is the caller's data, a numpy array or a tensor: when it holds NaN or
    inf itself, that is the error; otherwise its values are finite but beyond the
    largest float32, and converting them overflowed. Skipped under
    ``sklearn.set_config(assume_finite=True)``, as ``check_array``'s test is.
    """
    if get_config()["assume_finite"] or bool(torch.isfinite(Xt).all()):
        return
    xp = torch if isinstance(X, torch.Tensor) else np
    if not bool(xp.isfinite(X).all()):
        raise ValueError(
            f"Input X contains NaN or infinity; {estimator_name} needs finite values. "
            "Impute them (e.g. SimpleImputer) or drop those rows first."
        )
    largest = float(xp.abs(X).max())
    raise ValueError(
        f"X holds values up to {largest:.3g} in magnitude, beyond the largest float32, "
        f"{np.finfo(np.float32).max:.3g}, and {estimator_name} computes in float32. "
        "Scale X first, e.g. with StandardScaler or MaxAbsScaler."
    )


def check_n_samples(n_samples, name="n_samples"):
    """Raise a ValueError unless ``n_samples`` is an int >= 1 (bools excluded)."""
    if (
        isinstance(n_samples, bool | np.bool_)
        or not isinstance(n_samples, Integral)
        or n_samples < 1
    ):
        raise ValueError(
            f"{name} must be an int >= 1; got {n_samples!r} instead. Pass the number "
            "of samples to draw, e.g. 1."
        )


# Predicates of the neural estimators' structured parameters.
def is_layer_sizes(value):
    # A sequence: a generator would be used up by this check.
    if isinstance(value, str) or not hasattr(value, "__len__"):
        return False
    try:
        sizes = list(value)
    except TypeError:
        return False
    return all(isinstance(s, Integral) and not isinstance(s, bool) and s >= 1 for s in sizes)


def is_shape(value):
    return is_layer_sizes(value) and len(value) >= 1


def is_kwargs(value):
    return isinstance(value, dict) and all(isinstance(k, str) for k in value)
