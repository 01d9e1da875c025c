"""The classic baselines (beyond the paper): openSMILE functionals and a linear SVM, fold by fold.

What practitioners would use instead of AMSNet (issue #37): each utterance summarised by the
ComParE 2016 (6373) or eGeMAPS v02 (88) functionals over its whole file
(:mod:`amsnet_lib.data.functionals`), standardised with the statistics of the fold's training part,
classified by a linear SVM. They run on the networks' folds (:func:`amsnet_lib.data.protocols.make_folds`)
through :func:`amsnet_lib.train.training.run_experiment`, and each fold is written to the run store
like a network's (``<run store>/compare-svm-<key>/seed<s>/<fold>/``), so that the tables, the
significance tests and a resumed run treat them alike.

Model selection is honest: the complexity C and the class weighting are chosen by a cross-validation
inside the fold's training part (:func:`select_svm`), scored by UA; the scaler is fitted afresh on
each inner training part; the test fold is read once, by the model refitted on the whole training
part with the chosen values. The inner cross-validation mirrors the outer split: where the fold's
test speakers are absent from its training part (leave one speaker out, or any speaker-independent
partition), the inner folds keep every speaker's utterances on one side (speaker-grouped); where
they are not (the paper's stratified folds), the inner folds are stratified by class.

The classifier is scikit-learn's ``SVC(kernel="linear")`` (libsvm: hinge loss, unpenalised
intercept, one-vs-one), the formulation of the ComParE challenges' SVM baseline (WEKA's SMO), rather
than ``LinearSVC`` (liblinear: squared hinge and one-vs-rest by default, intercept penalised), whose
numbers would not be that baseline's.
"""
from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import CLASSIC_MODELS, ExperimentConfig, SVMConfig
from ..data.features import Features
from ..data.functionals import extract_functionals
from ..data.protocols import Fold, original_rows
from ..metrics import per_class_recall, unweighted_accuracy, weighted_accuracy
from .runstore import RunStore, _describe, _key, corpus_relative_paths, n_utterances

__all__ = ["classic_identity", "classic_key", "describe", "functionals_of", "inner_splits", "run_classic_fold", "select_svm",
           "speaker_independent"]


def classic_identity(exp: ExperimentConfig, n_items: int) -> dict:
    """What decides a classic baseline's folds: its run key's parts and its ``config.json``."""
    return {"model": exp.model, "corpus": exp.corpus, "protocol": exp.protocol, "n_folds": exp.n_folds,
            "split_seed": exp.split_seed, "split_file": exp.split_file, "functionals": CLASSIC_MODELS[exp.model],
            "sample_rate": exp.features.sample_rate, "svm": exp.svm, "n_utterances": n_items}


def classic_key(exp: ExperimentConfig, n_items: int) -> str:
    """The run key of a classic baseline (its folds live under ``<model>-<key>``)."""
    return _key(*classic_identity(exp, n_items).values())


def functionals_of(exp: ExperimentConfig, features: Features, progress: bool = True) -> np.ndarray:
    """float32 ``(N, D)``: the functionals of ``exp``'s feature set, row-aligned with ``features.table``.

    Only the corpus's recordings are computed; rows of augmented copies (never in a fold,
    :func:`amsnet_lib.data.protocols.make_folds`) stay zero.
    """
    table = features.table
    original = original_rows(table)
    values = extract_functionals(table[original], CLASSIC_MODELS[exp.model], sample_rate=exp.features.sample_rate,
                                 progress=progress)
    if original.all():
        return values
    out = np.zeros((len(table), values.shape[1]), dtype=np.float32)
    out[original] = values
    return out


def speaker_independent(table: pd.DataFrame, fold: Fold) -> bool:
    """Whether no speaker of ``fold``'s test part is in its training part (False when the table
    does not name every speaker)."""
    if "speaker" not in table.columns or table["speaker"].isna().any():
        return False
    speakers = table["speaker"].astype(str).to_numpy()
    return not set(speakers[fold.train]) & set(speakers[fold.test])


