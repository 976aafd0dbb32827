"""Run the benchmarks, each in a fresh process, and write their results for the docs.

Each benchmark writes ``benchmarks/results/NAME.json`` (and PNGs beside it)
in the format ``docs/results_page.py`` renders into the docs' results page;
this script adds ``run.json``: what ran, at which size, how long it took.
MNIST is read from ``--data``, else ``$SKVAE_MNIST``, else
``../shared/data/mnist.npz`` relative to the repository; when it is absent the
benchmarks that need it are written as skipped entries. Nothing is downloaded.

Usage::

    python benchmarks/run.py --quick              # minutes: subsets, few epochs
    python benchmarks/run.py                      # the full sizes
    python benchmarks/run.py --quick --only bench_peers bench_article
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from _results import mnist_path, run_meta, write_json

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

# name: (arguments at quick size, at full size, needs MNIST)
BENCHMARKS = {
    "bench_pca": (["--quick", "--threads", "1"], ["--threads", "1"], False),
    "bench_training": (["--fits-only", "--quick"], ["--fits-only"], False),
    "bench_peers": (["--quick"], [], True),
    "bench_article": (["--quick"], [], True),
    "bench_defaults": (["--quick"], [], False),
    "bench_burda": (["--quick"], [], True),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="subsets and few epochs")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), help="run only these")
    parser.add_argument("--data", default=None, help="mnist.npz (default: ../shared/data)")
    parser.add_argument("--out", default=str(RESULTS), help="results folder")
    args = parser.parse_args()
    data = mnist_path(args.data)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, SKVAE_MNIST=str(data), PYTHONUNBUFFERED="1")  # progress as it comes
    summary_path = out / "run.json"
    previous = {}
    if summary_path.exists():  # keep the entries of benchmarks not run this time
        tables = json.loads(summary_path.read_text()).get("tables", [])
        previous = {row["benchmark"]: row for t in tables for row in t["rows"]}
    rows = dict(previous)
    failed = []
    start_all = time.perf_counter()
    for name in args.only or BENCHMARKS:
        quick_args, full_args, needs_mnist = BENCHMARKS[name]
        target = out / f"{name}.json"
        size = "quick" if args.quick else "full"
        if needs_mnist and not data.exists():
            message = f"MNIST not found at {data}; pass --data or set SKVAE_MNIST."
            print(f"{name}: skipped: {message}")
            write_json(target, name, f"Skipped: {message}", run_meta(args.quick, data), [])
            rows[name] = {"benchmark": name, "size": size, "status": "skipped (no MNIST)"}
            continue
        command = [sys.executable, str(HERE / f"{name}.py")]
        command += (quick_args if args.quick else full_args) + ["--json", str(target)]
        if needs_mnist:
            command += ["--data", str(data)]
        print(f"\n=== {name}: {' '.join(command[1:])}", flush=True)
        start = time.perf_counter()
        code = subprocess.run(command, env=env).returncode
        seconds = time.perf_counter() - start
        status = "ok" if code == 0 else f"failed (exit {code})"
        if code:
            failed.append(name)
        print(f"=== {name}: {status}, {seconds:.0f} s", flush=True)
        rows[name] = {"benchmark": name, "size": size, "status": status, "seconds": round(seconds)}
    total = time.perf_counter() - start_all
    print(f"\nall: {total:.0f} s ({total / 60:.1f} min)")
    meta = run_meta(args.quick, data, **{"this run's total seconds": round(total)})
    description = (
        "The last run of `python benchmarks/run.py"
        + (" --quick" if args.quick else "")
        + (f" --only {' '.join(args.only)}" if args.only else "")
        + "`, each benchmark in a fresh process, one at a time. Quick runs use subsets and "
        "few epochs (each benchmark's description says which); the full run uses the "
        "published sizes."
    )
    write_json(
        summary_path, "Benchmark run", description, meta, [("Benchmarks", list(rows.values()))]
    )
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
