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

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from skvae import VAETransformer

REPO = Path(__file__).resolve().parents[1]
RUN = REPO / "benchmarks" / "run.py"
sys.path.insert(0, str(REPO / "docs"))
sys.path.insert(0, str(REPO / "benchmarks"))

import _peers_vae  # noqa: E402
import bench_peers  # noqa: E402
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
    # A piece of the full run only: listed at full size, not at quick size, and refused there.
    assert full["bench_burda_long"]["status"] == "not run yet"
    assert "bench_burda_long" not in sizes["quick"]
    refused = run("--quick", "--out", out, "--only", "bench_burda_long")
    assert refused.returncode == 2
    assert "bench_burda_long: a piece of the full run only; drop --quick" in refused.stderr


def test_peers_elbo_agrees_with_skvae_score():
    """The ELBO that bench_peers reads from every contender is skvae's score on skvae's model.

    bench_peers computes the peers' ELBO itself (closed-form KL); skvae's
    ``score`` estimates the KL by its draws. Both estimate the same mean, so they
    must agree within the Monte-Carlo error, bounded here by three standard
    errors of the per-row scores (their spread over rows is larger than the
    spread over draws alone).
    """
    X = (load_digits().data[:400] / 16.0).astype(np.float32)
    est = VAETransformer(4, hidden_layer_sizes=(32,), likelihood="bernoulli", max_iter=30,
                         n_score_samples=100, device="cpu", random_state=0)  # fmt: skip
    with pytest.warns(ConvergenceWarning):  # 30 epochs: stopped by max_iter
        est.fit(X)
    decoder = est.module_.decoder
    ours = _peers_vae.bernoulli_elbo(
        est.module_.encoder, _peers_vae._logit_log_lik(decoder), X, draws=100
    )
    per_row = est.score_samples(X)
    assert abs(ours - per_row.mean()) < 3 * per_row.std() / np.sqrt(len(X))


def test_peers_verdicts_say_missed_plainly():
    row = lambda name, ratio: {"contender": name, "cpu x minimal loop": ratio}  # noqa: E731
    rows = [row("minimal torch loop", 1.0), row("skvae VAETransformer", 1.2),
            row("PyOD VAE", 1.5), row("skorch NeuralNet", 1.1)]  # fmt: skip
    said, missed = bench_peers.verdicts(rows, {"Pyro SVI": "not installed"})
    assert missed
    assert said[0] == (
        "skvae / minimal loop (CPU time, 1 thread, median): 1.20x, goal <= 1.0x: MISSED."
    )
    assert said[1] == "faster than every peer: MISSED (not faster than skorch NeuralNet)."
    assert said[2] == "missing peers: Pyro SVI."
    rows[1]["cpu x minimal loop"] = 0.9
    said, missed = bench_peers.verdicts(rows, {})
    assert not missed
    assert said == [
        "skvae / minimal loop (CPU time, 1 thread, median): 0.90x, goal <= 1.0x: met.",
        "faster than every peer: met.",
    ]


def test_results_page_tells_apart_two_files_with_one_title(tmp_path):
    # bench_burda.json and bench_burda_long.json: one script, two runs, one title.
    for name in ("bench_burda", "bench_burda_long"):
        body = {"title": "Burda et al.'s VAE on MNIST", "rows": [{"run": name}]}
        (tmp_path / f"{name}.json").write_text(json.dumps(body))
    page = write_results_page(tmp_path, tmp_path / "page" / "results.md")
    headings = [line for line in page.splitlines() if line.startswith("## ")]
    assert headings == [
        "## Burda et al.'s VAE on MNIST",
        "## Burda et al.'s VAE on MNIST (bench_burda_long)",
    ]


def test_training_floor_times_every_contender_and_puts_back_what_it_changed(tmp_path):
    """bench_training's step table: four contenders a model, written as a second table."""
    import argparse

    import bench_training
    import torch

    cases = bench_training.make_cases(torch.device("cpu"))
    X = np.random.default_rng(0).random((1300, 784), dtype=np.float32)
    threads = torch.get_num_threads()
    start_rows = bench_training._training._START_ROWS
    rows = bench_training.step_floor(cases, X, n_windows=1, n_steps=2)

    assert torch.get_num_threads() == threads
    assert bench_training._training._START_ROWS == start_rows
    labels = ["bare loop, float32, default Adam", "skvae float32", "skvae bfloat16",
              "all bfloat16: weights, loss, Adam (floor)"]  # fmt: skip
    assert [(r["model"], r["contender"]) for r in rows] == [
        (model, label) for model in ("AE", "VAE") for label in labels
    ]
    for row in rows:
        assert 0 < row["cpu ms/step min (1 thread)"] <= row["cpu ms/step median"] < np.inf
        if row["contender"].startswith("bare"):
            assert row["x bare (min)"] == row["x bare (median)"] == 1.0

    args = argparse.Namespace(
        json=tmp_path / "t.json", fit_rounds=1, quick=True, floor_windows=1, floor_steps=2
    )
    fit_rows = [
        {"model": "VAE", "contender": "skvae bfloat16 fit, 4 epochs", "cpu x bare": 0.7,
         "loss vs float32": "+0.10%"},
    ]  # fmt: skip
    bench_training.write_fit_json(args, {"device": "cpu"}, fit_rows, "synthetic", 1300, rows)
    body = json.loads((tmp_path / "t.json").read_text())
    assert [t["title"] for t in body["tables"]] == [
        "Whole fits: bare loop vs skvae per precision",
        "Training steps: the all-bfloat16 floor",
    ]
    assert "VAE skvae bfloat16 fit, 4 epochs: 0.70x the bare loop" in body["description"]
    assert "goal <= 0.65x at a loss within 1%: MISSED." in body["description"]
    assert "which runs at AE: " in body["description"]
