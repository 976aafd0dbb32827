"""PCA's small kernels around the solvers: moments, signs, the spectrum, projections.

Centring and column moments, the sign convention, Minka's MLE and the choice
of n_components, and the projections of transform. Functions of tensors and
arrays only (torch, numpy, scipy): no estimator code. A kernel chooses its
implementation by the container it is given, never by the device. The
decompositions themselves live in _solvers.py.
"""

import contextlib
import math

import numpy as np
import torch
from scipy.special import gammaln

from .._utils.seeds import seed_from
from ._blas import map_row_blocks


def host_view(X):
    """A CPU float tensor as a numpy array on its memory (no copy); anything else unchanged.

    For the kernels where numpy's BLAS or scipy's LAPACK computes the same
    numbers as torch's, faster (docs/pca.md): the Gram matrix, a tall QR, the
    projection of transform.
    """
    if (
        isinstance(X, torch.Tensor)
        and X.device.type == "cpu"
        and X.dtype in (torch.float32, torch.float64)
    ):
        return X.detach().numpy()
    return X


def _work_dtype(device, np_dtype):
    """The torch dtype to compute in: the input's, except float64 on MPS (unsupported there)."""
    if np.dtype(np_dtype) == np.float64 and torch.device(device).type != "mps":
        return torch.float64
    return torch.float32


def _torch_generator(random_state, device):
    """A ``torch.Generator`` on ``device`` seeded from ``random_state`` (global RNGs untouched)."""
    return torch.Generator(device=device).manual_seed(seed_from(random_state))


def _numpy_random_state(random_state):
    if isinstance(random_state, np.random.RandomState):
        return random_state
    return np.random.RandomState(random_state)  # None: fresh entropy, not the global RNG


def _svd_flip(Vt):
    """Signs that make the largest-magnitude entry of each row of ``Vt`` positive, and Vt flipped.

    ``Vt`` is a numpy array or a tensor; both results are tensors. ``U * signs``
    is the matching left factor; it is left to the caller, as only
    ``fit_transform`` needs it.
    """
    if isinstance(Vt, np.ndarray):
        signs = np.sign(Vt[np.arange(Vt.shape[0]), np.abs(Vt).argmax(axis=1)])
        return torch.from_numpy(signs), torch.from_numpy(Vt * signs[:, None])
    rows = torch.arange(Vt.shape[0], device=Vt.device)
    signs = torch.sign(Vt[rows, Vt.abs().argmax(dim=1)])
    return signs, Vt * signs[:, None]


def _column_mean(X):
    """Mean over rows as a tensor; for an array numpy's column sums, in row blocks on every core."""
    if isinstance(X, np.ndarray):
        return torch.from_numpy(sum(map_row_blocks(lambda B: B.sum(axis=0), X)) / X.shape[0])
    return X.mean(dim=0)


def _centred(X, copy=True):
    """Column mean (a tensor) and ``X - mean`` (``X``'s container), in place unless ``copy``."""
    if isinstance(X, np.ndarray):
        mean = X.mean(axis=0)
        Xc = X - mean if copy else np.subtract(X, mean, out=X)
        return torch.from_numpy(mean), Xc
    mean = X.mean(dim=0)
    return mean, torch.sub(X, mean, out=_empty_like(X)) if copy else X.sub_(mean)


def _empty_like(X):
    """An uninitialised tensor like ``X``; on the CPU in memory that numpy allocates.

    numpy asks the kernel for transparent huge pages on large arrays (madvise),
    which makes the first write to a copy of X several times cheaper than
    into torch's allocation in 4 KiB pages (benchmarks/bench_pca.py).
    """
    if X.device.type != "cpu":
        return torch.empty_like(X)
    np_dtype = torch.empty(0, dtype=X.dtype).numpy().dtype
    return torch.from_numpy(np.empty(X.shape, dtype=np_dtype))


