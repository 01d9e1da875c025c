#!/usr/bin/env bash
# The whole EmoDB suite on a lent GPU, from nothing, timed: every training `run_all.sh` does on a GPU
# (`amsnet pretrain --fusion`, every study, leave-one-speaker-out included), the issue's "whole
# suite within 20 minutes on one H100" measured rather than bounded.
#
#     benchmarks/gpu_suite.sh BUNDLE OUT_DIR BUDGET_S [WORKERS] [RUN_DIR]
#
# A device call is capped (10 min) below what the suite may need, so the run store lives in RUN_DIR
# (default .dev/gpu_suite_runs: ignored by git, so it stays on a warm machine between calls) and a
# second call resumes where the first was cut (finished folds kept, the cut ones from their
# `partial.pt`). Each call appends "call <start epoch s> <end epoch s> <exit>" to
# RUN_DIR/suite_calls.txt: the suite's time is the sum of the calls' walls once one exits 0
# (restarts included, so it over- rather than under-states). scripts/diagnostics/gpu_suite_report.py turns
# OUT_DIR into the report's section.
#
# Writes to OUT_DIR: env.txt, suite_calls.txt, suite_<n>.txt (this call's log), gpu_mem.txt (MiB in
# use every 2 s), runs_suite.tgz (the run store's metrics, curves and predictions; no weights).
# It needs python3 with torch, numpy and pandas and a feature bundle
# (`amsnet features --save BUNDLE`) and ray (pinned in pyproject.toml). WORKERS: CPUs of the local Ray (default: all cores).
set -uo pipefail
bundle=${1:?feature bundle}; out=${2:?output folder}; budget=${3:?budget in s}; workers=${4:-}
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
runs=${5:-.dev/gpu_suite_runs}
mkdir -p "$out" "$runs"
source benchmarks/_gpu_common.sh
cpus=()  # Ray packs the GPU by memory (amsnet_lib.train.engine); WORKERS, when given, caps the CPUs of its local Ray
[ -n "$workers" ] && cpus=(--cpus "$workers")
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"; nproc
  "$py" -c "import sys, torch, numpy, pandas; print(sys.version.split()[0], torch.__version__, numpy.__version__, pandas.__version__, torch.cuda.is_available())"
  echo "workers ${workers:-all cores}"
} > "$out/env.txt" 2>&1
cat "$out/env.txt"
(while true; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits >> "$out/gpu_mem.txt" 2>/dev/null; sleep 2; done) &
sampler=$!
n=$(( $(cat "$runs/suite_calls.txt" 2>/dev/null | wc -l) + 1 ))
t0=$(date +%s)
# timeout signals its whole process group: the local Ray's processes stop with it
timeout "$(left)" "$py" -m amsnet_lib.cli pretrain --features "$bundle" --fusion "${cpus[@]}" --threads 1 \
    --device "$device" --run-dir "$runs" 2>&1 | tr '\r' '\n' | grep -v 'it/s\|ep/s\|s/it\|s/ep' > "$out/suite_$n.txt"
rc=${PIPESTATUS[0]}
echo "call $t0 $(date +%s) $rc" >> "$runs/suite_calls.txt"
kill "$sampler" 2>/dev/null
cp "$runs/suite_calls.txt" "$out/"
# resume points and branch weights stay on the machine for the next call; the tarball leaves them out
tar czf "$out/runs_suite.tgz" --exclude='partial.pt' --exclude='model.pt' --exclude='suite_calls.txt' -C "$runs" .
echo "metrics: $(find "$runs" -name metrics.json | wc -l) folds finished"
tail -3 "$out/suite_$n.txt"
cat "$out/suite_calls.txt"
