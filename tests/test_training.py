"""The one training loop, driven directly with a toy module and loss."""

import copy
import functools
import math
import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from torch import nn

from skvae import AutoencoderTransformer
from skvae._utils.denormals import cpu_fast_math
from skvae.neural._training import make_adam, train

DENORMAL = 1e-39  # below float32's smallest normal number, ~1.18e-38
TINY = torch.finfo(torch.float32).tiny


def denormal_survives():
    return (torch.tensor(DENORMAL, dtype=torch.float32) * 1.0).item() != 0.0


def toy(n=50, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 3, generator=g)
    module = nn.Linear(3, 3)
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-0.5, 0.5, generator=g)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-2)
    return module, optimizer, X, g


def mse(module, xb, epoch):
    return ((module(xb) - xb) ** 2).mean(), {}


def run(module, optimizer, X, g, **kwargs):
    params = dict(generator=g, batch_size=16, max_iter=5, tol=0.0, n_iter_no_change=100)
    return train(module, mse, optimizer, X, **{**params, **kwargs})


def test_cpu_fast_math_flushes_denormals_only_inside():
    assert denormal_survives()
    with cpu_fast_math("cpu"):
        assert not denormal_survives()
    assert denormal_survives()


def test_training_runs_with_denormals_flushed():
    seen = []

    def loss(module, xb, epoch):
        seen.append(denormal_survives())
        return mse(module, xb, epoch)

    module, optimizer, X, g = toy()
    train(
        module,
        loss,
        optimizer,
        X,
        generator=g,
        batch_size=16,
        max_iter=1,
        tol=0.0,
        n_iter_no_change=1,
    )
    assert seen and not any(seen)
    assert denormal_survives()


def test_history_counts_every_batch_and_epoch():
    steps = []
    module, optimizer, X, g = toy(n=50)

    def loss(module, xb, epoch):
        if torch.is_grad_enabled():  # not the measure of the loss before training
            steps.append((epoch, len(xb)))
        return mse(module, xb, epoch)

    history = train(
        module,
        loss,
        optimizer,
        X,
        generator=g,
        batch_size=16,
        max_iter=2,
        tol=0.0,
        n_iter_no_change=100,
        first_epoch=3,
    )
    # 50 rows in batches of 16: 16, 16, 16 and the last 2 rows are trained on too.
    assert steps == [(3, 16), (3, 16), (3, 16), (3, 2), (4, 16), (4, 16), (4, 16), (4, 2)]
    assert history["n_iter"] == 2 and len(history["loss"]) == 2
    assert not history["converged"]


def test_stopping_rule_is_sklearns():
    module, optimizer, X, g = toy()
    # A tolerance no epoch can meet: the first epoch sets the best loss, then training
    # stops once more than n_iter_no_change epochs in a row fail to improve on it by tol.
    history = run(module, optimizer, X, g, max_iter=50, tol=1e9, n_iter_no_change=3)
    assert history["converged"] and history["n_iter"] == 5


def test_monitor_from_delays_the_stopping_rule():
    module, optimizer, X, g = toy()
    history = run(module, optimizer, X, g, max_iter=50, tol=1e9, n_iter_no_change=3, monitor_from=5)
    assert history["n_iter"] == 10


def test_validation_restores_best_weights():
    module, optimizer, X, g = toy()
    X_val = X[:10]
    history = run(module, optimizer, X, g, max_iter=8, X_val=X_val)
    assert len(history["val_loss"]) == 8
    with torch.no_grad():
        final = ((module(X_val) - X_val) ** 2).mean().item()
    assert final == pytest.approx(min(history["val_loss"]), rel=1e-5)


def test_non_finite_loss_ends_training_and_restores_the_best_weights():
    module, optimizer, X, g = toy()

    def loss(module, xb, epoch):
        value = mse(module, xb, epoch)[0]
        return (value * math.inf if epoch >= 2 else value), {}

    params = dict(generator=g, batch_size=16, max_iter=10, tol=0.0, n_iter_no_change=100)
    history = train(module, loss, optimizer, X, **params)
    assert history["diverged"] and not history["converged"]
    assert history["n_iter"] == 3 and not math.isfinite(history["loss"][-1])
    assert history["best_epoch"] == 2 and history["best_loss"] < history["start_loss"]
    assert not optimizer.state  # the moments of the diverging steps are gone
    with torch.no_grad():  # the loss reported is that of the weights kept
        assert ((module(X) - X) ** 2).mean().item() == pytest.approx(history["best_loss"])


