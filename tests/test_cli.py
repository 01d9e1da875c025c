"""`amsnet features` and `amsnet train` from the command line, on a small corpus of one's own."""
from __future__ import annotations

import json

import numpy as np
import soundfile as sf

from amsnet_lib import cli
from signals import sine


def _corpus(tmp_path):
    for label, f0 in (("calm", 140.0), ("loud", 300.0)):
        for i in range(5):
            p = tmp_path / "corpus" / label / f"{label}{i}.wav"
            p.parent.mkdir(parents=True, exist_ok=True)
            amp = 0.2 if label == "calm" else 0.6
            sf.write(p, sine(0.6 + 0.05 * i, freq=f0 * (1 + 0.02 * i), amplitude=amp), 16000)
    (tmp_path / "corpus" / "calm" / "broken.wav").write_bytes(b"not audio")
    return tmp_path / "corpus"


def test_features_summary_reports_counts_shapes_and_skips(tmp_path, capsys):
    corpus = _corpus(tmp_path)
    args = ["features", "--corpus", str(corpus), "--cache-dir", str(tmp_path / "cache"), "--jobs", "1", "--duration", "1.0"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "utterances: 10" in out and "calm 5, loud 5" in out
    assert "[10, 100, 76]" in out and "[10, 128, 41]" in out
    assert "cache hits: 0 / 10" in out
    assert "broken.wav" in out  # skipped, and the report says so
    assert cli.main(args + ["--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["cache_hits"] == 10 and summary["frame_dims"] == 76


def test_missing_corpus_is_a_clear_error(tmp_path, capsys):
    assert cli.main(["features", "--corpus", "emodb", "--data-dir", str(tmp_path / "nowhere"), "--no-download"]) == 2
    err = capsys.readouterr().err
    assert "nowhere" in err and "Fix:" in err


def test_train_prints_per_fold_table(tmp_path, capsys):
    corpus = _corpus(tmp_path)
    rc = cli.main(["train", "--corpus", str(corpus), "--cache-dir", str(tmp_path / "cache"), "--jobs", "1", "--duration", "1.0",
                   "--model", "urlm", "--profile", "quick", "--folds", "2", "--run-dir", str(tmp_path / "runs"), "--summary", ""])
    out = capsys.readouterr().out
    assert rc == 0
    assert "fold0" in out and "fold1" in out and "[protocol: paper]" in out
