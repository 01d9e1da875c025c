#!/usr/bin/env bash
# Wall time of the full 5-fold AMSNet run `[paper]` on this machine's CPU, from an empty run store:
# both branches (FRLM, URLM) on every fold, then the five fusion heads, as a user runs it:
#   amsnet train --corpus emodb --model amsnet --protocol paper --workers N
# The features come from the feature cache (their extraction is timed by bench_features.py).
# Writes results/cpu_amsnet_run.txt: the command's own output (per-fold table, mean WA/UA),
# GNU time's figures (wall clock, CPU seconds, peak memory), the load before and after, and the
# per-fold WA/UA of the committed run store's identical configuration beside this run's (the same
# seed on the same kind of machine must give the same numbers).
# Takes about 35 minutes on 2 cores; run it on an otherwise idle machine. Needs GNU time (/usr/bin/time).
#   benchmarks/cpu_amsnet_run.sh [WORKERS]   (default: one per core)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_cpu_common.sh"
workers="${1:-$(nproc)}"
out=results/cpu_amsnet_run.txt
tmp="$out.partial"
mkdir -p results
{
    echo "# benchmarks/cpu_amsnet_run.sh $workers: full 5-fold AMSNet [paper] from an empty run store, CPU"
    host_line
    echo "start $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
    TQDM_DISABLE=1 command time -v "$venv/bin/amsnet" train --corpus emodb --model amsnet --protocol paper \
        --workers "$workers" --device cpu --run-dir "$store" --summary '' 2>&1
    echo "end $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    echo "## the committed run store's identical configuration (runs/, read only)"
    TQDM_DISABLE=1 "$venv/bin/amsnet" train --corpus emodb --model amsnet --protocol paper --device cpu --finished-only \
        --summary ''
    echo
    echo "## its branches in this run's store and in the committed one (FRLM, then URLM)"
    for m in frlm urlm; do
        for d in "$store" runs; do
            echo "$m, run store $d:"
            TQDM_DISABLE=1 "$venv/bin/amsnet" train --corpus emodb --model "$m" --protocol paper --device cpu --finished-only \
                --summary '' --run-dir "$d" 2>&1 | grep -A7 '^seed'
        done
    done
} > "$tmp"
mv "$tmp" "$out"
echo "wrote $out"
