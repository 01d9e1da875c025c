"""Shared fixtures: synthetic audio files and the location of the real EmoDB copy."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO_ROOT = Path(__file__).resolve().parents[1]


def sine(duration: float = 0.5, sample_rate: int = 16000, freq: float = 440.0, amplitude: float = 0.5) -> np.ndarray:
    """A float32 sine, shape ``(round(duration * sample_rate),)``."""
    t = np.arange(int(round(duration * sample_rate))) / sample_rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture
def write_audio(tmp_path):
    """Factory writing an audio file and returning its path.

    ``write_audio(name, signal=None, sample_rate=16000, duration=0.5, freq=440, channels=1,
    subtype=None, format=None)``: ``signal`` (``(n,)`` or ``(n, channels)``) defaults to a sine
    of ``duration`` s copied to ``channels``; ``format`` (``"WAV"``, ``"FLAC"``) defaults to the
    name's extension, so a lying extension is written with ``format`` given explicitly.
    """

    def write(name, signal=None, sample_rate=16000, duration=0.5, freq=440.0, channels=1, subtype=None, format=None):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if signal is None:
            signal = sine(duration, sample_rate, freq)
            if channels > 1:
                signal = np.repeat(signal[:, None], channels, axis=1)
        if format is None:
            format = {".wav": "WAV", ".flac": "FLAC"}.get(path.suffix.lower(), "WAV")
        sf.write(str(path), signal, sample_rate, subtype=subtype, format=format)
        return path

    return write


@pytest.fixture(scope="session")
def emodb_dir() -> Path:
    """The real EmoDB folder: ``$AMSNET_EMODB_DIR``, else ``../shared/data/emodb``; skip if neither."""
    candidates = [os.environ.get("AMSNET_EMODB_DIR"), REPO_ROOT.parent / "shared" / "data" / "emodb"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "wav").is_dir():
            return Path(candidate)
    pytest.skip("EmoDB not available (set AMSNET_EMODB_DIR)")

