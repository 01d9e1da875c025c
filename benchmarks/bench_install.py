"""The inference install against the full one: installed size, import time, time to a prediction.

Builds (or reuses) two fresh virtual environments from this clone, both non-editable:

- ``light``: ``pip install .`` (the core: ONNX Runtime, no PyTorch);
- ``full``: ``pip install '.[torch,train,notebooks,test]'`` (what ``scripts/setup_env.sh`` installs);

then measures in each: the size of its ``site-packages`` (bytes on disk, the fresh venv's own pip
and setuptools included), the wall time of ``import amsnet_lib.serve.predict`` and of loading the
default shipped model (``Recognizer()``: the ONNX file without torch, the checkpoint with it), and
of ``amsnet predict`` on one 3-s file (a new process: interpreter, imports, model load, features,
model). Each time is the median of ``--runs`` fresh processes.

    python -m benchmarks.bench_install --light /tmp/venv-light --full /tmp/venv-full --json results/benchmarks_install.json

``bench_inference.py report --install results/benchmarks_install.json`` puts the figures into
results/benchmarks.md. Nothing here is asserted: the figures are printed and written.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = {"light": "", "full": "[torch,train,notebooks,test]"}


def _site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


def _size(folder: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(folder):
        for f in files:
            p = Path(dirpath) / f
            if not p.is_symlink():
                total += p.stat().st_size
    return total


def ensure_venv(venv: Path, extras: str) -> float | None:
    """Create ``venv`` and install this clone into it (non-editable) unless it exists; install seconds."""
    python = venv / "bin" / "python"
    if python.exists() and (venv / ".amsnet-bench").is_file():
        return None
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    t0 = time.perf_counter()
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", f"{ROOT}{extras}"], check=True)
    seconds = time.perf_counter() - t0
    (venv / ".amsnet-bench").write_text(extras)
    return seconds


def _timed(cmd: list[str], runs: int, cwd: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env.update(OMP_NUM_THREADS="1", AMSNET_NO_REEXEC="1")
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {out.stderr[-2000:]}")
    return {"median_s": float(np.median(times)), "min_s": float(min(times)), "runs": runs, "last_stdout": out.stdout[-300:]}


def measure(venv: Path, clip: Path, runs: int, cwd: Path) -> dict:
    python = str(venv / "bin" / "python")
    probe = subprocess.run([python, "-c", "import importlib.util as u, json; print(json.dumps({m: u.find_spec(m) is not None "
                            "for m in ('torch', 'onnxruntime', 'ray', 'optuna', 'sklearn', 'matplotlib', 'jupyterlab')}))"],
                           cwd=cwd, capture_output=True, text=True, check=True)
    res = {"site_packages_bytes": _size(_site_packages(venv)), "has": json.loads(probe.stdout)}
    res["import_predict"] = _timed([python, "-c", "import amsnet_lib.serve.predict"], runs, cwd)
    res["load_default_model"] = _timed([python, "-c", "from amsnet_lib.serve.predict import Recognizer; r = Recognizer(); "
                                        "import sys; print(r.info.path, r.runtime, 'torch' in sys.modules)"], runs, cwd)
    res["cli_predict_one_file"] = _timed([str(venv / "bin" / "amsnet"), "predict", str(clip), "--quiet", "--format", "csv"],
                                         runs, cwd)
    return res


def _clip(folder: Path) -> Path:
    """A 3-s file: an EmoDB utterance when the corpus is found, else a voiced tone."""
    import soundfile as sf

    for c in (os.environ.get("AMSNET_EMODB_DIR"), ROOT / "data" / "emodb", ROOT.parent / "shared" / "data" / "emodb"):
        if c and (Path(c) / "wav").is_dir():
            src = sorted((Path(c) / "wav").glob("*.wav"))[0]
            x, sr = sf.read(src, dtype="float32")
            break
    else:
        sr = 16000
        t = np.arange(3 * sr) / sr
        x = (0.3 * np.sin(2 * np.pi * 150 * t)).astype(np.float32)
    path = folder / "clip.wav"
    sf.write(path, x[: 3 * sr], sr)
    return path


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--light", required=True, help="folder of the inference venv (created when absent)")
    ap.add_argument("--full", required=True, help="folder of the full venv (created when absent)")
    ap.add_argument("--runs", type=int, default=5, help="fresh processes per timed command (median)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    res = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "runs": args.runs}
    try:
        res["load_before"] = "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        res["load_before"] = "n/a"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)  # run outside the clone: the installed package, not the source tree, is imported
        clip = _clip(tmp)
        for name, venv in (("light", Path(args.light)), ("full", Path(args.full))):
            seconds = ensure_venv(venv, EXTRAS[name])
            res[name] = measure(venv, clip, args.runs, tmp)
            res[name]["install"] = f"pip install '.{EXTRAS[name]}'"
            res[name]["install_seconds"] = seconds
            r = res[name]
            print(f"{name:5s} site-packages {r['site_packages_bytes'] / 2**20:8.1f} MiB; import amsnet_lib.serve.predict "
                  f"{r['import_predict']['median_s']:.2f} s; Recognizer() {r['load_default_model']['median_s']:.2f} s "
                  f"({r['load_default_model']['last_stdout'].strip()}); amsnet predict one file "
                  f"{r['cli_predict_one_file']['median_s']:.2f} s; has {r['has']}")
    res["size_ratio"] = res["light"]["site_packages_bytes"] / res["full"]["site_packages_bytes"]
    print(f"inference install / full install, installed size: {res['size_ratio']:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
