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
