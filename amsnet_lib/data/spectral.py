"""The utterance-level stream's spectrogram (paper §4.2) and silence trimming, in numpy alone.

The project computed both with librosa 0.11.0 (``feature.melspectrogram`` and
``effects.trim``). librosa brings numba, llvmlite and scikit-learn (about 270 MB): more than a
third of an install that only predicts. These functions repeat librosa's arithmetic step by step
(the same window, padding, FFT precision, casts and reductions), so that they return librosa's
numbers bit for bit; ``tests/test_spectral.py`` checks that against librosa on real speech
wherever librosa is installed (the ``[test]`` extra). The feature cache's key therefore still
names librosa 0.11.0 as the spectrogram's reference (:mod:`amsnet_lib.data.features`).

Mel scale: Slaney's (Auditory Toolbox), linear below 1 kHz and logarithmic above, with
area-normalised triangles; the STFT is centred with zero padding, as librosa's defaults.
"""
from __future__ import annotations

import numpy as np

from ..config import FeatureConfig

__all__ = ["hz_to_mel", "mel_to_hz", "mel_filterbank", "power_spectrogram", "log_mel_spectrogram",
           "silence_span", "trim_silence"]

#: Slaney's mel scale: 3 mels per 200 Hz up to 1 kHz, then 27 mels per factor 6.4 in frequency.
_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0


