"""The Bernoulli VAE of Burda et al. (2016) on dynamically binarized MNIST, against their number.

Burda, Grosse & Salakhutdinov, "Importance weighted autoencoders" (ICLR 2016),
Table 1, VAE with one stochastic layer, k=1: a test log-likelihood of -86.76 nats
(IWAE bound with 5,000 importance samples) after 3,280 epochs. Their setting:
784-200-200-50 with tanh units, Bernoulli decoder, dynamic binarization (fresh
binary digits x_b ~ Bernoulli(x) at every step), Adam with beta1=0.9,
beta2=0.999, eps=1e-4, batches of 20, and the learning rate 1e-3 * 10^(-i/7) for
3^i epochs in stage i = 0, ..., 7 (1 + 3 + ... + 2187 = 3280 epochs), a fresh Adam
per stage. This script trains that model with skvae's
``VAETransformer(binarize='dynamic', epsilon=1e-4)`` (one warm-started fit per
stage) and with a hand-written torch loop of the same model and optimiser, for the
same epochs (the schedule cut where ``--epochs`` ends), and scores both on the test
digits binarized once with a fixed seed: the ELBO, the IWAE bound (skvae's own
``score_samples_iwae``; the loop's with the same estimator written here), and the
active units (Var_x(E_q[z_u]) > 0.01, Burda et al. Sec. 5.2).

Usage::

    python benchmarks/bench_burda.py --quick                 # minutes on 2 CPU cores
    python benchmarks/bench_burda.py --epochs 13             # stages 0-2, all test digits
    python benchmarks/bench_burda.py --device cuda --budget 120 --json out.json
"""

import argparse
import copy
import math
import os
import statistics
import sys
import time
import warnings

import numpy as np
import torch
from _results import mnist_path, print_table, run_meta, write_json
from sklearn.exceptions import ConvergenceWarning
from torch import nn
from torch.nn import functional as F

from skvae import VAETransformer

PUBLISHED = -86.76  # Burda et al. 2016, Table 1, VAE, 1 stochastic layer, k=1
PUBLISHED_EPOCHS = 3280
GOAL_NATS = 2.0  # "within 2 nats of the published number"
LOG_2PI = math.log(2 * math.pi)
N_LATENT, HIDDEN = 50, (200, 200)
BATCH, EPS, BETAS = 20, 1e-4, (0.9, 0.999)
TEST_SEED = 0  # the one binarization of the test digits


def stage_factors(run):
    """The stages run, (learning rate, epochs), as ``learning_rate_schedule``: the
    factor of each epoch against the first stage's rate."""
    ends = np.cumsum([n for _, n in run])
    rates = [lr / run[0][0] for lr, _ in run]

    def factor(epoch):
        return rates[min(int(np.searchsorted(ends, epoch, side="right")), len(rates) - 1)]

    return factor


def schedule(epochs):
    """Burda's stages (learning rate, epochs), cut after ``epochs`` epochs in all."""
    stages, done, i = [], 0, 0
    while done < epochs:
        n = min(3**i, epochs - done)
        stages.append((1e-3 * 10 ** (-i / 7), n))
        done, i = done + n, i + 1
    return stages


# ------------------------------------------------------------ the hand-written loop
class HandVAE(nn.Module):
    """784-200-200-50 tanh encoder (mean, log-variance), its mirror as decoder (logits)."""

    def __init__(self, d):
        super().__init__()
        self.encoder_trunk = nn.Sequential(
            nn.Linear(d, HIDDEN[0]), nn.Tanh(), nn.Linear(HIDDEN[0], HIDDEN[1]), nn.Tanh()
        )
        self.loc = nn.Linear(HIDDEN[1], N_LATENT)
        self.log_var = nn.Linear(HIDDEN[1], N_LATENT)
        self.decoder = nn.Sequential(
            nn.Linear(N_LATENT, HIDDEN[1]), nn.Tanh(), nn.Linear(HIDDEN[1], HIDDEN[0]),
            nn.Tanh(), nn.Linear(HIDDEN[0], d),
        )  # fmt: skip

    def encoder(self, x):
        h = self.encoder_trunk(x)
        return self.loc(h), self.log_var(h)


