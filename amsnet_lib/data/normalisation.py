"""Standardisation of both streams: the fold's statistics (:class:`Normaliser`, the paper's), and,
beyond the paper, label-free standardisation of each speaker (:func:`standardise_per_speaker`, for
cross-validation) or of each utterance (:func:`standardise_utterance`, which new audio can have too).

Every function takes and returns a :class:`~amsnet_lib.data.features.Features` (or its arrays) and
keeps padded frames at exactly zero. (``Features`` is not imported here: it imports this module.)
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..config import FeatureConfig

__all__ = ["Normaliser", "standardise_per_speaker", "standardise_per_utterance", "standardise_utterance",
           "speech_spec_frames", "UTTERANCE_STD_FLOOR"]


@dataclass(frozen=True)
class Normaliser:
    """Per-dimension standardisation of both streams.

    Fit it on training utterances only: :meth:`fit` takes a :class:`Features` and nothing else,
    and the training engine calls it on each fold's training part, so statistics of a test fold
    cannot leak into the model.

    Attributes:
        frames_mean, frames_std: ``(76,)`` over valid frames.
        spec_mean, spec_std: ``(n_mels,)`` over all spectrogram frames.
    """

    frames_mean: np.ndarray
    frames_std: np.ndarray
    spec_mean: np.ndarray
    spec_std: np.ndarray

    @classmethod
    def fit(cls, train) -> "Normaliser":
        valid = train.frames[train.mask]  # (n_valid_frames, 76)
        spec = train.spec.transpose(0, 2, 1).reshape(-1, train.spec.shape[1])
        eps = 1e-5
        return cls(
            frames_mean=valid.mean(0).astype(np.float32),
            frames_std=(valid.std(0) + eps).astype(np.float32),
            spec_mean=spec.mean(0).astype(np.float32),
            spec_std=(spec.std(0) + eps).astype(np.float32),
        )

    def transform(self, features):
        """Standardised copy; padded frames stay exactly zero."""
        frames = (features.frames - self.frames_mean) / self.frames_std
        frames = np.where(features.mask[..., None], frames, 0.0).astype(np.float32)
        spec = ((features.spec - self.spec_mean[:, None]) / self.spec_std[:, None]).astype(np.float32)
        return dataclasses.replace(features, frames=frames, spec=spec)

    def state_dict(self) -> dict:
        return {k: np.asarray(v).tolist() for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_state_dict(cls, state: dict) -> "Normaliser":
        return cls(**{k: np.asarray(v, dtype=np.float32) for k, v in state.items()})



def standardise_per_speaker(features):
    """Speaker normalisation: each speaker's utterances standardised with that speaker's statistics.

    Per dimension, over the speaker's valid frames (frame stream) and over all their spectrogram
    frames (per mel band). Removes much of what distinguishes speakers (vocal-tract length, pitch
    range, loudness habits), a standard step in SER under speaker-independent protocols. It uses no
    label, but it does use the unlabelled utterances of every speaker, the test speaker's
    included: it assumes the speaker of each utterance is known at test time, with enough of their
    speech to estimate the statistics. Padded frames stay exactly zero.

    Args:
        features: a corpus' features; ``features.table["speaker"]`` must name every speaker.

    Returns:
        A copy with ``frames`` and ``spec`` standardised per speaker (float32, same shapes).
    """
    speakers = features.table["speaker"] if "speaker" in features.table else None
    if speakers is None or speakers.isna().any() or (speakers.astype(str).str.strip() == "").any():
        raise ValueError(
            "speaker normalisation needs a speaker for every utterance, and the corpus table has "
            "utterances without one. Fix: give the corpus a 'speaker' column, or use corpus normalisation."
        )
    speakers = speakers.astype(str).to_numpy()
    frames = np.empty_like(features.frames)
    spec = np.empty_like(features.spec)
    for s in np.unique(speakers):
        i = np.flatnonzero(speakers == s)
        own = features.subset(i)
        own = Normaliser.fit(own).transform(own)  # the fold standardisation, on one speaker's utterances
        frames[i], spec[i] = own.frames, own.spec
    return dataclasses.replace(features, frames=frames, spec=spec)


#: Floor of a per-utterance standard deviation (:func:`standardise_utterance`), in the features' own units.
#: On EmoDB 0.5 % of (utterance, IS10 dimension) pairs have a standard deviation of exactly 0 (F0 and
#: its relatives over an utterance without voicing) and 0.4 % lie between 0 and 1e-3; the log-mel
#: bands' are all above 0.9. The floor keeps a dimension that is constant up to rounding from being
#: blown up to unit variance, and binds on nothing else.
UTTERANCE_STD_FLOOR = 1e-3
#: Utterances standardised at once by :func:`standardise_utterance` (float64 work arrays: about 90 MB
#: per 256 utterances of 5 s), so that a large corpus is not copied whole in float64.
_UTTERANCE_CHUNK = 256


def speech_spec_frames(n_valid, config: FeatureConfig, n_spec: int | None = None) -> np.ndarray:
    """Spectrogram frames that hold the utterance, from its valid IS10 frames (the mask's count).

    The utterance spans about ``n_valid`` frame hops (10 ms each; openSMILE's 60-ms frames end
    within 50 ms of the audio's end), and the log-mel (a centred STFT) keeps frame ``t`` at sample
    ``t · hop_length``: the frames whose centre lies in that span, ``1 + n_valid·hop_samples //
    hop_length``, as :attr:`FeatureConfig.spec_frames` counts a whole window. The rest hold the
    zero-padding's constant ``log(log_offset)`` (at most half a window of speech at their edge). A full
    mask (an utterance that fills the window, or was cut to it): every frame.

    Args:
        n_valid: valid IS10 frames per utterance, an int or an int array ``(N,)``.
        config: the feature configuration (frame hop, STFT hop, sample rate, ``q``).
        n_spec: spectrogram frames of the arrays (default ``config.spec_frames``).

    Returns:
        int64 array of ``n_valid``'s shape, each in ``[1, n_spec]``.
    """
    n_spec = config.spec_frames if n_spec is None else int(n_spec)
    n_valid = np.asarray(n_valid, np.int64)
    hop_samples = int(round(config.frame_hop_ms * config.sample_rate / 1000.0))
    held = 1 + (n_valid * hop_samples) // config.hop_length
    return np.where(n_valid >= config.q, n_spec, np.clip(held, 1, n_spec)).astype(np.int64)


def standardise_utterance(frames: np.ndarray, mask: np.ndarray, spec: np.ndarray,
                          config: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """Per-utterance standardisation (cepstral mean and variance normalisation, CMVN) of raw features.

    Each utterance is standardised with its own statistics, per dimension: the IS10 frames over its
    valid frames (the mask; padded frames stay exactly 0), the log-mel per mel band over the frames
    that hold the utterance (:func:`speech_spec_frames`; the zero-padding's constant frames are left
    out of the statistics, and transformed with them like every other frame). A standard deviation
    below :data:`UTTERANCE_STD_FLOOR` is raised to it, so a constant dimension (silence, an
    unvoiced utterance's F0) becomes 0, never NaN or a blown-up rounding error.

    It reads neither labels nor speakers: an utterance of new audio is standardised as a training
    utterance was, which is why ``normalisation="utterance"`` serves new audio where ``speaker``
    cannot. Source: segmental feature vector normalisation, Viikki & Laurila 1998, "Cepstral domain
    segmental feature vector normalization for noise robust speech recognition", Speech
    Communication 25 (1-3), 133-147; here with the whole utterance as the segment, and applied to
    both streams.

    The one implementation of the transform: :func:`standardise_per_utterance` (training, on
    :class:`Features`) and :class:`amsnet_lib.serve.predict.Recognizer` (inference, each scored window)
    both call it.

    Args:
        frames: float32 ``(q, 76)`` or ``(N, q, 76)``, unnormalised, zero on padded frames.
        mask: bool ``(q,)`` or ``(N, q)``.
        spec: float32 ``(n_mels, T)`` or ``(N, n_mels, T)``, unnormalised log-mel.
        config: the feature configuration the arrays were made with.

    Returns:
        ``(frames, spec)`` float32, the shapes given.
    """
    frames, mask, spec = np.asarray(frames), np.asarray(mask, bool), np.asarray(spec)
    if frames.ndim == 2:
        f, s = standardise_utterance(frames[None], mask[None], spec[None], config)
        return f[0], s[0]
    out_f, out_s = np.empty(frames.shape, np.float32), np.empty(spec.shape, np.float32)
    for a in range(0, len(frames), _UTTERANCE_CHUNK):
        b = slice(a, a + _UTTERANCE_CHUNK)
        m = mask[b]
        out_f[b] = _standardised(frames[b], m[..., None], axis=1, keep=m[..., None])
        held = np.arange(spec.shape[2])[None, :] < speech_spec_frames(m.sum(1), config, spec.shape[2])[:, None]
        out_s[b] = _standardised(spec[b], held[:, None, :], axis=2)
    return out_f, out_s


def _standardised(x: np.ndarray, weight: np.ndarray, axis: int, keep: np.ndarray | None = None) -> np.ndarray:
    """``x`` less its mean over ``axis`` where ``weight``, over their std (floored); 0 outside ``keep``."""
    x = x.astype(np.float64)
    n = np.maximum(weight.sum(axis, keepdims=True), 1)
    mean = np.where(weight, x, 0.0).sum(axis, keepdims=True) / n
    var = np.where(weight, (x - mean) ** 2, 0.0).sum(axis, keepdims=True) / n
    z = (x - mean) / np.maximum(np.sqrt(var), UTTERANCE_STD_FLOOR)
    return (z if keep is None else np.where(keep, z, 0.0)).astype(np.float32)


def standardise_per_utterance(features):
    """``normalisation="utterance"``: every utterance of ``features`` standardised with its own
    statistics (:func:`standardise_utterance`, CMVN per utterance), before the fold's usual statistics.

    Returns:
        A copy with ``frames`` and ``spec`` standardised per utterance (float32, same shapes; padded
        frames 0).
    """
    frames, spec = standardise_utterance(features.frames, features.mask, features.spec, features.config)
    return dataclasses.replace(features, frames=frames, spec=spec)