def test_loss_far_above_its_start_is_divergence():
    module, optimizer, X, g = toy()
    weights = [p.detach().clone() for p in module.parameters()]

    def loss(module, xb, epoch):
        value = mse(module, xb, epoch)[0]
        return (value + 1e6 if epoch >= 1 else value), {}

    params = dict(generator=g, batch_size=16, max_iter=3, tol=0.0, n_iter_no_change=100)
    history = train(module, loss, optimizer, X, diverged_above=1e3, **params)
    assert history["diverged"] and history["n_iter"] == 3 and history["best_epoch"] == 1
    # Below the bound it is not divergence, and the weights trained are kept.
    module, optimizer, X, g = toy()
    history = train(module, loss, optimizer, X, diverged_above=1e7, **params)
    assert not history["diverged"] and history["best_epoch"] == 1
    assert not all(torch.equal(a, b) for a, b in zip(weights, module.parameters()))


def test_non_finite_loss_before_training_raises():
    module, optimizer, X, g = toy()

    def loss(module, xb, epoch):
        return mse(module, xb, epoch)[0] * math.inf, {}

    with pytest.raises(FloatingPointError, match=r"The loss is (inf|nan) before training.*Scale X"):
        train(
            module,
            loss,
            optimizer,
            X,
            generator=g,
            batch_size=16,
            max_iter=3,
            tol=0.0,
            n_iter_no_change=1,
        )


def test_tol_is_relative_to_the_gain_over_the_null_loss():
    # The same curve, scaled: the stopping epoch does not change.
    n_iter = []
    for scale in (1e-3, 1.0, 1e3):
        module, optimizer, X, g = toy()

        def loss(module, xb, epoch, scale=scale):
            return scale * mse(module, xb, epoch)[0], {}

        null = scale * X.var(0, correction=0).sum().item() / 3
        history = train(
            module,
            loss,
            optimizer,
            X,
            generator=g,
            batch_size=16,
            max_iter=200,
            tol=1e-2,
            n_iter_no_change=2,
            null_loss=null,
        )
        assert history["converged"]
        n_iter.append(history["n_iter"])
    assert n_iter[0] == n_iter[1] == n_iter[2] < 200


def test_same_generator_seed_same_history():
    a = run(*toy(seed=0))
    b = run(*toy(seed=0))
    assert a["loss"] == b["loss"]


def test_zeroing_tiny_adam_state_matches_plain_adam():
    # Columns non-zero in one row only: their first-layer weights' gradients stop
    # after that row, and plain Adam's moments for them decay into the denormal range.
    g = torch.Generator().manual_seed(0)
    X = torch.rand(64, 20, generator=g)
    X[:, :8] = 0.0
    X[0, :8] = 1.0
    module = nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 4), nn.Linear(4, 20))
    plain = copy.deepcopy(module)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    plain_optimizer = torch.optim.Adam(plain.parameters(), lr=1e-3)
    n_epochs, batch_size = 150, 8
    order_gen = torch.Generator().manual_seed(1)
    params = dict(max_iter=n_epochs, batch_size=batch_size, n_iter_no_change=n_epochs)
    run(module, optimizer, X, order_gen, **params)

    order_gen.manual_seed(1)  # the same batches, in a plain loop
    for epoch in range(n_epochs):
        order = torch.randperm(len(X), generator=order_gen)
        for start in range(0, len(X), batch_size):
            loss, _ = mse(plain, X[order[start : start + batch_size]], epoch)
            plain_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            plain_optimizer.step()

    def denormals(optimizer):
        moments = [s[k] for s in optimizer.state.values() for k in ("exp_avg", "exp_avg_sq")]
        return sum(int(((m != 0) & (m.abs() < TINY)).sum()) for m in moments)

    assert denormals(plain_optimizer) > 0
    assert denormals(optimizer) == 0
    for ours, theirs in zip(module.parameters(), plain.parameters()):
        torch.testing.assert_close(ours, theirs)


def test_fused_adam_matches_the_default_adam():
    # The estimators train with make_adam; its updates must be Adam's.
    X = torch.rand(64, 12, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(12, 8), nn.Tanh(), nn.Linear(8, 12))
    default = copy.deepcopy(module)
    fused = make_adam(module.parameters(), lr=1e-2, weight_decay=1e-3)
    plain = torch.optim.Adam(default.parameters(), lr=1e-2, weight_decay=1e-3)
    assert fused.defaults["fused"]  # the CPU has a fused Adam in the tested torch
    for start in range(0, 64 * 5, 8):
        xb = X[start % 64 : start % 64 + 8]
        for net, optimizer in ((module, fused), (default, plain)):
            loss = (net(xb) - xb).square().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    for ours, theirs in zip(module.parameters(), default.parameters()):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


