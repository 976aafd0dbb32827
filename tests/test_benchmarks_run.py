"""benchmarks/run.py without MNIST: the benchmarks that need it are skipped entries, not errors.

The results page (docs/results_page.py) renders whatever run.py wrote, so a
machine without the data still builds a page that says why a section is empty.
``run.json`` keeps each benchmark's latest run per size, so that a full run
done in pieces (``--only``) shows every piece and their total.
"""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUN = REPO / "benchmarks" / "run.py"
sys.path.insert(0, str(REPO / "docs"))

from results_page import write_results_page  # noqa: E402


def run(*args):
    return subprocess.run(
        [sys.executable, str(RUN), *map(str, args)], capture_output=True, text=True, timeout=300
    )


def rows_by_size(summary):
    """``{size: {benchmark: row}}`` of run.json's tables."""
    out = {}
    for table in summary["tables"]:
        for row in table["rows"]:
            out.setdefault(row["size"], {})[row["benchmark"]] = row
    return out


def test_run_without_mnist_writes_skipped_entries(tmp_path):
    missing = tmp_path / "no" / "mnist.npz"
    out = tmp_path / "results"
    done = run("--quick", "--data", missing, "--out", out, "--only", "bench_peers",
               "bench_article")  # fmt: skip
    assert done.returncode == 0, done.stderr
    for name in ("bench_peers", "bench_article"):
        body = json.loads((out / f"{name}.json").read_text())
        assert body["description"].startswith("Skipped: MNIST not found at")
        assert str(missing) in body["description"]
        assert body["meta"]["size"].startswith("quick")
        assert str(missing) in done.stdout
    quick = rows_by_size(json.loads((out / "run.json").read_text()))["quick"]
    assert quick["bench_peers"]["status"] == "skipped (no MNIST)"
    assert quick["bench_article"]["status"] == "skipped (no MNIST)"
    assert quick["bench_pca"]["status"] == "not run yet"

    page = write_results_page(out, tmp_path / "page" / "results.md")
    assert "Generated from 3 file(s)" in page
    assert page.count("Skipped: MNIST not found at") == 2
    assert "| bench_peers | quick | " in page
    assert "skipped (no MNIST)" in page


def test_run_in_pieces_keeps_every_piece_and_their_total(tmp_path):
    """A run with --only replaces its own entries and keeps the others, per size."""
    out = tmp_path / "results"
    out.mkdir()
    earlier = [
        {"benchmark": "bench_pca", "size": "full", "status": "ok", "seconds": 300,
         "date (UTC)": "2026-11-01 10:00", "commit": "aaaaaaa"},
        {"benchmark": "bench_article", "size": "full", "status": "ok", "seconds": 9000,
         "date (UTC)": "2026-11-02 10:00", "commit": "bbbbbbb"},
        {"benchmark": "bench_pca", "size": "quick", "status": "ok", "seconds": 60},
    ]  # fmt: skip
    (out / "run.json").write_text(json.dumps({"tables": [{"title": "t", "rows": earlier}]}))

    plan = run("--plan", "--out", out)
    assert plan.returncode == 0, plan.stderr
    assert "bench_pca: about 300 s (its last full run: 2026-11-01 10:00, ok)" in plan.stdout
    assert "bench_training: no earlier full run recorded" in plan.stdout
    assert "estimate: about 9300 s (155 min) plus bench_training" in plan.stdout
    assert not (out / "bench_peers.json").exists()  # --plan runs nothing

    done = run("--data", tmp_path / "absent.npz", "--out", out, "--only", "bench_article")
    assert done.returncode == 0, done.stderr
    sizes = rows_by_size(json.loads((out / "run.json").read_text()))
    full = sizes["full"]
    assert full["bench_pca"] == earlier[0]  # the other piece, untouched
    assert full["bench_article"]["status"] == "skipped (no MNIST)"  # replaced by this run
    assert full["bench_article"]["date (UTC)"] != "2026-11-02 10:00"
    assert full["bench_training"]["status"] == "not run yet"
    assert full["total"]["seconds"] == 300
    assert full["total"]["status"].startswith("1 of ")
    assert sizes["quick"]["bench_pca"]["seconds"] == 60  # the other size, untouched
    assert sizes["quick"]["total"]["seconds"] == 60
