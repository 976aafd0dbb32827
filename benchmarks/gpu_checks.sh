#!/usr/bin/env bash
# The checks that need a CUDA device, in one go, for a machine that has one:
# the gpu-marked tests, the whole test suite with a GPU present (the default
# device policy must keep numpy input on the CPU), and the training benchmark
# on the GPU (bare torch loop vs skvae per precision, epoch time, samples/s).
#
# Usage, from the repository root (skvae importable from here, no install):
#
#     bash benchmarks/gpu_checks.sh OUT_DIR [MNIST_NPZ]
#
# Each step has its own time limit (seconds, environment variables below), so
# one slow step cannot swallow the others; logs and JSON land in OUT_DIR.
set -uo pipefail
out="${1:-gpu-results}"
mkdir -p "$out"
if [ -n "${2:-}" ]; then
    export SKVAE_MNIST="$2"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
t_gpu="${SKVAE_T_GPU_TESTS:-150}"
t_bench="${SKVAE_T_BENCH:-240}"
t_suite="${SKVAE_T_SUITE:-180}"

step() {  # step NAME SECONDS COMMAND...: run, log, and record the exit code
    local name=$1 limit=$2
    shift 2
    echo "=== $name (limit ${limit} s): $*"
    local start=$SECONDS
    timeout "$limit" "$@" >"$out/$name.log" 2>&1
    local rc=$?
    echo "=== $name: rc=$rc in $((SECONDS - start)) s"
    tail -n "${SKVAE_TAIL:-25}" "$out/$name.log"
}

{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    python3 -c "import sys, torch, sklearn, numpy; print(sys.version.split()[0], 'torch', \
torch.__version__, 'cuda', torch.version.cuda, 'sklearn', sklearn.__version__, 'numpy', \
numpy.__version__, 'available', torch.cuda.is_available())"
    nproc
} 2>&1 | tee "$out/machine.txt"

step gpu_tests "$t_gpu" python3 -m pytest -m gpu -p no:cacheprovider -q -rs
step bench_training "$t_bench" python3 benchmarks/bench_training.py --device cuda \
    --fit-rounds "${SKVAE_FIT_ROUNDS:-3}" --json "$out/bench_training_cuda.json"
xdist=()
python3 -c "import xdist" 2>/dev/null && xdist=(-n "${SKVAE_WORKERS:-8}")
# SKVAE_SUITE_PATHS: test files to run instead of the whole suite (space-separated).
read -r -a paths <<<"${SKVAE_SUITE_PATHS:-}"
step suite "$t_suite" python3 -m pytest -p no:cacheprovider -q "${xdist[@]}" "${paths[@]}"
