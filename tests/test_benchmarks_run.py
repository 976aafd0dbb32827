"""benchmarks/run.py without MNIST: the benchmarks that need it are skipped entries, not errors.

The results page (docs/results_page.py) renders whatever run.py wrote, so a
machine without the data still builds a page that says why a section is empty.
"""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "docs"))

from results_page import write_results_page  # noqa: E402


def test_run_without_mnist_writes_skipped_entries(tmp_path):
    missing = tmp_path / "no" / "mnist.npz"
    out = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), "--quick", "--data", str(missing),
         "--out", str(out), "--only", "bench_peers", "bench_article"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for name in ("bench_peers", "bench_article"):
        body = json.loads((out / f"{name}.json").read_text())
        assert body["description"].startswith("Skipped: MNIST not found at")
        assert str(missing) in body["description"]
        assert body["meta"]["size"].startswith("quick")
        assert str(missing) in done.stdout
    summary = json.loads((out / "run.json").read_text())
    statuses = {row["benchmark"]: row["status"] for row in summary["tables"][0]["rows"]}
    assert statuses == {"bench_peers": "skipped (no MNIST)", "bench_article": "skipped (no MNIST)"}

    page = write_results_page(out, tmp_path / "page" / "results.md")
    assert "Generated from 3 file(s)" in page
    assert page.count("Skipped: MNIST not found at") == 2
    assert "| bench_peers | quick | skipped (no MNIST) |" in page
