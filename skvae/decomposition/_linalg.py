"""Numeric kernels of PCA: randomized SVD, Minka's MLE, centring operators, signs.

Functions of tensors and arrays only (torch, numpy, scipy): no estimator code.
Kernels choose their implementation by the container they are given, never by
the device: a numpy array (or scipy sparse matrix) runs numpy/scipy code, a
torch tensor runs torch code wherever it lives, the CPU included. Results come
back as tensors (numpy results are wrapped without a copy). Where the reasons
for a choice are measurements, see docs/pca.md.
"""

import contextlib
import math

import numpy as np
import scipy.sparse as sp
import torch
from scipy.linalg import get_lapack_funcs, qr, svd
from scipy.sparse.linalg import LinearOperator, eigsh, svds
from scipy.special import gammaln

from .._utils.arrays import is_tensor, to_tensor
from .._utils.seeds import seed_from
from ._blas import map_row_blocks


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


def _lu_normalize(Y):
    """``P @ L`` of the LU factorisation ``Y = P L U`` of a tensor, as
    ``scipy.linalg.lu(Y, permute_l=True)``."""
    LU, pivots, _ = torch.linalg.lu_factor_ex(Y)  # a singular Y is fine here
    return _permuted_l(LU, (pivots - 1).tolist())


def _permuted_l(LU, pivots):
    """``P @ L`` written over LAPACK's LU output (a numpy array or a tensor), 0-based ``pivots``.

    Below its top (r, r) block, L is LU itself, and P moves only the rows that
    the pivots touch: those, and the unit lower triangle, are all that is
    written, rather than copying L out and permuting it whole. Shape (n_rows, r).
    """
    r = min(LU.shape)
    L = LU[:, :r]
    L[:r] = np.tril(L[:r], k=-1) if isinstance(L, np.ndarray) else L[:r].tril(-1)
    L[list(range(r)), list(range(r))] = 1.0
    # The pivots are sequential row swaps; `to[i]` is where row i of L goes in P L.
    to = {}
    for i, p in enumerate(pivots):
        to[i], to[p] = to.get(p, p), to.get(i, i)
    rows = [i for i, j in to.items() if i != j]
    if rows:
        L[[to[i] for i in rows]] = L[rows]  # the right side is a copy
    return L


def _full_svd(X):
    """Thin SVD ``X = U diag(S) Vt``: U (n_samples, r) or None, S (r,), Vt (r, n_features).

    - a tall numpy array: a Householder QR by scipy, then the SVD of the small
      R; U is not formed (None: ``fit_transform`` projects X instead). Faster
      than one SVD of X, and as accurate as scikit-learn's.
    - wide data: the SVD of the transpose. LAPACK works in column-major
      memory, where a wide row-major ``X`` is its tall transpose without a
      copy; torch's SVD does it for a numpy array too (shared memory).
    - a tall tensor: ``torch.linalg.svd``.
    """
    if isinstance(X, np.ndarray):
        if X.shape[0] >= X.shape[1]:
            _, R = qr(X, mode="raw", check_finite=False)  # R: (r, n_features)
            _, S, Vt = svd(R, full_matrices=False, check_finite=False)
            return None, torch.from_numpy(S), torch.from_numpy(Vt)
        X = torch.from_numpy(X)
    if X.shape[0] >= X.shape[1]:
        return torch.linalg.svd(X, full_matrices=False)
    U, S, Vt = torch.linalg.svd(X.T, full_matrices=False)
    return Vt.T, S, U.T


def _randomized_svd(A, n_components, n_oversamples, n_iter, normalizer, generator, compute_u=True):
    """Truncated SVD of ``A`` (a numpy array or a tensor) by a randomized range finder.

    Halko, Martinsson and Tropp (2011), Algorithms 4.3/4.4 and 5.1; the policy
    for ``n_iter='auto'`` and ``normalizer='auto'`` follows scikit-learn's.
    Returns tensors U, S, Vt; U is None unless ``compute_u`` (only
    ``fit_transform`` needs it). Entries near the bottom or top of the float
    range (denormals) make the products underflow or overflow and LAPACK fail;
    then the SVD of ``A / max|A|`` is computed instead, its singular values
    scaled back.
    """
    args = (n_components, n_oversamples, n_iter, normalizer, generator, compute_u)
    try:
        return _range_finder_svd(A, *args)
    except torch.linalg.LinAlgError:
        scale = float(np.abs(A).max()) if isinstance(A, np.ndarray) else float(A.abs().max())
        if not 0.0 < scale < math.inf:
            raise
        U, S, Vt = _range_finder_svd(A / scale, *args)
        return U, S * scale, Vt


def _lu_permuted_l(Y):
    """``P @ L`` of the LU factorisation ``Y = P L U`` of a numpy array, as
    ``scipy.linalg.lu(Y, permute_l=True)``, written over LAPACK's output."""
    (getrf,) = get_lapack_funcs(("getrf",), (Y,))
    LU, pivots, _ = getrf(Y, overwrite_a=True)  # a singular U (info > 0) leaves L valid
    return _permuted_l(LU, pivots.tolist())  # scipy's pivots are 0-based


