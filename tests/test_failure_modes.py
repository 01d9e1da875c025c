"""Nothing lost, nothing silent (issue 26): concurrent writers of one table, killed extractions,
skipped files, unwritable output locations, the split-file protocol, and smaller failure modes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

import amsnet_lib as ams
from amsnet_lib import cli
from amsnet_lib.corpora import load_corpus
from amsnet_lib.errors import AmsnetError, ManifestError
from amsnet_lib.features import extract_features
from signals import REPO_ROOT, TINY_FEATURES, tone

LINUX = sys.platform.startswith("linux")


def _tones(folder: Path, n: int = 6, seconds: float = 0.9) -> list[tuple[Path, str, str]]:
    """``n`` tone WAVs per class (high, low) under ``folder``; ``(path, label, speaker)`` rows."""
    rows = []
    for i in range(n):
        for label, f0 in (("high", 320.0), ("low", 110.0)):
            path = folder / label / f"{label}{i}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, tone(seconds + 0.05 * i, f0 * (1 + 0.03 * i), seed=i), 16000)
            rows.append((path, label, f"s{i % 3}"))
    return rows


def _manifest(path: Path, rows) -> Path:
    pd.DataFrame([{"path": str(p), "label": lab, "speaker": spk} for p, lab, spk in rows]).to_csv(path, index=False)
    return path


def _env(tmp_path) -> dict:
    path = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(REPO_ROOT)) if p)
    return dict(os.environ, AMSNET_NO_REEXEC="1", AMSNET_CACHE_DIR=str(tmp_path / "cache"),
                AMSNET_RUN_DIR=str(tmp_path / "runs"), PYTHONPATH=path)


# --------------------------------------------------------------------------- 1. parallel writers


_WRITER = """
import sys, time
from amsnet_lib.report import record_timing
from amsnet_lib.training import update_summary
who, summary, timings, start = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
while time.time() < start:  # both processes begin together, so their updates interleave
    time.sleep(0.005)
for i in range(40):
    update_summary({"corpus": "c", "protocol": "p", "model": who, "variant": f"v{i:02d}", "wa": i, "ua": i}, summary)
    record_timing(timings, f"{who}-{i:02d}", "paper", "quick", float(i))
"""


def test_parallel_writers_of_the_summary_and_the_timings_keep_every_row(tmp_path):
    summary, timings = tmp_path / "tables" / "summary.csv", tmp_path / "timings.csv"
    start = time.time() + 8  # after both have imported torch and pandas
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, who, str(summary), str(timings), str(start)],
                              env=_env(tmp_path)) for who in ("a", "b")]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    rows = pd.read_csv(summary, keep_default_na=False)
    assert len(rows) == 80 and set(rows["model"] + rows["variant"]) == {f"{w}v{i:02d}" for w in "ab" for i in range(40)}
    assert len(pd.read_csv(timings)) == 80


# --------------------------------------------------------------------------- 2. killed extraction


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not LINUX, reason="prctl(PR_SET_PDEATHSIG) and /proc are Linux's")
def test_extraction_workers_stop_when_amsnet_features_is_killed(tmp_path):
    rows = _tones(tmp_path / "corpus", n=20, seconds=2.5)
    manifest = _manifest(tmp_path / "corpus.csv", rows)
    parent = subprocess.Popen([sys.executable, "-m", "amsnet_lib.cli", "features", "--corpus", str(manifest),
                               "--jobs", "2", "--cache-dir", str(tmp_path / "cache")],
                              env=_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list[int] = []
    deadline = time.monotonic() + 120
    while len(workers) < 2 and parent.poll() is None and time.monotonic() < deadline:
        workers = _children(parent.pid)
        time.sleep(0.05)
    assert len(workers) >= 2, "the extraction pool never started its workers"
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = [w for w in workers if _alive(w)]
    for w in survivors:
        os.kill(w, signal.SIGKILL)
    assert not survivors, f"extraction workers {survivors} outlived their killed parent"


# --------------------------------------------------------------------------- 6. extraction threads


def test_extraction_computes_with_one_blas_thread_whoever_calls_it(tmp_path, monkeypatch):
    from threadpoolctl import threadpool_info, threadpool_limits

    from amsnet_lib import features as fmod

    seen = []
    real = fmod.log_mel_spectrogram

    def spy(signal, config):
        if config == TINY_FEATURES:  # an utterance (not the warm-up that loads the libraries first)
            seen.append(max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"))
        return real(signal, config)

    monkeypatch.setattr(fmod, "log_mel_spectrogram", spy)
    table = load_corpus(_manifest(tmp_path / "m.csv", _tones(tmp_path / "corpus", n=3)))
    with threadpool_limits(limits=2):
        extract_features(table, TINY_FEATURES, use_cache=False, n_jobs=1, progress=False)
    assert seen and set(seen) == {1}


def test_one_and_two_extraction_jobs_give_bit_identical_features(tmp_path):
    table = load_corpus(_manifest(tmp_path / "m.csv", _tones(tmp_path / "corpus", n=4)))
    one = extract_features(table, TINY_FEATURES, use_cache=False, n_jobs=1, progress=False)
    two = extract_features(table, TINY_FEATURES, use_cache=False, n_jobs=2, progress=False)
    assert one.spec.tobytes() == two.spec.tobytes() and one.frames.tobytes() == two.frames.tobytes()
