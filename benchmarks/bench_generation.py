"""How close generated images come to real ones: PCA, the default autoencoder and the default VAE.

The measure (``skvae/_generation.py``) is a Fréchet distance (FD) between
generated images and held-out real ones in the hidden layer (64 ReLU units) of
a scikit-learn MLPClassifier trained on the training split; lower is closer.
For each model, latent size k and fit seed, over several draws of as many
images as are held out:

* sample: the model's own ``sample()`` without observation noise (PCA: its
  probabilistic model's noise-free part; the autoencoder: a Gaussian fitted to
  its training codes; the VAE: its N(0, I) prior), decoded;
* N(0, I): random latent points z ~ N(0, I) decoded by ``inverse_transform``;
* midpoint: the decoded midpoint of the codes of two random held-out images;
* grid (k=2): a 21 x 21 grid over the prior's 5%..95% quantiles, decoded.

References on the same scale: real training images (the floor a perfect model
reaches with this many images), the mean training image repeated, and the pixel
average of the same pairs as the midpoints. Cells are the mean over fit seeds of
the mean over draws, ± the sd over fit seeds.

Usage::

    python benchmarks/bench_generation.py [--quick] [--seeds 3] [--mnist-rows 6000]
"""

import argparse
import sys
import time
import warnings

import numpy as np
import torch
from _results import mnist_path, print_table, run_meta, write_json
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skvae import PCA, AutoencoderTransformer, VAETransformer
from skvae._generation import (
    ClassifierFrechet,
    latent_grid,
    midpoints,
    noise_free_samples,
    pixel_midpoints,
    standard_normal_decodes,
)

DRAWS = range(5)


def datasets(mnist_rows, data):
    X, y = load_digits(return_X_y=True)
    yield "digits/16", (X / 16.0).astype(np.float32), y
    path = mnist_path(data)
    if mnist_rows and path.exists():
        with np.load(path) as d:
            X = d["x_train"][:mnist_rows].reshape(mnist_rows, -1).astype(np.float32) / 255.0
            yield f"MNIST/255 {mnist_rows}", X, d["y_train"][:mnist_rows]
    elif mnist_rows:
        print(f"MNIST not found at {path}; its rows are skipped")


def cell(values):
    values = np.asarray(values, dtype=float)
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{values.mean():.2f} ± {values.std(ddof=1):.2f}"


def measure(quality, est, X_test, n, k):
    """The per-draw-mean FD of each kind for one fitted model."""
    out = {
        "sample": np.mean([quality.distance(noise_free_samples(est, n, s)) for s in DRAWS]),
        "N(0, I)": np.mean([quality.distance(standard_normal_decodes(est, n, s)) for s in DRAWS]),
        "midpoint": np.mean([quality.distance(midpoints(est, X_test, n, s)) for s in DRAWS]),
    }
    if k == 2:
        out["grid"] = quality.distance(est.inverse_transform(latent_grid(21)))
    return out


def make(name, k, seed, max_iter):
    if name == "PCA":
        return PCA(k, random_state=seed)
    params = dict(random_state=seed, device="cpu")
    if max_iter is not None:
        params["max_iter"] = max_iter
    cls = AutoencoderTransformer if name == "AE" else VAETransformer
    return cls(k, **params)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed; MNIST 2000 rows, 30 epochs")
    parser.add_argument("--seeds", type=int, default=3, help="fit seeds per model (default 3)")
    parser.add_argument("--ks", type=int, nargs="+", default=[2, 8])
    parser.add_argument(
        "--mnist-rows", type=int, default=None, help="default 6000 (2000 with --quick); 0: none"
    )
    parser.add_argument("--mnist-max-iter", type=int, default=None, help="max_iter on MNIST")
    parser.add_argument("--data", default=None, help="mnist.npz (default: ../shared/data)")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # rows as they come, also into a file
    if args.quick:
        args.seeds, args.mnist_max_iter = 1, args.mnist_max_iter or 30
    if args.mnist_rows is None:
        args.mnist_rows = 2000 if args.quick else 6000
    torch.set_num_threads(1)
    meta = run_meta(
        args.quick,
        mnist_path(args.data),
        **{"fit seeds": args.seeds, "draws": len(DRAWS), "torch threads": 1},
    )
    rows, references = [], []
    for data_name, X, y in datasets(args.mnist_rows, args.data):
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=0.25, random_state=0, stratify=y
        )
        n = len(X_test)
        quality = ClassifierFrechet(X_train, y_train, X_test, y_test, random_state=0)
        references.append(
            {
                "data": data_name,
                "held-out images": n,
                "classifier accuracy": round(quality.accuracy_, 4),
                "FD real images": cell(quality.real_floor(n, DRAWS)),
                "FD mean image": f"{quality.mean_image():.2f}",
                "FD pixel average": cell(
                    [quality.distance(pixel_midpoints(X_test, n, s)) for s in DRAWS]
                ),
            }
        )
        print_table("references", references[-1:])
        max_iter = args.mnist_max_iter if data_name.startswith("MNIST") else None
        for k in args.ks:
            for model in ("PCA", "AE", "VAE"):
                found, seconds = [], []
                for seed in range(args.seeds):
                    est = make(model, k, seed, max_iter)
                    start = time.perf_counter()
                    with warnings.catch_warnings(record=True):
                        warnings.simplefilter("always")
                        est.fit(X_train)
                    seconds.append(time.perf_counter() - start)
                    found.append(measure(quality, est, X_test, n, k))
                row = {"data": data_name, "k": k, "model": model}
                for kind in found[0]:
                    row[f"FD {kind}"] = cell([f[kind] for f in found])
                row["fit s"] = round(float(np.mean(seconds)), 1)
                rows.append(row)
                print_table(f"{data_name}, k={k}", [row])
    print_table("Sample quality (FD to held-out images; lower is closer)", rows)
    print_table("References", references)
    description = (
        "Fréchet distance (FD) between generated and held-out real images in the hidden layer "
        "of an MLPClassifier trained on the training split (75%); lower is closer. Each cell: "
        f"mean over {args.seeds} fit seed(s) of the mean over {len(DRAWS)} draws of as many "
        "images as are held out, ± the sd over fit seeds. PCA, AutoencoderTransformer and "
        "VAETransformer at their defaults (random_state and device='cpu' set"
        + (f"; max_iter={args.mnist_max_iter} on MNIST" if args.mnist_max_iter else "")
        + "). sample: each model's sample() without observation noise; N(0, I): z ~ N(0, I) "
        "decoded; midpoint: decoded midpoints of two held-out images' codes; grid (k=2): a "
        "21x21 grid over the prior's 5%-95% quantiles, decoded. References: real training "
        "images (the floor), the mean image repeated, the pixel average of the same pairs."
    )
    write_json(
        args.json,
        "Sample quality: PCA, autoencoder and VAE",
        description,
        meta,
        [("Sample quality", rows), ("References", references)],
    )


if __name__ == "__main__":
    main()