def inner_splits(labels: np.ndarray, groups: np.ndarray | None, n_folds: int, seed: int) -> tuple[list, str]:
    """The inner cross-validation of one training part.

    Args:
        labels: ``(n,)`` class indices of the training part.
        groups: ``(n,)`` speakers, to keep each speaker's utterances on one side (speaker-grouped,
            scikit-learn's ``StratifiedGroupKFold``: classes balanced as far as whole speakers allow);
            None: stratified by class (``StratifiedKFold``).
        n_folds: folds wanted; fewer when there are fewer speakers (grouped) or fewer utterances of
            the rarest class (stratified), at least 2.
        seed: shuffles the assignment.

    Returns:
        ``(splits, kind)``: ``[(fit, val), ...]`` positions into the training part, and
        ``"speaker-grouped"`` or ``"stratified"``. A training part of fewer than two speakers is
        split stratified.
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    X = np.zeros((len(labels), 1))
    if groups is not None and len(np.unique(groups)) >= 2:
        k = min(n_folds, len(np.unique(groups)))
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        with warnings.catch_warnings():  # "least populated class has only n members": expected with few speakers
            warnings.simplefilter("ignore", UserWarning)
            return list(splitter.split(X, labels, groups)), "speaker-grouped"
    counts = np.bincount(labels)
    k = max(2, min(n_folds, int(counts[counts > 0].min())))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(X, labels)), "stratified"


def _refit_choice(c_grid: tuple[float, ...], weights: tuple[str, ...]):
    """GridSearchCV's ``refit``: the candidate of highest mean inner UA; ties (equal to 1e-12) go to
    the smaller C, then to the weighting listed first, so that the choice does not hang on the
    grid's order."""
    def choose(cv_results: dict) -> int:
        ua = np.round(np.asarray(cv_results["mean_test_ua"], dtype=float), 12)
        order = [(-u, float(p["svm__C"]), weights.index(_weight_name(p["svm__class_weight"])))
                 for u, p in zip(ua, cv_results["params"])]
        return int(min(range(len(order)), key=order.__getitem__))

    return choose


def _weight_name(w) -> str:
    return "none" if w is None else str(w)


def select_svm(X: np.ndarray, y: np.ndarray, groups: np.ndarray | None, cfg: SVMConfig, seed: int):
    """Choose C and the class weighting by inner cross-validation on ``(X, y)`` alone, then refit.

    Args:
        X: float ``(n, D)`` functionals of a fold's training part (unstandardised: each inner fit
            part, and the final refit, fits its own scaler).
        y: ``(n,)`` class indices.
        groups: ``(n,)`` speakers for a speaker-grouped inner CV, or None (stratified).
        cfg: the candidates and the inner folds.
        seed: of the inner folds' assignment.

    Returns:
        ``(model, candidates, info)``: the scaler and SVM refitted on all of ``(X, y)`` with the
        chosen values (a scikit-learn ``Pipeline``); one row per candidate (``epoch`` numbers them
        from 1, ``C``, ``class_weight``, mean inner ``val_ua``/``val_wa`` and the spread of UA over
        the inner folds); and ``{"C", "class_weight", "best_epoch", "inner_cv", "inner_folds",
        "inner_ua"}``.
    """
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    splits, kind = inner_splits(y, groups, cfg.inner_folds, seed)
    grid = {"svm__C": [float(c) for c in cfg.c_grid],
            "svm__class_weight": [None if w == "none" else w for w in cfg.class_weights]}
    # break_ties: the prediction is the argmax of the one-vs-rest decision values, not the first of
    # tied one-vs-one votes (which would favour low class indices)
    pipe = Pipeline([("scale", StandardScaler()), ("svm", SVC(kernel="linear", break_ties=True))])
    search = GridSearchCV(pipe, grid, scoring={"ua": "balanced_accuracy", "wa": "accuracy"},
                          refit=_refit_choice(tuple(float(c) for c in cfg.c_grid), tuple(cfg.class_weights)),
                          cv=splits, n_jobs=1, error_score="raise")
    with warnings.catch_warnings():  # balanced_accuracy warns when an inner validation part lacks a class
        warnings.simplefilter("ignore", UserWarning)
        search.fit(X, y)
    r = search.cv_results_
    candidates = pd.DataFrame({
        "epoch": np.arange(1, len(r["params"]) + 1),
        "C": [float(p["svm__C"]) for p in r["params"]],
        "class_weight": [_weight_name(p["svm__class_weight"]) for p in r["params"]],
        # no loss: an SVM has no probabilities (the column keeps the networks' curves' schema)
        "val_loss": np.nan,
        "val_wa": np.asarray(r["mean_test_wa"], dtype=float),
        "val_ua": np.asarray(r["mean_test_ua"], dtype=float),
        "val_ua_std": np.asarray(r["std_test_ua"], dtype=float),
    })
    best = int(search.best_index_)
    info = {"C": float(candidates["C"].iloc[best]), "class_weight": str(candidates["class_weight"].iloc[best]),
            "best_epoch": best + 1, "inner_cv": kind, "inner_folds": len(splits),
            "inner_ua": float(candidates["val_ua"].iloc[best])}
    return search.best_estimator_, candidates, info


