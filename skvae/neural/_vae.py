"""VAETransformer: a variational autoencoder as a scikit-learn transformer."""

from numbers import Integral, Real

import torch

from .._utils.validation import MIN_NOISE_VARIANCE, NONE, Interval, StrOptions
from ._base import BaseNeuralTransformer
from ._likelihoods import (
    LIKELIHOODS,
    UNIT_INTERVAL,
    decoder_mean,
    decoder_sample,
)
from ._modules import VAE, materialize
from ._networks import build_network, ppca_vae, starts_from_pca
from ._vae_objective import VAEObjectiveMixin
from ._vae_scores import VAEScoresMixin

# Bounds of the mean in the Bernoulli decoder's initial logit: a constant feature
# would otherwise start at an infinite logit.
_LOGIT_CLIP = 1e-3


class VAETransformer(VAEScoresMixin, VAEObjectiveMixin, BaseNeuralTransformer):
    """Variational autoencoder: a probabilistic encoder/decoder pair trained on the ELBO.

    The encoder maps x to a Gaussian posterior q(z|x) = N(g(x), diag h(x)) over
    ``n_components`` latent variables; the decoder f maps a latent point to the
    parameters of p(x|z), and the prior is p(z) = N(0, I). Training maximises the
    evidence lower bound (ELBO) with the reparameterisation z = g(x) + sqrt(h(x)) ε,
    ε ~ N(0, I)::

        ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z)) <= log p(x)

    With ``likelihood='gaussian'``, p(x|z) = N(f(z), cI) with c = ``noise_variance``,
    so the loss per sample is ||x - f(z)||² / (2c) + KL + d/2 log(2πc): a small c
    weighs reconstruction over the regularity of the latent space, a large c the
    reverse (see ``docs/vae.md``). By default c is learned with the network, which
    works on [0, 1]-scaled and standardised data alike. With
    ``likelihood='bernoulli'``, f(z) are logits and the reconstruction term is the
    binary cross-entropy summed over features; ``'continuous_bernoulli'`` adds the
    normaliser that makes it a density on [0, 1] (Loaiza-Ganem & Cunningham 2019).
    Both need X in [0, 1].

    The built-in MLP contains probabilistic PCA and starts at it (Lucas et al.
    2019): the encoder is a linear layer at PPCA's exact posterior,
    N(M⁻¹Wᵀ(x - μ), σ²M⁻¹), and the decoder a linear layer at PPCA's W z + μ, with
    W = U(Λ - σ²I)^½ fitted on every row fit is given, each plus the MLP as a
    residual whose last layer starts at zero. With the Gaussian likelihood the
    first ELBO is then PPCA's log-likelihood, and with the default
    ``early_stopping='auto'`` a fit on fewer than 50,000 rows keeps its best
    epoch by the held-out ELBO, the starting one included. The network sees X
    standardised column by column (the decoder's output is scaled back), so X
    in any units trains alike, and its log-variance is smoothly bounded to
    [-24, 6], so rows far outside the data score finite. For the Bernoulli
    likelihoods the decoder's logits start at the first-order match of PPCA's
    mean (see ``docs/vae.md``). The convolutional ``architecture`` and your own
    ``encoder``/``decoder`` start from their layers' own initialisation.

    After ``fit``, a :class:`~skvae.exceptions.PosteriorCollapseWarning` says when
    no latent unit is active (``n_active_units_ == 0``): the codes then carry no
    information about X.

    :meth:`transform` returns the posterior mean g(x), :meth:`inverse_transform`
    the decoder's mean E[x|z], :meth:`sample` draws z from the prior and x from
    p(x|z) (``observation_noise=False``: the decoder's mean), :meth:`score` is the
    mean ELBO and :meth:`score_samples_iwae` the tighter importance-weighted bound.
    Inference uses the model as fitted (``likelihood_``, ``noise_variance_``, the
    network): ``set_params`` changes it only at the next ``fit``.

    Parameters
    ----------
    n_components : int, default=2
        Number of latent variables.
    hidden_layer_sizes : tuple of int, default=(256, 128)
        Widths of the encoder's hidden layers (after the convolutions with
        ``architecture='conv'``); the decoder uses them reversed.
    activation : {'relu', 'tanh', 'sigmoid', 'identity', 'leaky_relu', 'elu', 'gelu'}, \
            default='relu'
        Nonlinearity between layers.
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
        Your own encoder trunk, mapping ``(batch, *input_shape)`` to features ``(batch, n_hidden)``
        (more dimensions are flattened); skvae adds the linear heads, the mean and the log-variance
        of q(z|x) (one layer of 2 x n_components outputs) on it, sized by a dry run on a batch of
        zeros. A class (or any callable returning a module) is called with ``**encoder_kwargs``
        under a torch RNG forked and seeded from ``random_state``, so its initialisation is
        reproducible and torch's global RNG is untouched; it is what ``clone``, ``set_params``, grid
        searches and pickling handle best (pickling needs it importable, at module level). An
        instance is deep-copied at every fit (yours is never trained or moved) and starts from its
        current values, so a pretrained module can be fine-tuned; its layers on the meta device are
        initialised by their ``reset_parameters``. It sees X as given: no centring.
        None: the built-in ``architecture``.
    encoder_kwargs : dict, default=None
        Keyword arguments of an ``encoder`` class or callable.
    decoder : torch.nn.Module, class or callable, default=None
        Your own decoder, mapping ``(batch, n_components)`` to the likelihood's
        parameters (the mean for 'gaussian', logits for the Bernoulli likelihoods),
        shaped ``(batch, *input_shape)`` (or flat). A class or callable is called with
        ``n_components=n_components`` and ``**decoder_kwargs``, as the encoder class is,
        so that ``n_components`` can be searched over; an instance is deep-copied as the
        encoder is, and fits one ``n_components``. Its output is used as written:
        nothing is added to it.
        None: the built-in ``architecture``.
    decoder_kwargs : dict, default=None
        Keyword arguments of a ``decoder`` class or callable, besides ``n_components``.
    likelihood : {'gaussian', 'bernoulli', 'continuous_bernoulli'}, default='gaussian'
        The decoder's distribution p(x|z). 'bernoulli' and 'continuous_bernoulli'
        need X in [0, 1], e.g. pixel intensities. 'bernoulli' treats grey levels
        as soft targets (its score is then not a density); 'continuous_bernoulli'
        is a density on [0, 1].
    binarize : {None, 'dynamic'}, default=None
        With ``'dynamic'`` and ``likelihood='bernoulli'``, every training step
        replaces its rows x (in [0, 1], e.g. grey levels) by binary rows drawn
        as Bernoulli(x), afresh at every step and epoch, and the encoder and the
        likelihood both see those: dynamic binarization, as Burda et al. (2016)
        train on MNIST. The draws come from the estimator's own generator, so
        they are reproducible from ``random_state``. With ``early_stopping``, the
        validation rows are binarized afresh at every epoch too, so the stopping
        rule sees a noisy estimate of the expected loss. The encoder statistics
        (``kl_per_dimension_``, ``active_units_``) are taken on one such
        binarization of the training rows. Scores are of X as given:
        to report a log-likelihood as the literature does, binarize the test
        rows once with a fixed seed and score those (see ``docs/vae.md``).
        Other likelihoods refuse it. None: X is used as given.
    noise_variance : float or 'learned', default='learned'
        The variance c of the Gaussian likelihood N(f(z), cI), in the units of X
        squared, at least 1e-6; 'learned' fits c by maximum likelihood along
        with the network, at least 1e-6 times the mean per-feature variance of
        X (a floor that scales with X). A fixed c much larger than
        the error the decoder can reach makes the posterior collapse (c=1 on
        pixels in [0, 1]). Ignored by the other likelihoods.
    beta : float, default=1.0
        Weight of the KL term (the β-VAE). Only ``beta=1`` makes the training
        loss the negative ELBO; :meth:`score` is the ELBO whatever ``beta``.
    kl_warmup : int, default=0
        Number of epochs over which the KL weight rises linearly from 0 to
        ``beta`` (epoch e uses ``beta * min(1, e / kl_warmup)``). The stopping rule
        only starts once the weight is full.
    n_score_samples : int, default=10
        Monte-Carlo draws of z per sample in :meth:`score_samples`, each row with
        its own draws. Read when scoring, so it may be changed after ``fit``.
    batch_size : int or 'auto', default='auto'
        Rows per gradient step; 'auto' is ``min(200, n_samples)``, as in
        scikit-learn's MLP, but at most a quarter of the rows (at least 32): four
        steps per epoch or more on a few hundred rows.
    learning_rate : float, default=1e-3
        Adam's step size.
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
        a larger ε damps the steps of weights whose gradients are small. Burda
        et al. (2016) train their VAEs with 1e-4.
    max_iter : int, default=1000
        Maximum number of epochs (passes over the data). The ELBO keeps improving
        long after the reconstructions look done: with the default ``tol`` the
        default VAE stops after 300-550 epochs on the digits (scaled to [0, 1] or
        standardised) and on 10,000 MNIST digits.
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
        ``*_kwargs``, ``device`` and ``likelihood``) cannot change meanwhile: that
        is an error.
        ``noise_variance`` may change: it only weighs the loss.
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
        Seeds weight initialisation, batch order, the reparameterisation noise and
        (with each row's values) the draws of :meth:`score_samples`. The same
        seed, data and parameters give identical results on the CPU.
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
        The trained network: ``encoder`` (a ``trunk`` and a linear ``head`` whose
        first ``n_components`` outputs are the mean and last ``n_components`` the
        log-variance of q(z|x)) and ``decoder``; your own ``encoder``/``decoder``
        modules are inside them, when given.
    optimizer_ : torch.optim.Adam
        Its optimizer, kept for :meth:`partial_fit`: torch's fused Adam where the
        device has one (the same updates as the default Adam up to float rounding).
    device_ : torch.device
        The device the network lives on.
    loss_curve_ : list of float
        Training loss per epoch: reconstruction + (warm-up weight) * KL, in nats
        per sample; the negative ELBO when ``beta=1`` and the warm-up is over.
        Every epoch run is recorded, a diverged one's as inf or nan too.
    loss_parts_ : dict of list of float
        ``'reconstruction'`` (-E_q[log p(x|z)]) and ``'kl'`` (KL(q(z|x) || p(z)),
        unweighted) per epoch, averaged over samples.
    best_loss_ : float or None
        Lowest finite training loss (None with early stopping).
    validation_scores_ : list of float or None
        Negative validation loss per epoch, with early stopping.
    best_validation_score_ : float or None
        Highest of ``validation_scores_``.
    n_iter_ : int
        Epochs run.
    likelihood_ : str
        The likelihood the network was fitted with, which inference uses.
    noise_variance_ : float or None
        The c of the Gaussian likelihood, as given or as learned, which inference
        uses; None for the other likelihoods. A learned c is measured at the end
        of fit, as the encoder statistics below are.
    kl_per_dimension_ : ndarray of shape (n_components,)
        KL(q(z_j|x) || N(0, 1)) per latent dimension, averaged over the training
        data: the nats each dimension spends encoding x.
    active_units_ : ndarray of bool of shape (n_components,)
        Whether each dimension is active: Var_x(E_q[z_j]) > 0.01 on the training data
        (Burda et al. 2016, Sec. 5.2).
    n_active_units_ : int
        Number of active units. Inactive ones have collapsed to the prior; a few
        is how a VAE leaves out dimensions the data do not need, none is warned
        about (:class:`~skvae.exceptions.PosteriorCollapseWarning`).
        These statistics are computed at the end of fit, from the fitted network
        and the training rows (at most 4096 of them, evenly spaced): the
        estimator keeps no reference to X.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features,)
        Names of features seen during fit, when X had string column names.

    See Also
    --------
    AutoencoderTransformer : The deterministic autoencoder.
    PCA : The linear, closed-form encoder/decoder pair.

    References
    ----------
    Kingma, D. P. and Welling, M. (2014). Auto-encoding variational Bayes. ICLR.

    Burda, Y., Grosse, R. and Salakhutdinov, R. (2016). Importance weighted
    autoencoders. ICLR.

    Tipping, M. E. and Bishop, C. M. (1999). Probabilistic principal component
    analysis. Journal of the Royal Statistical Society B, 61(3), 611-622.

    Lucas, J., Tucker, G., Grosse, R. and Norouzi, M. (2019). Don't blame the
    ELBO! A linear VAE perspective on posterior collapse. NeurIPS.

    Loaiza-Ganem, G. and Cunningham, J. P. (2019). The continuous Bernoulli:
    fixing a pervasive error in variational autoencoders. NeurIPS.

    Radford, A., Metz, L. and Chintala, S. (2016). Unsupervised representation
    learning with deep convolutional generative adversarial networks. ICLR.

    Burgess, C. P. et al. (2018). Understanding disentangling in beta-VAE.
    arXiv:1804.03599.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skvae import VAETransformer
    >>> X = load_digits().data / 16
    >>> vae = VAETransformer(n_components=4, likelihood="bernoulli", max_iter=5,
    ...                      random_state=0)
    >>> vae.fit_transform(X).shape
    (1797, 4)
    >>> vae.score_samples(X[:3]).shape
    (3,)
    """

    _parameter_constraints = {
        **BaseNeuralTransformer._parameter_constraints,
        "likelihood": [StrOptions(LIKELIHOODS)],
        # Below the floor of a learned variance, the loss of any X overflows float32.
        "noise_variance": [
            Interval(Real, MIN_NOISE_VARIANCE, None, closed="left"),
            StrOptions(("learned",)),
        ],
        "beta": [Interval(Real, 0, None, closed="left")],
        "kl_warmup": [Interval(Integral, 0, None)],
        "n_score_samples": [Interval(Integral, 1, None)],
        "binarize": [NONE, StrOptions(("dynamic",))],
    }
    _architecture_params = (
        *BaseNeuralTransformer._architecture_params,
        "likelihood",
    )

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
        likelihood="gaussian",
        binarize=None,
        noise_variance="learned",
        beta=1.0,
        kl_warmup=0,
        n_score_samples=10,
        batch_size="auto",
        learning_rate=1e-3,
        weight_decay=0.0,
        epsilon=1e-8,
        max_iter=1000,
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
        self.likelihood = likelihood
        self.binarize = binarize
        self.noise_variance = noise_variance
        self.beta = beta
        self.kl_warmup = kl_warmup
        self.n_score_samples = n_score_samples
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

    # ------------------------------------------------------------ training
    def _output_offset(self, mean):
        """The decoder output that predicts ``mean``: the logit of it for the Bernoulli ones."""
        if self.likelihood in UNIT_INTERVAL:
            return torch.logit(mean.clamp(_LOGIT_CLIP, 1 - _LOGIT_CLIP))
        return mean

    # The module class _build_module wraps the encoder trunk and decoder in.
    _network_class = VAE

    def _build_module(self, Xt, generator, mean):
        if starts_from_pca(self):
            module, start = ppca_vae(self, Xt, mean, self._output_offset)
            module = materialize(module, generator, self.device_)
            # PPCA's closed form, over the layers' default initialisation; its σ² is
            # the learned c of a fit that keeps these weights (_after_fit).
            self._start_noise_variance = start()
            return module

        def make(trunk, width, decoder):
            return VAE(trunk, width, self.n_components, decoder)

        offset = self._output_offset(mean)  # (n_features,)
        module = build_network(self, Xt, generator, make, mean, output_offset=offset)
        return materialize(module, generator, self.device_)

    # ----------------------------------------------------------- inference
    def _encode(self, X):
        return self.module_.encoder(X)[0]

    def _decode(self, Z):
        return decoder_mean(self.likelihood_, self.module_.decoder(Z))

    def _generate(self, Z, generator, observation_noise):
        out = self.module_.decoder(Z)
        if not observation_noise:
            return decoder_mean(self.likelihood_, out)
        return decoder_sample(self.likelihood_, out, self.noise_variance_, generator)

    def _sample_latent(self, n_samples, generator):
        return torch.randn(
            n_samples,
            self._fitted_architecture["n_components"],
            generator=generator,
            device=self.device_,
        )  # (n_samples, n_components) from the prior N(0, I)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # The Bernoulli likelihoods refuse X outside [0, 1], negative values included.
        tags.input_tags.positive_only = self.likelihood in UNIT_INTERVAL
        return tags