def _numpy_products(A):
    """``Q -> A Q`` and ``Y -> A^T Y`` for a tall numpy array ``A`` and thin ``Q``, ``Y``.

    Both run on ``A``'s memory without copying it. ``A Q`` (a sum over the
    short side) is numpy's BLAS with the row-major side of ``A`` untransposed
    in the call. ``A^T Y`` (a sum over the long side, down to a small result)
    is torch's ``(Y^T A)^T``: numpy's BLAS computes it in that layout about
    as fast on one thread but several times slower on two, and in
    scikit-learn's layout ``A^T Y`` more slowly (benchmarks/bench_pca.py).
    """
    tA = torch.from_numpy(A if min(A.strides) >= 0 else np.ascontiguousarray(A))
    times_t = lambda Y: (torch.from_numpy(Y).T @ tA).T.numpy()  # noqa: E731
    if A.flags.f_contiguous and not A.flags.c_contiguous:
        X = A.T  # row-major
        return (lambda Q: (Q.T @ X).T), times_t
    return (lambda Q: A @ Q), times_t


def _range_finder_svd(A, n_components, n_oversamples, n_iter, normalizer, generator, compute_u):
    if n_iter == "auto":
        n_iter = 7 if n_components < 0.1 * min(A.shape) else 4
    if normalizer == "auto":
        normalizer = "none" if n_iter <= 2 else "LU"
    transpose = A.shape[0] < A.shape[1]
    if transpose:
        A = A.T  # the range finder is cheaper with the smaller side as columns
    size = n_components + n_oversamples
    on_host = isinstance(A, np.ndarray)
    dtype = torch.from_numpy(np.empty(0, A.dtype)).dtype if on_host else A.dtype
    device = torch.device("cpu") if on_host else A.device
    Q = torch.randn(A.shape[1], size, generator=generator, device=device, dtype=dtype)
    # torch's QR on either container (on a numpy array's own memory): the
    # factorisations are small next to the products.
    qr_q = lambda Y: torch.linalg.qr(torch.from_numpy(Y) if on_host else Y).Q  # noqa: E731
    if on_host:
        # The products as _numpy_products says; scipy's LAPACK for the LU, as scikit-learn.
        times, times_t = _numpy_products(A)
        Q = Q.numpy()
        normalizers = {"QR": lambda Y: qr_q(Y).numpy(), "LU": _lu_permuted_l}
    else:
        # Products formed as (Q^T A^T)^T: the same numbers, in a layout that BLAS
        # runs faster for a tall A and a thin Q, and whose column-major result
        # LAPACK factorises without a copy.
        At = A.T
        times = lambda Q: (Q.T @ At).T  # noqa: E731
        times_t = lambda Q: (Q.T @ A).T  # noqa: E731
        normalizers = {"QR": qr_q, "LU": _lu_normalize}
    norm = normalizers.get(normalizer, lambda Y: Y)
    for _ in range(n_iter):
        Q = norm(times(Q))  # (n_rows, size)
        Q = norm(times_t(Q))  # (n_cols, size)
    Q = qr_q(times(Q))  # orthonormal basis of the sampled range, a tensor
    B = times_t(Q.numpy() if on_host else Q).T  # (size, n_cols) is small
    Uhat, S, Vt = torch.linalg.svd(torch.from_numpy(B) if on_host else B, full_matrices=False)
    U = Q @ Uhat if compute_u or transpose else None
    k = n_components
    if transpose:
        return (Vt[:k].T if compute_u else None), S[:k], U[:, :k].T
    return (U[:, :k] if compute_u else None), S[:k], Vt[:k]


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


def _numpy_gram(X):
    """X^T X of a numpy array, (n_features, n_features).

    numpy's matmul recognises the product with its own transpose and calls BLAS
    syrk, which computes one triangle: half the flops of a gemm. It is the call
    scikit-learn makes, so on numpy input its time is scikit-learn's.
    """
    return X.T @ X


