"""Plain helpers shared by test modules (fixtures live in conftest.py).

Kept out of conftest.py: ``notebooks/conftest.py`` is collected in the same session, and two
modules named ``conftest`` cannot both be imported by name.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from amsnet_lib.serve.checkpoint import save_checkpoint
from amsnet_lib.config import FeatureConfig

REPO_ROOT = Path(__file__).resolve().parents[1]


def find_emodb() -> Path | None:
    """The EmoDB folder the tests use: where the project itself looks (``$AMSNET_EMODB_DIR``, else
    ``<repo>/data/emodb``, where ``./run_all.sh`` downloads it), else the shared copy beside the clone."""
    from amsnet_lib.data.corpora import resolve_data_dir

    for candidate in (resolve_data_dir("emodb"), REPO_ROOT.parent / "shared" / "data" / "emodb"):
        if (Path(candidate) / "wav").is_dir():
            return Path(candidate)
    return None


def sine(duration: float = 0.5, sample_rate: int = 16000, freq: float = 440.0, amplitude: float = 0.5) -> np.ndarray:
    """A float32 sine, shape ``(round(duration * sample_rate),)``."""
    t = np.arange(int(round(duration * sample_rate))) / sample_rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


#: Tiny feature setting of the test model: 1-s utterances (q = 100 frames, 41 spectrogram frames).
TINY_FEATURES = FeatureConfig(duration=1.0)
TINY_CLASSES = ["high", "low"]


def tone(seconds: float, f0: float, sr: int = 16000, seed: int = 0, amp: float = 0.3) -> np.ndarray:
    """A voiced-sounding tone (fundamental + 2 harmonics + a little noise), float32."""
    t = np.arange(int(round(seconds * sr))) / sr
    rng = np.random.default_rng(seed)
    x = sum(amp / (k + 1) * np.sin(2 * np.pi * f0 * (k + 1) * t) for k in range(3))
    return (x + 0.005 * rng.standard_normal(len(t))).astype(np.float32)


def tiny_checkpoint(base: Path) -> Path:
    """Quick-profile AMSNet trained by ``fit_final`` on 12 tone WAVs (2 classes; ``base/tiny/corpus``, recorded in
    the checkpoint as its training files); built once under ``base``."""
    out = base / "tiny" / "amsnet_tiny.pt"
    if out.is_file():
        return out
    from amsnet_lib.data.corpora import load_corpus
    from amsnet_lib.data.features import extract_features
    from amsnet_lib.studies import experiment
    from amsnet_lib.train.training import fit_final

    corpus = base / "tiny" / "corpus"
    for i in range(6):
        for label, f0 in (("high", 320.0), ("low", 110.0)):
            path = corpus / label / f"{label}{i}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, tone(0.8 + 0.1 * i, f0 * (1 + 0.03 * i), seed=i), 16000)
    table = load_corpus(corpus)
    exp = experiment("custom", "amsnet", "paper", "quick", features=TINY_FEATURES)
    feats = extract_features(table, exp.features, cache_dir=base / "tiny" / "cache", n_jobs=1, progress=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: 1 thread is ~15x faster on a loaded 2-core machine
    try:
        model, norm = fit_final(exp, feats, store=base / "tiny" / "runs", device="cpu", progress=False)
    finally:
        torch.set_num_threads(threads)
    save_checkpoint(out, model, exp, feats.classes, norm, meta={"data": "synthetic tones", "protocol": "fit_final"},
                    training_table=feats.table)
    return out
