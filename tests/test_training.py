"""The one training loop, driven directly with a toy module and loss."""

import math

import pytest
import torch
from torch import nn

from skvae._device import cpu_fast_math
from skvae._training import train

DENORMAL = 1e-39  # below float32's smallest normal number, ~1.18e-38


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


def test_diverging_loss_raises():
    module, optimizer, X, g = toy()

    def loss(module, xb, epoch):
        return mse(module, xb, epoch)[0] * math.inf, {}

    with pytest.raises(
        FloatingPointError, match=r"became (inf|nan) at epoch 1. Lower 'learning_rate'"
    ):
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


def test_same_generator_seed_same_history():
    a = run(*toy(seed=0))
    b = run(*toy(seed=0))
    assert a["loss"] == b["loss"]