def _covariance_eigh(X, device, dtype):
    """Exact PCA by eigendecomposition of the covariance of ``X`` (array, sparse matrix or tensor).

    C = (X^T X - n mean mean^T) / (n - 1): centring the small (n_features,
    n_features) Gram matrix instead of copying X. Returns the mean, the
    explained variances and singular values (descending), Vt and the
    per-feature variances (ddof=0, a float64 numpy array).
    """
    n_samples = X.shape[0]
    if sp.issparse(X):
        mean = torch.from_numpy(np.asarray(X.mean(axis=0), dtype=X.dtype).ravel())
        mean = mean.to(device, dtype)
        C = to_tensor((X.T @ X).toarray(), device, dtype)
    elif isinstance(X, np.ndarray):
        mean = _column_mean(X)
        C = torch.from_numpy(_numpy_gram(X))
    else:
        mean = _column_mean(X)
        C = X.T @ X
    C.addr_(mean, mean, alpha=-n_samples).div_(n_samples - 1)
    variances = C.diagonal().to(torch.float64).cpu().numpy() * ((n_samples - 1) / n_samples)
    eigenvalues, eigenvectors = torch.linalg.eigh(C)  # ascending
    # C is positive semi-definite; round-off can leave tiny negative eigenvalues.
    explained_variance = eigenvalues.flip(0).clamp_(min=0)
    S = torch.sqrt(explained_variance * (n_samples - 1))
    return mean, explained_variance, S, eigenvectors.flip(1).T, variances


def _dense_operator(Xc):
    """A scipy ``LinearOperator`` whose products run in torch on ``Xc``'s device."""
    np_dtype = np.float64 if Xc.dtype == torch.float64 else np.float32

    def prod(M, v):
        v = torch.from_numpy(np.ascontiguousarray(v, dtype=np_dtype)).to(Xc.device)
        return (M @ v).cpu().numpy()

    return LinearOperator(
        Xc.shape,
        matvec=lambda v: prod(Xc, v),
        matmat=lambda v: prod(Xc, v),
        rmatvec=lambda v: prod(Xc.T, v),
        rmatmat=lambda v: prod(Xc.T, v),
        dtype=np_dtype,
    )


def _centred_sparse_operator(X, mean):
    """``X - 1 mean^T`` as a ``LinearOperator``, without densifying the sparse ``X``."""
    XT = X.T.tocsr()
    mean = mean[None, :]  # (1, n_features)

    def matmat(v):
        return X @ v - mean @ v

    def rmatmat(v):
        v = v.reshape(X.shape[0], -1)
        return XT @ v - mean.T @ v.sum(axis=0, keepdims=True)

    return LinearOperator(
        X.shape,
        matvec=matmat,
        matmat=matmat,
        rmatvec=lambda v: rmatmat(v).ravel(),
        rmatmat=rmatmat,
        dtype=X.dtype,
    )


# The largest smaller side for which _gram_svds forms the Gram matrix (64 MiB in float32).
_GRAM_MAX = 4096


def _gram_svds(X, k, tol, v0):
    """``scipy.sparse.linalg.svds(X, k, tol=tol, v0=v0)`` with the Gram matrix formed once.

    svds runs ARPACK (eigsh) on ``X^T X`` of the smaller side, applied as two
    matrix-vector products that stream all of ``X`` through memory at every
    Lanczos step (771 steps for the wide 1000x10000 benchmark). Forming the
    (m, m) Gram matrix costs one BLAS syrk, after which each step multiplies a
    small in-cache matrix. Every other step is svds's own: the same start
    vector and tolerance, the QR of the Ritz vectors, singular values from the
    SVD of ``X`` times them. Returned in descending order.
    """
    transpose = X.shape[0] < X.shape[1]
    if transpose:
        X = X.T  # (max side, min side)
    G = _numpy_gram(X)
    _, V = eigsh(G, k=k, tol=tol**2, v0=v0)
    V, _ = np.linalg.qr(V)
    u, s, vh = svd(X @ V, full_matrices=False, overwrite_a=True)
    if transpose:
        return V @ vh.T, s, u.T
    return u, s, vh @ V.T


def _arpack_svd(A, k, tol, v0, device, dtype):
    """Leading ``k`` singular triplets by ARPACK, as tensors on ``device``, descending.

    ``A`` is a numpy array, a ``LinearOperator`` or a tensor. scipy multiplies
    an array directly; for a tensor each ARPACK product runs in torch on the
    tensor's device.
    """
    if isinstance(A, np.ndarray) and min(A.shape) <= _GRAM_MAX:
        U, S, Vt = _gram_svds(A, k, tol, v0)
    else:
        U, S, Vt = svds(_dense_operator(A) if is_tensor(A) else A, k=k, tol=tol, v0=v0)
        # svds returns ascending singular values. np.flip gives negative strides,
        # which torch.from_numpy refuses: copy.
        U, S, Vt = np.flip(U, axis=1), np.flip(S), np.flip(Vt, axis=0)
    as_tensor = lambda a: torch.from_numpy(np.array(a, order="C")).to(device, dtype)  # noqa: E731
    return as_tensor(U), as_tensor(S), as_tensor(Vt)


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
def numpy_linalg_errors():
    """Raise torch's linear-algebra failures as ``numpy.linalg.LinAlgError``, as scikit-learn does.

    torch's ``LinAlgError`` is a ``RuntimeError``; callers of a drop-in for
    scikit-learn catch numpy's (a ``ValueError``).
    """
    try:
        yield
    except torch.linalg.LinAlgError as error:
        raise np.linalg.LinAlgError(str(error)) from error
