"""Numeric kernels of PCA: randomized SVD, Minka's MLE, centring operators, signs.

Functions of tensors and arrays only (torch, numpy, scipy): no estimator code.
"""

import math

import numpy as np
import scipy.sparse as sp
import torch
from scipy.linalg import qr, svd
from scipy.sparse.linalg import LinearOperator, eigsh, svds
from scipy.special import gammaln

from ._device import is_tensor, map_row_blocks, seed_from, to_tensor


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

    ``U * signs`` is the matching left factor; it is left to the caller, as
    only ``fit_transform`` needs it. On the CPU numpy does it: torch's
    two-thread kernels right after an OpenBLAS call (ARPACK) wait for a core
    OpenBLAS's idle threads still spin on, 30 ms against 1 ms for a 50x10000 Vt.
    """
    if Vt.device.type == "cpu":
        V = Vt.numpy()
        signs = np.sign(V[np.arange(V.shape[0]), np.abs(V).argmax(axis=1)])
        return torch.from_numpy(signs), torch.from_numpy(V * signs[:, None])
    rows = torch.arange(Vt.shape[0], device=Vt.device)
    signs = torch.sign(Vt[rows, Vt.abs().argmax(dim=1)])
    return signs, Vt * signs[:, None]


def _lu_normalize(Y):
    """``P @ L`` of the LU factorisation ``Y = P L U``, as ``scipy.linalg.lu(permute_l=True)``."""
    LU, pivots, _ = torch.linalg.lu_factor_ex(Y)  # a singular Y is fine here
    L = torch.tril(LU, diagonal=-1)
    L.diagonal().fill_(1.0)
    # LAPACK pivots are sequential row swaps; compose them into one permutation
    # `perm` with Y[perm] = L U (only the rows they touch move), so that P L
    # scatters the rows of L back.
    moved = {}
    for i, p in enumerate(pivots.tolist()):
        p -= 1
        moved[i], moved[p] = moved.get(p, p), moved.get(i, i)
    perm = torch.arange(Y.shape[0], device=Y.device)
    perm[torch.tensor(list(moved), device=Y.device)] = torch.tensor(
        list(moved.values()), device=Y.device
    )
    Q = torch.empty_like(L)
    Q[perm] = L
    return Q


def _full_svd(X):
    """Thin SVD ``X = U diag(S) Vt``: U (n_samples, r) or None, S (r,), Vt (r, n_features).

    On the CPU, timed on float32 data with 2 threads:

    - tall: a Householder QR by scipy (OpenBLAS), then the SVD of the small
      R; U is not formed (None: ``fit_transform`` projects X instead). For
      centred 60000x784 MNIST 1.15 s against 2.0 s for torch.linalg.svd,
      whose MKL QR also loses accuracy there: the third singular value was
      off by 1.1e-5 relative to a float64 SVD, against 6e-7 for this and
      for scikit-learn's scipy SVD (2.4 s).
    - wide: torch.linalg.svd of the transpose. LAPACK works in column-major
      memory, where a wide row-major ``X`` is its tall transpose without a
      copy: 0.65 s for 1000x10000, against 2.46 s for X itself and 1.95 s
      for scipy's SVD; singular values within 7e-7 of float64.
    """
    if X.device.type != "cpu":
        return torch.linalg.svd(X, full_matrices=False)
    if X.shape[0] >= X.shape[1]:
        _, R = qr(X.numpy(), mode="raw", check_finite=False)  # R: (r, n_features)
        _, S, Vt = svd(R, full_matrices=False, check_finite=False)
        return None, torch.from_numpy(S), torch.from_numpy(Vt)
    U, S, Vt = torch.linalg.svd(X.T, full_matrices=False)
    return Vt.T, S, U.T


def _randomized_svd(A, n_components, n_oversamples, n_iter, normalizer, generator):
    """Truncated SVD of ``A`` by a randomized range finder with power iterations.

    Halko, Martinsson and Tropp (2011), Algorithms 4.3/4.4 and 5.1; the policy
    for ``n_iter='auto'`` and ``normalizer='auto'`` follows scikit-learn's.
    """
    n_samples, n_features = A.shape
    if n_iter == "auto":
        n_iter = 7 if n_components < 0.1 * min(A.shape) else 4
    if normalizer == "auto":
        normalizer = "none" if n_iter <= 2 else "LU"
    transpose = n_samples < n_features
    if transpose:
        A = A.T  # the range finder is cheaper with the smaller side as columns
    size = n_components + n_oversamples
    Q = torch.randn(A.shape[1], size, generator=generator, device=A.device, dtype=A.dtype)
    if normalizer == "QR":
        norm = lambda Y: torch.linalg.qr(Y).Q  # noqa: E731
    elif normalizer == "LU":
        norm = _lu_normalize
    else:
        norm = lambda Y: Y  # noqa: E731
    # Products are formed as (Q^T A^T)^T: the same numbers, but a layout that BLAS
    # (MKL in particular) runs markedly faster for a tall A and a thin Q, and whose
    # column-major result LAPACK factorises without a copy.
    At = A.T
    for _ in range(n_iter):
        Q = norm((Q.T @ At).T)  # (n_rows, size)
        Q = norm((Q.T @ A).T)  # (n_cols, size)
    Q = torch.linalg.qr((Q.T @ At).T).Q  # orthonormal basis of the sampled range
    Uhat, S, Vt = torch.linalg.svd(Q.T @ A, full_matrices=False)  # (size, n_cols) is small
    U = Q @ Uhat
    if transpose:
        return Vt[:n_components].T, S[:n_components], U[:, :n_components].T
    return U[:, :n_components], S[:n_components], Vt[:n_components]


def _column_mean(X):
    """Mean over rows; on the CPU numpy's column sums, in row blocks on every core."""
    if X.device.type == "cpu":
        Xn = X.numpy()
        return torch.from_numpy(sum(map_row_blocks(lambda B: B.sum(axis=0), Xn)) / Xn.shape[0])
    return X.mean(dim=0)


