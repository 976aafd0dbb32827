"""Command line: ``python -m skvae demo [options]`` (``--help`` lists them)."""

import sys

USAGE = """usage: python -m skvae demo [--help] [options]

commands:
  demo    fit PCA, autoencoders and a VAE on digits; print a table and write figures
"""


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0 if argv else 2
    if argv[0] != "demo":
        print(
            f"unknown command {argv[0]!r}; the only command is 'demo'.\n\n{USAGE}",
            end="",
            file=sys.stderr,
        )
        return 2
    from ._demo import main as demo

    return demo(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
