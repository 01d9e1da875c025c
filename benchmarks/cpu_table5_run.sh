#!/usr/bin/env bash
# Wall time of the tuned recipe's Table 5 `[paper]` on this machine's CPU, from an empty run store:
# the five models (FRLM, URLM, early fusion, concatenation, AMSNet), every fold, each training once
# (the branches the fusion heads stand on are shared, as a user's `amsnet pretrain` shares them):
#   amsnet pretrain --studies tuned_recipe --recipe tuned --models frlm urlm early concat amsnet --fusion --no-loso
# The features (and the tuned URLM's speed-perturbed copies) come from the feature cache.
# Writes results/cpu_table5_run.txt: GNU time's figures (the wall clock; its CPU and memory figures
# count the driver alone, since Ray's workers, which train, are not its children), the load before
# and after, and each model's per-fold WA/UA from this run's store beside the committed run store's
# (the same seed on the same kind of machine must give the same numbers).
# Takes about 45 minutes on 2 cores; run it on an otherwise idle machine. Needs GNU time (/usr/bin/time).
#   benchmarks/cpu_table5_run.sh [CPUS]   (default: all cores)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_cpu_common.sh"
cpus="${1:-$(nproc)}"
out=results/cpu_table5_run.txt
tmp="$out.partial"
models=(frlm urlm early concat amsnet)
mkdir -p results
{
    echo "# benchmarks/cpu_table5_run.sh $cpus: the tuned recipe's Table 5 [paper] (${models[*]}) from an empty run store, CPU"
    host_line
    echo "note: GNU time's CPU and memory figures in this file count the driver process only: Ray's worker processes, which train, are not its children"
    echo "start $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
    TQDM_DISABLE=1 command time -v "$venv/bin/amsnet" pretrain --corpus emodb --studies tuned_recipe --recipe tuned \
        --models "${models[@]}" --fusion --no-loso --cpus "$cpus" --device cpu --run-dir "$store" 2>&1 | tr '\r' '\n' | grep -v '%|\|WARNING'  # no bars
    echo "end $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    echo "## each model: this run's store, then the committed run store's (runs/, read only)"
    for m in "${models[@]}"; do
        for d in "$store" runs; do
            echo "$m, run store $d:"
            TQDM_DISABLE=1 "$venv/bin/amsnet" train --corpus emodb --model "$m" --recipe tuned --protocol paper --device cpu \
                --finished-only --summary '' --run-dir "$d" 2>&1 | grep -A7 '^seed'
        done
    done
} > "$tmp"
mv "$tmp" "$out"
echo "wrote $out"
