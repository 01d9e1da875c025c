"""Cross-corpus evaluation (beyond the paper): train on one corpus, test on another.

Two corpora share only some classes (EmoDB and RAVDESS: anger, disgust, fear, happiness, sadness,
neutral); cross-corpus benchmarks also use the four that most corpora have (anger, happiness,
neutral, sadness; chance 25 %). Everything here trains on the source corpus's utterances of the
chosen classes and scores the target corpus's utterances of the same classes, so a model is never
asked for a class the target lacks.

Adaptation (no label of the target is read, as ``amsnet evaluate --adapt``):

- ``none``: the target is standardised with the source's statistics (what a deployed model does);
- ``corpus``: each corpus is standardised with its own statistics;
- ``speaker``: each speaker is standardised with their own statistics, in both corpora.

:func:`classic_cross_corpus` does this for the classic baseline (openSMILE functionals, linear SVM;
:mod:`amsnet_lib.train.classic`), its complexity chosen by speaker-grouped cross-validation inside
the source corpus (the target is read once, by the chosen model).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..config import SVMConfig
from ..metrics import confusion_matrix, unweighted_accuracy, weighted_accuracy
from .classic import select_svm

__all__ = ["ADAPT_MODES", "FOUR_CLASSES", "CrossCorpusScore", "classic_cross_corpus", "shared_classes", "standardise"]

#: The four classes cross-corpus benchmarks use (chance 25 %).
FOUR_CLASSES = ("anger", "happiness", "neutral", "sadness")
ADAPT_MODES = ("none", "corpus", "speaker")


@dataclass(frozen=True)
class CrossCorpusScore:
    """One source -> target evaluation: WA and UA (%), the classes, the confusion matrix (rows true,
    columns predicted, counts), the test utterances and what was chosen on the source."""

    wa: float
    ua: float
    classes: tuple[str, ...]
    confusion: np.ndarray
    n_test: int
    chosen: dict


def shared_classes(source_classes, target_classes) -> list[str]:
    """The classes both corpora have, in the source's order."""
    target = set(target_classes)
    return [c for c in source_classes if c in target]


def standardise(x: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Each group's rows standardised with that group's own mean and std (a std of 0 counts as 1).

    Args:
        x: float ``(n, D)``.
        groups: ``(n,)`` group of each row (a corpus name, or a speaker).

    Returns:
        float32 ``(n, D)``.
    """
    out = np.empty(x.shape, np.float32)
    for g in pd.unique(groups):
        rows = groups == g
        mu, sd = x[rows].mean(0), x[rows].std(0)
        out[rows] = (x[rows] - mu) / np.where(sd > 0, sd, 1.0)
    return out


def classic_cross_corpus(source: pd.DataFrame, source_x: np.ndarray, target: pd.DataFrame, target_x: np.ndarray,
                         classes, adapt: str = "none", config: SVMConfig = SVMConfig(), seed: int = 0) -> CrossCorpusScore:
    """Train the classic baseline on ``source`` and score it on ``target``, over ``classes``.

    Args:
        source, target: corpus tables (``label`` and ``speaker`` columns), row-aligned with
            ``source_x`` / ``target_x``: float ``(N, D)`` functionals of each utterance
            (:func:`amsnet_lib.data.functionals.extract_functionals`).
        classes: the class names to train on and score (utterances of other classes are left out).
        adapt: :data:`ADAPT_MODES`.
        config: the SVM's candidates; C and class weighting chosen by speaker-grouped
            cross-validation inside ``source``.

    Returns:
        :class:`CrossCorpusScore` on the target's utterances of ``classes``.
    """
    if adapt not in ADAPT_MODES:
        raise ValueError(f"adapt must be one of {ADAPT_MODES}, got {adapt!r}")
    classes = list(classes)
    s_rows = source["label"].isin(classes).to_numpy()
    t_rows = target["label"].isin(classes).to_numpy()
    if not s_rows.any() or not t_rows.any():
        raise ValueError(f"no utterance of the classes {classes} in the source or the target")
    xs, xt = np.asarray(source_x, np.float32)[s_rows], np.asarray(target_x, np.float32)[t_rows]
    s_speakers = source["speaker"].astype(str).to_numpy()[s_rows]
    t_speakers = target["speaker"].astype(str).to_numpy()[t_rows]
    if adapt == "corpus":
        xs, xt = standardise(xs, np.zeros(len(xs))), standardise(xt, np.zeros(len(xt)))
    elif adapt == "speaker":
        xs, xt = standardise(xs, s_speakers), standardise(xt, t_speakers)
    ys = np.array([classes.index(c) for c in source["label"].to_numpy()[s_rows]])
    yt = np.array([classes.index(c) for c in target["label"].to_numpy()[t_rows]])
    model, _, info = select_svm(xs, ys, s_speakers, config, seed)
    pred = model.predict(xt)
    return CrossCorpusScore(wa=100 * weighted_accuracy(yt, pred), ua=100 * unweighted_accuracy(yt, pred, len(classes)),
                            classes=tuple(classes), confusion=confusion_matrix(yt, pred, len(classes)),
                            n_test=int(len(yt)), chosen={k: info[k] for k in ("C", "class_weight", "inner_cv", "inner_ua")})
