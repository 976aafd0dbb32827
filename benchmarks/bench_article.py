"""The article's claims on MNIST and on scikit-learn's digits, measured: PCA, AEs, the VAE.

Four tables per data set (training rows for fitting, test rows for every
figure):

1. Linear AE vs PCA: ``AutoencoderTransformer(k, hidden_layer_sizes=(),
   activation="identity")`` against ``PCA(k)``: held-out squared error ratio
   AE / PCA (1 is PCA's optimum) and the largest principal angle between the
   decoder's column space and PCA's components (0 degrees: the same subspace).
2. Held-out squared error per image (summed over the pixels, mean over images)
   against k for PCA and the default ``AutoencoderTransformer(k)`` and
   ``VAETransformer(k)``; on MNIST at k=30 beside Hinton & Salakhutdinov (2006,
   Science 313:504), who report 13.87 for PCA and 3.00 for their pretrained
   784-1000-500-250-30 autoencoder. Plotted in ``bench_article_error.png``.
3. Generation: ``sample()`` of PCA, the AE and the VAE, scored by a
   LogisticRegression trained on real training digits: mean max probability
   (confidence) and mean entropy of its prediction (nats), beside real test
   digits. Grids in ``bench_article_samples.png``.
4. The c sweep of the Gaussian VAE: fixed ``noise_variance=c`` and the learned
   c: held-out squared error per image, KL per image on the training rows
   (nats, ``kl_per_dimension_.sum()``), active units.

The data sets:

* MNIST / 255 (784 pixels): k in {2, 8, 16, 32} for table 1 and
  {2, 5, 10, 20, 30, 50} for table 2 (the article's grid), k=20 for 3 and 4.
* ``sklearn.datasets.load_digits`` / 16 (8x8 = 64 pixels, 1797 images, shipped
  with scikit-learn), split 75/25 stratified with seed 0: k in {2, 4, 8, 16}
  for table 1 and {2, 4, 8, 16, 32} for table 2 (powers of two up to half the
  64 pixels; beyond that PCA keeps nearly everything), k=8 for 3 and 4.
  Plots: ``bench_article_digits_*.png``.

The full size trains on all 60,000 MNIST training digits and scores on the
10,000 test digits, with MNIST's epochs capped at 30 (120 for the linear AE):
93 minutes on 2 CPU cores that another benchmark shared (the results page has
it). The tables give the epochs each fit ran (at the cap, the cap stopped it;
the linear AE table also says so in a column); ``--epochs`` raises the cap. On
digits the cap is the default VAE's 1000 and the fits stop on their tolerance.
``--quick`` uses subsets of MNIST and 20 epochs (50 on digits), so its neural
figures are below what the full run reaches.

Usage::

    python benchmarks/bench_article.py [--quick] [--epochs N] [--datasets mnist,digits]
        [--data PATH] [--json PATH]
"""

import argparse
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from _results import mnist_path, print_table, run_meta, write_json
from scipy.linalg import subspace_angles
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from skvae import PCA, AutoencoderTransformer, VAETransformer

C_VALUES = (0.003, 0.01, 0.03, 0.1, 0.3, "learned")
HINTON_2006 = {"PCA": 13.87, "deep AE": 3.00}


@dataclass
class DataSet:
    """One data set of the article's tables, with its k grids and epoch caps."""

    name: str
    slug: str  # the PNGs' suffix after "bench_article"
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    linear_ks: tuple
    error_ks: tuple
    k: int  # of the generating models and of the c sweep
    max_iter: int
    sweep_iter: int
    published: dict = field(default_factory=dict)  # k=30 anchors, by model
    n_generated: int = 1000

    @property
    def side(self):
        return int(round(self.X_train.shape[1] ** 0.5))


def fit(est, X):
    """Fit, recording whether the epoch budget stopped it (expected at quick size)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        est.fit(X)
    est.budget_stopped = any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return est


def sq_error(est, X):
    """Squared error per image: summed over pixels, mean over images."""
    return float(((est.inverse_transform(est.transform(X)) - X) ** 2).sum(1).mean())


def decoder_columns(ae):
    """The linear decoder's matrix, read through inverse_transform: (n_features, k)."""
    k = ae.n_components
    Z = np.vstack([np.zeros(k), np.eye(k)]).astype(np.float32)
    out = ae.inverse_transform(Z)
    return (out[1:] - out[0]).T


