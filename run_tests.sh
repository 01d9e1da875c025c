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
# Both cores (pytest-xdist): the notebooks run in order in one worker (notebooks/conftest.py puts
# them in one xdist_group), the library tests spread over the others. More than four workers
# gain nothing: the notebooks' chain is the critical path. AMSNET_TEST_WORKERS=0 runs serially.
# (nproc without OMP_NUM_THREADS, which it would honour: exported as 1 above.)
cores="$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)"
workers="${AMSNET_TEST_WORKERS:-$(( cores < 4 ? cores : 4 ))}"
exec "$venv/bin/python" -m pytest -n "$workers" --dist loadgroup --nbval-lax --nbval-sanitize-with "$root/notebooks/sanitize.cfg" "$@"