def test_fitted_estimators_pickle_with_the_fused_optimizer():
    X = np.random.default_rng(0).random((60, 5)).astype(np.float32)
    est = AutoencoderTransformer(2, hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    with pytest.warns(ConvergenceWarning):
        est.fit(X)
    assert est.optimizer_.defaults["fused"]
    loaded = pickle.loads(pickle.dumps(est))
    loaded.partial_fit(X)
    est.partial_fit(X)
    np.testing.assert_array_equal(loaded.transform(X), est.transform(X))


def bfloat16_toy():
    g = torch.Generator().manual_seed(0)
    X = torch.rand(96, 12, generator=g)
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(12, 8), nn.Tanh(), nn.Linear(8, 12))
    return module, X


def test_bfloat16_steps_are_autocasts_steps():
    # train computes on bfloat16 copies of the weights, refreshed after each step;
    # a plain autocast loop casts the float32 weights in every step. Same arithmetic.
    module, X = bfloat16_toy()
    plain = copy.deepcopy(module)
    optimizer = make_adam(module.parameters(), lr=1e-2)
    plain_optimizer = make_adam(plain.parameters(), lr=1e-2)
    order_gen = torch.Generator().manual_seed(1)
    params = dict(max_iter=3, batch_size=8, n_iter_no_change=10, precision="bfloat16")
    history = run(module, optimizer, X, order_gen, **params)

    order_gen.manual_seed(1)
    losses = []
    for epoch in range(3):
        order = torch.randperm(len(X), generator=order_gen)
        total = 0.0
        for start in range(0, len(X), 8):
            xb = X[order[start : start + 8]]
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss, _ = mse(plain, xb, epoch)
            plain_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            plain_optimizer.step()
            total += float(loss.detach()) * len(xb)
        losses.append(total / len(X))

    assert history["loss"] == pytest.approx(losses, rel=1e-6)
    for ours, theirs in zip(module.parameters(), plain.parameters()):
        assert ours.dtype == torch.float32 and ours.grad.dtype == torch.float32
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    for state in optimizer.state.values():
        assert state["exp_avg"].dtype == torch.float32


def test_failure_inside_a_bfloat16_step_leaves_float32_starting_weights():
    module, X = bfloat16_toy()
    start = copy.deepcopy(module.state_dict())
    calls = []

    def failing(module, xb, epoch):
        calls.append(epoch)
        if module.training and len(calls) > 4:
            raise RuntimeError("out of memory")
        return mse(module, xb, epoch)

    optimizer = make_adam(module.parameters(), lr=1e-2)
    run = functools.partial(train, loss_fn=failing, batch_size=8, max_iter=2, tol=0.0)
    with pytest.raises(RuntimeError, match="out of memory"):
        run(
            module,
            optimizer=optimizer,
            X=X,
            generator=torch.Generator().manual_seed(1),
            n_iter_no_change=10,
            precision="bfloat16",
        )
    for name, value in module.state_dict().items():
        assert value.dtype == torch.float32
        torch.testing.assert_close(value, start[name], rtol=0, atol=0)


# ------------------------------------------------------- schedules and clipping
def lr_per_epoch(**params):
    """The optimizer's learning rate during each epoch of a small autoencoder fit."""
    rates = []

    def read(estimator, epoch, measures):
        rates.append(estimator.optimizer_.param_groups[0]["lr"])

    X = np.random.default_rng(0).random((100, 6))
    params = {**dict(n_components=2, hidden_layer_sizes=(8,), max_iter=5, random_state=0), **params}
    est = AutoencoderTransformer(callbacks=[read], **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X)
    return rates, est


def test_the_constant_schedule_keeps_the_learning_rate():
    rates, est = lr_per_epoch(learning_rate=0.01)
    assert est.learning_rate_schedule == "constant"
    assert rates == [0.01] * 5


def halve(epoch):
    return 0.5**epoch


def test_a_callable_schedule_sets_each_epochs_rate_counting_over_continued_fits():
    rates, est = lr_per_epoch(learning_rate=0.01, learning_rate_schedule=halve, warm_start=True)
    assert rates == pytest.approx([0.01 * 0.5**e for e in range(5)], rel=1e-12)
    rates.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(np.random.default_rng(0).random((100, 6)))
    assert rates == pytest.approx([0.01 * 0.5**e for e in range(5, 10)], rel=1e-12)


def test_the_plateau_schedule_divides_the_rate_by_five_where_training_would_stop():
    # A tolerance no epoch meets, and n_iter_no_change=1: without the schedule training
    # stops after epoch 3 (test_stopping_rule_is_sklearns); with it, the rate is divided
    # there and the count starts again, four times, then training stops.
    rates, est = lr_per_epoch(
        learning_rate=0.01,
        learning_rate_schedule="plateau",
        tol=1e9,
        n_iter_no_change=1,
        max_iter=50,
    )
    expected = [0.01] * 3 + [0.002] * 2 + [0.0004] * 2 + [0.00008] * 2 + [0.000016] * 2
    assert rates == pytest.approx(expected, rel=1e-12)
    assert est.n_iter_ == 11