def linear_vs_pca(X_train, X_test, max_iter, ks):
    rows = []
    for k in ks:
        pca = PCA(k, random_state=0).fit(X_train)
        ae = fit(
            AutoencoderTransformer(
                k, hidden_layer_sizes=(), activation="identity", max_iter=max_iter,
                device="cpu", random_state=0,
            ),
            X_train,
        )  # fmt: skip
        angle = np.degrees(subspace_angles(decoder_columns(ae), pca.components_.T).max())
        rows.append(
            {
                "k": k,
                "PCA sq. error/image": sq_error(pca, X_test),
                "linear AE sq. error/image": sq_error(ae, X_test),
                "AE / PCA": sq_error(ae, X_test) / sq_error(pca, X_test),
                "largest principal angle (deg)": float(angle),
                "AE epochs": ae.n_iter_,
                "stopped by epoch cap": ae.budget_stopped,
            }
        )
    return rows


def error_vs_k(X_train, X_test, max_iter, ks, published):
    rows, models = [], {}
    for k in ks:
        start = time.perf_counter()
        pca = PCA(k, random_state=0).fit(X_train)
        ae = fit(AutoencoderTransformer(k, max_iter=max_iter, device="cpu", random_state=0),
                 X_train)  # fmt: skip
        vae = fit(VAETransformer(k, max_iter=max_iter, device="cpu", random_state=0), X_train)
        models[k] = {"PCA": pca, "AE": ae, "VAE": vae}
        row = {
            "k": k,
            "PCA": sq_error(pca, X_test),
            "AE (default)": sq_error(ae, X_test),
            "VAE (default)": sq_error(vae, X_test),
            "AE epochs": ae.n_iter_,
            "VAE epochs": vae.n_iter_,
            "VAE active units": vae.n_active_units_,
        }
        if k == 30 and published:
            row["Hinton 2006 PCA"] = published["PCA"]
            row["Hinton 2006 deep AE"] = published["deep AE"]
        rows.append(row)
        print(f"k={k}: {row} ({time.perf_counter() - start:.0f} s)", flush=True)
    return rows, models


def plot_errors(rows, path, published):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ks = [r["k"] for r in rows]
    for name in ("PCA", "AE (default)", "VAE (default)"):
        ax.plot(ks, [r[name] for r in rows], marker="o", label=name)
    for name, value in published.items():
        ax.plot([30], [value], marker="*", markersize=12, linestyle="none",
                label=f"Hinton & Salakhutdinov 2006, {name}")  # fmt: skip
    ax.set_xlabel("k (code size)")
    ax.set_ylabel("held-out squared error per image")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    print(f"wrote {path}")


def entropy_confidence(clf, X):
    P = np.clip(clf.predict_proba(np.clip(X, 0, 1)), 1e-12, 1)
    return float(P.max(1).mean()), float(-(P * np.log(P)).sum(1).mean())


def generation(models, X_train, y_train, X_test, y_test, n_samples, path, side):
    start = time.perf_counter()
    clf = LogisticRegression(max_iter=1000).fit(X_train, y_train)
    print(f"classifier: {time.perf_counter() - start:.0f} s", flush=True)
    draws = {"real test digits": X_test[:n_samples]}
    draws["PCA sample()"] = models["PCA"].sample(n_samples, random_state=1)
    for name in ("AE", "VAE"):
        est = models[name]
        draws[f"{name} sample()"] = est.sample(n_samples, random_state=1)
        draws[f"{name} sample(observation_noise=False)"] = est.sample(
            n_samples, random_state=1, observation_noise=False
        )
    rows = []
    for name, X in draws.items():
        conf, ent = entropy_confidence(clf, X)
        rows.append({"images": name, "classifier mean max-probability": conf,
                     "mean entropy (nats)": ent})  # fmt: skip
    rows[0]["classifier test accuracy"] = float(clf.score(X_test, y_test))
    plot_grids(draws, path, side)
    return rows


