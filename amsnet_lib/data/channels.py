"""Channel simulation: fixed channel conditions (the channel-shift benchmark) and random ones (training augmentation).

A condition changes how audio was captured, not what was said: telephone band, level, noise,
microphone response, room. The filters come from scipy.signal, resampling from soxr, noise
from numpy's seeded generator; only the reverberation's room response is made here (an
exponentially decaying noise burst, the statistical model of late reverberation), because no
library available to this project makes one: audiomentations (RoomSimulator needs pyroomacoustics)
requires soxr < 1, against the project's soxr 1.1.0 pin.

Training augmentation (:func:`augmented_features`) adds, for every training utterance, perturbed
copies: through a random channel drawn by :func:`random_channel` (``channels``), played 0.9 and
1.1 times as fast (``speed``, :func:`speed_perturb`: Kaldi's speed perturbation, Ko et al. 2015,
which changes tempo and pitch together), or shifted by -2 and +2 semitones with tempo and duration
kept (``pitch``, :func:`pitch_shift`: ``librosa.effects.pitch_shift``; pitch shifting after
Schlüter & Grill 2015).
Speed and pitch change the voice, for speakers the training set lacks (issue #38); both are built
and tested, and neither has yet been chosen on validation speakers (``speed`` is the tuned URLM's,
chosen on the stratified validation splits of EmoDB's paper protocol; ``pitch`` has trained nothing
yet). Vocal-tract length
perturbation (VTLP, Jaitly & Hinton 2013) is not offered: it warps the frequency axis of a
spectrogram, and no well-kept library implements it for waveforms (nlpaug's ``VtlpAug`` is
unmaintained), so it would have to be written here; pitch shifting and speed perturbation cover much
of what it varies. The derived audio is written once to a folder and its
features go through :func:`~amsnet_lib.data.features.extract_features` and its cache like any other
file. The copies carry ``source`` (the original's path) in the table, so that folds are drawn over
the originals and the training engine keeps every copy of a validation or test utterance out of
the fit part.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..config import AUGMENTATIONS

__all__ = ["AUGMENTATIONS", "CONDITIONS", "PITCH_SEMITONES", "SPEED_FACTORS", "apply_channel", "augmented_features",
           "pitch_shift", "random_channel", "speed_perturb"]

#: Fixed conditions of the channel-shift benchmark (benchmarks/channel_shift.py).
CONDITIONS = ("clean", "telephone", "gain-20dB", "snr20", "snr10", "eq-tilt", "reverb")
#: Speed factors of ``speed`` augmentation, one copy each (Ko et al. 2015: 0.9, 1.0, 1.1).
SPEED_FACTORS = (0.9, 1.1)
#: Pitch shifts of ``pitch`` augmentation in semitones, one copy each: ±2 semitones, a factor of
#: 2^(±2/12) = 0.89 and 1.12, about the pitch change of Ko et al.'s speed factors 0.9 and 1.1 without
#: their change of tempo; two copies, as ``speed`` makes. Not searched.
PITCH_SEMITONES = (-2.0, 2.0)
#: Copies per utterance of each augmentation.
COPIES = {"none": 0, "channels": 1, "speed": len(SPEED_FACTORS), "pitch": len(PITCH_SEMITONES)}


def _telephone(x, sr, low=300.0, high=3400.0, narrow_rate=8000):
    import scipy.signal as ss
    import soxr

    narrow = soxr.resample(x, sr, narrow_rate, quality="HQ")
    sos = ss.butter(4, [low, high], btype="bandpass", fs=narrow_rate, output="sos")
    narrow = ss.sosfiltfilt(sos, narrow).astype(np.float32)
    return soxr.resample(narrow, narrow_rate, sr, quality="HQ")[: len(x)]


def _noise(x, snr_db, rng):
    power = float(np.mean(x.astype(np.float64) ** 2))
    return x + rng.standard_normal(len(x)) * np.sqrt(power / 10 ** (snr_db / 10))


def _tilt(x, sr, db_at_nyquist):
    """Linear-phase FIR (scipy.signal.firwin2), flat to 100 Hz, then a straight line to ``db`` at sr/2."""
    import scipy.signal as ss

    h = ss.firwin2(255, [0.0, 100.0, sr / 2], [1.0, 1.0, 10 ** (db_at_nyquist / 20)], fs=sr)
    return ss.fftconvolve(x, h, mode="same")


def _reverb(x, sr, rt60, rng):
    import scipy.signal as ss

    t = np.arange(int(rt60 * sr)) / sr
    ir = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60) * 0.1  # -60 dB at rt60
    ir[0] = 1.0  # the direct path
    y = ss.fftconvolve(x, ir)[: len(x)]
    # the dry signal's level: the room changes, not the loudness
    return y * np.sqrt(np.mean(x.astype(np.float64) ** 2) / max(float(np.mean(y ** 2)), 1e-20))


def apply_channel(x: np.ndarray, condition: str, sample_rate: int = 16000, seed: int = 0) -> np.ndarray:
    """``x`` through one of the benchmark's fixed :data:`CONDITIONS`.

    Args:
        x: float32 ``(n_samples,)`` mono audio at ``sample_rate``.
        condition: ``clean``; ``telephone`` (8 kHz, 300-3400 Hz Butterworth band-pass of order 4);
            ``gain-20dB``; ``snr20`` / ``snr10`` (white noise at that SNR, dB); ``eq-tilt`` (falling
            12 dB from 100 Hz to 8 kHz: a dull microphone); ``reverb`` (RT60 0.5 s).
        seed: of the noise (``snr*``, ``reverb``).

    Returns:
        float32 ``(n_samples,)``, same rate and length.
    """
    x = np.asarray(x, np.float32)
    rng = np.random.default_rng(seed)
    if condition == "clean":
        y = x
    elif condition == "telephone":
        y = _telephone(x, sample_rate)
    elif condition == "gain-20dB":
        y = x * 10 ** (-20 / 20)
    elif condition in ("snr20", "snr10"):
        y = _noise(x, float(condition[3:]), rng)
    elif condition == "eq-tilt":
        y = _tilt(x, sample_rate, -12.0)
    elif condition == "reverb":
        y = _reverb(x, sample_rate, 0.5, rng)
    else:
        raise ValueError(f"unknown channel condition {condition!r}; known: {', '.join(CONDITIONS)}")
    return np.asarray(y, np.float32)


def random_channel(x: np.ndarray, sample_rate: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """``x`` through a random channel: each effect applied with probability 0.5, its strength drawn at random.

    Effects (in this order): band limit (low cut 100-400 Hz, high cut 3-7 kHz, through a 16 kHz
    band-pass of scipy.signal), spectral tilt (-10 to +6 dB at 8 kHz), room (RT60 0.2-0.8 s),
    noise (SNR 5-30 dB), gain (-25 to +6 dB, kept below full scale). Ranges overlap the
    benchmark's conditions without sitting on them.

    Returns:
        ``(y, description)``: float32 audio of the same length, and what was applied.
    """
    import scipy.signal as ss

    y = np.asarray(x, np.float32).astype(np.float64)
    done = []
    if rng.random() < 0.5:
        lo, hi = rng.uniform(100, 400), rng.uniform(3000, 7000)
        y = ss.sosfiltfilt(ss.butter(4, [lo, hi], btype="bandpass", fs=sample_rate, output="sos"), y)
        done.append(f"band {lo:.0f}-{hi:.0f} Hz")
    if rng.random() < 0.5:
        db = rng.uniform(-10, 6)
        y = _tilt(y, sample_rate, db)
        done.append(f"tilt {db:+.1f} dB")
    if rng.random() < 0.5:
        rt60 = rng.uniform(0.2, 0.8)
        y = _reverb(y, sample_rate, rt60, rng)
        done.append(f"reverb {rt60:.2f} s")
    if rng.random() < 0.5:
        snr = rng.uniform(5, 30)
        y = _noise(y, snr, rng)
        done.append(f"noise {snr:.0f} dB SNR")
    if rng.random() < 0.5:
        db = rng.uniform(-25, 6)
        y = y * 10 ** (db / 20)
        done.append(f"gain {db:+.1f} dB")
    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    if peak > 0.99:  # the derived file stays a valid recording: no clipping added by the augmentation
        y = y * (0.99 / peak)
    return y.astype(np.float32), ", ".join(done) or "unchanged"


def speed_perturb(x: np.ndarray, factor: float, sample_rate: int = 16000) -> np.ndarray:
    """``x`` played ``factor`` times as fast: tempo and pitch scaled together, as a tape or Kaldi's
    speed perturbation does (resampled by soxr from ``factor · sample_rate`` to ``sample_rate``).

    Args:
        x: float32 ``(n_samples,)`` mono audio at ``sample_rate`` (Hz).
        factor: speed, > 0 (0.9: 10 % slower and lower).

    Returns:
        float32 ``(round(n_samples / factor),)`` at ``sample_rate``.
    """
    import soxr

    if not factor > 0:
        raise ValueError(f"speed factor must be > 0, got {factor!r}")
    return np.asarray(soxr.resample(np.asarray(x, np.float32), factor * sample_rate, sample_rate, quality="HQ"),
                      np.float32)


def pitch_shift(x: np.ndarray, semitones: float, sample_rate: int = 16000) -> np.ndarray:
    """``x`` with its pitch moved by ``semitones`` and its tempo and duration kept: the voice made higher
    or lower, the timing of what is said unchanged.

    ``librosa.effects.pitch_shift`` (librosa 0.11.0, the ``[train]`` extra): a phase-vocoder time
    stretch by 2^(-semitones/12), then resampling by soxr (``soxr_hq``) back to the original length.
    Pitch shifting was the most helpful of the label-preserving audio augmentations Schlüter & Grill
    2015 compared ("Exploring data augmentation for improved singing voice detection with neural
    networks", ISMIR; they shifted spectrograms, this shifts the waveform). Formants move with the
    pitch, as in speed perturbation (Ko et al. 2015, "Audio augmentation for speech recognition",
    Interspeech), but the duration does not.

    Args:
        x: float32 ``(n_samples,)`` mono audio at ``sample_rate`` (Hz).
        semitones: the shift; negative lowers the pitch.

    Returns:
        float32 ``(n_samples,)`` at ``sample_rate``.
    """
    import librosa

    x = np.asarray(x, np.float32)
    if not np.isfinite(semitones):
        raise ValueError(f"pitch shift must be a finite number of semitones, got {semitones!r}")
    return np.asarray(librosa.effects.pitch_shift(x, sr=sample_rate, n_steps=float(semitones)), np.float32)


def _perturb(augment: str, x: np.ndarray, sample_rate: int, k: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Copy ``k`` of ``x`` under ``augment``, and what was applied."""
    if augment == "speed":
        factor = SPEED_FACTORS[k % len(SPEED_FACTORS)]
        return speed_perturb(x, factor, sample_rate), f"speed {factor:g}"
    if augment == "pitch":
        steps = PITCH_SEMITONES[k % len(PITCH_SEMITONES)]
        return pitch_shift(x, steps, sample_rate), f"pitch {steps:+g} semitones"
    return random_channel(x, sample_rate, rng)


def _seed(*parts) -> int:
    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:4], "little")


