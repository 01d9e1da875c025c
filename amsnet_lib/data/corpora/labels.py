"""Emotion labels across corpora: one default map from the names corpora use to the project's classes.

The project's class names are EmoDB's in English (``anger boredom disgust fear happiness sadness
neutral``) plus RAVDESS's own ``calm`` and ``surprise``. Corpora and manifests name the same emotions
otherwise (IEMOCAP ``angry``/``ang``, CREMA-D ``ANG``, TESS ``fearful``...): :data:`ALIASES` maps those
names to the project's, and two labels are the same class when they map to the same name (case and
surrounding spaces ignored). A label that maps to no class of a model is left out and listed, never
guessed: between EmoDB and RAVDESS that is RAVDESS's ``calm`` and ``surprise`` (EmoDB has neither) and
EmoDB's ``boredom`` (RAVDESS has none), so the two share six classes.

>>> canonical("Angry"), canonical("hap"), canonical("calm")
('anger', 'happiness', 'calm')
>>> match_labels(["anger", "calm", "happy"], ["anger", "boredom", "happiness"])
{'anger': 'anger', 'calm': None, 'happy': 'happiness'}
"""
from __future__ import annotations

from typing import Iterable, Mapping, Sequence

__all__ = ["ALIASES", "PROJECT_CLASSES", "canonical", "match_labels", "no_class_reason"]

#: The project's class names (EmoDB's seven, then RAVDESS's two that EmoDB lacks).
PROJECT_CLASSES = ("anger", "boredom", "disgust", "fear", "happiness", "sadness", "neutral", "calm", "surprise")

#: Other names of the project's classes (lower case) -> the project's name: adjectives, the three-letter
#: codes of IEMOCAP and CREMA-D, common spellings. ``excited`` is not here: it is a class of its own
#: unless a corpus merges it (the IEMOCAP loader maps ``exc`` to ``happy``, as the usual 4-class setup does).
ALIASES = {
    "angry": "anger", "ang": "anger", "mad": "anger",
    "bored": "boredom", "bor": "boredom",
    "disgusted": "disgust", "dis": "disgust",
    "fearful": "fear", "afraid": "fear", "fea": "fear", "scared": "fear",
    "happy": "happiness", "hap": "happiness", "joy": "happiness",
    "sad": "sadness",
    "neu": "neutral",
    "surprised": "surprise", "sur": "surprise",
}

#: Why a class of one corpus has none in another, for the left-out list.
_NOTES = {
    "calm": "calm (RAVDESS) has no class in EmoDB's set",
    "surprise": "surprise (RAVDESS) has no class in EmoDB's set",
    "boredom": "boredom (EmoDB) has no class in RAVDESS's set",
}


def canonical(label) -> str:
    """The project's name of a label (:data:`ALIASES`), else the label in lower case without surrounding spaces."""
    name = str(label).strip().lower()
    return ALIASES.get(name, name)


def match_labels(labels: Iterable, classes: Sequence[str], label_map: Mapping[str, str] | None = None) -> dict:
    """Each distinct label -> the class of ``classes`` it is (``None``: none of them).

    ``label_map`` (corpus label -> class, exact label) comes first; else a label is the class with the
    same :func:`canonical` name.

    Raises:
        ValueError: ``label_map`` names a class that is not in ``classes``.
    """
    label_map = dict(label_map or {})
    unknown = sorted({v for v in label_map.values() if v not in classes})
    if unknown:
        raise ValueError(f"label_map maps to {unknown}, which are not classes of the model {list(classes)}. "
                         "Fix: map each corpus label to one of the model's classes")
    by_name = {canonical(c): c for c in classes}
    return {label: label_map.get(str(label), by_name.get(canonical(label))) for label in dict.fromkeys(labels)}


def no_class_reason(label, classes: Sequence[str]) -> str:
    """Why ``label`` is left out: it maps to no class of the model (with the cross-corpus note, if any)."""
    note = _NOTES.get(canonical(label))
    return (f"label {label!r} is no class of the model {list(classes)}{f' ({note})' if note else ''}. Fix: map it with "
            f"label_map / --label-map {label}=CLASS, or leave it out")