def hand_stage(model, X, lr, n_epochs, generator):
    """One stage: a fresh Adam, ``n_epochs`` epochs of dynamic binarization, batches of 20."""
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=BETAS, eps=EPS)
    model.train()
    n = X.shape[0]
    for _ in range(n_epochs):
        order = torch.randperm(n, generator=generator, device=X.device)
        for start in range(0, n, BATCH):
            xb = X[order[start : start + BATCH]]
            xb = (torch.rand(xb.shape, generator=generator, device=X.device) < xb).float()
            mean, log_var = model.encoder(xb)
            eps = torch.randn(mean.shape, generator=generator, device=X.device)
            logits = model.decoder(mean + (0.5 * log_var).exp() * eps)
            rec = F.binary_cross_entropy_with_logits(logits, xb, reduction="none").sum(1)
            kl = 0.5 * (mean.square() + log_var.exp() - 1 - log_var).sum(1)
            loss = (rec + kl).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()


@torch.no_grad()
def iwae_bounds(encoder, decoder, X, k, generator, elements=2**22):
    """ELBO (mean of the log-weights) and IWAE bound (log-mean-exp) per row.

    Computed in the dtype of the networks' parameters (float32 for the loop, like
    skvae's own scorer; float64 for the cross-check of skvae's scorer).

    Rows x draws go through the decoder in blocks of about ``elements / d`` rows,
    so memory stays bounded whatever the rows and k.
    """
    n, d = X.shape
    per_pass = max(1, elements // d)
    dtype = next(decoder.parameters()).dtype
    elbo, iwae = [], []
    for i in range(0, n, per_pass):
        xb = X[i : i + per_pass].to(dtype)
        mean, log_var = encoder(xb)
        std, b = (0.5 * log_var).exp(), xb.shape[0]
        log_q_const = -0.5 * (log_var.sum(1) + N_LATENT * LOG_2PI)  # (b,)
        step = max(1, per_pass // b)
        total, lse = torch.zeros(b, dtype=dtype, device=X.device), None
        for s in range(0, k, step):
            n_s = min(k, s + step) - s
            eps = torch.randn(n_s, b, N_LATENT, generator=generator, device=X.device)
            eps = eps.to(dtype)
            z = mean + std * eps  # (n_s, b, latent)
            logits = decoder(z.reshape(-1, N_LATENT))
            x_rep = xb.expand(n_s, -1, -1).reshape(-1, d)
            log_px = -F.binary_cross_entropy_with_logits(logits, x_rep, reduction="none")
            log_px = log_px.sum(1).reshape(n_s, b)
            log_pz = -0.5 * (z.square().sum(2) + N_LATENT * LOG_2PI)
            log_w = log_px + log_pz - (log_q_const - 0.5 * eps.square().sum(2))  # (n_s, b)
            total += log_w.sum(0)
            part = torch.logsumexp(log_w, 0)
            lse = part if lse is None else torch.logaddexp(lse, part)
        elbo.append(total / k)
        iwae.append(lse - math.log(k))
    return torch.cat(elbo).cpu().numpy(), torch.cat(iwae).cpu().numpy()


def active_units(codes):
    """Burda et al.'s count: units whose posterior mean varies over x by more than 0.01."""
    return int((np.asarray(codes, dtype=np.float64).var(0) > 1e-2).sum())


# ------------------------------------------------------------------------ main
def load(path, n_train, n_test, device):
    d = np.load(path)
    X_train = d["x_train"].reshape(-1, 784)[:n_train].astype(np.float32) / 255.0
    X_test = d["x_test"].reshape(-1, 784)[:n_test].astype(np.float32) / 255.0
    # The test digits binarized once, with a fixed seed, as the literature scores them.
    rng = np.random.default_rng(TEST_SEED)
    X_test_bin = (rng.random(X_test.shape) < X_test).astype(np.float32)
    # On the device once: both contenders train and score there.
    return torch.from_numpy(X_train).to(device), torch.from_numpy(X_test_bin).to(device)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device, fn, *args):
    sync(device)
    wall, cpu = time.perf_counter(), time.process_time()
    fn(*args)
    sync(device)
    return time.perf_counter() - wall, time.process_time() - cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="10,000 training digits, 4 epochs, 500 test digits, K=500",
    )
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs of Burda's schedule to run (default 13, quick 4)")  # fmt: skip
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds of training, all contenders together: each stage is "
                        "cut to the epochs that fit, judged by the last stage's time per epoch "
                        "(default none; with one, --epochs defaults to the whole schedule)",
                        )  # fmt: skip
    parser.add_argument("--k", type=int, default=None, help="importance samples (default 5000)")
    parser.add_argument("--n-test", type=int, default=None, help="test digits (default 10000)")
    parser.add_argument("--n-train", type=int, default=None, help="training digits (60000)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, ... (default cpu)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-loop", action="store_true", help="skip the hand-written loop")
    parser.add_argument(
        "--scheduled",
        action="store_true",
        help="also train skvae in one fit with the schedule as learning_rate_schedule "
        "(one Adam throughout), after the staged contenders, and score it",
    )
    parser.add_argument(
        "--no-crosscheck",
        action="store_true",
        help="don't score skvae's network with this script's estimator",
    )
    parser.add_argument(
        "--crosscheck-digits",
        type=int,
        default=None,
        help="test digits of the float64 cross-check (default 1000, quick all)",
    )
    parser.add_argument("--data", default=None, help="mnist.npz (default: ../shared/data)")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()
    if args.epochs:
        epochs = args.epochs
    else:
        epochs = PUBLISHED_EPOCHS if args.budget else (4 if args.quick else 13)
    k = args.k or (500 if args.quick else 5000)
    n_test = args.n_test or (500 if args.quick else 10000)
    n_train = args.n_train or (10000 if args.quick else 60000)
    path = mnist_path(args.data)
    if not path.exists():
        sys.exit(f"MNIST not found at {path}; pass --data or set SKVAE_MNIST. Skipped.")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    X_train, X_test = load(path, n_train, n_test, device)
    meta = run_meta(
        args.quick, path,
        **{"device": str(device) + (f" ({torch.cuda.get_device_name(device)})"
                                    if device.type == "cuda" else ""),
           "torch threads (this run)": args.threads, "training digits": X_train.shape[0],
           "test digits (binarized once, seed 0)": X_test.shape[0], "importance samples K": k,
           "training budget (s)": args.budget},
    )  # fmt: skip
    for key, value in meta.items():
        print(f"{key}: {value}")

    vae = VAETransformer(
        N_LATENT, hidden_layer_sizes=HIDDEN, activation="tanh", likelihood="bernoulli",
        binarize="dynamic", batch_size=BATCH, epsilon=EPS, tol=0.0, warm_start=True,
        n_score_samples=100, device=device, random_state=args.seed,
    )  # fmt: skip
    torch.manual_seed(args.seed)  # the hand-written model's initialisation
    hand = HandVAE(X_train.shape[1]).to(device)
    hand_gen = torch.Generator(device=device).manual_seed(args.seed)

    def skvae_stage(lr, n):
        # A fresh Adam per stage, as in Burda et al.: a warm-started fit makes one.
        vae.set_params(learning_rate=lr, max_iter=n, n_iter_no_change=n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # the budget is fixed
            vae.fit(X_train)

    times = {"skvae": [], "hand-written loop": []}
    contenders = {"skvae": skvae_stage}
    if not args.no_loop:
        contenders["hand-written loop"] = lambda lr, n: hand_stage(hand, X_train, lr, n, hand_gen)
    spent, run = 0.0, []
    for stage, (lr, n) in enumerate(schedule(epochs)):  # interleaved stage by stage
        if args.budget is not None and stage:
            per_epoch = sum(times[name][-1][1] / times[name][-1][0] for name in contenders)
            n = min(n, int((args.budget - spent) / per_epoch))
            if n < 1:
                break
        run.append((lr, n))
        for name, run_stage in contenders.items():
            wall, cpu = timed(device, run_stage, lr, n)
            times[name].append((n, wall, cpu))
            spent += wall
            print(f"stage {stage} (lr {lr:.3g}, {n} epochs) {name}: {wall:.1f} s wall, "
                  f"{cpu:.1f} s CPU, {wall / n:.2f} s/epoch", flush=True)  # fmt: skip

    epochs = sum(n for _, n in run)
    fitted = {"skvae": vae}
    if args.scheduled:
        name = "skvae, one fit with a schedule"
        one_fit = VAETransformer(**{
            **vae.get_params(), "warm_start": False, "learning_rate": run[0][0],
            "learning_rate_schedule": stage_factors(run), "max_iter": epochs,
            "n_iter_no_change": epochs,
        })  # fmt: skip

        def fit_scheduled():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)  # the budget is fixed
                one_fit.fit(X_train)

        wall, cpu = timed(device, fit_scheduled)
        times[name], contenders[name], fitted[name] = [(epochs, wall, cpu)], None, one_fit
        print(f"{name} ({epochs} epochs): {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)
    meta["epochs"] = epochs
    meta["schedule run (lr x epochs)"] = ", ".join(f"{lr:.3g} x {n}" for lr, n in run)
    full = X_train.shape[0] == 60000 and X_test.shape[0] == 10000 and k == 5000
    size = "full" if full else ("quick" if args.quick else "subset")
    meta["size"] = (f"{size}: {X_train.shape[0]} training digits, {X_test.shape[0]} test "
                    f"digits, K={k}, {epochs} epochs")  # fmt: skip
    print(f"size: {meta['size']}")

    def script_iwae(module, X, dtype):
        """This script's ELBO and IWAE bound per row, on a ``dtype`` copy of ``module``."""
        gen = torch.Generator(device=device).manual_seed(args.seed + 1)
        module = copy.deepcopy(module).to(dtype)
        return iwae_bounds(module.encoder, module.decoder, X, k, gen)

    n_check = min(
        X_test.shape[0], args.crosscheck_digits or (X_test.shape[0] if args.quick else 1000)
    )
    rows = []
    ll_key = f"test log-likelihood (IWAE, K={k})"
    check_key = f"cross-check, first {n_check} digits: this script's float64 IWAE"
    own_key = f"cross-check, first {n_check} digits: skvae's IWAE"
    for name in contenders:
        sync(device)
        start = time.perf_counter()
        check = own = None
        if name in fitted:
            vae = fitted[name]
            iwae_rows = vae.score_samples_iwae(X_test, n_importance=k)
            iwae = float(iwae_rows.mean())
            elbo = float(vae.score(X_test))
            units = active_units(vae.transform(X_test).cpu())
            if not args.no_crosscheck:  # the library's scorer against an independent one
                own = float(iwae_rows[:n_check].mean())
                check = float(script_iwae(vae.module_, X_test[:n_check], torch.float64)[1].mean())
        else:
            elbo_rows, iwae_rows = script_iwae(hand, X_test, torch.float32)
            elbo, iwae = float(elbo_rows.mean()), float(iwae_rows.mean())
            with torch.no_grad():
                units = active_units(hand.encoder(X_test)[0].cpu())
        sync(device)
        scoring = time.perf_counter() - start
        per_epoch = [wall / n for n, wall, _ in times[name]]
        rows.append({
            "model": name, "epochs": epochs,
            "test ELBO": round(elbo, 2), ll_key: round(iwae, 2),
            "active units": units,
            "training wall (s)": round(sum(t[1] for t in times[name]), 1),
            "training CPU (s)": round(sum(t[2] for t in times[name]), 1),
            "s/epoch min": round(min(per_epoch), 2),
            "s/epoch median": round(statistics.median(per_epoch), 2),
            "scoring wall (s)": round(scoring, 1),
            check_key: None if check is None else round(check, 2),
            own_key: None if own is None else round(own, 2),
        })  # fmt: skip
    rows.append({"model": "Burda et al. 2016 (published)", "epochs": PUBLISHED_EPOCHS,
                 ll_key: PUBLISHED})  # fmt: skip
    print_table("Burda et al.'s VAE on dynamically binarized MNIST", rows)

    ours = rows[0][ll_key]
    verdicts = []
    if not args.no_loop:
        loop = rows[1][ll_key]
        verdicts.append({
            "goal": f">= the hand-written loop at the same {epochs} epochs",
            "skvae": ours, "reference": loop,
            "verdict": "met" if ours >= loop else f"missed by {loop - ours:.2f} nats",
        })  # fmt: skip
    gap = PUBLISHED - ours
    verdicts.append({
        "goal": f"within {GOAL_NATS:g} nats of {PUBLISHED} ({PUBLISHED_EPOCHS} epochs)",
        "skvae": ours, "reference": PUBLISHED,
        "verdict": (f"met after {epochs} epochs" if gap <= GOAL_NATS
                    else f"missed after {epochs} epochs: {gap:.2f} nats below"),
    })  # fmt: skip
    print_table("Goals", verdicts)

    description = (
        f"Burda et al. (2016)'s one-stochastic-layer VAE (784-200-200-50, tanh, Bernoulli) "
        f"trained with dynamic binarization, Adam (eps=1e-4) on batches of 20 and their "
        f"learning-rate schedule cut at {epochs} epochs ({size} run: {X_train.shape[0]} "
        f"training digits, {X_test.shape[0]} test digits binarized once, K={k}); skvae "
        + (
            "alone (the hand-written loop not run: --no-loop)"
            if args.no_loop
            else "against a hand-written torch loop at the same epochs"
        )
        + f", and the published "
        f"{PUBLISHED} nats after {PUBLISHED_EPOCHS} epochs. ELBO: skvae's score with 100 "
        f"draws, the loop's the mean log-weight of its K draws. The IWAE bound is skvae's "
        f"score_samples_iwae for skvae and this script's own estimator for the loop, both in "
        f"float32; the cross-check scores skvae's network on the first {n_check} test digits "
        f"with this script's estimator in float64 (different draws), next to skvae's own "
        f"score of the same digits."
    )
    write_json(
        args.json, "Burda et al.'s VAE on MNIST", description, meta,
        [("Test scores and training time", rows), ("Goals", verdicts)],
    )  # fmt: skip


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