def plot_grids(draws, path, side, n=8):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(draws), figsize=(2.2 * len(draws), 2.6))
    for ax, (name, X) in zip(axes, draws.items()):
        tiles = np.clip(X[: n * n], 0, 1).reshape(n, n, side, side).transpose(0, 2, 1, 3)
        ax.imshow(tiles.reshape(n * side, n * side), cmap="gray", vmin=0, vmax=1)
        ax.set_title(name.replace("(obs", "\n(obs"), fontsize=7)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    print(f"wrote {path}")


def c_sweep(X_train, X_test, max_iter, k):
    rows = []
    for c in C_VALUES:
        vae = fit(
            VAETransformer(k, noise_variance=c, max_iter=max_iter, device="cpu", random_state=0),
            X_train,
        )
        rows.append(
            {
                "c": c if c != "learned" else f"learned ({vae.noise_variance_:.4g})",
                "sq. error/image": sq_error(vae, X_test),
                "KL/image (nats, train)": float(vae.kl_per_dimension_.sum()),
                "active units": vae.n_active_units_,
                "epochs": vae.n_iter_,
            }
        )
        print(rows[-1], flush=True)
    return rows


def mnist(path, quick, epochs=None):
    n_train, n_test = (10000, 2000) if quick else (60000, 10000)
    max_iter = epochs or (20 if quick else 30)
    sweep_iter = max_iter
    d = np.load(path)
    return DataSet(
        "MNIST",
        "",
        d["x_train"][:n_train].reshape(n_train, -1).astype(np.float32) / 255.0,
        d["y_train"][:n_train],
        d["x_test"][:n_test].reshape(n_test, -1).astype(np.float32) / 255.0,
        d["y_test"][:n_test],
        linear_ks=(2, 8, 16, 32),
        error_ks=(2, 5, 10, 20, 30, 50),
        k=20,
        max_iter=max_iter,
        sweep_iter=sweep_iter,
        published=HINTON_2006,
    )


def digits(quick):
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        (X / 16.0).astype(np.float32), y, test_size=0.25, stratify=y, random_state=0
    )
    # Full: the default VAE's cap (1000); the fits stop earlier on their tolerance.
    max_iter = 50 if quick else 1000
    return DataSet(
        "digits", "_digits", X_train, y_train, X_test, y_test,
        linear_ks=(2, 4, 8, 16), error_ks=(2, 4, 8, 16, 32), k=8,
        max_iter=max_iter, sweep_iter=max_iter, n_generated=len(X_test),
    )  # fmt: skip


