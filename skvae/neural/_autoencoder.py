"""AutoencoderTransformer: a deterministic MLP autoencoder as a scikit-learn transformer."""

import math

import numpy as np
import torch
from torch.nn import functional as F

from .._utils.arrays import SCORE_ELEMENTS
from .._utils.validation import noise_floor
from ._base import STATISTICS_BLOCK, BaseNeuralTransformer
from ._modules import Autoencoder, materialize
from ._networks import build_network, pca_autoencoder, starts_from_pca
from ._training import squared_spread


class AutoencoderTransformer(BaseNeuralTransformer):
    """Autoencoder: a nonlinear encoder/decoder pair trained on squared error.

    The encoder is an MLP ``n_features -> hidden_layer_sizes -> n_components``
    and the decoder its mirror image. Both are trained together with Adam to
    minimise the squared reconstruction error ||x - x_hat||² / 2.

    The built-in MLP contains PCA and starts at it: each side is a linear layer
    initialised from PCA's closed form (fitted on every row fit is given: the
    encoder projects x - mean onto the top ``n_components`` principal axes, the
    decoder maps back and adds the mean), plus the MLP as a residual whose last
    layer starts at zero. The first reconstruction is PCA's, and with the
    default ``early_stopping='auto'`` a fit on fewer than 50,000 rows keeps the
    weights of its best epoch on held-out rows, the starting ones included.
    With ``hidden_layer_sizes=()`` the network is the linear autoencoder, at
    PCA's optimum from the start. The convolutional ``architecture`` and your
    own ``encoder``/``decoder`` start from their layers' own initialisation.

    A plain autoencoder is not a generative model: its latent space has no
    prescribed shape. :meth:`sample` decodes draws from a Gaussian fitted to the
    training codes and adds N(0, σ²I) noise (``observation_noise=False``: the
    decoded points only); that is honest but often decodes to implausible points,
    which is what :class:`VAETransformer` fixes. For the same reason :meth:`score`
    is not a density of X: it is the Gaussian log-likelihood of the residuals
    x - decode(encode(x)), which rises with ``n_components`` (a wider code
    reconstructs better) and is not comparable with the scores of
    :class:`PCA` or :class:`VAETransformer`.

    Parameters
    ----------
    n_components : int, default=2
        Size of the code (the bottleneck).
    hidden_layer_sizes : tuple of int, default=(256, 128)
        Widths of the encoder's hidden layers (after the convolutions with
        ``architecture='conv'``); the decoder uses them reversed.
    activation : {'relu', 'tanh', 'sigmoid', 'identity', 'leaky_relu', 'elu', 'gelu'}, \
            default='relu'
        Nonlinearity between layers. The code and the reconstruction are linear
        outputs.
    input_shape : tuple of int, default=None
        The shape of one sample inside the networks, e.g. ``(1, 28, 28)`` for
        MNIST or ``(3, 32, 32)`` for CIFAR: rows of X stay flat for scikit-learn
        (``n_features_in_``, pipelines, CV splits) and are reshaped to
        ``(batch, *input_shape)`` for the encoder. Its product must equal
        ``n_features``. None: the flat rows, ``(n_features,)``.
    architecture : {'mlp', 'conv'}, default='mlp'
        The built-in network. 'mlp': dense layers of ``hidden_layer_sizes``.
        'conv': two 4x4 convolutions of stride 2 (32 and 64 channels) then dense
        layers of ``hidden_layer_sizes``, and the mirror image with transposed
        convolutions as decoder (the DCGAN layout of Radford et al. 2016, as in
        the beta-VAE of Burgess et al. 2018); it needs
        ``input_shape=(channels, height, width)`` with height and width multiples
        of 4 (28x28 and 32x32 work). Both centre the input inside the network
        and add the data's mean back at the output. Replaced on each side by
        ``encoder`` or ``decoder`` when given.
    encoder : torch.nn.Module, class or callable, default=None
        Your own encoder trunk, mapping ``(batch, *input_shape)`` to features ``(batch,
        n_hidden)`` (more dimensions are flattened); skvae adds the linear code layer
        ``n_hidden -> n_components`` on it, sized by a dry run on a batch of zeros. A
        class (or any callable returning a module) is called with ``**encoder_kwargs``
        under a torch RNG forked and seeded from ``random_state``, so its initialisation
        is reproducible and torch's global RNG is untouched; it is what ``clone``,
        ``set_params``, grid searches and pickling handle best (pickling needs it
        importable, at module level). An instance is deep-copied at every fit (yours is
        never trained or moved) and starts from its current values, so a pretrained
        module can be fine-tuned; its layers on the meta device are initialised by their
        ``reset_parameters``. It sees X as given: no centring.
        None: the built-in ``architecture``.
    encoder_kwargs : dict, default=None
        Keyword arguments of an ``encoder`` class or callable.
    decoder : torch.nn.Module, class or callable, default=None
        Your own decoder, mapping ``(batch, n_components)`` to the reconstruction,
        shaped ``(batch, *input_shape)`` (or flat). A class or callable is called with
        ``n_components=n_components`` and ``**decoder_kwargs``, as the encoder class is,
        so that ``n_components`` can be searched over; an instance is deep-copied as the
        encoder is, and fits one ``n_components``. Its output is used as written:
        nothing is added to it.
        None: the built-in ``architecture``.
    decoder_kwargs : dict, default=None
        Keyword arguments of a ``decoder`` class or callable, besides ``n_components``.
    batch_size : int or 'auto', default='auto'
        Rows per gradient step; 'auto' is ``min(200, n_samples)``, as in
        scikit-learn's MLP, but at most a quarter of the rows (at least 32): four
        steps per epoch or more on a few hundred rows. The last, smaller batch of
        an epoch is used too.
    learning_rate : float, default=1e-3
        Adam's step size. The built-in MLP starts at PCA's optimum, so there is
        no long way to go: the usual 1e-3 reaches lower held-out errors than
        larger steps (``benchmarks/bench_quality.py``).
    weight_decay : float, default=0.0
        Decoupled weight decay (AdamW; Loshchilov & Hutter 2019): each step
        also shrinks the weight matrices by ``learning_rate * weight_decay``
        times themselves. In the default networks with hidden layers, only the
        weights of the MLP beside the linear path that starts at PCA decay, so
        the decay pulls the network towards its linear model, not towards zero;
        in other networks every weight matrix or kernel decays. Biases never
        do. 0 trains with plain Adam. It regularises large networks: on MNIST,
        0.1 lowers the deep autoencoder's test error (user guide, Deep
        autoencoders).
    epsilon : float, default=1e-8
        Adam's ε, added to the root of the second-moment estimate in the
        denominator of every step (scikit-learn's MLP calls it ``epsilon`` too):
        a larger ε damps the steps of weights whose gradients are small.
    max_iter : int, default=500
        Maximum number of epochs (passes over the data). Default networks
        converge in 120 to 240 epochs on the digits, raw, scaled to [0, 1] or
        standardised.
    tol : float, default=1e-4
        Relative tolerance of the stopping rule: training stops when, for more
        than ``n_iter_no_change`` epochs in a row, the loss (the validation loss
        with early stopping) has not improved on its best by ``tol`` times what
        that best gains over the loss of predicting the mean of X. Relative, so
        it means the same whatever the scale of X and its number of features.
    n_iter_no_change : int, default=10
        Epochs without improvement tolerated before stopping.
    early_stopping : bool or 'auto', default='auto'
        Hold out ``validation_fraction`` of the data, stop on its loss, and keep
        the weights of the best validation epoch, the starting ones (PCA's, for
        the built-in MLP) included: the validation loss then never ends above
        where it started. New rows' loss can, when the held-out rows are few: a
        validation measure on tens of rows is noisy (``bench_quality.py --other``
        measures this on data sets the defaults were not chosen on). 'auto' holds
        out when n_samples is below 50,000, where the default networks overfit:
        ``validation_fraction`` of the rows, but at least 10 (half of fewer than
        20); larger X trains on every row. :meth:`partial_fit` never holds out.
    validation_fraction : float, default=0.1
        Share of the data held out when early stopping applies.
    warm_start : bool, default=False
        Continue from the fitted network when ``fit`` is called again, as
        ``partial_fit`` does. The parameters the network is built from
        (``n_components``, ``hidden_layer_sizes``, ``activation``,
        ``input_shape``, ``architecture``, ``encoder``, ``decoder``, their
        ``*_kwargs`` and ``device``) cannot change meanwhile: that is an error.
    verbose : bool, default=False
        Show a progress bar with the running loss.
    device : str or torch.device, default='auto'
        Where to train and infer: 'auto' takes CUDA, then Apple MPS, then the CPU.
        A device named explicitly but absent is an error.
    precision : {'float32', 'bfloat16', 'float16'}, default='float32'
        Arithmetic of the training steps. 'bfloat16' runs the network's forward
        pass under ``torch.autocast`` on the CPU or a CUDA device: faster where the
        hardware computes in bfloat16 and the layers are wide (hundreds of units),
        at a final loss close to float32's. 'float16' does the same with gradient
        scaling, on CUDA only. Either way the weights, the optimizer and the
        reductions of the loss stay float32, and inference (``transform``, scores,
        ``sample``) is float32 or better, with outputs in X's dtype. It may change
        between ``warm_start`` fits.
    learning_rate_schedule : {'constant', 'plateau'} or callable, default='constant'
        The learning rate of each epoch. 'constant' keeps ``learning_rate``.
        'plateau' divides the rate by 5 where the stopping rule would stop
        (``n_iter_no_change`` epochs without an improvement of ``tol``) and trains
        on, at most four times, as scikit-learn's MLP does with
        ``learning_rate='adaptive'``; the rate starts again at ``learning_rate`` in
        each ``fit``. A callable ``f(epoch) -> factor`` sets the rate of each epoch
        (counted from 0 over all of the estimator's epochs) to
        ``learning_rate * f(epoch)``; it must pickle (a module-level function) for
        the estimator to pickle.
    max_grad_norm : float, default=None
        Clip the gradients to this total 2-norm before each step
        (``torch.nn.utils.clip_grad_norm_``). None does not clip.
    callbacks : list, default=None
        Called at the end of every epoch: callables ``f(estimator, epoch,
        measures)`` or objects with an ``on_epoch_end`` method of that signature,
        such as :class:`skvae.callbacks.CSVLogger` and
        :class:`skvae.callbacks.TensorBoard`. ``measures`` is a dict of the
        epoch's losses, ``learning_rate`` and ``seconds``. A callback that
        returns True stops training after that epoch, keeping the best epoch's
        weights. See ``docs/guide/long_fits.md``.
    checkpoint : str or os.PathLike, default=None
        A file that ``fit`` writes every ``checkpoint_every`` epochs (and at its
        last), replacing it atomically: the weights, the optimizer's state, the
        curves and the random generators' states. A ``fit`` with the same
        parameters on the same data that finds the file continues from it, with a
        warning, to the result the uninterrupted fit would have reached (the same
        bits on the CPU at the same thread count); a file from another fit is
        refused and left in place. ``partial_fit`` does not write one.
    checkpoint_every : int or datetime.timedelta, default=1
        Epochs between two checkpoints, or the time between them (e.g.
        ``timedelta(minutes=10)``: a checkpoint at the end of the first epoch that
        ends that long after the last one).
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation and batch order. The same seed, data and
        parameters give identical results on the CPU.
        Draws from torch's global RNG inside your own modules (``nn.Dropout``) come
        from a stream seeded from it too, under a forked RNG: the global RNG is left
        as it was. Identical results also need the same number of torch threads
        (``torch.get_num_threads()``): matrix kernels may split their sums by
        thread, so results can differ by float32 rounding (about 1e-7 relative)
        between thread counts, and so can ``GridSearchCV`` with ``n_jobs=1`` and
        ``n_jobs=2``, whose workers get fewer threads. Fix the count everywhere for
        identical results, e.g. ``torch.set_num_threads(1)`` and, around the
        search, ``joblib.parallel_config(backend="loky", inner_max_num_threads=1)``.

    Attributes
    ----------
    module_ : torch.nn.Module
        The trained network, with ``encoder`` and ``decoder`` submodules (your
        own ``encoder``/``decoder`` modules inside them, when given).
    optimizer_ : torch.optim.Adam
        Its optimizer, kept for :meth:`partial_fit`: torch's fused Adam where the
        device has one (the same updates as the default Adam up to float rounding).
    device_ : torch.device
        The device the network lives on.
    loss_curve_ : list of float
        Training loss per epoch: half the squared reconstruction error summed
        over features, ||x - x_hat||² / 2, averaged over samples (that is
        n_features / 2 times the mean squared error per entry).
        Every epoch run is recorded, a diverged one's as inf or nan too.
    loss_parts_ : dict
        Parts of the loss per epoch; empty for the autoencoder, whose loss has one part.
    best_loss_ : float or None
        Lowest finite training loss (None with early stopping).
    validation_scores_ : list of float or None
        Negative validation loss per epoch, with early stopping.
    best_validation_score_ : float or None
        Highest of ``validation_scores_``.
    n_iter_ : int
        Epochs run.
    noise_variance_ : float
        Variance of the training residuals per feature: the σ² of the likelihood
        p(x|z) = N(decoder(z), σ²I) used by :meth:`score` and by :meth:`sample`'s
        observation noise.
    latent_mean_ : ndarray of shape (n_components,)
        Mean of the training codes.
    latent_covariance_ : ndarray of shape (n_components, n_components)
        Covariance of the training codes, from which :meth:`sample` draws.
        These three are computed at the end of fit, from the fitted network and
        the training rows (at most 4096 of them, evenly spaced): the estimator
        keeps no reference to X.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features,)
        Names of features seen during fit, when X had string column names.

    See Also
    --------
    PCA : The linear, closed-form encoder/decoder pair.
    VAETransformer : An autoencoder with a regular latent space that can generate.

    References
    ----------
    Hinton, G. E. and Salakhutdinov, R. R. (2006). Reducing the dimensionality of
    data with neural networks. Science, 313(5786), 504-507.

    He, K., Zhang, X., Ren, S. and Sun, J. (2016). Deep residual learning for
    image recognition. CVPR.

    Radford, A., Metz, L. and Chintala, S. (2016). Unsupervised representation
    learning with deep convolutional generative adversarial networks. ICLR.

    Burgess, C. P. et al. (2018). Understanding disentangling in beta-VAE.
    arXiv:1804.03599.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skvae import AutoencoderTransformer
    >>> X = load_digits().data / 16
    >>> ae = AutoencoderTransformer(n_components=8, max_iter=5, random_state=0)
    >>> ae.fit_transform(X).shape
    (1797, 8)
    """

    def __init__(
        self,
        n_components=2,
        *,
        hidden_layer_sizes=(256, 128),
        activation="relu",
        input_shape=None,
        architecture="mlp",
        encoder=None,
        encoder_kwargs=None,
        decoder=None,
        decoder_kwargs=None,
        batch_size="auto",
        learning_rate=1e-3,
        weight_decay=0.0,
        epsilon=1e-8,
        max_iter=500,
        tol=1e-4,
        n_iter_no_change=10,
        early_stopping="auto",
        validation_fraction=0.1,
        warm_start=False,
        verbose=False,
        device="auto",
        precision="float32",
        learning_rate_schedule="constant",
        max_grad_norm=None,
        callbacks=None,
        checkpoint=None,
        checkpoint_every=1,
        random_state=None,
    ):
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.input_shape = input_shape
        self.architecture = architecture
        self.encoder = encoder
        self.encoder_kwargs = encoder_kwargs
        self.decoder = decoder
        self.decoder_kwargs = decoder_kwargs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.epsilon = epsilon
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.warm_start = warm_start
        self.verbose = verbose
        self.device = device
        self.precision = precision
        self.learning_rate_schedule = learning_rate_schedule
        self.max_grad_norm = max_grad_norm
        self.callbacks = callbacks
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every
        self.random_state = random_state

    # The module class _build_module wraps the encoder trunk and decoder in.
    _network_class = Autoencoder

    def _build_module(self, Xt, generator, mean):
        if starts_from_pca(self):
            module, start = pca_autoencoder(self, Xt, mean)
            module = materialize(module, generator, self.device_)
            start()  # PCA's closed form, over the layers' default initialisation
            return module

        def make(trunk, width, decoder):
            return Autoencoder(trunk, width, self.n_components, decoder)

        module = build_network(self, Xt, generator, make, mean, output_offset=mean)
        return materialize(module, generator, self.device_)

    def _make_loss(self, noise_generator):
        def loss(module, xb, epoch):
            # ||x - x_hat||² / 2 per sample: the Gaussian negative log-likelihood with
            # unit variance, up to a constant, on the same scale as the VAE's loss.
            # float(): under autocast the reduction still runs in float32. mse_loss
            # sums in one kernel forward and one backward.
            sq = F.mse_loss(module(xb).float(), xb, reduction="sum")
            return sq * (0.5 / xb.shape[0]), {}

        return loss

    def _reference_losses(self, Xt, mean):
        # Predicting the mean costs ||x - mean||² / 2 per sample; a fit that ends
        # above twice that has diverged.
        sq = squared_spread(Xt, mean)  # E||x - mean||²
        # The floor of noise_variance_, from X's scale: set by every fit call.
        self._noise_floor = noise_floor(sq / Xt.shape[1])
        null = 0.5 * sq
        return null, 2 * null

    def _encode(self, X):
        return self.module_.encoder(X)

    def _decode(self, Z):
        return self.module_.decoder(Z)

    def _after_fit(self, Xt, incremental, kept_start=False):
        sq_err, codes = 0.0, []
        for xb in Xt.split(STATISTICS_BLOCK):
            zb = self.module_.encoder(xb)  # (batch, n_components)
            sq_err += float(((self.module_.decoder(zb) - xb) ** 2).sum())
            codes.append(zb.to("cpu", torch.float64).numpy())
        Z = np.concatenate(codes)  # (n_samples, n_components)
        self.noise_variance_ = max(sq_err / Xt.numel(), self._noise_floor)
        self.latent_mean_ = Z.mean(0)
        self.latent_covariance_ = np.atleast_2d(np.cov(Z, rowvar=False, ddof=min(1, len(Z) - 1)))

    def score_samples(self, X):
        """Gaussian log-likelihood of each sample's reconstruction residual, in nats.

        log N(x; decode(encode(x)), σ²I) with σ² = ``noise_variance_``. This is not
        a density of X (the code is a function of x, with no prior over it): it
        rises with ``n_components`` as reconstructions improve, and is not
        comparable with :meth:`PCA.score` or :meth:`VAETransformer.score`, which
        are (bounds on) log p(x). It does rank autoencoders of one width, e.g.
        in ``GridSearchCV``.

        Parameters
        ----------
        X : {array-like, torch.Tensor} of shape (n_samples, n_features)
            Data.

        Returns
        -------
        ll : ndarray or torch.Tensor of shape (n_samples,)
            One value per sample, in X's dtype; float32 for a float16 or bfloat16
            tensor, whose range the scores would overflow.
        """
        return super().score_samples(X)

    def _score_samples(self, X, module):
        # log N(x; x_hat, σ²I) = -d/2 log(2πσ²) - ||x - x_hat||² / (2σ²)
        var = self.noise_variance_
        dtype = next(module.parameters()).dtype
        sq = []
        for xb in X.split(max(1, SCORE_ELEMENTS // X.shape[1])):
            xb = xb.to(dtype)
            sq.append(((module(xb) - xb) ** 2).sum(1))  # (block,)
        return -0.5 * (X.shape[1] * math.log(2 * math.pi * var) + torch.cat(sq) / var)

    def _generate(self, Z, generator, observation_noise):
        X = self.module_.decoder(Z)
        if not observation_noise:
            return X
        noise = torch.randn(X.shape, generator=generator, device=X.device, dtype=X.dtype)
        return X + math.sqrt(self.noise_variance_) * noise

    def _sample_latent(self, n_samples, generator):
        # A symmetric square root of the covariance, defined even when codes are collinear.
        w, V = np.linalg.eigh(self.latent_covariance_)
        root = torch.as_tensor(
            V * np.sqrt(np.clip(w, 0, None)), dtype=torch.float32, device=self.device_
        )  # (n_components, n_components)
        mean = torch.as_tensor(self.latent_mean_, dtype=torch.float32, device=self.device_)
        eps = torch.randn(n_samples, len(mean), generator=generator, device=self.device_)
        return mean + eps @ root.T  # (n_samples, n_components)
