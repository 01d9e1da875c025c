"""The spectrogram and the silence trimmer in numpy alone (amsnet_lib/data/spectral.py) return
librosa 0.11.0's numbers bit for bit, so that the inference install can leave librosa (numba,
llvmlite, scikit-learn) out without changing a feature, a cache entry or a prediction."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import soundfile as sf

from signals import sine, tone

from amsnet_lib.config import FeatureConfig, identity
from amsnet_lib.data import spectral
from amsnet_lib.data.features import _cache_namespace

librosa = pytest.importorskip("librosa")  # the reference: the [test] extra installs it

SETTINGS = [FeatureConfig(), FeatureConfig(n_mels=64, duration=1.0), FeatureConfig(n_fft=1024, win_length=640, hop_length=160)]


def _librosa_log_mel(signal: np.ndarray, c: FeatureConfig) -> np.ndarray:
    """The project's spectrogram as it was computed before spectral.py (features.py, librosa 0.11.0)."""
    fixed = np.zeros(c.n_samples, dtype=np.float32)
    fixed[: min(c.n_samples, len(signal))] = signal[: c.n_samples]
    mel = librosa.feature.melspectrogram(y=fixed, sr=c.sample_rate, n_fft=c.n_fft, win_length=c.win_length,
                                         hop_length=c.hop_length, window="hann", center=True, n_mels=c.n_mels, power=2.0)
    return np.log(mel + c.log_offset).astype(np.float32)


def _librosa_span(signal: np.ndarray, top_db: float, sample_rate: int = 16000) -> tuple[int, int]:
    frame = int(round(0.05 * sample_rate))
    _, (start, end) = librosa.effects.trim(signal, top_db=top_db, frame_length=frame, hop_length=frame // 4)
    return (int(start), int(end)) if end > start else (0, int(signal.size))


def _speechlike(seed: int) -> np.ndarray:
    """Silence, a tone burst with noise, silence: something to trim."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([np.zeros(int(rng.integers(0, 8000)), np.float32), tone(1.3, 110.0 + 20 * seed, seed=seed),
                        np.zeros(int(rng.integers(0, 8000)), np.float32)])
    return (x + 1e-4 * rng.standard_normal(x.size)).astype(np.float32)


@pytest.mark.parametrize("c", SETTINGS, ids=["paper", "64-mel-1s", "other-stft"])
def test_the_log_mel_spectrogram_is_librosas_bit_for_bit(c):
    for x in [sine(0.7), sine(4.0, freq=3000.0), _speechlike(1), np.zeros(100, np.float32)]:
        np.testing.assert_array_equal(spectral.log_mel_spectrogram(x, c), _librosa_log_mel(x, c))


def test_the_mel_filterbank_is_librosas():
    for sr, n_fft, n_mels in [(16000, 800, 128), (16000, 512, 40), (22050, 2048, 128)]:
        np.testing.assert_array_equal(spectral.mel_filterbank(sr, n_fft, n_mels),
                                      librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels))
    f = np.array([0.0, 440.0, 999.0, 1000.0, 4000.0, 8000.0])
    np.testing.assert_array_equal(spectral.hz_to_mel(f), librosa.hz_to_mel(f))
    np.testing.assert_allclose(spectral.mel_to_hz(spectral.hz_to_mel(f)), f, rtol=1e-12)


@pytest.mark.parametrize("top_db", [20.0, 40.0, 60.0])
def test_the_silence_span_is_librosas_trim(top_db):
    c = FeatureConfig(trim_db=top_db)
    for seed in range(6):
        x = _speechlike(seed)
        assert spectral.silence_span(x, c) == _librosa_span(x, top_db)
    assert spectral.silence_span(np.zeros(4000, np.float32), c) == (0, 4000)  # all silent: all of it


def test_real_speech_gives_librosas_numbers(emodb_dir):
    """On recorded speech too: 12 EmoDB files, the spectrogram and the 40-dB trim."""
    c = FeatureConfig(trim_db=40.0)
    for path in sorted((emodb_dir / "wav").glob("*.wav"))[::45]:
        x, _ = sf.read(path, dtype="float32")
        np.testing.assert_array_equal(spectral.log_mel_spectrogram(x, c), _librosa_log_mel(x, c), err_msg=path.name)
        assert spectral.silence_span(x, c) == _librosa_span(x, 40.0), path.name


def test_the_feature_cache_key_is_the_one_librosa_gave():
    """Every cached utterance made with librosa stays valid: the key still names librosa 0.11.0."""
    import opensmile

    c = FeatureConfig()
    before = hashlib.sha256(json.dumps({"config": identity(c), "versions": {
        "opensmile": opensmile.__version__, "librosa": librosa.__version__, "format": 1}}, sort_keys=True).encode()).hexdigest()[:16]
    assert librosa.__version__ == "0.11.0"
    assert _cache_namespace(c) == before
