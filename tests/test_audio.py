"""amsnet_lib.data.audio: decoding, resampling, mono mixdown, bounded reads, and every bad input."""
from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from amsnet_lib.data.audio import MIN_DURATION, audio_info, inspect_audio, load_audio
from amsnet_lib.errors import AmsnetError, AudioError
from signals import sine


def _peak_frequency(signal: np.ndarray, sample_rate: int) -> float:
    """Frequency in Hz of the largest FFT bin (Hann-windowed)."""
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    return float(np.argmax(spectrum) * sample_rate / len(signal))


# --- formats -------------------------------------------------------------------------------

@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_wav_subtypes_load_as_float32(write_audio, subtype):
    path = write_audio(f"x_{subtype}.wav", subtype=subtype)
    x = load_audio(path)
    assert x.dtype == np.float32 and x.shape == (8000,)
    np.testing.assert_allclose(x, sine(0.5), atol=1e-4)


def test_float_wav_keeps_values(write_audio):
    signal = sine(0.5, amplitude=0.25)
    path = write_audio("float.wav", signal=signal, subtype="FLOAT")
    assert sf.info(str(path)).subtype == "FLOAT"
    np.testing.assert_array_equal(load_audio(path), signal)


def test_flac(write_audio):
    path = write_audio("x.flac", subtype="PCM_16")
    assert sf.info(str(path)).format == "FLAC"
    np.testing.assert_allclose(load_audio(path), sine(0.5), atol=1e-4)
    assert audio_info(path) == (0.5, 16000, 1)


@pytest.mark.parametrize("name,format", [("flac_content.wav", "FLAC"), ("wav_content.flac", "WAV"),
                                         ("no_extension", "WAV"), ("odd.mp4", "FLAC")])
def test_lying_extension_is_detected_by_content(write_audio, name, format):
    path = write_audio(name, format=format)
    np.testing.assert_allclose(load_audio(path), sine(0.5), atol=1e-4)
    assert audio_info(path) == (0.5, 16000, 1)