def _column_sum_of_squares(X):
    """Sum of squared entries of each column, (n_features,) float64 numpy.

    Accumulated in float64: a float32 reduction over tens of millions of
    entries drifts by ~1e-3. For a float32 array the squares of every 16
    rows are summed in float32 (a rounding error of ~16 ulp at most) and those
    partial sums in float64: one einsum call, without the float64 copy of X
    that an einsum in float64 makes, in row blocks on every core. A tensor is
    reduced in its own dtype block by block (torch's sums are cascaded, with
    float32 errors of a few ulp), the blocks' sums in float64.
    """
    if isinstance(X, np.ndarray):
        return sum(map_row_blocks(_square_sum_block, X))
    blocks = X.split(max(1, 2**22 // max(1, X.shape[1])))
    return sum(b.square().sum(dim=0).to(torch.float64) for b in blocks).cpu().numpy()


# Rows summed in float32 before float64 takes over, and rows per einsum call
# (bounding its (rows / 16, n_features) output).
_PARTIAL_ROWS, _CHUNK_ROWS = 16, 2**14


def _square_sum_block(X):
    """Column sums of squares of the numpy array ``X`` in float64 (see _column_sum_of_squares)."""
    if X.dtype == np.float64 or not X.flags.c_contiguous:
        return np.einsum("ij,ij->j", X, X, dtype=np.float64)
    total = np.zeros(X.shape[1])
    for start in range(0, X.shape[0], _CHUNK_ROWS):
        chunk = X[start : start + _CHUNK_ROWS]
        whole = chunk.shape[0] - chunk.shape[0] % _PARTIAL_ROWS
        B = chunk[:whole].reshape(whole // _PARTIAL_ROWS, _PARTIAL_ROWS, X.shape[1])  # a view
        total += np.einsum("bij,bij->bj", B, B).sum(axis=0, dtype=np.float64)
        rest = chunk[whole:]
        total += np.einsum("ij,ij->j", rest, rest, dtype=np.float64)
    return total


def _assess_dimension(spectrum, rank, n_samples):
    """Log-likelihood of a rank-``rank`` model of data with eigenvalues ``spectrum``.

    Minka, "Automatic choice of dimensionality for PCA", NIPS 2000, eq. (30)-(31).
    """
    spectrum = np.asarray(spectrum, dtype=np.float64)
    n_features = spectrum.shape[0]
    if not 1 <= rank < n_features:
        raise ValueError("the tested rank should be in [1, n_features - 1]")
    eps = 1e-15
    if spectrum[rank - 1] < eps:
        # Such a small eigenvalue cannot give the maximum, and log(l_i - l_j) below would overflow.
        return -np.inf
    i = np.arange(1, rank + 1)
    pu = -rank * math.log(2.0) + np.sum(
        gammaln((n_features - i + 1) / 2.0) - math.log(math.pi) * (n_features - i + 1) / 2.0
    )
    pl = -np.sum(np.log(spectrum[:rank])) * n_samples / 2.0
    v = max(eps, np.sum(spectrum[rank:]) / (n_features - rank))
    pv = -math.log(v) * n_samples * (n_features - rank) / 2.0
    m = n_features * rank - rank * (rank + 1.0) / 2.0
    pp = math.log(2.0 * math.pi) * (m + rank) / 2.0
    # |A_Z| of eq. (31): pairs i < rank, j > i, with the discarded eigenvalues replaced by v.
    filled = spectrum.copy()
    filled[rank:] = v
    diff = spectrum[:rank, None] - spectrum[None, :]  # (rank, n_features)
    inv = 1.0 / filled[None, :] - 1.0 / filled[:rank, None]
    upper = np.arange(n_features)[None, :] > np.arange(rank)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        pa = np.sum(np.log(diff[upper] * inv[upper])) + upper.sum() * math.log(n_samples)
    return pu + pl + pv + pp - pa / 2.0 - rank * math.log(n_samples) / 2.0


def _infer_dimension(spectrum, n_samples):
    """The rank in [1, n_features - 1] that maximises Minka's evidence."""
    ll = np.full(spectrum.shape[0], -np.inf)
    for rank in range(1, spectrum.shape[0]):
        ll[rank] = _assess_dimension(spectrum, rank, n_samples)
    return int(np.argmax(ll))


def _check_n_components(n_components, n_samples, n_features, solver):
    """Raise as scikit-learn does when ``n_components`` does not fit the data and solver."""
    if solver in ("full", "covariance_eigh"):
        if n_components == "mle":
            if n_samples < n_features:
                raise ValueError("n_components='mle' is only supported if n_samples >= n_features")
        elif not 0 <= n_components <= min(n_samples, n_features):
            raise ValueError(
                f"n_components={n_components} must be between 0 and "
                f"min(n_samples, n_features)={min(n_samples, n_features)} with "
                f"svd_solver={solver!r}"
            )
        return
    if isinstance(n_components, str):
        raise ValueError(
            f"n_components={n_components!r} cannot be a string with svd_solver={solver!r}"
        )
    if not 1 <= n_components <= min(n_samples, n_features):
        raise ValueError(
            f"n_components={n_components!r} must be between 1 and "
            f"min(n_samples, n_features)={min(n_samples, n_features)!r} with "
            f"svd_solver={solver!r}"
        )
    if solver == "arpack" and n_components == min(n_samples, n_features):
        raise ValueError(
            f"n_components={n_components!r} must be strictly less than "
            f"min(n_samples, n_features)={min(n_samples, n_features)!r} with "
            f"svd_solver={solver!r}"
        )


def _select_n_components(n_components, spectrum, ratio, n_samples):
    """The number of components for an int, a variance fraction in (0, 1) or 'mle'."""
    if n_components == "mle":
        return _infer_dimension(spectrum, n_samples)
    if 0 < n_components < 1.0:
        # side="right": the kept components explain strictly more than asked.
        cumulative = np.cumsum(ratio)
        n_components = int(np.searchsorted(cumulative, n_components, side="right") + 1)
        return min(n_components, spectrum.shape[0])
    return int(n_components)


def _project_tensor(X, W, mean=None, variance=None):
    """``(X - mean) W^T`` for a tensor ``X``, divided by ``sqrt(variance)`` when given."""
    Y = (W @ X.T).T  # (n_samples, n_components); this layout is the faster one for BLAS
    if mean is not None:
        # (X - mean) W^T without copying X.
        Y -= mean @ W.T
    if variance is not None:
        # Rank-deficient data can leave variances near zero; clip to keep outputs finite.
        Y /= variance.sqrt().clamp(min=torch.finfo(variance.dtype).eps)
    return Y


def _project_array(X, W, mean=None, variance=None, with_total=False):
    """``(X - mean) W^T`` for a numpy array or sparse matrix, divided by ``sqrt(variance)``.

    The path of ``transform`` for numpy input. With ``with_total`` it returns
    ``(Y, total)``, ``total`` the sum of all of X's entries, which is
    ``check_array``'s test for NaN and inf. A row of ones appended to ``W``
    makes the same BLAS call compute the row sums, at a fraction of the cost of
    a separate pass over X. A NaN or inf times one is never skipped, so it
    reaches the sums whatever the BLAS.
    """
    W = W.astype(X.dtype, copy=False)
    if with_total:
        ones = np.ones((1, W.shape[1]), dtype=X.dtype)
        with np.errstate(invalid="ignore", over="ignore"):  # the caller raises on non-finite X
            Z = np.asarray(X @ np.concatenate([W, ones]).T)  # (n_samples, n_components + 1)
            total = Z[:, -1].sum()
        Z = Z[:, :-1]
    else:
        Z = np.asarray(X @ W.T)  # (n_samples, n_components)
    if mean is not None:
        Y = Z - mean.astype(X.dtype, copy=False) @ W.T
    else:
        Y = np.ascontiguousarray(Z)
    if variance is not None:
        scale = np.sqrt(variance).astype(X.dtype)
        Y /= np.maximum(scale, np.finfo(X.dtype).eps)
    return (Y, total) if with_total else Y


@contextlib.contextmanager
def numpy_linalg_errors(hint=""):
    """Raise torch's linear-algebra failures as ``numpy.linalg.LinAlgError``, as scikit-learn does.

    torch's ``LinAlgError`` is a ``RuntimeError``; callers of a drop-in for
    scikit-learn catch numpy's (a ``ValueError``). ``hint`` is appended to the
    message: what the failure means for the caller, and the way out.
    """
    try:
        yield
    except torch.linalg.LinAlgError as error:
        raise np.linalg.LinAlgError(f"{error} {hint}".rstrip()) from error
