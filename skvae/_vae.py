"""VAETransformer: a variational autoencoder as a scikit-learn transformer."""

import math
from numbers import Integral, Real

import numpy as np
import torch
from torch.nn import functional as F

from ._base import BaseNeuralTransformer
from ._modules import VAE, materialize
from ._validation import Constraint, Interval, StrOptions

# A unit is active when the variance of its posterior mean over the data exceeds this
# (Burda et al. 2016, Sec. 5.2).
_ACTIVE_UNIT_THRESHOLD = 0.01
# Bounds of the mean in the Bernoulli decoder's initial logit: a constant feature
# would otherwise start at an infinite logit.
_LOGIT_CLIP = 1e-3
# Floor of a learned noise variance: keeps the likelihood finite when the decoder
# reproduces the data exactly.
_MIN_NOISE_VARIANCE = 1e-6
# Rows per decoder pass inside the Monte-Carlo loops of score_samples.
_SCORE_ROWS = 8192

_LOG_2PI = math.log(2 * math.pi)


def _positive_finite(value):
    return Interval(Real, 0, None, closed="neither")(value) and math.isfinite(value)


def gaussian_kl(mean, log_var):
    """KL(N(mean, diag exp(log_var)) || N(0, I)) per latent dimension, (batch, n_components).

    Closed form, Kingma & Welling (2014), Appendix B:
    -KL = 1/2 sum_j (1 + log σ_j² - μ_j² - σ_j²).
    """
    return 0.5 * (mean.square() + log_var.exp() - 1.0 - log_var)


