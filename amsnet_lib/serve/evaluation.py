"""A trained model's accuracy on labelled audio it was not trained on: cross-corpus evaluation or a
held-out set (``amsnet evaluate``), through :func:`~amsnet_lib.serve.predict.predict`'s path."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import pandas as pd

from ..config import WindowConfig
from .checkpoint import CheckpointInfo
from .predict import Recognizer, _cached_recognizer, _with_windowing
from .windows import allowed_classes

__all__ = ["Evaluation", "evaluate"]


@dataclass
class Evaluation:
    """A checkpoint's accuracy on labelled audio it was not trained on (e.g. another corpus).

    Attributes:
        predictions: :func:`predict`'s rows of the utterances evaluated, plus ``true`` (the
            model's class the utterance's label maps to) and ``corpus_label`` (the label as given).
        classes: the model's classes, in output order.
        wa, ua: WA (eq 15) and UA (eq 16, over the classes present), percent.
        recall: percent per class present among the true labels.
        confusion: counts, rows the true class, columns the predicted one (the model's classes).
        left_out: ``(path, reason)`` of every utterance not evaluated: a label that is no class
            of the model, a file the corpus loader or the model could not use, a file the model
            was trained on.
        checkpoint: the checkpoint file.
        training_overlap: how many of the corpus's utterances (with a label of the model) are
            files the checkpoint was trained on, by content (:func:`~amsnet_lib.serve.checkpoint.file_digest`);
            ``None`` when the checkpoint records no training files, so nothing could be checked.
            With ``include_training`` they are evaluated (``predictions["in_training"]``), else
            left out.
        adapt: the adaptation used: ``mode``, ``groups`` (statistics group -> windows),
            ``warnings`` (groups with less audio than adaptation was measured to need).
        scored_classes: the classes the probabilities were renormalised over (all the model's when
            nothing was restricted); the predictions are among them.
        windows: one row per window scored (:func:`predict`'s ``return_windows``), with ``true``.
    """

    predictions: pd.DataFrame
    classes: list[str]
    wa: float
    ua: float
    recall: dict[str, float]
    confusion: pd.DataFrame
    left_out: list[tuple[str, str]]
    checkpoint: str | None
    training_overlap: int | None = None
    adapt: dict = field(default_factory=lambda: {"mode": "none", "groups": {}, "warnings": []})
    scored_classes: list[str] = field(default_factory=list)
    windows: pd.DataFrame | None = None


def evaluate(corpus, checkpoint: str | os.PathLike | Recognizer | None = None, *, data_dir=None,
             label_map: dict[str, str] | None = None, include_training: bool = False, batch_size: int = 32,
             progress: bool = True, adapt: str = "none", speakers: str | None = None, classes=None,
             all_classes: bool = False, windowing: WindowConfig | None = None) -> Evaluation:
    """Accuracy of a trained checkpoint on labelled audio: cross-corpus evaluation, or a held-out set.

    Every utterance goes through :func:`predict` (the feature path of training, each file scored
    whole); its label is mapped to one of the model's classes, by ``label_map`` first, else by the
    default map across corpora (:mod:`amsnet_lib.data.corpora.labels`: the same name, or an alias such as
    ``angry`` for ``anger``; case and surrounding spaces ignored). Utterances whose label maps to no
    class (RAVDESS's ``calm`` and ``surprise`` for an EmoDB model, say) and files that fail are left
    out and listed, never guessed; the measures cover the rest.

    Scored over the classes the audio can have: when the corpus's classes (its ``attrs["classes"]``,
    else the labels present) map to fewer than the model's, the probabilities are renormalised over
    those (:func:`~amsnet_lib.serve.windows.restrict`), so that the model cannot answer with a class the
    corpus does not hold (EmoDB's ``boredom`` on RAVDESS). ``all_classes`` turns that off.

    Files the checkpoint was trained on are left out too, so that its training accuracy never
    passes for a test result: checkpoints written with the training table (``amsnet fit``,
    the shipped model) record a digest of every training file's content, compared with each
    file here (renamed or moved copies are caught; re-encoded ones are not).

    Args:
        corpus: a corpus table (a DataFrame with ``path`` and ``label``, as
            :func:`~amsnet_lib.data.corpora.load_corpus` returns), or what ``load_corpus`` takes:
            ``"emodb"``, ``"ravdess"``, ``"iemocap"``, a CSV manifest ``path,label[,speaker]``, a folder with one
            sub-folder per label.
        checkpoint: checkpoint file or :class:`Recognizer`; default the shipped EmoDB model (which
            was trained on all of EmoDB, so every EmoDB file is left out as training data).
        data_dir: folder of a named corpus (see ``load_corpus``).
        label_map: corpus label -> model class, e.g. ``{"ang": "anger", "hap": "happiness"}``.
        include_training: evaluate the checkpoint's training files too (flagged in
            ``predictions["in_training"]``): the figures then mix in training accuracy.
        batch_size: utterances per forward pass.
        progress: tqdm progress bar over files.
        adapt, speakers: unsupervised adaptation, as :func:`predict`; the statistics come from the
            utterances evaluated (labels are never passed to it: only paths and speakers).
        classes: score over these of the model's classes (names or ``"a,b,c"``); utterances of other
            classes are left out and listed. Default: the classes the corpus's labels map to.
        all_classes: score over all the model's classes (the model's own argmax), even when the corpus
            has fewer.
        windowing: hop, pooling and trimming of whole recordings, as :func:`predict`.

    Raises:
        ValueError: ``label_map`` names a class the model does not have, ``classes`` names an unknown
            class, or no utterance is left to evaluate (the message lists the corpus's labels and the
            model's classes).
    """
    from ..data.corpora import load_corpus
    from ..data.corpora.labels import match_labels, no_class_reason
    from ..metrics import confusion_matrix, per_class_recall, unweighted_accuracy, weighted_accuracy

    rec = checkpoint if isinstance(checkpoint, Recognizer) else _cached_recognizer(checkpoint)
    rec = _with_windowing(rec, windowing)
    table = corpus if isinstance(corpus, pd.DataFrame) else load_corpus(corpus, data_dir=data_dir)
    if not {"path", "label"} <= set(table.columns):
        raise ValueError(f"the corpus table needs `path` and `label` columns, it has {list(table.columns)}")
    wanted, classes = classes, list(rec.classes)
    labels = [str(x) for x in table["label"]]
    declared = [str(x) for x in table.attrs.get("classes") or []] or sorted(set(labels))
    to_class = match_labels(declared + labels, classes, label_map)
    true = pd.Series([to_class[lab] for lab in labels], index=table.index, dtype=object)
    if wanted is not None:
        index = allowed_classes(wanted, classes)
    elif all_classes:
        index = None
    else:  # the classes the audio can have: the corpus's, as the model names them
        present = sorted({to_class[c] for c in declared if to_class[c]}, key=classes.index)
        index = allowed_classes(present, classes) if len(present) >= 2 else None
    if index is not None and len(index) == len(classes):
        index = None
    scored = classes if index is None else [classes[i] for i in index]
    left_out = [(str(p), str(reason)) for p, reason in table.attrs.get("skipped", [])]
    for p, lab in zip(table.loc[true.isna(), "path"], table.loc[true.isna(), "label"]):
        left_out.append((str(p), no_class_reason(lab, classes)))
    outside = true.notna() & ~true.isin(scored)
    for p, lab in zip(table.loc[outside, "path"], table.loc[outside, "label"]):
        left_out.append((str(p), f"label {lab!r} is not among the classes scored {scored}. Fix: add it to "
                                 "classes / --classes, or leave it out"))
    kept = table[true.notna() & ~outside]
    seen = _training_files_seen(rec.info, kept["path"])
    overlap = None if seen is None else int(seen.sum())
    if seen is not None and not include_training:
        for p in kept.loc[seen, "path"]:
            left_out.append((str(p), "in the checkpoint's training data (same file content): its prediction would be "
                                     "training accuracy. Fix: evaluate audio the model was not trained on, or pass "
                                     "include_training / --include-training to measure training accuracy"))
        kept, seen = kept[~seen], seen[~seen]
    # only paths and speakers go to prediction: adaptation cannot see a label
    cols = ["path"] + (["speaker"] if "speaker" in kept.columns else [])
    df, windows = rec.predict(kept[cols].reset_index(drop=True), batch_size=batch_size, progress=progress, adapt=adapt,
                              speakers=speakers, classes=None if index is None else scored, return_windows=True)
    df.insert(1, "corpus_label", kept["label"].astype(str).to_numpy())
    df.insert(2, "true", true[kept.index].to_numpy())
    windows.insert(1, "true", windows["path"].map(dict(zip(df["path"], df["true"]))))
    adapted = df.attrs.get("adapt", {})
    if seen is not None:
        df["in_training"] = seen.to_numpy()
    left_out += [(r.path, r.error) for r in df.itertuples() if r.error]
    df = df[df["error"] == ""].reset_index(drop=True)
    if df.empty and overlap and not include_training:
        others = f", the other {len(table) - overlap} were left out (see left_out)" if overlap < len(table) else ""
        raise ValueError(f"no utterance left to evaluate: {overlap} of the {len(table)} in the corpus are files "
                         f"{rec.info.path or 'the checkpoint'} was trained on (same content){others}. Fix: evaluate "
                         "audio the model was not trained on; pass include_training / --include-training to measure "
                         "its training accuracy")
    if df.empty:
        raise ValueError(f"no utterance left to evaluate ({len(table)} in the corpus, labels "
                         f"{sorted(set(map(str, table['label'])))}; model classes {classes}). Fix: map the corpus's "
                         "labels to the model's classes (label_map / --label-map LABEL=CLASS) and check the files "
                         "listed in left_out")
    idx = {c: i for i, c in enumerate(classes)}
    y, p = df["true"].map(idx).to_numpy(), df["label"].map(idx).to_numpy()
    recall = per_class_recall(y, p, len(classes))
    return Evaluation(
        predictions=df, classes=classes,
        wa=100 * weighted_accuracy(y, p), ua=100 * unweighted_accuracy(y, p, len(classes)),
        recall={c: 100 * float(r) for c, r in zip(classes, recall) if r == r},
        confusion=pd.DataFrame(confusion_matrix(y, p, len(classes)), index=classes, columns=classes),
        left_out=left_out, checkpoint=rec.info.path, training_overlap=overlap, adapt=adapted, scored_classes=scored,
        windows=windows)


def _training_files_seen(info: CheckpointInfo, paths: pd.Series) -> pd.Series | None:
    """Per path: is the file one the checkpoint was trained on (by content)? ``None``: not recorded.

    A file that cannot be read counts as unseen here; :meth:`Recognizer.predict` reports it.
    """
    from .checkpoint import TRAINING_DIGESTS, file_digest

    recorded = info.meta.get(TRAINING_DIGESTS)
    if not isinstance(recorded, list):
        return None
    recorded = set(recorded)

    def seen(p) -> bool:
        try:
            return file_digest(p) in recorded
        except OSError:
            return False

    return paths.map(seen).astype(bool)