@pytest.mark.parametrize("factor", [0.0, -1.0, float("nan"), float("inf"), "1", None])
def test_a_schedule_that_returns_no_positive_factor_is_refused(factor):
    with pytest.raises(ValueError, match=r"learning_rate_schedule .* at epoch 0"):
        lr_per_epoch(learning_rate_schedule=lambda epoch: factor)


def grad_norm(params):
    return float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params])))


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_clipping_bounds_the_gradient_norm_of_every_step(precision):
    norms = {}
    for clip in (None, 0.5):
        module, optimizer, X, g = toy()
        seen = norms[clip] = []

        def record(opt, args, kwargs, seen=seen):
            seen.append(grad_norm(opt.param_groups[0]["params"]))

        optimizer.register_step_pre_hook(record)
        run(module, optimizer, X * 100, g, max_grad_norm=clip, precision=precision)
    assert max(norms[None]) > 10  # steep enough that the clipping acts
    assert len(norms[0.5]) == 20 and max(norms[0.5]) <= 0.5 * (1 + 1e-5)


def test_max_grad_norm_reaches_the_training_steps():
    norms = []

    def read(estimator, epoch, measures):  # the gradients of the epoch's last step
        norms.append(grad_norm(list(estimator.module_.parameters())))

    X = np.random.default_rng(0).random((100, 6)) * 100
    est = AutoencoderTransformer(
        2, hidden_layer_sizes=(8,), max_iter=3, max_grad_norm=1e-3, callbacks=[read], random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X)
    assert len(norms) == 3 and max(norms) <= 1e-3 * (1 + 1e-5)


# ------------------------------------------------- decoupled weight decay
def _digits():
    from sklearn.datasets import load_digits

    X = load_digits().data / 16.0
    return X[:1200], X[1200:]


def test_weight_decay_shrinks_the_residual_mlp_and_spares_the_pca_path():
    X, _ = _digits()
    est = AutoencoderTransformer(4, hidden_layer_sizes=(16,), weight_decay=0.1, max_iter=2,
                                 random_state=0)  # fmt: skip
    with pytest.warns(ConvergenceWarning):
        est.fit(X)
    decayed, rest = est.optimizer_.param_groups
    assert decayed["weight_decay"] == 0.1 and rest["weight_decay"] == 0.0
    assert isinstance(est.optimizer_, torch.optim.AdamW)  # decoupled: not Adam's L2
    # The MLPs beside the linear paths: 64-16-4 in the encoder, 4-16-64 in the decoder.
    assert sorted(tuple(p.shape) for p in decayed["params"]) == [(4, 16), (16, 4), (16, 64),
                                                                (64, 16)]  # fmt: skip
    # Not decayed: the linear paths that start at PCA (4 x 64 and 64 x 4) and every bias.
    assert sorted(tuple(p.shape) for p in rest["params"] if p.dim() > 1) == [(4, 64), (64, 4)]
    assert all(p.dim() > 1 for p in decayed["params"])


def test_without_weight_decay_the_optimizer_is_plain_adam():
    X, _ = _digits()
    est = AutoencoderTransformer(4, hidden_layer_sizes=(16,), max_iter=1, random_state=0)
    with pytest.warns(ConvergenceWarning):
        est.fit(X)
    assert type(est.optimizer_) is torch.optim.Adam
    assert [g["weight_decay"] for g in est.optimizer_.param_groups] == [0.0]


def test_strong_weight_decay_holds_the_autoencoder_at_pca_not_at_zero():
    # Decay pulls the residual MLP to zero: the network towards its linear start (PCA).
    # Coupled L2 on every weight would pull the whole map, PCA's path included, to zero.
    from skvae import PCA

    X, X_test = _digits()
    pca = PCA(4).fit(X)
    pca_err = ((pca.inverse_transform(pca.transform(X_test)) - X_test) ** 2).mean()

    def held_out(weight_decay):
        est = AutoencoderTransformer(4, weight_decay=weight_decay, random_state=0).fit(X)
        return ((est.inverse_transform(est.transform(X_test)) - X_test) ** 2).mean() / pca_err

    # lr * weight_decay = 1: each step zeroes the MLP's weights before Adam's update.
    held = held_out(1000.0)
    assert 0.9 < held <= 1.0 + 1e-3
    assert held_out(0.0) < 0.8  # free to leave PCA, the MLP does