class VAETransformer(BaseNeuralTransformer):
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
    reverse (see ``docs/vae.md``). With ``likelihood='bernoulli'``, f(z) are logits
    and the reconstruction term is the binary cross-entropy summed over features;
    X must lie in [0, 1].

    :meth:`transform` returns the posterior mean g(x), :meth:`inverse_transform`
    the decoder's mean, :meth:`sample` decodes draws from the prior, :meth:`score`
    is the ELBO and :meth:`score_samples_iwae` the tighter importance-weighted bound.

    Parameters
    ----------
    n_components : int, default=2
        Number of latent variables.
    hidden_layer_sizes : tuple of int, default=(256, 128)
        Widths of the encoder's hidden layers; the decoder uses them reversed.
    activation : {'relu', 'tanh', 'sigmoid', 'identity', 'leaky_relu', 'elu', 'gelu'}, \
            default='relu'
        Nonlinearity between layers.
    likelihood : {'gaussian', 'bernoulli'}, default='gaussian'
        The decoder's distribution p(x|z). 'bernoulli' needs X in [0, 1], e.g.
        pixel intensities.
    noise_variance : float or 'learned', default=1.0
        The variance c of the Gaussian likelihood N(f(z), cI), in the units of X
        squared; 'learned' fits c by maximum likelihood along with the network.
        Ignored for 'bernoulli'.
    beta : float, default=1.0
        Weight of the KL term (the β-VAE). Only ``beta=1`` makes the training
        loss the negative ELBO; :meth:`score` is the ELBO whatever ``beta``.
    kl_warmup : int, default=0
        Number of epochs over which the KL weight rises linearly from 0 to
        ``beta`` (epoch e uses ``beta * min(1, e / kl_warmup)``). The stopping rule
        only starts once the weight is full.
    n_score_samples : int, default=10
        Monte-Carlo draws of z per sample in :meth:`score_samples`. The same draws
        of ε serve every row, so that each row's estimate depends on that row
        alone; their error is therefore shared across rows and does not average
        out in :meth:`score`, hence more than one draw by default. Ten decoder passes
        cost little next to training.
    batch_size : int or 'auto', default='auto'
        Rows per gradient step; 'auto' is ``min(200, n_samples)``.
    learning_rate : float, default=1e-3
        Adam's step size.
    weight_decay : float, default=0.0
        Adam's L2 penalty.
    max_iter : int, default=200
        Maximum number of epochs (passes over the data).
    tol : float, default=1e-4
        Training stops when the loss (or validation loss with early stopping)
        has not improved by at least ``tol`` for ``n_iter_no_change`` epochs.
    n_iter_no_change : int, default=10
        Epochs without improvement tolerated before stopping.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data, stop on its loss, and keep
        the weights of the best validation epoch.
    validation_fraction : float, default=0.1
        Share of the data held out when ``early_stopping=True``.
    warm_start : bool, default=False
        Continue from the fitted network when ``fit`` is called again, as
        ``partial_fit`` does. The parameters the network is built from
        (``n_components``, ``hidden_layer_sizes``, ``activation``, ``device``,
        ``likelihood`` and whether ``noise_variance`` is learned) cannot change
        meanwhile: that is an error.
    verbose : bool, default=False
        Show a progress bar with the running loss.
    device : str or torch.device, default='auto'
        Where to train and infer: 'auto' takes CUDA, then Apple MPS, then the CPU.
        A device named explicitly but absent is an error.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, batch order, the reparameterisation noise and
        the draws of :meth:`score_samples`. The same seed, data and parameters give
        identical results on the CPU.

    Attributes
    ----------
    module_ : torch.nn.Module
        The trained network: ``encoder`` (with ``loc`` and ``log_var`` heads) and
        ``decoder``.
    optimizer_ : torch.optim.Adam
        Its optimizer, kept for :meth:`partial_fit`.
    device_ : torch.device
        The device the network lives on.
    loss_curve_ : list of float
        Training loss per epoch: reconstruction + (warm-up weight) * KL, in nats
        per sample; the negative ELBO when ``beta=1`` and the warm-up is over.
    loss_parts_ : dict of list of float
        ``'reconstruction'`` (-E_q[log p(x|z)]) and ``'kl'`` (KL(q(z|x) || p(z)),
        unweighted) per epoch, averaged over samples.
    best_loss_ : float or None
        Lowest training loss (None with early stopping).
    validation_scores_ : list of float or None
        Negative validation loss per epoch, with early stopping.
    best_validation_score_ : float or None
        Highest of ``validation_scores_``.
    n_iter_ : int
        Epochs run.
    noise_variance_ : float or None
        The c of the Gaussian likelihood, as given or as learned; None for
        'bernoulli'.
    kl_per_dimension_ : ndarray of shape (n_components,)
        KL(q(z_j|x) || N(0, 1)) per latent dimension, averaged over the training
        data: the nats each dimension spends encoding x.
    active_units_ : ndarray of bool of shape (n_components,)
        Whether each dimension is active: Var_x(E_q[z_j]) > 0.01 on the training data.
    n_active_units_ : int
        Number of active units. Inactive ones have collapsed to the prior.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
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
        "likelihood": [StrOptions(("gaussian", "bernoulli"))],
        "noise_variance": [
            Constraint(_positive_finite, "a float in the range (0, inf)"),
            StrOptions(("learned",)),
        ],
        "beta": [Interval(Real, 0, None, closed="left")],
        "kl_warmup": [Interval(Integral, 0, None)],
        "n_score_samples": [Interval(Integral, 1, None)],
    }
    _architecture_params = (
        *BaseNeuralTransformer._architecture_params,
        "likelihood",
        "noise_variance",
    )

    def __init__(
        self,
        n_components=2,
        *,
        hidden_layer_sizes=(256, 128),
        activation="relu",
        likelihood="gaussian",
        noise_variance=1.0,
        beta=1.0,
        kl_warmup=0,
        n_score_samples=10,
        batch_size="auto",
        learning_rate=1e-3,
        weight_decay=0.0,
        max_iter=200,
        tol=1e-4,
        n_iter_no_change=10,
        early_stopping=False,
        validation_fraction=0.1,
        warm_start=False,
        verbose=False,
        device="auto",
        random_state=None,
    ):
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.likelihood = likelihood
        self.noise_variance = noise_variance
        self.beta = beta
        self.kl_warmup = kl_warmup
        self.n_score_samples = n_score_samples
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.warm_start = warm_start
        self.verbose = verbose
        self.device = device
        self.random_state = random_state

    # ------------------------------------------------------------ training
    def _check_training_values(self, Xt):
        self._check_unit_interval(Xt)

    def _check_unit_interval(self, Xt):
        if self.likelihood != "bernoulli":
            return
        lo, hi = float(Xt.min()), float(Xt.max())
        if lo < 0 or hi > 1:
            raise ValueError(
                f"likelihood='bernoulli' needs X in [0, 1]; got values in [{lo:.3g}, {hi:.3g}]. "
                "Scale X (e.g. MinMaxScaler(clip=True)) or use likelihood='gaussian'."
            )

    def _build_module(self, Xt, generator):
        mean = Xt.mean(0)  # (n_features,)
        bernoulli = self.likelihood == "bernoulli"
        learned = not bernoulli and self.noise_variance == "learned"
        offset = torch.logit(mean.clamp(_LOGIT_CLIP, 1 - _LOGIT_CLIP)) if bernoulli else mean
        module = VAE(
            mean,
            self.n_components,
            tuple(self.hidden_layer_sizes),
            self.activation,
            offset,
            learn_noise_variance=learned,
        )
        module = materialize(module, generator, self.device_)
        if learned:
            # Start at the mean per-feature variance: the error of decoding every
            # point to the data mean, which is what the offset decoder begins with.
            c0 = max(float(Xt.var(0, correction=0).mean()), _MIN_NOISE_VARIANCE)
            with torch.no_grad():
                module.log_noise_variance.fill_(math.log(c0))
        return module

    def _same_network(self, name, fitted, value):
        if name == "noise_variance":
            # A fixed variance only weighs the loss and may change between calls;
            # a learned one is a parameter of the network.
            return (fitted == "learned") == (value == "learned")
        return super()._same_network(name, fitted, value)

    def _monitor_from(self):
        return self.kl_warmup

    def _kl_weight(self, epoch):
        if self.kl_warmup == 0:
            return float(self.beta)
        return float(self.beta) * min(1.0, epoch / self.kl_warmup)

    def _make_loss(self, noise_generator):
        def loss(module, xb, epoch):
            mean, log_var = module.encoder(xb)  # (batch, n_components) each
            eps = torch.randn(mean.shape, generator=noise_generator, device=mean.device)
            z = mean + (0.5 * log_var).exp() * eps  # reparameterisation
            rec = -self._log_likelihood(module, xb, module.decoder(z))  # (batch,)
            kl = gaussian_kl(mean, log_var).sum(1)  # (batch,)
            rec, kl = rec.mean(), kl.mean()
            parts = {"reconstruction": rec.detach(), "kl": kl.detach()}
            return rec + self._kl_weight(epoch) * kl, parts

        return loss

    def _log_noise_variance(self, module):
        if self.noise_variance == "learned":
            return module.log_noise_variance.clamp(min=math.log(_MIN_NOISE_VARIANCE))
        return math.log(self.noise_variance)

    def _log_likelihood(self, module, x, out):
        """log p(x|z) per row, with every constant, from the decoder's output ``out``."""
        if self.likelihood == "bernoulli":
            # log Bern(x; sigmoid(out)) = -BCE(out, x), summed over features.
            return -F.binary_cross_entropy_with_logits(out, x, reduction="none").sum(1)
        # log N(x; f(z), cI) = -||x - f(z)||² / (2c) - d/2 log(2πc)
        log_c = self._log_noise_variance(module)  # a float, or a scalar tensor when learned
        inv_c = torch.exp(-log_c) if torch.is_tensor(log_c) else math.exp(-log_c)
        sq = (x - out).square().sum(1)  # (batch,)
        return -0.5 * (sq * inv_c + x.shape[1] * (_LOG_2PI + log_c))

    def _after_fit(self, Xt):
        if self.likelihood == "bernoulli":
            self.noise_variance_ = None
        elif self.noise_variance == "learned":
            self.noise_variance_ = float(math.exp(self._log_noise_variance(self.module_)))
        else:
            self.noise_variance_ = float(self.noise_variance)
        kl, codes = 0.0, []
        for i in range(0, Xt.shape[0], _SCORE_ROWS):
            mean, log_var = self.module_.encoder(Xt[i : i + _SCORE_ROWS])
            # Summed on the device, accumulated in float64 on the host (MPS has no float64).
            kl = kl + gaussian_kl(mean, log_var).sum(0).to("cpu", torch.float64)  # (n_components,)
            codes.append(mean.to("cpu", torch.float64).numpy())
        self.kl_per_dimension_ = (kl / Xt.shape[0]).numpy()
        activity = np.concatenate(codes).var(0)  # (n_components,): Var_x(E_q[z_j])
        self.active_units_ = activity > _ACTIVE_UNIT_THRESHOLD
        self.n_active_units_ = int(self.active_units_.sum())

    # ----------------------------------------------------------- inference
    def _encode(self, X):
        return self.module_.encoder(X)[0]

    def _decode(self, Z):
        out = self.module_.decoder(Z)
        return torch.sigmoid(out) if self.likelihood == "bernoulli" else out

    def _sample_latent(self, n_samples, generator):
        return torch.randn(
            n_samples, self.n_components, generator=generator, device=self.device_
        )  # (n_samples, n_components) from the prior N(0, I)

    def _score_noise(self, n_draws):
        """The ε of the Monte-Carlo estimates, (n_draws, n_components), shared by all rows.

        Drawn on the CPU from a generator seeded at fit, one row at a time, so that
        draw s is the same on every call, on every device, and whatever ``n_draws``.
        """
        generator = torch.Generator().manual_seed(self._seed + 3)
        return torch.stack(
            [torch.randn(self.n_components, generator=generator) for _ in range(n_draws)]
        ).to(self.device_)

    def _log_weights(self, X, n_draws):
        """log p(x, z_s) - log q(z_s|x) for z_s = g(x) + sqrt(h(x)) ε_s, as (n_draws, batch).

        Computed by a float64 copy of the network (float32 on MPS, which lacks
        float64): the bound sums d terms and, for a small c, magnifies float32
        rounding, which would also make a row's value depend on the rows beside it.
        """
        self._check_unit_interval(X)
        module, X = self._scoring_copy(X)
        eps = self._score_noise(n_draws).to(X.dtype)
        mean, log_var = module.encoder(X)  # (batch, n_components) each
        std = (0.5 * log_var).exp()
        k = self.n_components
        # log q(z|x) = log N(ε; 0, I) - 1/2 sum_j log h_j(x), since (z - g(x)) / sqrt(h(x)) = ε.
        log_q_const = -0.5 * (log_var.sum(1) + k * _LOG_2PI)  # (batch,)
        rows = []
        for e in eps:  # e: (n_components,)
            z = mean + std * e  # (batch, n_components)
            log_px = self._log_likelihood(module, X, module.decoder(z))
            log_pz = -0.5 * (z.square().sum(1) + k * _LOG_2PI)
            log_q = log_q_const - 0.5 * e.square().sum()
            rows.append(log_px + log_pz - log_q)
        return torch.stack(rows)

    def _score_samples(self, X):
        return self._log_weights(X, self.n_score_samples).mean(0)

    def score_samples(self, X):
        """Evidence lower bound (ELBO) of each sample, in nats: a lower bound on log p(x).

        A Monte-Carlo estimate with ``n_score_samples`` draws of z from q(z|x),
        every constant included. The KL term is estimated by the same draws
        (log p(z) - log q(z|x)) rather than in closed form, so that this is exactly
        :meth:`score_samples_iwae` with ``n_importance=1`` averaged over the draws,
        and never above it for the same draws. Repeated calls give the same values.

        Parameters
        ----------
        X : {array-like, torch.Tensor} of shape (n_samples, n_features)
            Data. For ``likelihood='bernoulli'`` it must lie in [0, 1]: outside that
            range the Bernoulli log-likelihood is undefined, and a ValueError is raised.

        Returns
        -------
        elbo : ndarray or torch.Tensor of shape (n_samples,)
            ELBO per sample, in X's dtype.
        """
        return super().score_samples(X)

    def score_samples_iwae(self, X, n_importance=100):
        """Importance-weighted bound on log p(x) per sample, in nats (Burda et al. 2016).

        ``log (1/K) sum_k p(x, z_k) / q(z_k|x)`` with z_k drawn from q(z|x), computed
        with logsumexp. It lies above the ELBO for the same draws, equals the
        single-draw ELBO at K=1, and rises towards log p(x) as K grows (on
        average). The draws are the ones :meth:`score_samples` uses, extended.

        Named after :meth:`score_samples`, of which it is the tighter variant.

        Parameters
        ----------
        X : {array-like, torch.Tensor} of shape (n_samples, n_features)
            Data, as for :meth:`score_samples`.
        n_importance : int, default=100
            Number K of importance samples per row. Costs K decoder passes.

        Returns
        -------
        log_likelihood : ndarray or torch.Tensor of shape (n_samples,)
            The bound per sample, in X's dtype.
        """
        if (
            not isinstance(n_importance, Integral)
            or isinstance(n_importance, bool)
            or (n_importance < 1)
        ):
            raise ValueError(f"n_importance must be an int >= 1; got {n_importance!r}.")

        def iwae(xb):
            log_w = self._log_weights(xb, int(n_importance))  # (K, batch)
            return torch.logsumexp(log_w, 0) - math.log(n_importance)

        return self._map(iwae, X)
