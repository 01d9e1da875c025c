#!/usr/bin/env bash
# Snapshot of a full-profile run still in progress: for each model, the folds the run store
# already holds (amsnet train --finished-only trains nothing). Written to results/interim/.
#   scripts/interim_results.sh [corpus] [protocol]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
corpus="${1:-emodb}"
protocol="${2:-paper}"
venv="$("$root/scripts/setup_env.sh")"
out="$root/results/interim/${corpus}_${protocol}_folds.txt"
mkdir -p "$(dirname "$out")"
tmp="$(mktemp "$out.XXXX")"
{
    echo "# Interim: finished folds of the full-profile run, ${corpus}, protocol ${protocol}"
    echo "# Written $(date -u '+%Y-%m-%d %H:%M UTC') by scripts/interim_results.sh; not a complete run unless every model lists all folds."
    for model in frlm urlm concat early amsnet; do
        echo
        OMP_NUM_THREADS=1 "$venv/bin/amsnet" train --corpus "$corpus" --model "$model" --protocol "$protocol" \
            --finished-only --summary '' 2>&1 | grep -v -e 'fold/s' -e 'utt/s' -e 'ep/s' || echo "$model: no finished fold"
    done
} > "$tmp"
mv "$tmp" "$out"
echo "$out"
