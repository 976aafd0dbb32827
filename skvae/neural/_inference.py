"""Batched inference of the neural estimators: transform, inverse_transform,
the scores and sample, over X read a chunk at a time.

:class:`InferenceMixin` holds the public methods; the estimator supplies
``_encode``, ``_decode``, ``_score_samples``,
``_sample_latent``, ``_generate`` and the fitted state they read.
"""

import copy
from numbers import Integral

import numpy as np
import torch
from sklearn.base import TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .._sampling import as_input_container
from .._utils.arrays import INFERENCE_ROWS, is_tensor, output_like, to_numpy
from .._utils.denormals import cpu_fast_math
from .._utils.seeds import seed_from
from .._utils.threads import StepThreads
from ._data import inference_input, inference_rows


class InferenceMixin(TransformerMixin):
    """transform, inverse_transform, score_samples, score and sample, in chunks.

    A TransformerMixin, so that ``set_output`` wraps the ``transform`` defined here.
    """

    def _map(self, fn, X, n_features=None, scores=False):
        """Apply ``fn`` to the rows of X in chunks, in eval mode, without autograd.

        X is read, converted to float32 and moved to ``device_`` one chunk at a
        time (:func:`~skvae.neural._data.inference_rows` rows, from the widest layer), so
        neither the device nor the host holds more of it than a chunk; numpy
        results are written into one output array as they come.

        The result has X's output dtype, except that with ``scores=True`` a tensor
        X of a float type narrower than float32 gets float32: a log-likelihood
        sums n_features terms and leaves float16's range (65504) on ordinary data.
        """
        check_is_fitted(self)
        rows, dtype = inference_input(self, X, n_features)
        n = rows.shape[0]
        step = inference_rows(max(rows.shape[1], self._widest()))
        self.module_.eval()
        chunks, out = [], None
        small = StepThreads(self.module_, min(n, step), self.device_)
        with torch.inference_mode(), cpu_fast_math(self.device_), small:
            for i in range(0, n, step):
                part = fn(rows[i : i + step])
                if is_tensor(X):
                    chunks.append(part)
                    continue
                if out is None:  # (n_samples, ...) once the first chunk says its shape
                    out = np.empty((n, *part.shape[1:]), dtype=dtype)
                out[i : i + step] = to_numpy(part, dtype)
        if not is_tensor(X):
            return out
        out = torch.cat(chunks)
        if scores and X.is_floating_point() and X.element_size() < 4:
            return out.to(device=X.device, dtype=torch.float32)
        return output_like(out, X, dtype)

    def _widest(self):
        """Values per row of the network's widest layer output (X's width included)."""
        widest = getattr(self, "_widest_activation", None)
        if widest is None:  # a model pickled before this was recorded: the MLP's widths
            fitted = self._fitted_architecture
            widths = (self.n_features_in_, fitted["n_components"])
            widest = max(*widths, *fitted.get("hidden_layer_sizes", ()))
        return widest

    def _scoring_module(self):
        """``module_`` in float64 (float32 on MPS, which lacks float64), for scores.

        Copied once per scoring call. A row's log-likelihood sums n_features terms
        (and, for the VAE, draws): in float32 its rounding would depend on the rows
        computed beside it (matrix kernels block by chunk size), so a row's score
        would change with the chunk it is scored in and with the memory budget,
        and per-row independence is promised. float64 costs a copy of the
        weights (not of X) and float64 activations of one bounded block.
        ``benchmarks/bench_memory.py`` measures how far float32 scores are.
        """
        dtype = torch.float32 if self.device_.type == "mps" else torch.float64
        return copy.deepcopy(self.module_).to(dtype)

    def _score(self, X, fn):
        """``fn(xb, module)`` over the chunks of X with the scoring copy of the network."""
        check_is_fitted(self)
        module = self._scoring_module()
        return self._map(lambda xb: fn(xb, module), X, scores=True)

    def transform(self, X):
        """Encode X into the latent space.

        Parameters
        ----------
        X : {array-like, numpy.memmap, torch.Tensor} of shape (n_samples, n_features)
            Data to encode, read, converted to float32 and moved to the device a
            chunk at a time (8192 rows at most, fewer for wide layers).

        Returns
        -------
        X_new : ndarray or torch.Tensor of shape (n_samples, n_components)
            Codes, in X's dtype (float64 for integer X); a tensor comes back as a
            tensor on its device.
        """
        return self._map(self._encode, X)

    def inverse_transform(self, X):
        """Decode latent points back to the input space.

        Parameters
        ----------
        X : {array-like, torch.Tensor} of shape (n_samples, n_components)
            Latent points, e.g. the output of :meth:`transform`.

        Returns
        -------
        X_original : ndarray or torch.Tensor of shape (n_samples, n_features)
            Reconstructions (the decoder's mean), in X's dtype.
        """
        check_is_fitted(self)
        # The latent width the network was built with, whatever set_params said since.
        return self._map(self._decode, X, n_features=self._fitted_architecture["n_components"])

    def score_samples(self, X):
        """Log-likelihood of each sample under the model, in nats.

        Parameters
        ----------
        X : {array-like, torch.Tensor} of shape (n_samples, n_features)
            Data.

        Returns
        -------
        ll : ndarray or torch.Tensor of shape (n_samples,)
            One value per sample; see the class documentation for what it is.
            In X's dtype, but float32 for a float16 or bfloat16 tensor.
        """
        return self._score(X, self._score_samples)

    def score(self, X, y=None):
        """Average of :meth:`score_samples` over X: higher is better.

        Parameters
        ----------
        X : {array-like, torch.Tensor} of shape (n_samples, n_features)
            Data.
        y : None
            Ignored.

        Returns
        -------
        score : float
            Mean log-likelihood (or its bound) per sample, in nats.
        """
        ll = self.score_samples(X)
        # Summed in float64 whatever the scores' dtype: n_samples terms.
        return float(ll.mean() if is_tensor(ll) else np.mean(ll, dtype=np.float64))

    def sample(self, n_samples=1, random_state=None, *, observation_noise=True):
        """Draw new points from the model: latent codes from its prior, decoded.

        Parameters
        ----------
        n_samples : int, default=1
            Number of points to draw.
        random_state : int, RandomState instance or None, default=None
            Seeds the draw, independently of the estimator's own ``random_state``.
        observation_noise : bool, default=True
            True draws x from p(x|z), the distribution :meth:`score_samples`
            evaluates; False returns the decoder's mean E[x|z] (smooth images).

        Returns
        -------
        X_new : ndarray or DataFrame of shape (n_samples, n_features)
            Samples, in the training data's dtype; a DataFrame with the training
            data's feature names under ``set_output(transform="pandas")``.
        """
        check_is_fitted(self)
        if not isinstance(n_samples, Integral) or isinstance(n_samples, bool) or n_samples < 1:
            raise ValueError(f"n_samples must be an int in the range [1, inf); got {n_samples!r}.")
        if not isinstance(observation_noise, (bool, np.bool_)):
            raise ValueError(f"observation_noise must be a bool; got {observation_noise!r}.")
        seed = seed_from(random_state)
        generator = torch.Generator(device=self.device_).manual_seed(seed)
        self.module_.eval()
        with torch.inference_mode(), cpu_fast_math(self.device_):
            Z = self._sample_latent(int(n_samples), generator)  # (n_samples, n_components)
            X_new = torch.cat(
                [
                    self._generate(Z[i : i + INFERENCE_ROWS], generator, observation_noise)
                    for i in range(0, len(Z), INFERENCE_ROWS)
                ]
            )
        # A DataFrame with X's feature names under set_output(transform="pandas").
        return as_input_container(output_like(X_new, None, self._fit_dtype), self)

    def _generate(self, Z, generator, observation_noise):
        """Hook: decode latent points, with a draw of the observation noise if asked."""
        raise NotImplementedError

    @property
    def _n_features_out(self):
        # Absent before fit, so that get_feature_names_out raises NotFittedError.
        return self._fitted_architecture["n_components"]
