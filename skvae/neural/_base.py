"""What the neural estimators share: parameters, validation, the fit driver,
batched inference, the device/dtype round trip and tags (pickling: ``_state``).

Subclasses supply the module, the loss and the encode/decode maps; the training
itself is :func:`skvae.neural._training.train` for all of them.
"""

import copy
import math
import os
import sys
import warnings
from numbers import Integral, Real

import sklearn
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin
from sklearn.exceptions import ConvergenceWarning

from .._persistence import SaveMixin
from .._utils.denormals import cpu_fast_math
from .._utils.devices import resolve_device
from .._utils.seeds import forked_global_rng, seed_from, spawn_seed
from .._utils.threads import FitThreads
from .._utils.validation import (
    BOOLEAN,
    DEVICE,
    NONE,
    RANDOM_STATE,
    Constraint,
    Interval,
    StrOptions,
    check_params,
    is_kwargs,
    is_layer_sizes,
    is_shape,
)
from ..exceptions import DivergenceWarning
from ._callbacks import CALLBACKS, run_callbacks
from ._checkpoint import PATH, TIME_INTERVAL, open_checkpoint
from ._data import split_rows, training_rows
from ._guards import exclusive, interrupts_deferred, out_of_memory
from ._inference import InferenceMixin
from ._modules import ACTIVATIONS
from ._networks import widest_activation
from ._progress import progress_label
from ._schedules import SCHEDULE_FUNCTION, SCHEDULES, Schedule
from ._state import NetworkStateMixin
from ._steps import make_optimizer
from ._training import PRECISIONS, FixedNoiseLoss, check_precision, train

# The purposes random streams are drawn for; see BaseNeuralTransformer._spawn_seed.
_SHUFFLE, _NOISE, _INIT, _SCORE, _BINARIZE, _GLOBAL, _MEASURE = range(7)


# Frames in these folders are skipped when a warning looks for the user's line.
_LIBRARY_DIRS = tuple(os.path.dirname(path) + os.sep for path in (__file__, sklearn.__file__))


def caller_stacklevel():
    """The ``stacklevel`` at which a warning points at the user's line.

    That is the first frame, going up from the function that warns, outside
    skvae and scikit-learn, so the line is the user's whether they called ``fit``,
    ``fit_transform`` or a ``Pipeline``. Call it in the ``warnings.warn`` call:
    level 1 is the function that warns.
    """
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_LIBRARY_DIRS):
        frame, level = frame.f_back, level + 1
    return level


# The fitted statistics (what score and sample read besides the network) are
# computed at the end of fit on at most this many training rows, evenly spaced: a
# pass whose cost is bounded whatever n_samples, after which nothing of X is kept.
STATISTICS_ROWS = 4096
# Rows per block of that pass: blocks of a few thousand rows keep its activations in cache.
STATISTICS_BLOCK = 1024


def statistics_rows(Xt):
    """The training rows the fitted statistics describe.

    All rows up to :data:`STATISTICS_ROWS`, else that many spread evenly over X
    (row ``i * n // STATISTICS_ROWS``): a tensor, or for a
    :class:`~skvae.neural._data.Rows` another one that the pass reads a block at
    a time, during fit.
    """
    n = Xt.shape[0]
    if n <= STATISTICS_ROWS:
        return Xt
    index = torch.arange(STATISTICS_ROWS) * n // STATISTICS_ROWS  # increasing row indices
    if torch.is_tensor(Xt):
        return Xt.index_select(0, index.to(Xt.device))
    return Xt.subset(index)


def auto_batch_size(n_samples):
    """``batch_size='auto'``: min(200, n_samples), but at most a quarter of the rows, and
    at least 32 of them.

    scikit-learn's MLP takes min(200, n_samples). On a few hundred rows that is
    one or two steps per epoch, and an epoch (the unit of early stopping's
    patience) barely moves the network: the fit stops near its start. Four steps
    at least reached lower held-out errors on breast_cancer and wine
    (``benchmarks/bench_quality.py``); from 800 rows on it is scikit-learn's rule.
    """
    return min(200, n_samples, max(32, math.ceil(n_samples / 4)))


