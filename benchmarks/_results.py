"""What every benchmark script shares: where MNIST is, the run's facts, the JSON it writes.

A results file is the format ``docs/results_page.py`` renders: an object with
``title``, ``description``, ``meta`` (date, machine, load, threads, versions,
data, size) and ``tables`` (each ``{"title": str, "rows": [object, ...]}``).
"""

import datetime
import json
import os
import platform
import statistics
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MNIST = REPO.parent / "shared" / "data" / "mnist.npz"


def mnist_path(given=None):
    """MNIST's path: ``given``, else ``$SKVAE_MNIST``, else ``../shared/data/mnist.npz``."""
    return Path(given or os.environ.get("SKVAE_MNIST") or DEFAULT_MNIST)


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_meta(quick, data=None, **extra):
    """Date, machine, load before the run, threads and versions, as the page's meta table."""
    import numpy
    import sklearn
    import torch

    import skvae

    meta = {
        "date (UTC)": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "size": "quick (subsets, few epochs)" if quick else "full",
        "CPU": f"{cpu_model()}, {os.cpu_count()} logical cores",
        "load average before (1, 5, 15 min)": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "torch threads (default)": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "scikit-learn": sklearn.__version__,
        "numpy": numpy.__version__,
        "skvae": skvae.__version__ + _commit(),
    }
    if data is not None:
        meta["data"] = str(data)
    meta.update(extra)
    return meta


def _commit():
    """`` (commit abc1234)`` when the benchmarks run from a git checkout, else ``''``."""
    commit = commit_id()
    return f" (commit {commit.replace(' (modified)', ', modified')})" if commit else ""


def commit_id():
    """The checkout's short commit, ``'abc1234 (modified)'`` when skvae/ has uncommitted
    changes, ``''`` outside a git checkout.

    ``$SKVAE_COMMIT`` names it for a copy of the tree whose git metadata is not
    the code's (a machine the tree was sent to).
    """
    if os.environ.get("SKVAE_COMMIT"):
        return os.environ["SKVAE_COMMIT"]
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return ""
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no", "skvae"],
        capture_output=True, text=True, timeout=10,
    ).stdout.strip()  # fmt: skip
    return out.stdout.strip() + (" (modified)" if dirty else "")


def write_json(path, title, description, meta, tables):
    """Write one results file; ``tables`` is a list of (title, rows)."""
    if path is None:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "title": title,
        "description": description,
        "meta": meta,
        "tables": [{"title": t, "rows": rows} for t, rows in tables],
    }
    path.write_text(json.dumps(body, indent=1, default=_plain) + "\n")
    print(f"wrote {path}")


def _plain(value):
    """numpy scalars and arrays as JSON numbers and lists."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def min_median(values):
    return min(values), statistics.median(values)


def print_table(title, rows):
    """Print rows (dicts) as an aligned text table, the columns in first-seen order."""
    columns = []
    for row in rows:
        columns += [key for key in row if key not in columns]

    def cell(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    widths = {c: max(len(c), *(len(cell(r.get(c, ""))) for r in rows)) for c in columns}
    print(f"\n{title}")
    header = "  ".join(f"{c:>{widths[c]}}" for c in columns)
    print(header)
    print("-" * len(header))
    for row in rows:
        print("  ".join(f"{cell(row.get(c, '')):>{widths[c]}}" for c in columns))
