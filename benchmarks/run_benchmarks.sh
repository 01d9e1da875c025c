#!/usr/bin/env bash
# Run the inference and training benchmarks and write results/benchmarks.md: every figure
# measured in this run, each against its target (2-core CPU):
#   end-to-end latency of a 3-s clip p50 <= 100 ms, model-only p50 <= 10 ms,
#   streaming keeps up with real time at 0.5-s hops, URLM training >= 50 % of matmul FLOP/s;
# plus feature-extraction real-time factors and training throughput per stage.
# Uses the shipped checkpoint when it exists, else a randomly initialised full-size AMSNet.
# Takes about 5-10 minutes on 2 cores. Extra arguments go to bench_inference.py
# (e.g. --checkpoint F --runs 50). BENCH_INSTALL=1 also measures the inference install against the
# full one (bench_install.py; results/benchmarks_install.json). Set SKIP_TRAINING=1 to skip the training benchmarks, SKIP_FEATURES=1 the
# cold/warm extraction of the whole corpus.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$("$root/scripts/setup_env.sh")"
cd "$root"
eval "$("$venv/bin/python" -m amsnet_lib._runtime)"  # the allocator settings amsnet runs with
mkdir -p results
# The raw figures are kept next to the report, so that it can be re-rendered without measuring:
#   python -m benchmarks.bench_inference report --inference results/benchmarks_inference.json \
#       --training results/benchmarks_training.json --features results/benchmarks_features.json \
#       --allocator results/benchmarks_allocator.txt --peephole results/benchmarks_peephole.txt \
#       --parallel results/benchmarks_parallel.txt --ray results/benchmarks_ray.txt --out results/benchmarks.md
"$venv/bin/python" -m benchmarks.bench_inference --json results/benchmarks_inference.json "$@"
training=()
if [ "${SKIP_TRAINING:-0}" != "1" ]; then
    "$venv/bin/python" -m benchmarks.bench_training --json results/benchmarks_training.json
    training=(--training results/benchmarks_training.json)
fi
extra=()
if [ "${SKIP_FEATURES:-0}" != "1" ]; then  # cold vs warm cache over the whole corpus (needs EmoDB)
    "$venv/bin/python" -m benchmarks.bench_features --json results/benchmarks_features.json
    extra+=(--features results/benchmarks_features.json)
fi
if [ "${SKIP_TRAINING:-0}" != "1" ]; then
    "$venv/bin/python" -m benchmarks.bench_peephole --allocator --repeats 3 | tee results/benchmarks_allocator.txt
    for threads in 1 2; do  # FRLM's paper size; the ratio to nn.LSTM is the figure that matters
        "$venv/bin/python" -m benchmarks.bench_peephole --sizes 256,300,76,128 --repeats 3 --threads "$threads"
    done | tee results/benchmarks_peephole.txt
    "$venv/bin/python" -m benchmarks.bench_parallel | tee results/benchmarks_parallel.txt
    # Ray's start-up and per-task overhead, and 5-fold AMSNet through Ray vs serially (reduced: full-size
    # models, 3 epochs a stage; the full configuration takes hours on 2 cores)
    "$venv/bin/python" -m benchmarks.bench_ray --profile full --epochs 3 | tee results/benchmarks_ray.txt
    extra+=(--allocator results/benchmarks_allocator.txt --peephole results/benchmarks_peephole.txt
            --parallel results/benchmarks_parallel.txt --ray results/benchmarks_ray.txt)
fi
if [ "${BENCH_INSTALL:-0}" = "1" ]; then  # two fresh venvs (inference install, full install): ~10 minutes
    "$venv/bin/python" -m benchmarks.bench_install --light "${TMPDIR:-/tmp}/amsnet-venv-light" \
        --full "${TMPDIR:-/tmp}/amsnet-venv-full" --json results/benchmarks_install.json
fi
[ -f results/benchmarks_install.json ] && extra+=(--install results/benchmarks_install.json)
"$venv/bin/python" -m benchmarks.bench_inference report --inference results/benchmarks_inference.json "${training[@]}" \
    "${extra[@]}" --out results/benchmarks.md > /dev/null
echo "wrote results/benchmarks.md" >&2
