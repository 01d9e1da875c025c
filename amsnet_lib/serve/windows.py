"""A whole recording as the model's windows, their scores pooled; scores over the classes allowed.

The model takes a fixed length (``FeatureConfig.duration``, 3 s for EmoDB). A recording is scored
whole (:class:`~amsnet_lib.config.WindowConfig`): its leading and trailing silence is trimmed
(:func:`~amsnet_lib.data.features.silence_span`, the training feature path's trimmer), then windows of
the model's length start every ``hop`` seconds, plus one ending at the recording's end, so every
sample is in some window; each window goes through the training feature path (features of exactly
that slice, zero-padded when shorter) and the model, and the windows' probabilities are pooled
(:func:`pool`). A recording no longer than one window is one window, zero-padded, as in training.

>>> from amsnet_lib.serve.windows import window_starts
>>> window_starts(16000 * 5, 16000 * 3, 16000)   # 5 s, 3-s windows, 1-s hop: 0-3, 1-4, 2-5 s
[0, 16000, 32000]

Scores over a subset of the model's classes (:func:`restrict`): when the audio can only be some of
the classes (a corpus with fewer emotions, ``--classes``), each window's probabilities are
renormalised over them, the others set to 0, before pooling.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..config import POOLINGS, FeatureConfig, WindowConfig
from ..data.features import silence_span

#: Audio read past a window's end, as the training feature path reads it (openSMILE's deltas at the
#: window's last frames see the same context as in training).
READ_MARGIN_S = 0.05

__all__ = ["POOLINGS", "READ_MARGIN_S", "Windows", "allowed_classes", "cut_windows", "effective_trim_db", "pool",
           "pool_files", "restrict", "window_starts"]


def window_starts(n_samples: int, window: int, hop: int, min_tail: int = 0) -> list[int]:
    """Start samples of the windows over ``n_samples`` (see the module docstring).

    Args:
        n_samples: length of the (trimmed) recording, samples.
        window, hop: window length and hop, samples (positive).
        min_tail: audio after the last regular window shorter than or equal to this gets no window of
            its own (:func:`cut_windows`: the read margin, which the last window's features read anyway).

    Returns:
        ``[0]`` when ``n_samples <= window + min_tail``; else ``0, hop, 2 hop, ...`` while a window fits,
        then ``n_samples - window`` if the last of those ends more than ``min_tail`` before the recording does.
    """
    if window < 1 or hop < 1:
        raise ValueError(f"window and hop must be positive sample counts, got {window}, {hop}")
    if n_samples <= window + min_tail:
        return [0]
    starts = list(range(0, n_samples - window + 1, hop))
    if starts[-1] + window + min_tail < n_samples:
        starts.append(n_samples - window)
    return starts


@dataclass
class Windows:
    """The windows of one recording.

    Attributes:
        segments: the windows' audio, float32, each the window plus up to :data:`READ_MARGIN_S` of what
            follows it (the features use the window's length; a recording shorter than one window gives
            a shorter one).
        starts, ends: each window's span in the original recording, seconds (trimmed silence counted).
        speech: ``(start, end)`` seconds of the recording kept by the trimming.
    """

    segments: list[np.ndarray]
    starts: list[float]
    ends: list[float]
    speech: tuple[float, float]


def effective_trim_db(features: FeatureConfig, windowing: WindowConfig) -> float | None:
    """Trimming level for a recording: the checkpoint's own (its training features were trimmed so),
    else ``windowing.trim_db``."""
    return features.trim_db if features.trim_db else windowing.trim_db


def cut_windows(signal: np.ndarray, features: FeatureConfig, windowing: WindowConfig) -> Windows:
    """Trim a recording and cut it into the model's windows (``pooling='first'``: the first only).

    Args:
        signal: mono float32 ``(n,)`` at ``features.sample_rate``.
        features: the checkpoint's feature configuration (window length, sample rate, trimming).
        windowing: hop, pooling, trimming of checkpoints trained without it.
    """
    sr = features.sample_rate
    trim = effective_trim_db(features, windowing)
    start, end = silence_span(signal, dataclasses.replace(features, trim_db=trim))
    speech = signal[start:end]
    window, margin = features.n_samples, int(round(READ_MARGIN_S * sr))
    starts = window_starts(len(speech), window, max(1, int(round(windowing.hop * sr))), min_tail=margin)
    if windowing.pooling == "first":
        starts = starts[:1]
    segments = [speech[s : s + window + margin] for s in starts]
    return Windows(segments=segments, starts=[(start + s) / sr for s in starts],
                   ends=[(start + s + min(window, len(g))) / sr for s, g in zip(starts, segments)],
                   speech=(start / sr, end / sr))


def pool(proba: np.ndarray, pooling: str) -> np.ndarray:
    """One recording's class probabilities from its windows'.

    Args:
        proba: float ``(W, C)``, each row a window's probabilities (summing to 1 over the classes
            scored; 0 for classes left out by :func:`restrict`).
        pooling: one of :data:`~amsnet_lib.config.POOLINGS` (see :class:`~amsnet_lib.config.WindowConfig`).

    Returns:
        float32 ``(C,)`` summing to 1; zero where every window has 0.
    """
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or len(proba) == 0:
        raise ValueError(f"proba must be (windows, classes) with at least one window, got shape {proba.shape}")
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
    if pooling == "first":
        out = proba[0]
    elif pooling == "mean_proba":
        out = proba.mean(axis=0)
    elif pooling == "mean_logit":
        # softmax(mean logits) = normalised geometric mean of the probabilities: the log-sum-exp of each
        # window is one constant per window, which the softmax removes
        scored = proba.max(axis=0) > 0
        logp = np.log(np.clip(proba[:, scored], 1e-30, None)).mean(axis=0)
        out = np.zeros(proba.shape[1])
        out[scored] = np.exp(logp - logp.max())
    else:  # max_proba
        out = proba.max(axis=0)
    return (out / out.sum()).astype(np.float32)


def pool_files(rows: list[dict], spans: dict, scores: dict, classes: list[str], pooling: str) -> list[dict]:
    """Fill each file's row with its pooled scores; return one row per window.

    Args:
        rows: the files' rows (``path``, ``label``, ``p_<class>``, ``alpha_*``, ``windows``), filled in place.
        spans: file index -> (window starts, window ends), seconds in the file.
        scores: (file index, window index) -> (probabilities ``(C,)``, fusion weights ``(2,)``); a file
            with a window missing (its batch failed) is left as it is (its row holds the error).
        classes: the model's classes, in output order; ``pooling``: see :func:`pool`.
    """
    window_rows = []
    for i, (starts, ends) in spans.items():
        got = [scores.get((i, k)) for k in range(len(starts))]
        if any(g is None for g in got):
            continue
        proba, alpha = np.stack([g[0] for g in got]), np.stack([g[1] for g in got])
        pooled, mean_alpha = pool(proba, pooling), alpha.mean(axis=0)
        rows[i].update({"label": classes[int(np.argmax(pooled))], **{f"p_{c}": float(v) for c, v in zip(classes, pooled)},
                        "alpha_frlm": float(mean_alpha[0]), "alpha_urlm": float(mean_alpha[1]), "windows": len(starts)})
        for k, (p, a) in enumerate(zip(proba, alpha)):
            window_rows.append({"path": rows[i]["path"], "window": k, "start": round(starts[k], 4), "end": round(ends[k], 4),
                                "label": classes[int(np.argmax(p))], **{f"p_{c}": float(v) for c, v in zip(classes, p)},
                                "alpha_frlm": float(a[0]), "alpha_urlm": float(a[1])})
    return window_rows


def allowed_classes(classes, model_classes) -> np.ndarray | None:
    """Indices of the allowed classes among the model's (``None``: all of them).

    Args:
        classes: ``None``, a list of class names, or a comma-separated string (``"anger,sadness"``);
            names match the model's case-insensitively.
        model_classes: the model's classes in output order.

    Raises:
        ValueError: a name that is no class of the model, or fewer than two classes.
    """
    if classes is None:
        return None
    if isinstance(classes, str):
        classes = [c for c in classes.split(",")]
    names = [str(c).strip() for c in classes if str(c).strip()]
    by_name = {c.strip().lower(): i for i, c in enumerate(model_classes)}
    unknown = [c for c in names if c.lower() not in by_name]
    if unknown:
        raise ValueError(f"classes {unknown} are not classes of the model {list(model_classes)}. Fix: name some of "
                         "the model's classes, comma-separated (e.g. --classes anger,sadness)")
    index = sorted({by_name[c.lower()] for c in names})
    if len(index) < 2:
        raise ValueError(f"scoring over {names} alone would always predict it. Fix: give at least two of the model's "
                         f"classes {list(model_classes)}")
    return np.asarray(index)


def restrict(proba: np.ndarray, index: np.ndarray | None) -> np.ndarray:
    """Probabilities renormalised over the classes ``index`` (others set to 0); ``None``: unchanged.

    Args:
        proba: float ``(..., C)``.
        index: from :func:`allowed_classes`.

    Returns:
        float32 of the same shape; each row sums to 1 over ``index``. This is the model's posterior
        given that the true class is one of them (Bayes' rule with the other classes' prior set to 0).
    """
    proba = np.asarray(proba, dtype=np.float32)
    if index is None:
        return proba
    out = np.zeros_like(proba)
    kept = proba[..., index]
    total = kept.sum(axis=-1, keepdims=True)
    # a window that gives every allowed class probability 0 (underflow) gets them equal
    out[..., index] = np.where(total > 0, kept / np.where(total > 0, total, 1), 1.0 / len(index))
    return out
