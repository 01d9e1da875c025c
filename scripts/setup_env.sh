#!/usr/bin/env bash
# Create or reuse the project's virtual environment (.venv in the clone) from pyproject.toml.
# Idempotent: reinstalls only when pyproject.toml (or this script) changed since the last install.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${AMSNET_VENV:-$root/.venv}"
python="${PYTHON:-python3}"
stamp="$venv/.amsnet-installed"
want="$(cat "$root/pyproject.toml" "$root/scripts/setup_env.sh" | sha256sum | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ]; then
    echo "[setup] creating $venv" >&2
    "$python" -m venv "$venv"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "[setup] installing amsnet and its pinned dependencies into $venv" >&2
    "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
    "$venv/bin/python" -m pip install --quiet -e "$root[torch,train,notebooks,test]" >&2
    # The kernel carries the allocator settings of amsnet_lib/_runtime.py (JupyterLab, papermill).
    # shellcheck disable=SC2046
    "$venv/bin/python" -m ipykernel install --sys-prefix --name python3 \
        $("$venv/bin/python" -m amsnet_lib._runtime --kernel-args) >/dev/null
    # librosa (the spectrogram's reference in the tests, pitch shifting in training) compiles its
    # numba kernels the first time a process uses them (~15 CPU-s) and caches them in its package
    # folder: compile them once here, as pip byte-compiles, not in every process of a first run.
    "$venv/bin/python" -c "import numpy as np, librosa
x = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
librosa.effects.trim(x); librosa.feature.melspectrogram(y=x, sr=16000); librosa.effects.pitch_shift(x, sr=16000, n_steps=1.0)" >&2
    echo "$want" > "$stamp"
fi
# Bytecode for the package, its tests, scripts and benchmarks, as pip writes it for the packages it
# installs: where writing it at import is switched off (PYTHONDONTWRITEBYTECODE), every process (each
# notebook kernel, Ray worker and subprocess of the tests) would compile them again. Only what changed.
"$venv/bin/python" -m compileall -q "$root/amsnet_lib" "$root/tests" "$root/scripts" "$root/benchmarks" >/dev/null
echo "$venv"