def claims(ds, out, quick):
    """The four tables of one data set, and what they say in words."""
    n_pixels = ds.X_train.shape[1]
    png = lambda part: out.with_name(f"{out.stem}{ds.slug}_{part}.png")  # noqa: E731
    linear = linear_vs_pca(ds.X_train, ds.X_test, 4 * ds.max_iter, ds.linear_ks)
    print_table(f"{ds.name}: linear AE vs PCA", linear)
    errors, models = error_vs_k(ds.X_train, ds.X_test, ds.max_iter, ds.error_ks, ds.published)
    print_table(f"{ds.name}: held-out squared error per image", errors)
    plot_errors(errors, png("error"), ds.published)
    gen = generation(models[ds.k], ds.X_train, ds.y_train, ds.X_test, ds.y_test,
                     ds.n_generated, png("samples"), ds.side)  # fmt: skip
    print_table(f"{ds.name}: generation, k={ds.k}", gen)
    sweep = c_sweep(ds.X_train, ds.X_test, ds.sweep_iter, ds.k)
    print_table(f"{ds.name}: c sweep, Gaussian VAE k={ds.k}", sweep)

    findings = []
    if ds.published:
        at30 = next(r for r in errors if r["k"] == 30)
        findings.append(
            f"At k=30: PCA {at30['PCA']:.2f} (published {ds.published['PCA']}), default AE "
            f"{at30['AE (default)']:.2f} (published deep AE {ds.published['deep AE']:.2f}), "
            f"default VAE {at30['VAE (default)']:.2f}."
        )
        if at30["AE (default)"] > ds.published["deep AE"]:
            findings.append(
                "The default AE does not reach the published deep autoencoder's "
                f"{ds.published['deep AE']:.2f} (a smaller default network, no pretraining"
                + (", and here a capped number of epochs on a subset)." if quick else ").")
            )
    ae_vs_pca = [r["k"] for r in errors if r["AE (default)"] >= r["PCA"]]
    if ae_vs_pca:
        findings.append(f"The default AE's error is not below PCA's at k = {ae_vs_pca}.")
    confidence = {r["images"]: r["classifier mean max-probability"] for r in gen}
    real, pca_c = confidence["real test digits"], confidence["PCA sample()"]
    vae_c = max(v for k, v in confidence.items() if k.startswith("VAE"))
    findings.append(
        f"Generation: the classifier's mean confidence is {real:.3f} on real test digits, "
        f"{pca_c:.3f} on PCA's samples and at best {vae_c:.3f} on the VAE's"
        + (
            "; the VAE's samples are not more digit-like than PCA's here."
            if vae_c <= pca_c
            else "; the VAE's samples are more digit-like than PCA's."
        )
    )
    worst = max(linear, key=lambda r: r["AE / PCA"])
    findings.append(
        f"Linear AE vs PCA: worst error ratio {worst['AE / PCA']:.3f} at k={worst['k']}, "
        f"largest angle {max(r['largest principal angle (deg)'] for r in linear):.1f} degrees "
        "(0 when the linear AE has reached PCA's subspace; rows marked 'stopped by epoch cap' "
        "had not converged)."
    )
    size = (
        f"{ds.name}: {len(ds.X_train)} training and {len(ds.X_test)} test rows of "
        f"{n_pixels} pixels, epochs capped at {ds.max_iter} ({4 * ds.max_iter} for the "
        f"linear AE, {ds.sweep_iter} for the c sweep); squared error summed over the "
        f"{n_pixels} pixels, mean over test images."
    )
    tables = [
        (f"{ds.name}: linear AE vs PCA (held-out)", linear),
        (f"{ds.name}: held-out squared error per image against k", errors),
        (f"{ds.name}: generation, samples scored by a digit classifier (k={ds.k})", gen),
        (f"{ds.name}: c sweep of the Gaussian VAE (k={ds.k})", sweep),
    ]
    return tables, size + " " + " ".join(findings)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="subsets and capped epochs")
    parser.add_argument("--data", default=None, help="mnist.npz (default: ../shared/data)")
    parser.add_argument("--json", default=None, help="write the results here (and PNGs beside)")
    parser.add_argument("--datasets", default="mnist,digits", help="comma-separated: mnist, digits")
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="MNIST's epoch cap for the default AE and VAE and the c sweep (4x for the "
        "linear AE); default 20 with --quick, else 30",
    )
    args = parser.parse_args()
    names = args.datasets.split(",")
    if not names or set(names) - {"mnist", "digits"}:
        parser.error(f"--datasets takes mnist and/or digits, got {args.datasets!r}")
    path = mnist_path(args.data)
    if "mnist" in names and not path.exists():
        sys.exit(f"MNIST not found at {path}; pass --data or set SKVAE_MNIST. Skipped.")
    data = [
        mnist(path, args.quick, args.epochs) if name == "mnist" else digits(args.quick)
        for name in names
    ]
    meta = run_meta(args.quick, path if "mnist" in names else None)
    for ds in data:
        meta[f"{ds.name}: training / test rows"] = f"{len(ds.X_train)} / {len(ds.X_test)}"
        meta[f"{ds.name}: epoch cap"] = ds.max_iter
    out = Path(args.json) if args.json else Path("bench_article.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    tables, texts = [], []
    for ds in data:
        t, text = claims(ds, out, args.quick)
        tables += t
        texts.append(text)
    meta["seconds"] = round(time.perf_counter() - start)
    description = (
        (
            "Quick size: subsets of MNIST and capped epochs: the neural figures are below "
            "what the full run reaches. "
            if args.quick
            else "Full size. "
        )
        + "Generation: a LogisticRegression trained on the real training digits scores each "
        "model's samples (clipped to [0, 1]); real test digits are the reference. "
        + " ".join(texts)
    )
    print(description)
    write_json(args.json, "The article's claims on MNIST and digits", description, meta, tables)


if __name__ == "__main__":
    main()
