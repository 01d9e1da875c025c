"""Unsupervised adaptation: standardise new audio with its own statistics, blended with training's.

A model's features are standardised with the statistics of its training utterances (the
checkpoint's :class:`~amsnet_lib.data.features.Normaliser`). Audio from another microphone, room,
language or speaker has another level, spectral balance and pitch range, so the standardised
features land where the classifier has never seen data. Adaptation standardises the features of
the audio being scored with statistics of that same audio: all of it (``corpus``) or each
speaker's own (``speaker``). No label is read: the functions here take features and speaker names
only.

The rule (per feature dimension; frame stream over valid frames, spectrogram per mel band over
all frames, as :meth:`Normaliser.fit`):

    w      = n / (n + n0)                  n: utterances the statistics come from, n0 = PRIOR_UTTERANCES
    mean   = w * mean_new + (1 - w) * mean_train
    var    = w * (var_new + (mean_new - mean)^2) + (1 - w) * (var_train + (mean_train - mean)^2)

i.e. the mean and variance of a mixture that gives the new audio weight ``w``. With little audio
the training statistics dominate (one utterance: w = 1/11), with much the new audio's (100: 0.91).
``n`` counts utterances, not frames: the frames of one utterance share its speaker, text and
channel, so they are far from independent samples of the new condition.

After per-utterance normalisation (a checkpoint trained with ``normalisation="utterance"``:
:meth:`amsnet_lib.serve.predict.Recognizer.per_utterance` runs first, as training did, and the
statistics here are those of its output) there is little left to adapt: every utterance, of training
and of the new audio alike, already has mean 0 and standard deviation 1 in each IS10 dimension over
its valid frames, so the frame stream's blended statistics stay those of training (up to dimensions
held at the standard-deviation floor). On the log-mel the speech frames are standardised too, and the
statistics differ only through the zero-padding's frames (how many the scored windows hold against
the training utterances). The two compose without error; whether adaptation adds anything after
utterance normalisation has not been measured.

Below :data:`MIN_UTTERANCES` (chosen on a validation speaker: ``python -m benchmarks.channel_shift
--model urlm --split validation``, ``results/tables/adapt_min_audio_urlm_val.md``) adaptation is still
applied, but callers warn
(:func:`too_little_audio`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.features import Normaliser

__all__ = [
    "ADAPT_MODES",
    "MIN_UTTERANCES",
    "PRIOR_UTTERANCES",
    "FeatureMoments",
    "adapt_features",
    "blend",
    "check_mode",
    "normalise",
    "too_little_audio",
]

#: ``none``: the training statistics; ``corpus``: all the audio scored; ``speaker``: each speaker's.
ADAPT_MODES = ("none", "corpus", "speaker")
#: n0 of the blending weight n / (n + n0): the training statistics count as this many utterances.
#: A prior, fixed before any measurement (about 30 s of speech), not tuned on test data.
PRIOR_UTTERANCES = 10.0
#: Fewest utterances per statistics group (all the audio, or one speaker) adaptation needs, read on the
#: validation speaker of the channel-shift benchmark (EmoDB speaker 11, the model trained on 03 08 09 10;
#: ``python -m benchmarks.channel_shift --model urlm --split validation``,
#: results/tables/adapt_min_audio_urlm_val.md): the gain on clean and telephone audio is about nil from
#: one utterance, partial from three, and at 10 reaches what 30 give on clean audio. Below it the
#: commands warn. The test speakers' curve (results/tables/adapt_min_audio.md) documents it, chose nothing.
MIN_UTTERANCES = {"corpus": 10, "speaker": 10}

_EPS = 1e-5  # as Normaliser.fit


def check_mode(adapt: str) -> str:
    """``adapt`` if it is one of :data:`ADAPT_MODES`; ValueError naming the choices otherwise."""
    if adapt not in ADAPT_MODES:
        raise ValueError(f"adapt must be one of {', '.join(ADAPT_MODES)}, got {adapt!r}")
    return adapt


@dataclass
class FeatureMoments:
    """Running first and second moments of unnormalised features (float64 sums), label-free.

    Attributes:
        n: utterances (or utterance-equivalents, for a stream) added.
        frame_count, frame_sum, frame_sq: valid frames, ``(76,)`` sums of values and squares.
        spec_count, spec_sum, spec_sq: spectrogram frames, ``(n_mels,)`` sums.
    """

    n: float
    frame_count: float
    frame_sum: np.ndarray
    frame_sq: np.ndarray
    spec_count: float
    spec_sum: np.ndarray
    spec_sq: np.ndarray

    @classmethod
    def empty(cls, frame_dim: int, n_mels: int) -> "FeatureMoments":
        z = np.zeros
        return cls(0.0, 0.0, z(frame_dim), z(frame_dim), 0.0, z(n_mels), z(n_mels))

    def add(self, frames: np.ndarray, mask: np.ndarray, spec: np.ndarray, weight: float | None = None) -> "FeatureMoments":
        """Add utterances: ``frames (N, q, 76)``, ``mask (N, q)``, ``spec (N, n_mels, T)`` (or one, unbatched).

        ``weight``: utterances they count as (default N).
        """
        frames, mask, spec = np.asarray(frames), np.asarray(mask, bool), np.asarray(spec)
        if frames.ndim == 2:
            frames, mask, spec = frames[None], mask[None], spec[None]
        valid = frames[mask].astype(np.float64)
        bands = spec.transpose(0, 2, 1).reshape(-1, spec.shape[1]).astype(np.float64)
        self.n += float(len(frames) if weight is None else weight)
        self.frame_count += len(valid)
        self.frame_sum += valid.sum(0)
        self.frame_sq += (valid ** 2).sum(0)
        self.spec_count += len(bands)
        self.spec_sum += bands.sum(0)
        self.spec_sq += (bands ** 2).sum(0)
        return self

    def _mean_var(self, count, s, sq):
        mean = s / max(count, 1.0)
        return mean, np.maximum(sq / max(count, 1.0) - mean ** 2, 0.0)


def blend(train: Normaliser, moments: FeatureMoments, prior: float = PRIOR_UTTERANCES) -> Normaliser:
    """The adapted normaliser: training statistics and the new audio's, mixed with weight n / (n + prior).

    Args:
        train: the checkpoint's normaliser (training statistics).
        moments: statistics of the unlabelled audio to be scored.
        prior: n0, what the training statistics count as, in utterances.

    Returns:
        A :class:`Normaliser` (float32 ``(76,)`` and ``(n_mels,)`` means and standard deviations).
    """
    if moments.n <= 0 or moments.frame_count == 0 and moments.spec_count == 0:
        return train
    w = moments.n / (moments.n + prior)

    def mix(m_train, s_train, count, s, sq):
        if count == 0:
            return m_train, s_train
        m_new, v_new = moments._mean_var(count, s, sq)
        m_train = m_train.astype(np.float64)
        v_train = (s_train.astype(np.float64) - _EPS) ** 2
        mean = w * m_new + (1 - w) * m_train
        var = w * (v_new + (m_new - mean) ** 2) + (1 - w) * (v_train + (m_train - mean) ** 2)
        return mean.astype(np.float32), (np.sqrt(var) + _EPS).astype(np.float32)

    fm, fs = mix(train.frames_mean, train.frames_std, moments.frame_count, moments.frame_sum, moments.frame_sq)
    sm, ss = mix(train.spec_mean, train.spec_std, moments.spec_count, moments.spec_sum, moments.spec_sq)
    return Normaliser(frames_mean=fm, frames_std=fs, spec_mean=sm, spec_std=ss)


def adapt_features(train: Normaliser, frames: np.ndarray, mask: np.ndarray, spec: np.ndarray, adapt: str = "corpus",
                   speakers=None, prior: float = PRIOR_UTTERANCES) -> tuple[np.ndarray, np.ndarray, dict]:
    """Standardise unnormalised features with statistics of the same utterances (see the module docstring).

    Args:
        train: the checkpoint's normaliser.
        frames: float32 ``(N, q, 76)`` IS10 frames, unnormalised; ``mask``: bool ``(N, q)`` valid frames.
        spec: float32 ``(N, n_mels, T)`` log-mel spectrograms, unnormalised.
        adapt: ``none``, ``corpus`` or ``speaker``.
        speakers: ``(N,)`` speaker names for ``speaker`` (None or empty entries: such an utterance is
            adapted with the statistics of all utterances without a speaker).
        prior: n0 of the blending weight.

    Returns:
        ``(frames, spec, groups)``: standardised float32 arrays of the same shapes (padded frames
        exactly 0), and ``groups``: statistics group (``"all"`` or a speaker) -> utterances in it.
    """
    check_mode(adapt)
    frames, mask, spec = np.asarray(frames, np.float32), np.asarray(mask, bool), np.asarray(spec, np.float32)
    n = len(frames)
    if adapt == "speaker":
        if speakers is None:
            raise ValueError("adapt='speaker' needs the speaker of every utterance (a `speaker` column of the manifest "
                             "or corpus table, or speakers=/--speaker NAME). Fix: give them, or use adapt='corpus'")
        names = np.asarray(["" if s is None or s != s else str(s).strip() for s in speakers], dtype=object)
        if len(names) != n:
            raise ValueError(f"speakers has {len(names)} entries for {n} utterances")
        names = np.where(names == "", "(no speaker)", names)
    else:
        names = np.full(n, "all", dtype=object)
    out_f, out_s = np.empty_like(frames), np.empty_like(spec)
    groups = {}
    for g in dict.fromkeys(names):
        i = np.flatnonzero(names == g)
        norm = train
        if adapt != "none":
            m = FeatureMoments.empty(frames.shape[-1], spec.shape[1]).add(frames[i], mask[i], spec[i])
            norm = blend(train, m, prior)
        out_f[i], out_s[i] = normalise(norm, frames[i], mask[i], spec[i])
        groups[str(g)] = len(i)
    return out_f, out_s, groups


@dataclass
class _Arrays:  # what Normaliser.transform reads and dataclasses.replace writes
    frames: np.ndarray
    mask: np.ndarray
    spec: np.ndarray


def normalise(norm: Normaliser, frames: np.ndarray, mask: np.ndarray, spec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``norm`` applied to arrays (single utterance or batched): standardised ``(frames, spec)``, padded frames 0."""
    t = norm.transform(_Arrays(np.asarray(frames, np.float32), np.asarray(mask, bool), np.asarray(spec, np.float32)))
    return t.frames, t.spec


def too_little_audio(adapt: str, groups: dict) -> list[str]:
    """Warnings for statistics groups with fewer than :data:`MIN_UTTERANCES` utterances (empty: enough)."""
    if adapt == "none":
        return []
    need = MIN_UTTERANCES[adapt]
    small = {g: k for g, k in groups.items() if k < need}
    if not small:
        return []
    what = "the audio" if adapt == "corpus" else f"{len(small)} of {len(groups)} speakers"
    example = ", ".join(f"{g}: {k}" for g, k in list(small.items())[:3])
    return [f"--adapt {adapt}: {what} below the {need} utterances adaptation was measured to need ({example}); "
            f"its statistics lean on the training data's (weight n/(n+{PRIOR_UTTERANCES:g})) and may cost accuracy. "
            "Fix: score more audio together, or use --adapt none" + (" / corpus" if adapt == "speaker" else "")]

