"""Run the benchmarks, each in a fresh process, and write their results for the docs.

Each benchmark writes ``benchmarks/results/NAME.json`` (and PNGs beside it)
in the format ``docs/results_page.py`` renders into the docs' results page;
this script keeps ``run.json``: for each size (quick, full) and benchmark its
latest run (date, seconds, status, commit). A run with ``--only`` updates
its own entries and keeps the others, so a full run done in pieces, on
different days, shows every piece and their total. Before running, it prints
the plan: what will run and how long each piece took the last time.
MNIST is read from ``--data``, else ``$SKVAE_MNIST``, else
``../shared/data/mnist.npz`` relative to the repository; when it is absent the
benchmarks that need it are written as skipped entries. Nothing is downloaded.

Usage::

    python benchmarks/run.py --quick              # minutes: subsets, few epochs
    python benchmarks/run.py                      # the full sizes (hours on 2 cores)
    python benchmarks/run.py --only bench_pca     # one piece of the full run
    python benchmarks/run.py --plan               # print the plan, run nothing
    python benchmarks/run.py --quick --only bench_peers bench_article
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from _results import commit_id, mnist_path, run_meta, write_json

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

# name: (script, arguments at quick size or None if it is a piece of the full run
# only, arguments at full size, needs MNIST)
BENCHMARKS = {
    "bench_pca": ("bench_pca", ["--quick", "--threads", "1"], ["--threads", "1"], False),
    # Five interleaved rounds at full size: on a shared machine three leave the median noisy.
    # Then the cost of a training step against an all-bfloat16 step (the floor table).
    "bench_training": (
        "bench_training",
        ["--fits-only", "--quick", "--floor-windows", "2", "--floor-steps", "30"],
        ["--fits-only", "--fit-rounds", "5", "--floor-windows", "10"],
        False,
    ),
    "bench_peers": ("bench_peers", ["--quick"], [], True),
    "bench_article": ("bench_article", ["--quick"], [], True),
    "bench_defaults": ("bench_defaults", ["--quick"], [], False),
    # Held out against PCA at k = 2 to 32; without MNIST it runs the other data sets.
    "bench_quality": ("bench_quality", ["--quick"], [], False),
    # The same on data sets the defaults were not chosen on, three seeds.
    "bench_quality_other": ("bench_quality", ["--other", "--quick"], ["--other"], False),
    # Sample quality (Fréchet distance in a classifier's features); MNIST rows when present.
    "bench_generation": ("bench_generation", ["--quick"], [], False),
    # The deep autoencoder against the published 3.00 at k=30 (about an hour of CPU at full size).
    "bench_deep_ae": ("bench_deep_ae", ["--quick"], [], True),
    # Against the hand-written loop at the same epochs (13), every test digit, K=5000.
    "bench_burda": ("bench_burda", ["--quick"], [], True),
    # Against the published number: stages 0-5 of Burda et al.'s schedule (364 epochs,
    # about 45 minutes of one CPU core with the scoring), skvae alone.
    "bench_burda_long": (
        "bench_burda",
        None,
        ["--epochs", "364", "--no-loop", "--no-crosscheck"],
        True,
    ),
}


def benchmarks_of(size):
    """The benchmarks that a run of this size runs, in order."""
    return [name for name, spec in BENCHMARKS.items() if size == "full" or spec[1] is not None]


SIZES = ("full", "quick")
TABLE_TITLE = "{size} run: the latest run of each benchmark"


def read_history(path):
    """``{(size, benchmark): entry}`` of an earlier ``run.json``; empty when there is none.

    Reads this script's tables, and those of its earlier format (one table,
    each row with its size) too.
    """
    if not path.exists():
        return {}
    history = {}
    for table in json.loads(path.read_text()).get("tables", []):
        for row in table.get("rows", []):
            if row.get("benchmark") in BENCHMARKS and row.get("size") in SIZES:
                history[row["size"], row["benchmark"]] = row
    return history


def plan(names, size, history):
    """Lines saying what will run and how long each piece took at this size last time."""
    lines, known, unknown = [f"plan ({size} size):"], 0, []
    for name in names:
        last = history.get((size, name))
        if last and isinstance(last.get("seconds"), (int, float)):
            known += last["seconds"]
            when = f"{last.get('date (UTC)', '?')}, {last.get('status', '?')}"
            lines.append(f"  {name}: about {last['seconds']} s (its last {size} run: {when})")
        else:
            unknown.append(name)
            lines.append(f"  {name}: no earlier {size} run recorded, time unknown")
    total = f"about {known} s ({known / 60:.0f} min)"
    if unknown:
        total += f" plus {', '.join(unknown)}, never timed at this size"
    lines.append(f"  estimate: {total}")
    return lines


def summary_tables(history):
    """One table per size: every benchmark, its latest run or 'not run yet', and the total."""
    tables = []
    for size in SIZES:
        rows, total, ran = [], 0, 0
        for name in benchmarks_of(size):
            entry = history.get((size, name))
            if entry is None:
                rows.append({"benchmark": name, "size": size, "status": "not run yet"})
                continue
            rows.append(entry)
            if isinstance(entry.get("seconds"), (int, float)):
                total += entry["seconds"]
                ran += 1
        if not ran and all(r["status"] == "not run yet" for r in rows):
            rows.append({"benchmark": "total", "size": size, "status": "never run"})
        else:
            rows.append(
                {
                    "benchmark": "total",
                    "size": size,
                    "status": f"{ran} of {len(benchmarks_of(size))} benchmarks timed",
                    "seconds": total,
                    "minutes": round(total / 60, 1),
                }
            )
        tables.append((TABLE_TITLE.format(size=size.capitalize()), rows))
    return tables


def write_summary(path, history, quick, data, invocation, start):
    """Write run.json: the tables of :func:`summary_tables`, the facts of this invocation."""
    meta = run_meta(quick, data, **{"this invocation": invocation})
    meta["this invocation's seconds so far"] = round(time.perf_counter() - start)
    description = (
        "Each benchmark runs in a fresh process, one at a time, by `python benchmarks/run.py` "
        "(`--quick`: subsets and few epochs, each benchmark's description says which; "
        "without it, the published sizes). The tables keep each benchmark's latest run at "
        "each size, with its date, seconds (wall clock) and commit, whichever invocation ran "
        "it: a full run done in pieces (`--only`) shows every piece, and the total is their "
        "sum. The facts below are those of the latest invocation."
    )
    write_json(path, "Benchmark runs", description, meta, summary_tables(history))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="subsets and few epochs")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), help="run only these")
    parser.add_argument("--data", default=None, help="mnist.npz (default: ../shared/data)")
    parser.add_argument("--out", default=str(RESULTS), help="results folder")
    parser.add_argument("--plan", action="store_true", help="print the plan, run nothing")
    args = parser.parse_args()
    data = mnist_path(args.data)
    out = Path(args.out)
    size = "quick" if args.quick else "full"
    names = args.only or benchmarks_of(size)
    full_only = [name for name in names if name not in benchmarks_of(size)]
    if full_only:
        parser.error(f"{', '.join(full_only)}: a piece of the full run only; drop --quick")
    summary_path = out / "run.json"
    history = read_history(summary_path)
    print("\n".join(plan(names, size, history)), flush=True)
    if args.plan:
        return
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, SKVAE_MNIST=str(data), PYTHONUNBUFFERED="1")  # progress as it comes
    commit = commit_id()
    invocation = (
        "python benchmarks/run.py"
        + (" --quick" if args.quick else "")
        + (f" --only {' '.join(args.only)}" if args.only else "")
    )
    failed = []
    start_all = time.perf_counter()
    for name in names:
        script, quick_args, full_args, needs_mnist = BENCHMARKS[name]
        target = out / f"{name}.json"
        entry = {
            "benchmark": name,
            "size": size,
            "date (UTC)": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        }
        if needs_mnist and not data.exists():
            message = f"MNIST not found at {data}; pass --data or set SKVAE_MNIST."
            print(f"{name}: skipped: {message}")
            write_json(target, name, f"Skipped: {message}", run_meta(args.quick, data), [])
            history[size, name] = {**entry, "status": "skipped (no MNIST)", "commit": commit}
        else:
            command = [sys.executable, str(HERE / f"{script}.py")]
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
            history[size, name] = {**entry, "status": status, "seconds": round(seconds),
                                   "commit": commit}  # fmt: skip
        # After every piece, so that an interrupted run keeps the pieces it finished.
        write_summary(summary_path, history, args.quick, data, invocation, start_all)
    total = time.perf_counter() - start_all
    print(f"\nall: {total:.0f} s ({total / 60:.1f} min)")
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