def augmented_features(features, augment: str = "channels", *, audio_dir=None, copies: int | None = None,
                       feature_cache=None, progress: bool = True):
    """``features`` plus perturbed copies of every utterance (features cached like the rest).

    Args:
        features: the training utterances' :class:`~amsnet_lib.data.features.Features` (their table's ``path``
            files must be readable).
        augment: ``channels`` (see :func:`random_channel`), ``speed`` (copy k at speed
            ``SPEED_FACTORS[k % 2]``, :func:`speed_perturb`), ``pitch`` (copy k shifted by
            ``PITCH_SEMITONES[k % 2]`` semitones, :func:`pitch_shift`); ``none`` returns ``features`` unchanged.
        audio_dir: where the derived audio is written (once: an existing file is reused); default
            ``augmented/`` beside the feature cache.
        copies: perturbed copies per utterance (default :data:`COPIES` of ``augment``).
        feature_cache: feature cache folder (default :func:`~amsnet_lib.data.features.default_cache_dir`).

    Returns:
        :class:`Features` of the originals followed by the copies; the table gains ``source``
        (empty for an original, the original's path for a copy), ``channel`` (what was applied) and
        ``augment`` (``augment``; ``none`` for an original).
        The same input gives the same copies on every run (seeded by file name and copy number).
        Features that already hold ``augment`` copies (a bundle saved with them) are returned as they
        are, so a machine without the audio trains on them.
    """
    if augment not in AUGMENTATIONS:
        raise ValueError(f"augment must be one of {', '.join(AUGMENTATIONS)}, got {augment!r}")
    copies = COPIES[augment] if copies is None else copies
    if augment == "none" or copies < 1:
        return features
    if "augment" in features.table.columns and (features.table["augment"] == augment).any():
        # a bundle saved with its copies (amsnet features --save --augment): nothing to derive, and no
        # audio library imported, so a machine without them trains on it
        return features
    import pandas as pd
    import soundfile as sf
    from tqdm.auto import tqdm

    from ..atomic import atomic_path
    from .audio import load_audio
    from .features import Features, extract_features

    if audio_dir is None:
        from ..paths import default_cache_dir

        audio_dir = Path(feature_cache or default_cache_dir()).parent / "augmented"
    audio_dir = Path(audio_dir)
    sr = features.config.sample_rate
    rows = []
    items = [(k, row) for k in range(copies) for row in features.table.to_dict("records")]
    for k, row in tqdm(items, desc="augment", unit="file", disable=not progress):
        name = Path(row["path"]).stem
        dst = audio_dir / augment / f"{name}.{k}.wav"
        rng = np.random.default_rng(_seed(augment, Path(row["path"]).name, k))
        y, what = _perturb(augment, load_audio(row["path"], sample_rate=sr), sr, k, rng)  # made even if cached: same text
        if not dst.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(dst) as tmp:
                sf.write(tmp, y, sr, subtype="FLOAT", format="WAV")
        rows.append({**row, "path": str(dst), "source": str(row["path"]), "channel": what, "augment": augment})
    table = pd.DataFrame(rows)
    table.attrs = dict(features.table.attrs)
    extra = extract_features(table, features.config, cache_dir=feature_cache, n_jobs=1, progress=progress,
                             skip_bad=False)  # a copy of a usable file must be usable: rows stay aligned
    originals = features.table.assign(source="", channel="clean", augment="none")
    both = pd.concat([originals, extra.table], ignore_index=True)
    both.attrs = dict(features.table.attrs)
    return Features(frames=np.concatenate([features.frames, extra.frames]), mask=np.concatenate([features.mask, extra.mask]),
                    spec=np.concatenate([features.spec, extra.spec]), labels=np.concatenate([features.labels, extra.labels]),
                    classes=list(features.classes), table=both, config=features.config,
                    cache_hits=features.cache_hits + extra.cache_hits, warnings=list(features.warnings) + list(extra.warnings))
