# Sourced by cpu_amsnet_run.sh and cpu_table5_run.sh (after `set -euo pipefail`): the project's
# environment ($venv), the repository as the working directory, an empty run store ($store, removed
# on exit) and the host line of their output files.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$("$root/scripts/setup_env.sh")"
cd "$root"
store="$(mktemp -d)"
trap 'rm -rf "$store"' EXIT
host_line() {
    echo "host: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), torch $("$venv/bin/python" -c 'import torch; print(torch.__version__)')"
}