def _versions() -> dict:
    import opensmile
    import sklearn

    return {"scikit_learn": sklearn.__version__, "opensmile": opensmile.__version__}


def run_classic_fold(exp: ExperimentConfig, features: Features, fold: Fold, seed: int, store: RunStore, *,
                     train: bool = True, functionals=None) -> Path | None:
    """Select, fit and evaluate ``exp``'s SVM on one fold and seed; returns its run-store directory.

    Args:
        exp: a configuration whose ``model`` is one of :data:`~amsnet_lib.config.CLASSIC_MODELS`.
        features: the corpus (its table and labels; the functionals come from its audio files).
        fold: training and test rows (:func:`amsnet_lib.data.protocols.make_folds`).
        seed: of the inner folds' assignment.
        store: the run store; a finished fold is read back, not recomputed.
        train: False: only look (a finished fold's directory, else None; nothing written).
        functionals: the ``(N, D)`` functionals of ``features.table`` or a callable returning them
            (computed once for all folds); None computes them here.

    The fold's ``metrics.json`` records the chosen ``svm_C`` and ``svm_class_weight``, the inner
    cross-validation (``inner_cv``, ``inner_folds``, ``inner_ua``: the chosen candidate's mean inner
    UA), and the versions of scikit-learn and opensmile; ``curves.csv`` every candidate's inner
    scores; ``predictions.csv`` the test utterances (``seed, fold, path, true, pred``; no class
    probabilities: the SVM gives none). No model file is kept.
    """
    if exp.model not in CLASSIC_MODELS:
        raise ValueError(f"{exp.model!r} is not a classic baseline ({', '.join(CLASSIC_MODELS)})")
    n_items = n_utterances(features, exp)
    d = store.fold_dir(exp.model, classic_key(exp, n_items), seed, fold.name)
    done = store.done(d)
    if not done and not train:
        return None  # a look at the store writes nothing to it
    _describe(d.parent.parent, classic_identity(exp, n_items))
    if done:
        return d
    X = functionals() if callable(functionals) else functionals
    if X is None:
        X = functionals_of(exp, features, progress=False)
    if len(X) != len(features.labels):
        raise ValueError(f"functionals have {len(X)} rows, the corpus {len(features.labels)}")
    y = features.labels
    table = features.table
    groups = table["speaker"].astype(str).to_numpy()[fold.train] if speaker_independent(table, fold) else None
    t0 = time.perf_counter()
    model, candidates, info = select_svm(X[fold.train], y[fold.train], groups, exp.svm, seed)
    pred = model.predict(X[fold.test]).astype(np.int64)  # the test fold, read once, for the chosen values
    seconds = time.perf_counter() - t0
    true = y[fold.test]
    n_classes = len(features.classes)
    recall = per_class_recall(true, pred, n_classes)
    metrics = {"wa": weighted_accuracy(true, pred), "ua": unweighted_accuracy(true, pred, n_classes), "device": "cpu",
               "feature_precision": "float32",
               **{f"recall_{c}": (None if np.isnan(r) else float(r)) for c, r in zip(features.classes, recall)},
               "seed": seed, "fold": fold.name, "best_epoch": info["best_epoch"], "seconds": seconds,
               "n_train": len(fold.train), "n_val": 0, "n_test": len(fold.test),
               "svm_C": info["C"], "svm_class_weight": info["class_weight"], "inner_cv": info["inner_cv"],
               "inner_folds": info["inner_folds"], "inner_ua": info["inner_ua"],
               "functionals": CLASSIC_MODELS[exp.model], "n_functionals": int(X.shape[1]), **_versions()}
    paths = np.asarray(table["path"].astype(str), dtype=object)
    original = original_rows(table)
    paths[original] = corpus_relative_paths(paths[original])  # as the networks' predictions name them
    predictions = pd.DataFrame({"seed": seed, "fold": fold.name, "path": paths[fold.test], "true": true.astype(int),
                                "pred": pred})
    store.save(d, metrics=metrics, curves=candidates.assign(stage=exp.model), predictions=predictions, state=None)
    return d


def describe(exp: ExperimentConfig) -> str:
    """One line naming a classic baseline's classifier, for the CLI."""
    c = exp.svm
    return (f"{CLASSIC_MODELS[exp.model]} functionals, standardised, linear SVM; C in {list(c.c_grid)}, class weights "
            f"{list(c.class_weights)}, chosen by {c.inner_folds}-fold inner CV on each training part (UA)")