def test_text_file_named_wav_is_a_clear_error(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("these are not samples\n" * 50)
    with pytest.raises(AudioError, match="cannot be decoded as audio") as info:
        load_audio(path)
    assert info.value.path == str(path) and "Fix:" in str(info.value)


# --- resampling and channels ---------------------------------------------------------------

@pytest.mark.parametrize("rate", [8000, 11025, 22050, 44100, 48000])
def test_any_rate_is_resampled_to_16k_keeping_length_and_frequency(write_audio, rate):
    path = write_audio(f"r{rate}.wav", sample_rate=rate, duration=1.0, freq=1000.0, subtype="FLOAT")
    x = load_audio(path, sample_rate=16000)
    assert abs(len(x) - 16000) <= 1
    assert _peak_frequency(x, 16000) == pytest.approx(1000.0, abs=2.0)
    # Away from the edges the resampled sine matches the ideal one (soxr HQ).
    np.testing.assert_allclose(x[1000:-1000], sine(1.0, 16000, 1000.0)[1000:-1000], atol=2e-3)


def test_other_target_rate(write_audio):
    path = write_audio("x.wav", sample_rate=16000, duration=1.0, freq=300.0)
    x = load_audio(path, sample_rate=8000)
    assert abs(len(x) - 8000) <= 1
    assert _peak_frequency(x, 8000) == pytest.approx(300.0, abs=2.0)


def test_stereo_is_averaged_to_mono(write_audio):
    left, right = sine(0.5, amplitude=0.6), sine(0.5, freq=880.0, amplitude=0.2)
    path = write_audio("stereo.wav", signal=np.stack([left, right], axis=1), subtype="FLOAT")
    x = load_audio(path)
    assert x.shape == (8000,)
    np.testing.assert_allclose(x, (left + right) / 2, atol=1e-6)
    assert audio_info(path) == (0.5, 16000, 2)


def test_multichannel_flac_at_44k(write_audio):
    path = write_audio("six.flac", sample_rate=44100, duration=0.5, channels=6)
    x = load_audio(path)
    assert x.ndim == 1 and abs(len(x) - 8000) <= 1
    assert audio_info(path) == (0.5, 44100, 6)


# --- length --------------------------------------------------------------------------------

def test_very_long_file_reads_only_max_duration(write_audio, monkeypatch):
    path = write_audio("long.wav", sample_rate=44100, duration=120.0)
    requested = []
    real_read = sf.SoundFile.read

    def spy(self, frames=-1, *args, **kwargs):
        requested.append(frames)
        return real_read(self, frames, *args, **kwargs)

    monkeypatch.setattr(sf.SoundFile, "read", spy)
    x = load_audio(path, max_duration=2.0)
    assert abs(len(x) - 32000) <= 1
    assert requested == [88200]  # 2 s at 44.1 kHz, never the whole 120 s
    assert len(load_audio(path, max_duration=1000.0)) == pytest.approx(120 * 16000, abs=1)
    assert audio_info(path)[0] == pytest.approx(120.0)


def test_very_short_file_is_rejected(write_audio):
    path = write_audio("short.wav", duration=MIN_DURATION / 2)
    for read in (load_audio, audio_info):
        with pytest.raises(AudioError, match="too short"):
            read(path)
    ok = write_audio("just_long_enough.wav", duration=MIN_DURATION)
    assert len(load_audio(ok)) == 1600


def test_empty_file_is_rejected(write_audio, tmp_path):
    path = write_audio("empty.wav", signal=np.zeros(0, np.float32))
    for read in (load_audio, audio_info):
        with pytest.raises(AudioError, match="no audio samples"):
            read(path)
    zero_bytes = tmp_path / "zero.wav"
    zero_bytes.write_bytes(b"")
    with pytest.raises(AudioError, match="cannot be decoded"):
        load_audio(zero_bytes)


# --- corrupt / unreadable ------------------------------------------------------------------

def test_random_bytes_are_unreadable(tmp_path):
    path = tmp_path / "noise.wav"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    for read in (load_audio, audio_info):
        with pytest.raises(AudioError, match="cannot be decoded") as info:
            read(path)
        assert str(info.value).startswith(str(path)) and "Fix:" in str(info.value)


def test_truncated_header_is_unreadable(write_audio):
    path = write_audio("cut.wav")
    path.write_bytes(path.read_bytes()[:30])
    with pytest.raises(AudioError, match="cannot be decoded"):
        load_audio(path)


def test_non_finite_samples_are_rejected(write_audio):
    signal = sine(0.5)
    signal[100] = np.nan
    path = write_audio("nan.wav", signal=signal, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN or infinite"):
        load_audio(path)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_permission_denied(write_audio):
    path = write_audio("locked.wav")
    path.chmod(0)
    with pytest.raises(AudioError, match="permission denied"):
        load_audio(path)


# --- wrong paths ---------------------------------------------------------------------------

def test_missing_path(tmp_path):
    path = tmp_path / "nowhere" / "x.wav"
    for read in (load_audio, audio_info):
        with pytest.raises(AudioError, match="does not exist") as info:
            read(path)
        assert info.value.path == str(path)
        assert isinstance(info.value, AmsnetError) and isinstance(info.value, ValueError)


def test_directory_instead_of_file(tmp_path):
    folder = tmp_path / "clips.wav"
    folder.mkdir()
    for read in (load_audio, audio_info):
        with pytest.raises(AudioError, match="is a directory"):
            read(folder)


def test_bad_arguments(write_audio):
    path = write_audio("x.wav")
    with pytest.raises(ValueError, match="sample_rate"):
        load_audio(path, sample_rate=0)
    with pytest.raises(ValueError, match="max_duration"):
        load_audio(path, max_duration=0)


# --- inspect_audio -------------------------------------------------------------------------

def test_clean_signal_has_no_warnings(write_audio):
    assert inspect_audio(load_audio(write_audio("x.wav"))) == []


def test_silent(write_audio):
    path = write_audio("silence.wav", signal=np.zeros(16000, np.float32))
    x = load_audio(path)  # silence loads fine; it is only a warning
    assert inspect_audio(x) == ["silent"]
    assert inspect_audio(np.full(100, 5e-5, np.float32)) == ["silent"]
    assert inspect_audio(np.zeros(0, np.float32)) == ["silent"]


def test_clipped(write_audio):
    overdriven = np.clip(sine(1.0, amplitude=3.0), -1.0, 1.0)
    path = write_audio("clipped.wav", signal=overdriven, subtype="PCM_16")
    assert inspect_audio(load_audio(path)) == ["clipped"]
    # One full-scale click in a second of speech is not clipping (< 0.1 % of samples).
    clicked = sine(1.0, amplitude=0.3)
    clicked[500] = 1.0
    assert inspect_audio(clicked) == []
    # Float audio above full scale was not cut off: it is named for what it is (issue 41), not "clipped".
    (warning,) = inspect_audio(sine(1.0, amplitude=1.5))
    assert warning.startswith("over full scale (peak 1.50)") and "clipped" not in warning