def hz_to_mel(hz) -> np.ndarray:
    """Frequencies in Hz to Slaney mels (float64, shape of ``hz``)."""
    hz = np.asanyarray(hz, dtype=np.float64)
    mels = hz / _F_SP
    log = hz >= _MIN_LOG_HZ
    return np.where(log, _MIN_LOG_MEL + np.log(np.where(log, hz, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP, mels)


def mel_to_hz(mels) -> np.ndarray:
    """Slaney mels to Hz (float64, shape of ``mels``); the inverse of :func:`hz_to_mel`."""
    mels = np.asanyarray(mels, dtype=np.float64)
    hz = _F_SP * mels
    log = mels >= _MIN_LOG_MEL
    return np.where(log, _MIN_LOG_HZ * np.exp(_LOGSTEP * (mels - _MIN_LOG_MEL)), hz)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Triangular mel filters from 0 Hz to the Nyquist frequency, each divided by its width in Hz
    (Slaney's area normalisation).

    Returns:
        float32 ``(n_mels, 1 + n_fft // 2)``: row ``m`` weighs the FFT bins of mel band ``m``.
    """
    weights = np.zeros((n_mels, 1 + n_fft // 2), dtype=np.float32)
    bins_hz = np.fft.rfftfreq(n=n_fft, d=1.0 / sample_rate)
    # band edges: n_mels + 2 points equally spaced in mels
    edges = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(float(sample_rate) / 2), n_mels + 2))
    width = np.diff(edges)
    ramps = np.subtract.outer(edges, bins_hz)
    for m in range(n_mels):
        rising = -ramps[m] / width[m]
        falling = ramps[m + 2] / width[m + 1]
        weights[m] = np.maximum(0, np.minimum(rising, falling))
    weights *= (2.0 / (edges[2:n_mels + 2] - edges[:n_mels]))[:, np.newaxis]  # in float64, as librosa
    return weights


def _hann(n: int) -> np.ndarray:
    """Periodic Hann window of ``n`` samples (float64), computed as ``scipy.signal.get_window``."""
    phase = np.linspace(-np.pi, np.pi, n + 1)
    window = np.zeros(n + 1)
    window += 0.5 * np.cos(0 * phase)
    window += 0.5 * np.cos(1 * phase)
    return window[:n]


def _frames(signal: np.ndarray, length: int, hop: int) -> np.ndarray:
    """Frames of ``signal`` zero-padded by ``length // 2`` on both sides, ``(n_frames, length)`` (a view)."""
    padded = np.pad(signal, (length // 2, length // 2), mode="constant")
    return np.lib.stride_tricks.sliding_window_view(padded, length)[::hop]


def power_spectrogram(signal: np.ndarray, n_fft: int, win_length: int, hop_length: int) -> np.ndarray:
    """|STFT|² of ``signal`` with a periodic Hann window, centred frames and zero padding.

    Args:
        signal: float32 ``(n_samples,)``.

    Returns:
        float32 ``(1 + n_fft // 2, 1 + n_samples // hop_length)``.
    """
    window = np.zeros(n_fft)
    left = (n_fft - win_length) // 2
    window[left:left + win_length] = _hann(win_length)
    # float64 products and FFT, stored in complex64: the precision of librosa's stft for float32 audio
    spectrum = np.fft.rfft(window * _frames(signal, n_fft, hop_length), axis=-1).astype(np.complex64)
    return np.abs(spectrum.T) ** 2.0


def log_mel_spectrogram(signal: np.ndarray, config: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """Log-mel spectrogram of a fixed-length utterance (paper §4.2).

    The signal is padded with silence (zeros, at the end) or cut to ``config.duration`` seconds.

    Returns:
        float32 ``(n_mels, T)`` with ``T = 1 + n_samples // hop_length`` (121 for 3 s),
        natural log of mel power plus ``config.log_offset``.
    """
    n = config.n_samples
    fixed = np.zeros(n, dtype=np.float32)
    fixed[: min(n, len(signal))] = signal[:n]
    power = power_spectrogram(fixed, config.n_fft, config.win_length, config.hop_length)
    mel = np.einsum("...ft,mf->...mt", power, _filterbank(config.sample_rate, config.n_fft, config.n_mels), optimize=True)
    return np.log(mel + config.log_offset).astype(np.float32)


_FILTERBANKS: dict[tuple[int, int, int], np.ndarray] = {}


def _filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """:func:`mel_filterbank`, computed once per setting (the bank is a constant; a copy is never handed out)."""
    key = (int(sample_rate), int(n_fft), int(n_mels))
    if key not in _FILTERBANKS:
        _FILTERBANKS[key] = mel_filterbank(*key)
        _FILTERBANKS[key].flags.writeable = False
    return _FILTERBANKS[key]


def silence_span(signal: np.ndarray, config: FeatureConfig = FeatureConfig()) -> tuple[int, int]:
    """``(start, end)`` sample indices of what :func:`trim_silence` keeps (``(0, n_samples)``: all of it),
    so that callers can place what they score in the original recording.

    The RMS of 50-ms frames (12.5-ms hop, centred, zero-padded) in dB below the loudest frame: the
    span runs from the first frame above ``-config.trim_db`` to the end of the last one.
    """
    if not config.trim_db or signal.size == 0:
        return 0, int(signal.size)
    length = int(round(0.05 * config.sample_rate))
    hop = length // 4
    rms = np.sqrt(np.mean(np.square(_frames(signal, length, hop)), axis=-1))
    power = np.square(rms)
    peak = np.max(rms) ** 2
    db = 10.0 * np.log10(np.maximum(1e-10, power)) - 10.0 * np.log10(np.maximum(1e-10, peak))
    loud = np.flatnonzero(db > -float(config.trim_db))
    if loud.size == 0:
        return 0, int(signal.size)
    start, end = int(loud[0] * hop), min(int(signal.size), int((loud[-1] + 1) * hop))
    return (start, end) if end > start else (0, int(signal.size))


def trim_silence(signal: np.ndarray, config: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """``signal`` without its leading and trailing silence when ``config.trim_db`` is set
    (:class:`~amsnet_lib.config.FeatureConfig`), else unchanged.

    Args:
        signal: mono audio at ``config.sample_rate``, float32 ``(n_samples,)``.

    Returns:
        float32 ``(m,)``, ``m <= n_samples``: the span between the first and the last 50-ms frame
        (12.5-ms hop) within ``trim_db`` dB of the loudest one; an all-silent signal is returned whole.
    """
    start, end = silence_span(signal, config)
    return signal[start:end] if (start, end) != (0, signal.size) else signal
