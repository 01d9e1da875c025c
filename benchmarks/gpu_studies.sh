#!/usr/bin/env bash
# Train studies of the suite on a lent GPU, within a time box; the runs come back to join the
# committed run store (their metrics.json say `cuda (<GPU>)` and the features' precision; the
# report's tables show which device trained each row).
#
#     benchmarks/gpu_studies.sh BUNDLE OUT_DIR BUDGET_S PARALLEL GROUP [GROUP ...]
#
# GROUP is `study` or `study:variant-text[;variant-text...]` (substrings of the variant labels of
# summary.csv, which may hold commas), optionally followed by `@model[,model...]`, e.g.
# `learning_rate`, `optimizer_batch:bs=256;bs=128` or `seed_ensemble:member 1@urlm`. Each group is
# one `amsnet pretrain --fusion --serial` (branches, then fusion heads): a lent machine has no Ray, so
# the groups are the processes that share the GPU, PARALLEL at a time, started in the order given and
# each cut at the deadline. The committed run store is copied in first when it travelled: what
# finished there is not trained again. The bundle may carry augmented copies
# (`amsnet features --save BUNDLE --augment speed`: the tuned URLM's).
#
# Writes to OUT_DIR: env.txt, timings.txt (seconds from the start at each group's start and end),
# <n>_<group>.txt (each group's log), runs.tgz (the new runs: metrics, curves, predictions, fusion
# heads; branch weights only of the kinds in KEEP_WEIGHTS, e.g. KEEP_WEIGHTS=urlm when their fusion
# heads train elsewhere). A tarball over SPLIT_MB (default 15) MB is split into runs.tgz.part-aa, -ab,
# ... (`cat runs.tgz.part-* | tar xz`), so that it comes back in files of a size the transfer takes.
# As gpu_session.sh, the machine needs only python3 with torch, numpy and pandas.
set -uo pipefail
bundle=${1:?feature bundle}; out=${2:?output folder}; budget=${3:?budget in s}; parallel=${4:?processes}; shift 4
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
mkdir -p "$out"
source benchmarks/_gpu_common.sh
runs=${AMSNET_RUN_DIR:-/tmp/amsnet_gpu_study_runs}
keep=${KEEP_WEIGHTS:-}
split_mb=${SPLIT_MB:-15}
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"; nproc
  "$py" -c "import sys, torch, numpy, pandas; print(sys.version.split()[0], torch.__version__, numpy.__version__, pandas.__version__, torch.cuda.is_available())"
} > "$out/env.txt" 2>&1
cat "$out/env.txt"
mkdir -p "$runs"
[ -d runs ] && cp -a runs/. "$runs/"
find "$runs" -name metrics.json > "$out/.before"

train_group() {  # n group: one pretrain process, cut at the deadline
    local n=$1 group=$2 spec models study variants=()
    spec=${group%%@*}; models=""; [ "$spec" != "$group" ] && models=${group#*@}
    study=${spec%%:*}
    [ "$spec" != "$study" ] && IFS=";" read -r -a variants <<< "${spec#*:}"
    local log="$out/${n}_${study}.txt" t
    t=$(left)
    if [ "$t" -lt 20 ]; then echo "$group: not started (budget spent)" | tee -a "$out/timings.txt"; return; fi
    stamp "start $group"
    # timeout signals the process group: nothing of the group outlives the deadline
    timeout "$t" "$py" -m amsnet_lib.cli pretrain --features "$bundle" --studies "$study" --no-loso --fusion --serial \
        ${variants[@]+--variants "${variants[@]}"} ${models:+--models ${models//,/ }} --threads 1 --device "$device" \
        --run-dir "$runs" 2>&1 | tr '\r' '\n' | grep -v 'it/s\|ep/s\|s/it\|s/ep' > "$log"
    echo "exit ${PIPESTATUS[0]}" >> "$log"
    stamp "end $group"
    tail -2 "$log"
}

n=0
for group in "$@"; do
    n=$((n + 1))
    while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do wait -n; done
    train_group "$n" "$group" &
done
wait
# resume points stay on the machine (a later call resumes them); the tarball leaves them out
# only what this session added (folds absent from the committed store)
find "$runs" -name metrics.json | sort | comm -13 <(sort "$out/.before") - > "$out/.new"
drop=$(for k in frlm urlm early; do [[ " $keep " == *" $k "* ]] || printf '%s|' "$k"; done)
drop="/(${drop%|})-[^/]*/.*/model\.pt$"  # the branch weights that stay behind
sed 's|/metrics.json$||' "$out/.new" | while read -r d; do
    ls "$d"/* | grep -v '/partial.pt$' | grep -Ev "$drop"
    ls "$(dirname "$(dirname "$d")")/config.json"
done | sort -u | sed "s|^$runs/||" > "$out/.files"
tar czf "$out/runs.tgz" -C "$runs" -T "$out/.files"
if [ "$(stat -c %s "$out/runs.tgz")" -gt $((split_mb * 1000000)) ]; then
    split -b "${split_mb}MB" "$out/runs.tgz" "$out/runs.tgz.part-" && rm "$out/runs.tgz"
fi
echo "$(wc -l < "$out/.new") new folds"
cat "$out/timings.txt"
