#!/usr/bin/env bash
# The whole test suite: library tests (pytest) and notebook regression checks (nbval, quick
# profile). Creates or reuses .venv by itself. EmoDB is found through AMSNET_EMODB_DIR (or
# ./data/emodb); tests that need it are skipped with a reason when it is absent.
# Extra arguments go to pytest, e.g. ./run_tests.sh -k features
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$("$root/scripts/setup_env.sh")"
cd "$root"
# One BLAS/OpenMP thread per process: the suite is many small operations, for which a second
# thread (or a busy core) costs far more than it gives; feature extraction uses processes.
export MPLBACKEND=Agg PYTHONHASHSEED=0 OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
# Notebooks run in the quick profile (a smoke run; nbval compares only cells that print facts
# that must not drift: counts, dimensions, fold sizes, parameter counts).
export AMSNET_PROFILE="${AMSNET_PROFILE:-quick}"
# The allocator settings every amsnet process runs with (amsnet_lib/_runtime.py).
eval "$("$venv/bin/python" -m amsnet_lib._runtime)"
# Both cores: with no arguments the notebook checks (in order, one process: notebooks/conftest.py)
# run beside the library tests. AMSNET_TEST_WORKERS=1, or any argument, runs one pytest as before.
# (nproc without OMP_NUM_THREADS, which it would honour: exported as 1 above.)
cores="$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)"
workers="${AMSNET_TEST_WORKERS:-$cores}"
pytest=("$venv/bin/python" -m pytest)
nbval=(--nbval-lax --nbval-sanitize-with "$root/notebooks/sanitize.cfg")
if [ $# -gt 0 ] || [ "$workers" -lt 2 ]; then
    exec "${pytest[@]}" "${nbval[@]}" "$@"
fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
"${pytest[@]}" "${nbval[@]}" -p no:cacheprovider notebooks > "$log" 2>&1 &
notebooks=$!
# The library tests on two workers or more (pytest-xdist, work stealing) even on 2 cores: Ray's
# start-ups and the tests that run subprocesses wait more than they compute, and the other worker
# fills those gaps beside the notebooks.
# Without the nbval plugin, which the library tests do not use (its imports cost each process a second).
library=(-p no:nbval -n "$(( workers > 2 ? workers - 1 : 2 ))" --dist worksteal tests)
set +e
"${pytest[@]}" "${library[@]}"
library_rc=$?
wait "$notebooks"
notebooks_rc=$?
set -e
echo
echo "== notebook checks (ran beside the library tests above)"
cat "$log"
[ "$library_rc" -ne 0 ] && exit "$library_rc"
exit "$notebooks_rc"
