#!/usr/bin/env bash
# Train studies of the suite on a lent GPU, in priority order, within a time box; the runs come back
# to join the committed run store (their metrics.json say `cuda (<GPU>)`; the report's tables show
# which device trained each row).
#
#     benchmarks/gpu_studies.sh BUNDLE OUT_DIR BUDGET_S WORKERS GROUP [GROUP ...]
#
# GROUP is `study` or `study:variant-text[;variant-text...]` (substrings of the variant labels of
# summary.csv, which may hold commas), e.g. `learning_rate`, `optimizer_batch:bs=256;bs=128` or
# `optimizer_batch:rmsprop,bs=32`. Each group is one
# `amsnet pretrain --fusion` (branches, then fusion heads) cut at the deadline; groups run one
# after another, so the first ones finish whole. The committed run store is copied in first:
# what finished there is not trained again.
#
# Writes to OUT_DIR: env.txt, timings.txt (seconds from the start at each group's start and end),
# <n>_<group>.txt (each group's log), runs.tgz (the new runs: metrics, curves, predictions, fusion
# heads; no branch weights). As gpu_session.sh, the machine needs only python3 with torch, numpy
# and pandas: the features come from a bundle (`amsnet features --save BUNDLE`).
set -uo pipefail
bundle=${1:?feature bundle}; out=${2:?output folder}; budget=${3:?budget in s}; workers=${4:?workers}; shift 4
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
mkdir -p "$out"
source benchmarks/_gpu_common.sh
runs=${AMSNET_RUN_DIR:-/tmp/amsnet_gpu_study_runs}
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"; nproc
  "$py" -c "import sys, torch, numpy, pandas; print(sys.version.split()[0], torch.__version__, numpy.__version__, pandas.__version__, torch.cuda.is_available())"
} > "$out/env.txt" 2>&1
cat "$out/env.txt"
mkdir -p "$runs"
cp -a runs/. "$runs/"
find "$runs" -name metrics.json > "$out/.before"
n=0
for group in "$@"; do
    n=$((n + 1))
    study=${group%%:*}
    variants=()
    [ "$group" != "$study" ] && IFS=";" read -r -a variants <<< "${group#*:}"
    if [ "$(left)" -lt 20 ]; then echo "$group: not started (budget spent)" | tee -a "$out/timings.txt"; continue; fi
    stamp "start $group"
    # timeout signals its whole process group: the pool's worker processes stop too
    timeout "$(left)" "$py" -m amsnet_lib.cli pretrain --features "$bundle" --studies "$study" --no-loso --fusion \
        ${variants[@]+--variants "${variants[@]}"} --workers "$workers" --threads 1 --device "$device" --run-dir "$runs" 2>&1 \
        | tr '\r' '\n' | grep -v 'it/s\|ep/s\|s/it\|s/ep' > "$out/${n}_${study}.txt"
    echo "exit ${PIPESTATUS[0]}" >> "$out/${n}_${study}.txt"
    stamp "end $group"
    tail -2 "$out/${n}_${study}.txt"
done
# resume points stay on the machine (a later call resumes them); the tarball leaves them out
# only what this session added (folds absent from the committed store), without branch weights
find "$runs" -name metrics.json | sort | comm -13 <(sort "$out/.before") - > "$out/.new"
sed 's|/metrics.json$||' "$out/.new" | while read -r d; do
    ls "$d"/* | grep -v '/partial.pt$' | grep -Ev '/(frlm|urlm|early)-[^/]*/.*/model\.pt$'
    ls "$(dirname "$(dirname "$d")")/config.json"
done | sort -u | sed "s|^$runs/||" > "$out/.files"
tar czf "$out/runs.tgz" -C "$runs" -T "$out/.files"
echo "$(wc -l < "$out/.new") new folds"
cat "$out/timings.txt"