class BaseNeuralTransformer(
    SaveMixin, NetworkStateMixin, ClassNamePrefixFeaturesOutMixin, InferenceMixin, BaseEstimator
):
    """Base class of :class:`AutoencoderTransformer` and :class:`VAETransformer`.

    Not for direct use. A subclass implements ``_build_module`` (with
    :func:`skvae.neural._networks.build_network`), ``_make_loss``,
    ``_encode``, ``_decode``, ``_generate``, ``_score_samples``, ``_sample_latent`` and may
    extend ``_parameter_constraints``, ``_check_training_values`` and ``_after_fit``.
    """

    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None)],
        "hidden_layer_sizes": [
            Constraint(is_layer_sizes, "a tuple of positive ints (possibly empty)")
        ],
        "activation": [StrOptions(tuple(ACTIVATIONS))],
        "input_shape": [NONE, Constraint(is_shape, "a tuple of positive ints")],
        "architecture": [StrOptions(("mlp", "conv"))],
        "encoder": [
            NONE,
            Constraint(callable, "a torch.nn.Module, or a class or function returning one"),
        ],
        "encoder_kwargs": [NONE, Constraint(is_kwargs, "a dict with str keys")],
        "decoder": [
            NONE,
            Constraint(callable, "a torch.nn.Module, or a class or function returning one"),
        ],
        "decoder_kwargs": [NONE, Constraint(is_kwargs, "a dict with str keys")],
        "batch_size": [Interval(Integral, 1, None), StrOptions(("auto",))],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None)],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None)],
        "early_stopping": [BOOLEAN, StrOptions(("auto",))],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "warm_start": [BOOLEAN],
        "verbose": [BOOLEAN, Interval(Integral, 0, None)],
        "device": [DEVICE],
        "precision": [StrOptions(PRECISIONS)],
        "learning_rate_schedule": [StrOptions(SCHEDULES), SCHEDULE_FUNCTION],
        "max_grad_norm": [NONE, Interval(Real, 0, None, closed="neither")],
        "callbacks": [NONE, CALLBACKS],
        "checkpoint": [NONE, PATH],
        "checkpoint_every": [Interval(Integral, 1, None), TIME_INTERVAL],
        "random_state": [RANDOM_STATE],
    }
    # The parameters the network is built from: continued training cannot change them.
    _architecture_params = (
        "n_components",
        "hidden_layer_sizes",
        "activation",
        "input_shape",
        "architecture",
        "encoder",
        "encoder_kwargs",
        "decoder",
        "decoder_kwargs",
        "device",
    )

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None):
        """Train the network on X.

        Training that diverges (a loss that becomes infinite or NaN, or ends far
        above where it started and above the loss of predicting the mean) keeps
        its best weights, restarts the optimizer and raises a
        :class:`~skvae.DivergenceWarning`. An interrupt (Ctrl-C) after the first
        epoch keeps the epochs run and the best weights, with a warning; one
        during the first epoch leaves the estimator as it was and propagates.

        Parameters
        ----------
        X : {array-like, numpy.memmap, torch.Tensor} of shape (n_samples, n_features)
            Training data. A tensor is used where it lives, without a copy to the
            host. A memmap (or an array-like that slices, such as an HDF5
            dataset) is read a batch at a time. Integer X (e.g. uint8 pixels) is
            accepted; results then come back in float64, as from scikit-learn.
        y : None
            Ignored.

        Returns
        -------
        self : object
            Fitted estimator.

        Notes
        -----
        The network trains on float32 rows. Memory beyond the model (its
        weights, Adam's two moments and two copies kept to restore the best
        epoch, about 6 x 4 bytes per parameter; 3 x 4 more when a fitted network
        continues training, for the copy of its weights and moments that a failed
        call puts back), for d features:

        - a float32 array (or a float32 memmap) on the CPU is viewed, not copied;
        - a float64 or integer array becomes one float32 copy, 4 d bytes per row,
          filled a chunk (16 MiB of X) at a time: never a float64 copy;
        - a memmap of another dtype, or an array-like that slices, is not copied:
          one pass checks its values and computes its column statistics, then
          every batch reads its rows (full shuffling, rows gathered in file order);
        - ``early_stopping=True`` copies the training and validation rows of an
          in-memory X once more (4 d bytes per row); a memmap keeps row indices;
        - other inputs (lists, DataFrames) go through ``check_array``'s float64
          first, 8 d bytes per row.

        On a GPU the float32 rows of in-memory X live on the device, memmaps
        stay on the host. ``docs/memory.md`` has the details and measured peaks.
        """
        return self._fit(X, incremental=False)

    def partial_fit(self, X, y=None):
        """Train for one epoch over X, keeping the network and optimizer state.

        The first call builds the network. ``early_stopping`` does not apply.

        Parameters
        ----------
        X : {array-like, torch.Tensor} of shape (n_samples, n_features)
            Training data.
        y : None
            Ignored.

        Returns
        -------
        self : object
            Updated estimator.
        """
        return self._fit(X, incremental=True)

    def _fit(self, X, incremental):
        """Fit, or leave the estimator as it was if anything goes wrong.

        Parameters and X are validated before the network is touched. A failure
        at any point (an exception, an interrupt in the first epoch, a warning
        turned into an error after training) restores the attributes and, for
        warm_start and partial_fit, which train the network in place, its weights
        and the optimizer's state. A KeyboardInterrupt after at least one epoch is
        not a failure: the epochs run are kept, with a warning. One estimator fits
        in one thread at a time: a second call meanwhile is an error.
        """
        with exclusive(self):
            saved = dict(self.__dict__)
            # Continued training changes the network and the optimizer in place: their
            # values are put back too if the call fails, whenever that happens.
            in_place = "module_" in saved
            if in_place:
                weights = {k: v.detach().clone() for k, v in self.module_.state_dict().items()}
                moments = copy.deepcopy(self.optimizer_.state_dict())
            try:
                with FitThreads():
                    return self._fit_or_raise(X, incremental)
            except BaseException as error:
                self.__dict__.clear()
                self.__dict__.update(saved)
                if in_place:
                    self.module_.load_state_dict(weights)
                    self.optimizer_.load_state_dict(moments)
                if out_of_memory(error):
                    raise type(error)(self._memory_hint(error)) from error
                raise

    def _memory_hint(self, error):
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return (
            f"{type(self).__name__} ran out of memory while fitting with "
            f"batch_size={self.batch_size!r} ({first_line}). Lower batch_size (the "
            "activations of a step grow with it), use a smaller network, or pass X as a "
            "numpy memmap, which stays on the host and is read a batch at a time."
        )

    def _fit_or_raise(self, X, incremental):
        check_params(self, self._parameter_constraints)
        fitted = hasattr(self, "module_")
        keep = fitted and (incremental or self.warm_start)
        if keep:
            self._check_architecture(incremental)
        else:
            self.device_ = resolve_device(self.device, type(self).__name__)
        check_precision(self.precision, self.device_, type(self).__name__)
        Xt, dtype = training_rows(self, X, reset=not keep)
        self._check_training_values(Xt)
        # One pass over X for its mean: the network's centring and the reference losses.
        mean = Xt.mean(0)  # (n_features,)
        if not keep:
            self._fit_dtype = dtype
            self._n_fit_calls = 0
            self._seed = seed_from(self.random_state)
        # Fresh, reproducible streams for every call, one per purpose.
        call = self._n_fit_calls
        self._n_fit_calls += 1
        shuffle_gen = torch.Generator().manual_seed(self._spawn_seed(_SHUFFLE, call))
        noise_gen = torch.Generator(device=self.device_).manual_seed(self._spawn_seed(_NOISE, call))
        with interrupts_deferred():
            if not keep:
                init_gen = torch.Generator().manual_seed(self._spawn_seed(_INIT, call))
                self.module_ = self._build_module(Xt, init_gen, mean)
                self._fitted_architecture = self._architecture()
                self._widest_activation = widest_activation(
                    self.module_,
                    lambda x: self.module_.decoder(self._encode(x)),
                    Xt.shape[1],
                    self.device_,
                )
                self.loss_curve_, self.n_iter_ = [], 0
                self.loss_parts_ = {}
            if not (incremental and fitted):
                self.optimizer_ = make_optimizer(
                    self.module_, self.learning_rate, self.weight_decay, self.epsilon
                )

        # partial_fit trains one epoch: pickle the estimator to keep it.
        name, generators = type(self).__name__, {"shuffle": shuffle_gen, "noise": noise_gen}
        checkpoint = None if incremental else open_checkpoint(self, Xt, mean, generators)

        X_val = None
        n_val = None if incremental else self._validation_rows(Xt.shape[0])
        early_stopping = n_val is not None
        if early_stopping:
            Xt, X_val = split_rows(Xt, n_val, shuffle_gen, self.validation_fraction)
            mean = Xt.mean(0)  # of the rows trained on
        n = Xt.shape[0]
        batch_size = auto_batch_size(n) if self.batch_size == "auto" else min(self.batch_size, n)
        max_iter = 1 if incremental else self.max_iter

        null_loss, diverged_above = self._reference_losses(Xt, mean)
        # A user's module that draws from torch's global RNG (nn.Dropout) draws a
        # stream seeded from random_state; the caller's global RNG is left as it was.
        with (
            forked_global_rng(self._spawn_seed(_GLOBAL, call), self.device_),
            run_callbacks(self, self.callbacks) as on_epoch_end,
        ):
            history = train(
                self.module_,
                self._make_loss(noise_gen),
                self.optimizer_,
                Xt,
                generator=shuffle_gen,
                batch_size=batch_size,
                max_iter=max_iter,
                tol=self.tol,
                n_iter_no_change=self.n_iter_no_change,
                null_loss=null_loss,
                diverged_above=diverged_above,
                X_val=X_val,
                verbose=bool(self.verbose),
                desc=progress_label(self, Xt.shape[1]),
                first_epoch=self.n_iter_,
                monitor_from=self._monitor_from(),
                precision=self.precision,
                schedule=Schedule(self.learning_rate_schedule, self.learning_rate, name),
                max_grad_norm=self.max_grad_norm,
                on_epoch_end=on_epoch_end,
                checkpoint=checkpoint,
                measure_loss_fn=FixedNoiseLoss(
                    self._make_loss, self._spawn_seed(_MEASURE, call), self.device_
                ),
            )
        self.loss_curve_ = self.loss_curve_ + history["loss"]
        self.loss_parts_ = {
            name: self.loss_parts_.get(name, []) + values
            for name, values in history["parts"].items()
        }
        self.n_iter_ += history["n_iter"]
        if early_stopping:
            # Higher is better, as for sklearn's MLP: the negative validation loss.
            self.validation_scores_ = [-v for v in history["val_loss"]]
            self.best_validation_score_ = max(
                (v for v in self.validation_scores_ if math.isfinite(v)), default=-math.inf
            )
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
        finite = [v for v in self.loss_curve_ if math.isfinite(v)]
        self.best_loss_ = None if early_stopping else min(finite, default=math.inf)
        self._warn_about_training(history, incremental)
        with torch.inference_mode(), cpu_fast_math(self.device_):
            # With a validation split, the weights are those of the best epoch: the
            # starting ones when no epoch beat them.
            kept_start = early_stopping and not keep and history["best_epoch"] == 0
            self._after_fit(statistics_rows(Xt), incremental, kept_start=kept_start)
        return self

    def _spawn_seed(self, purpose, call=0):
        """The seed of the stream for ``purpose`` in fit call ``call``, from the fitted seed.

        Every (purpose, call) is its own child of ``SeedSequence(seed)``: no call
        reuses another's batch order or noise, whatever the number of calls.
        """
        return spawn_seed(self._seed, purpose, call)

    def _warn_about_training(self, history, incremental):
        """Say how training ended when it did not converge."""
        name = type(self).__name__
        kept = history["best_epoch"]
        if kept == 0:
            kept_text = "the initial weights"
        elif kept == self.n_iter_ - history["n_iter"]:
            kept_text = f"the weights this call started from (epoch {kept})"
        else:
            kept_text = f"the weights of epoch {kept}"
        if history["diverged"]:
            last = (history["val_loss"] or history["loss"])[-1]
            warnings.warn(
                f"{name} diverged: its loss went from {history['start_loss']:.4g} before "
                f"training to {last:.4g} at epoch {self.n_iter_}. It keeps {kept_text} "
                f"(loss {history['best_loss']:.4g}) and a fresh optimizer state. Lower "
                f"learning_rate (now {self.learning_rate!r}), or scale X (e.g. StandardScaler).",
                DivergenceWarning,
                stacklevel=caller_stacklevel(),
            )
        elif history["interrupted"]:
            kept_loss = history["best_loss"]
            if 0 < kept <= self._monitor_from():  # a warm-up epoch's weights: its own loss
                kept_loss = self.loss_curve_[kept - 1]
            warnings.warn(
                f"{name} training was interrupted after {self.n_iter_} epochs. It keeps "
                f"{kept_text} (loss {kept_loss:.4g}) and is fitted: call fit with "
                f"warm_start=True, or partial_fit, to train further.{self._resume_note()}",
                UserWarning,
                stacklevel=caller_stacklevel(),
            )
        elif not incremental and not history["converged"] and not history["stopped_by"]:
            warnings.warn(
                f"{name} stopped after max_iter={self.max_iter} epochs "
                "without converging. Raise 'max_iter', or 'tol' to stop sooner.",
                ConvergenceWarning,
                stacklevel=caller_stacklevel(),
            )

    def _reference_losses(self, Xt, mean):
        """Hook: the loss of predicting ``mean`` (the mean of Xt) for every row, and the
        loss above which training has diverged, as two floats (see
        :func:`~skvae.neural._training.train`)."""
        raise NotImplementedError

    def _architecture(self):
        params = self.get_params()
        return {name: params[name] for name in self._architecture_params}

    def _same_network(self, name, fitted, value):
        """Whether ``name=value`` describes the network that ``name=fitted`` built."""
        if name in ("hidden_layer_sizes", "input_shape"):
            return fitted is value or (
                None not in (fitted, value) and tuple(fitted) == tuple(value)
            )
        if name in ("encoder", "decoder"):
            return fitted is value  # a module instance compares by identity anyway
        return str(fitted) == str(value) if name == "device" else fitted == value

    def _check_architecture(self, incremental):
        """Refuse to continue training a network whose defining parameters were changed."""
        fitted = getattr(self, "_fitted_architecture", {})
        for name, value in self._architecture().items():
            if name in fitted and not self._same_network(name, fitted[name], value):
                how = "partial_fit continues" if incremental else "warm_start=True continues"
                raise ValueError(
                    f"{type(self).__name__} was fitted with {name}={fitted[name]!r}, and "
                    f"{how} training that network, which cannot change to {name}={value!r}. "
                    f"Set {name} back to {fitted[name]!r}, or train a new network with "
                    "warm_start=False and fit."
                )

    # early_stopping='auto' holds out at least this many rows (half of fewer than twice
    # as many), from fewer than this many samples.
    AUTO_VALIDATION_ROWS, AUTO_EARLY_STOPPING_BELOW = 10, 50_000

    def _validation_rows(self, n_samples):
        """How many of its ``n_samples`` rows fit holds out; None: none (0, with
        ``early_stopping=True``, is an error that :func:`split_rows` raises).

        ``early_stopping=True``: ``validation_fraction`` of them. ``'auto'``, below
        50,000 samples, where the default networks overfit (their held-out loss turns
        up while the training loss still falls): that fraction, but at least 10 rows,
        or half of fewer than 20. Trained on every row, without a measure to stop
        them, the defaults ended far worse than their PCA start on small data: on 20
        and 60 rows of wine, breast_cancer, digits and raw diabetes
        (``benchmarks/bench_quality.py --other``) the autoencoder's test error was
        1.17 to 2.17 times PCA's, the VAE's bound up to 19,320 nats below PPCA's;
        with 10 rows held out, 21 of those 24 fits end at or better than their start.
        """
        n_val = int(round(self.validation_fraction * n_samples))
        if self.early_stopping != "auto":
            return n_val if self.early_stopping else None
        if n_samples >= self.AUTO_EARLY_STOPPING_BELOW:
            return None
        return max(n_val, min(self.AUTO_VALIDATION_ROWS, n_samples // 2)) or None

    # ---------------------------------------------------------- validation
    def _check_training_values(self, Xt):
        """Hook: reject training data the model cannot describe."""

    def _monitor_from(self):
        """Hook: first epoch index the stopping rule looks at (after any warm-up)."""
        return 0

    def _resume_note(self):
        """Hook: what continued training will do next, for the interrupt warning."""
        return ""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
