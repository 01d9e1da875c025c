#!/usr/bin/env bash
# The test suite's wall time on a fresh clone, as CI meets it: clone HEAD into a temporary folder,
# create its .venv (scripts/setup_env.sh, timed apart), then ./run_tests.sh (timed): the library
# tests and the notebook checks side by side, each with its own pytest time. Target: the tests in at
# most 3 minutes on the 2-core CPU machine (issue #40); the set-up is reported, not part of it.
# Corpora are found as the tests find them (AMSNET_EMODB_DIR, AMSNET_RAVDESS_DIR, else ../shared/data
# beside this clone, as .ci/run does). Run it on an otherwise idle machine: the load average at the
# start is printed beside the figures. Writes results/benchmarks_tests.txt (--out FILE to change).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/results/benchmarks_tests.txt"
[ "${1:-}" = "--out" ] && out="$2"
shared="$(cd "$root/.." && pwd)/shared/data"
[ -z "${AMSNET_EMODB_DIR:-}" ] && [ -d "$shared/emodb" ] && export AMSNET_EMODB_DIR="$shared/emodb"
[ -z "${AMSNET_RAVDESS_DIR:-}" ] && [ -d "$shared/ravdess" ] && export AMSNET_RAVDESS_DIR="$shared/ravdess"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
git clone --quiet "$root" "$work/amsnet"
cd "$work/amsnet"
commit="$(git rev-parse --short HEAD)"
t0=$SECONDS
bash scripts/setup_env.sh > "$work/setup.log" 2>&1
setup=$(( SECONDS - t0 ))
load="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
# the whole machine's busy CPU time (user, nice, system, irq, softirq; /proc/stat, in clock ticks): with
# nothing else running, what the suite costs, Ray's processes and the notebook kernels included
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat 2>/dev/null || echo 0; }
ticks="$(getconf CLK_TCK 2>/dev/null || echo 100)"
b0="$(busy)"
t0=$SECONDS
set +e
./run_tests.sh > "$work/tests.log" 2>&1
rc=$?
set -e
tests=$(( SECONDS - t0 ))
cpu=$(( ($(busy) - b0) / ticks ))
# pytest's closing lines: the library's first, then the notebook checks' (run_tests.sh prints them after)
mapfile -t summaries < <(grep -E "^=+ .*(passed|failed).* in [0-9.]+s" "$work/tests.log" | sed -E 's/^=+ (.*) =+$/\1/')
{
    echo "fresh clone of $commit, $(nproc) cores, load average at the start $load"
    echo "set-up (scripts/setup_env.sh: .venv, pinned packages, librosa's numba kernels): ${setup} s"
    echo "./run_tests.sh: ${tests} s wall, exit status $rc (target: at most 180 s)"
    echo "  machine CPU while it ran: ${cpu} CPU-s; at $(nproc) cores no run can take less than $(( cpu / $(nproc) )) s"
    echo "  library tests: ${summaries[0]:-no summary line}"
    echo "  notebook checks (beside them): ${summaries[1]:-no summary line}"
} | tee "$out"
[ "$rc" -eq 0 ] || { tail -40 "$work/tests.log"; exit "$rc"; }
