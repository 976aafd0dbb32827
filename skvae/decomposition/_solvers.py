"""The decompositions behind PCA's solvers: exact SVD, covariance eigh, randomized, ARPACK.

Functions of tensors and arrays only (torch, numpy, scipy): no estimator code.
A kernel chooses its implementation by the container it is given, never by
the device: a numpy array (or scipy sparse matrix) runs numpy/scipy code, a
torch tensor runs torch code wherever it lives, the CPU included, except
where a CPU tensor's own memory is handed to numpy's BLAS or scipy's LAPACK
(the Gram matrix, the QR of tall data), which compute the same numbers
faster. Results come back as tensors (numpy results are wrapped without a
copy). Where the reasons for a choice are measurements, see docs/pca.md.
"""

import math

import numpy as np
import scipy.sparse as sp
import torch
from scipy.linalg import get_lapack_funcs, qr, svd
from scipy.sparse.linalg import LinearOperator, eigsh, svds

from .._utils.arrays import is_tensor, to_tensor
from ._linalg import _column_mean, host_view


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

    - a tall numpy array or CPU tensor: a Householder QR by scipy (on the
      tensor's own memory), then the SVD of the small R; U is not formed
      (None: ``fit_transform`` projects X instead). Faster than one SVD of
      X, and as accurate as scikit-learn's.
    - wide data: the SVD of the transpose. LAPACK works in column-major
      memory, where a wide row-major ``X`` is its tall transpose without a
      copy; torch's SVD does it for a numpy array too (shared memory).
    - a tall tensor on an accelerator: ``torch.linalg.svd``.
    """
    if X.shape[0] >= X.shape[1]:
        X = host_view(X)
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


def _randomized_svd(
    A, n_components, n_oversamples, n_iter, normalizer, random_state, compute_u=True
):
    """Truncated SVD of ``A`` (a numpy array or a tensor) by a randomized range finder.

    Halko, Martinsson and Tropp (2011), Algorithms 4.3/4.4 and 5.1; the policy
    for ``n_iter='auto'`` and ``normalizer='auto'`` follows scikit-learn's, and
    so does the Gaussian test matrix: drawn by the numpy ``random_state``
    (in float64, then cast to float32 for float32 data), for arrays and
    tensors alike, so that one seed gives scikit-learn's numbers.
    Returns tensors U, S, Vt; U is None unless ``compute_u`` (only
    ``fit_transform`` needs it). Entries near the bottom or top of the float
    range (denormals) make the products underflow or overflow and LAPACK fail;
    then the SVD of ``A / max|A|`` is computed instead, its singular values
    scaled back.
    """
    args = (n_components, n_oversamples, n_iter, normalizer, random_state, compute_u)
    state = random_state.get_state()
    try:
        return _range_finder_svd(A, *args)
    except torch.linalg.LinAlgError:
        scale = float(np.abs(A).max()) if isinstance(A, np.ndarray) else float(A.abs().max())
        if not 0.0 < scale < math.inf:
            raise
        # The same test matrix as the failed attempt drew: the state before it.
        random_state.set_state(state)
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


def _range_finder_svd(A, n_components, n_oversamples, n_iter, normalizer, random_state, compute_u):
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
    Q = random_state.normal(size=(A.shape[1], size))
    Q = torch.from_numpy(Q).to(device, dtype)
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
    X = host_view(X)  # numpy's syrk for the Gram matrix of a CPU tensor
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
    an array directly; for a tensor on an accelerator each ARPACK product runs
    in torch on the tensor's device. A CPU tensor is read as the numpy array on
    its memory: the Gram route below, several times faster than streaming X
    through torch products at every Lanczos step (docs/pca.md).
    """
    A = host_view(A)
    if isinstance(A, np.ndarray) and min(A.shape) <= _GRAM_MAX:
        U, S, Vt = _gram_svds(A, k, tol, v0)
    else:
        U, S, Vt = svds(_dense_operator(A) if is_tensor(A) else A, k=k, tol=tol, v0=v0)
        # svds returns ascending singular values. np.flip gives negative strides,
        # which torch.from_numpy refuses: copy.
        U, S, Vt = np.flip(U, axis=1), np.flip(S), np.flip(Vt, axis=0)
    as_tensor = lambda a: torch.from_numpy(np.array(a, order="C")).to(device, dtype)  # noqa: E731
    return as_tensor(U), as_tensor(S), as_tensor(Vt)