def _centred(X, copy=True):
    """Column mean (n_features,) and ``X - mean``, computed in place when ``copy`` is False.

    On the CPU numpy is faster: 9 ms against torch's 16 ms for a 1000x10000
    float32 matrix, and more when OpenBLAS's threads still spin from a call
    just before (20-30 ms in PCA.fit).
    """
    if X.device.type == "cpu":
        Xn = X.numpy()
        mean = Xn.mean(axis=0)
        Xc = Xn - mean if copy else np.subtract(Xn, mean, out=Xn)
        return torch.from_numpy(mean), torch.from_numpy(Xc)
    mean = X.mean(dim=0)
    return mean, (X - mean) if copy else X.sub_(mean)


def _sum_of_squares(X):
    """Sum of squared entries, accumulated in float64 block by block.

    A float32 reduction over tens of millions of entries drifts by ~1e-3; the
    blocks keep the float64 temporaries small. On the CPU numpy's einsum
    accumulates in float64 without temporaries, single-threaded: 10 ms for a
    1000x10000 matrix in PCA.fit, where torch's two threads took 29 ms while
    OpenBLAS's spun (5 ms alone); row blocks give it every core.
    """
    if X.device.type == "cpu":
        square_sum = lambda B: np.einsum("ij,ij->", B, B, dtype=np.float64)  # noqa: E731
        return float(sum(map_row_blocks(square_sum, X.numpy())))
    blocks = X.split(max(1, 2**22 // max(1, X.shape[1])))
    return sum(float(torch.linalg.vector_norm(b.to(torch.float64)) ** 2) for b in blocks)


def _numpy_gram(X):
    """X^T X of a numpy array, (n_features, n_features).

    numpy's matmul recognises the product with its own transpose and calls BLAS
    syrk, which computes one triangle: half the flops of a gemm (torch's MKL
    gemm took 0.36 s for 60000x784 float32 MNIST, numpy 0.22 s). Row blocks on
    single-threaded BLAS in parallel are faster still (0.19-0.20 s) and leave no
    spinning BLAS threads behind: see map_row_blocks. Each block has at least
    n_features rows, so the partial products never take more memory than X.
    """
    gram = lambda B: B.T @ B  # noqa: E731
    parts = map_row_blocks(gram, X, min_block_size=max(2**20, X.shape[1] ** 2), blas=True)
    G = parts[0]
    for part in parts[1:]:
        G += part
    return G


def _gram(X):
    """X^T X of a tensor, (n_features, n_features), by numpy on the CPU (see _numpy_gram)."""
    if X.device.type == "cpu":
        return torch.from_numpy(_numpy_gram(X.numpy()))
    return X.T @ X


def _covariance_eigh(X, device, dtype):
    """Exact PCA by eigendecomposition of the covariance of ``X`` (a tensor or sparse matrix).

    C = (X^T X - n mean mean^T) / (n - 1): centring the small (n_features,
    n_features) Gram matrix instead of copying X. Returns the mean, the
    explained variances and singular values (descending) and Vt.
    """
    n_samples = X.shape[0]
    if sp.issparse(X):
        mean = torch.from_numpy(np.asarray(X.mean(axis=0), dtype=X.dtype).ravel())
        mean = mean.to(device, dtype)
        C = to_tensor((X.T @ X).toarray(), device, dtype)
    else:
        mean = _column_mean(X)
        C = _gram(X)
    C.addr_(mean, mean, alpha=-n_samples).div_(n_samples - 1)
    eigenvalues, eigenvectors = torch.linalg.eigh(C)  # ascending
    # C is positive semi-definite; round-off can leave tiny negative eigenvalues.
    explained_variance = eigenvalues.flip(0).clamp_(min=0)
    S = torch.sqrt(explained_variance * (n_samples - 1))
    return mean, explained_variance, S, eigenvectors.flip(1).T


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
    SVD of ``X`` times them. Returned ascending, as svds returns them.
    """
    transpose = X.shape[0] < X.shape[1]
    if transpose:
        X = X.T  # (max side, min side)
    G = _numpy_gram(X)
    _, V = eigsh(G, k=k, tol=tol**2, v0=v0)
    V, _ = np.linalg.qr(V)
    u, s, vh = svd(X @ V, full_matrices=False, overwrite_a=True)
    u, s, vh = u[:, ::-1], s[::-1], vh[::-1]
    if transpose:
        return V @ vh.T, s, u.T
    return u, s, vh @ V.T


def _arpack_svd(A, k, tol, v0, device, dtype):
    """Leading ``k`` singular triplets by ARPACK, as tensors on ``device``, descending.

    ``A`` is a tensor or a ``LinearOperator``. On the CPU scipy multiplies the
    (shared-memory) array directly; elsewhere each ARPACK product runs in torch
    on the device.
    """
    if is_tensor(A) and A.device.type == "cpu" and min(A.shape) <= _GRAM_MAX:
        U, S, Vt = _gram_svds(A.numpy(), k, tol, v0)
    else:
        if is_tensor(A):
            A = A.numpy() if A.device.type == "cpu" else _dense_operator(A)
        U, S, Vt = svds(A, k=k, tol=tol, v0=v0)
    # svds returns ascending singular values.
    U = torch.from_numpy(np.ascontiguousarray(U[:, ::-1])).to(device, dtype)
    S = torch.from_numpy(S[::-1].copy()).to(device, dtype)
    Vt = torch.from_numpy(np.ascontiguousarray(Vt[::-1])).to(device, dtype)
    return U, S, Vt


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

    The CPU path of ``transform`` for numpy input: projecting 60000x784 float32
    MNIST on 50 components took 0.036 s in numpy (OpenBLAS) and 0.044-0.047 s
    in torch (MKL, either operand layout) on this AMD CPU, before the
    array/tensor conversions torch also needs.

    With ``with_total`` it returns ``(Y, total)``, ``total`` the sum of all of
    X's entries, which is ``check_array``'s test for NaN and inf. A row of ones
    appended to ``W`` makes the same BLAS call compute the row sums: 0.0016 s
    more than the plain product, where a separate sum takes 0.008 s (a sixth of
    ``transform``). A NaN or inf times one is never skipped, so it reaches the
    sums whatever the BLAS.
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


def _lowrank_precision(W, g, sigma2):
    """Inverse of the probabilistic PCA covariance ``W^T diag(g) W + sigma2 I``."""
    if sigma2 == 0.0:
        return torch.linalg.inv((W.T * g) @ W)
    # Orthonormal rows of W make the Woodbury inverse diagonal in the component basis:
    # (W^T G W + s I)^-1 = I / s - W^T diag(g / (s (g + s))) W.
    precision = -(W.T * (g / (sigma2 * (g + sigma2)))) @ W
    precision.diagonal().add_(1.0 / sigma2)
    if W.shape[0] == 0:
        precision = torch.eye(W.shape[1], device=W.device, dtype=W.dtype) / sigma2
    return precision


def _lowrank_log_likelihood(Xr, W, g, sigma2):
    """Gaussian log-density of centred rows ``Xr`` under ``W^T diag(g) W + sigma2 I``.

    Bishop, "Pattern Recognition and Machine Learning", 12.2.1.
    """
    n_features = Xr.shape[1]
    if sigma2 > 0:
        # x^T P x = |x|^2 / s - sum_j g_j / (s (g_j + s)) (w_j . x)^2, and
        # log det P = -sum_j log(g_j + s) - (p - k) log s.
        Z = Xr @ W.T  # (n_samples, k)
        quad = torch.linalg.vector_norm(Xr, dim=1) ** 2 / sigma2
        quad -= (Z**2) @ (g / (sigma2 * (g + sigma2)))
        logdet = -torch.log(g + sigma2).sum() - (n_features - W.shape[0]) * math.log(sigma2)
    else:
        precision = _lowrank_precision(W, g, sigma2)
        quad = ((Xr @ precision) * Xr).sum(dim=1)
        sign, logdet = torch.linalg.slogdet(precision)
        if sign <= 0:
            logdet = torch.tensor(-torch.inf, device=Xr.device, dtype=Xr.dtype)
    return -0.5 * quad - 0.5 * (n_features * math.log(2.0 * math.pi) - logdet)


def _lowrank_sample(W, g, sigma2, mean, n_samples, generator):
    """Draws from N(mean, W^T diag(g) W + sigma2 I) without factorising a dense matrix."""
    shape = dict(generator=generator, device=W.device, dtype=W.dtype)
    z = torch.randn(n_samples, W.shape[0], **shape)
    e = torch.randn(n_samples, W.shape[1], **shape)
    X = torch.addmm(mean, z * g.sqrt(), W)  # (n_samples, n_features)
    return X.add_(e, alpha=math.sqrt(sigma2))
