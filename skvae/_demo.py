"""``python -m skvae demo``: PCA, autoencoders and a VAE on handwritten digits.

Fits four encoder/decoder pairs on the 8x8 digits bundled with scikit-learn
(no download): PCA, a linear autoencoder, a deep autoencoder and a VAE; prints
how well each reconstructs held-out digits, what each scores, and how close
its generated images come to real digits (a Fréchet distance in a digit
classifier's features, ``skvae._generation``); and writes figures into a folder:

- ``reconstructions.png``: held-out digits and each model's reconstructions;
- ``samples.png``: each model's ``sample()``, and random latent points
  z ~ N(0, I) decoded by each;
- ``latent_maps.png``: the 2-D codes of held-out digits under a deep
  autoencoder and a VAE, on the same axes, with the prior's circle;
- ``latent_grids.png``: the same grid of 2-D latent points decoded by both.

Every option is checked before torch is imported, so mistakes cost no wait.
"""

import argparse
import importlib.util
import os
import platform
import re
import sys
from pathlib import Path

N_PIXELS = 64
SEED_MAX = 2**32 - 1


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (--help lists the options)\n")


def build_parser():
    """The command line of ``python -m skvae demo``."""
    parser = _Parser(
        prog="python -m skvae demo",
        description=(
            "Fit PCA, a linear autoencoder, a deep autoencoder and a VAE on scikit-learn's "
            "8x8 digits, print a table of held-out reconstruction error, score, sample "
            "quality and fit time, and write figures (reconstructions, samples, 2-D latent "
            "maps, decoded latent grids) into a folder. Under a minute on one free CPU core."
        ),
    )
    parser.add_argument(
        "--out",
        default="skvae_demo",
        help="folder for the figures, created if missing (default: %(default)s)",
    )
    parser.add_argument(
        "--n-components",
        type=int,
        default=8,
        help=f"latent size of the models in the table, 1 to {N_PIXELS} (default: %(default)s); "
        "the latent maps and grids always use 2",
    )
    parser.add_argument(
        "--device",
        default="cpu",
        help="torch device to train on: 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto' "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="random_state of every model (default: %(default)s)"
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="max_iter of the neural models (default: the estimators' own, 5 with --quick)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="5 epochs per network, to check that everything runs (seconds; every network "
        "stops before it converges and says so, and the pictures are rough)",
    )
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bars; one line per model instead",
    )
    return parser


def _check_device(device):
    """Why ``device`` cannot train here, from what is known without importing torch; or None."""
    match = re.fullmatch(r"(cpu|auto|mps|cuda)(?::(\d+))?", device)
    if match is None or (match.group(2) is not None and match.group(1) != "cuda"):
        return (
            f"--device {device!r} is not a torch device; use 'cpu', 'cuda' (NVIDIA), "
            "'cuda:N', 'mps' (Apple silicon) or 'auto'"
        )
    kind = match.group(1)
    if kind == "mps" and platform.system() != "Darwin":
        return f"--device mps needs a Mac with Apple silicon; this is {platform.system()}"
    if kind == "cuda":
        try:
            from importlib.metadata import version

            torch_version = version("torch")
        except Exception:  # pragma: no cover - torch installed without metadata
            torch_version = ""
        if torch_version.endswith("+cpu"):
            return (
                f"--device {device}: this torch ({torch_version}) is built without CUDA; "
                "use --device cpu"
            )
        if platform.system() == "Linux" and not (
            os.path.exists("/dev/nvidiactl") or os.path.exists("/proc/driver/nvidia")
        ):
            return f"--device {device}: this machine has no NVIDIA driver; use --device cpu"
    return None


def _check_out(out):
    """Why figures cannot be written into folder ``out``; or None."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        return f"--out {out!r} is an existing file; give a folder (created if missing)"
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        return f"--out {out!r}: {str(parent)!r} is a file, so the folder cannot be created"
    if not os.access(parent, os.W_OK):
        return f"--out {out!r}: {str(parent)!r} is not writable"
    return None


def check_args(args):
    """The first problem with the parsed options, as a one-line message; or None."""
    if not 1 <= args.n_components <= N_PIXELS:
        return (
            f"--n-components must be in [1, {N_PIXELS}] (the digits have {N_PIXELS} pixels); "
            f"got {args.n_components}"
        )
    if args.epochs is not None and args.epochs < 1:
        return f"--epochs must be at least 1; got {args.epochs}"
    if not 0 <= args.seed <= SEED_MAX:
        return f"--seed must be in [0, {SEED_MAX}]; got {args.seed}"
    if importlib.util.find_spec("matplotlib") is None:
        return (
            "the demo draws its figures with matplotlib, which is not installed; "
            "install it with: python3 -m pip install matplotlib"
        )
    return _check_device(args.device) or _check_out(args.out)


def run(argv=None):
    """Run the demo; returns the exit status (0, or 2 for a bad option)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    problem = check_args(args)
    if problem is not None:
        parser.error(problem)
    # Only now the heavy imports (torch, scikit-learn): every option is valid.
    from ._demo_run import Demo

    demo = Demo(args)
    problem = demo.check_device()
    if problem is not None:
        parser.error(problem)
    demo.run()
    return 0


def main(argv=None):
    return run(argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
