"""Seed ensembles (beyond the paper): one model trained with several seeds, its class
probabilities averaged.

Member m of an ensemble of ``exp`` is :func:`amsnet_lib.studies.with_member` ``(exp, m)``: the same
folds and the same validation split as ``exp`` (member 0), its own initial weights, batch order and
augmentation. An ensemble of k members predicts the mean of the members' softmax probabilities
(Lakshminarayanan et al., 2017, "Simple and scalable predictive uncertainty estimation using deep
ensembles").

How many members is a choice, made on validation like every other: :func:`validation_scores`
scores the ensemble of the first k members, k = 1 ... n, on each fold's validation split and never
looks at a test fold; :func:`choose_size` keeps the k with the best mean validation UA (a tie: the
fewer). :func:`run_ensemble` then reads the test folds once, for that k. Both write what they
measured into the run store (``ensemble-<key>/seed<s>/<fold>``), so a clone without the members'
weights reports them again without training.

The members' validation split is the one each of them was early-stopped on, so the validation
figures are optimistic in absolute terms, alike for every k compared.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..atomic import atomic_write_text
from ..config import ExperimentConfig
from ..errors import AmsnetError
from ..data.features import Features
from ..metrics import per_class_recall, unweighted_accuracy, weighted_accuracy
from ..data.protocols import Fold, make_folds
from .runstore import RunStore, _describe, _key, experiment_fold_dir, n_utterances
from ..data.splits import stage_fold_data
from .training import (SINGLE_STAGE, ExperimentResult, _metrics_record, _prediction_frame, load_fold_model, predict_logits,
                       run_fold)
from .devices import _training_device

__all__ = ["members", "validation_scores", "choose_size", "run_ensemble", "ensemble_label"]


def members(exp: ExperimentConfig, n: int) -> list[ExperimentConfig]:
    """The first ``n`` members of the seed ensemble of ``exp`` (member 0: ``exp`` itself)."""
    from ..studies import with_member

    if n < 1:
        raise ValueError(f"an ensemble has at least one member, got {n}")
    return [with_member(exp, m) for m in range(n)]


#: The variants :func:`ensemble_label` gives, as a regular expression.
ENSEMBLE_VARIANT = r"^ensemble of \d+ seeds$"


def ensemble_label(k: int) -> str:
    """The variant that labels an ensemble of ``k`` members in tables and ``summary.csv``."""
    return f"ensemble of {k} seeds"


def _ensemble_dir(exps: list[ExperimentConfig], n_items: int, seed: int, fold: str, store: RunStore) -> tuple[Path, list[str]]:
    """The ensemble's fold folder and the run names of its members (which key it)."""
    runs = [experiment_fold_dir(e, n_items, seed, fold, store).parent.parent.name for e in exps]
    return store.fold_dir("ensemble", _key("ensemble", runs), seed, fold), runs


def _probabilities(exps, features: Features, fold: Fold, seed: int, store: RunStore, device, split: str, train: bool):
    """Each member's softmax probabilities ``(N, C)`` on ``split`` (``val`` or ``test``) of ``fold``,
    the labels ``(N,)`` and each member's fold folder. A member not trained yet is trained first
    (unless ``train`` is False: then ``(None, None, None)``)."""
    dirs = [run_fold(e, features, fold, seed, store, device, progress=False, train=train) for e in exps]
    if any(d is None for d in dirs):
        return None, None, None
    # members differ only in their seeds: one split and normalisation serves them all
    stage = exps[0].model if exps[0].model in SINGLE_STAGE else "fusion"
    data = getattr(stage_fold_data(exps[0], stage, features, fold, seed, device, fit=False), split)
    out = []
    for e, d in zip(exps, dirs):
        if not (d / "model.pt").is_file():
            raise AmsnetError(d, "holds the results of an ensemble member but not its weights (model.pt), which the "
                                 "ensemble needs to predict",
                              f"train it again: move {d} aside and run the ensemble again (same seed, same numbers)")
        logits, _ = predict_logits(load_fold_model(e, d, len(features.classes), store, device), data)
        out.append(torch.softmax(logits, 1).numpy())
    return np.stack(out), data["labels"].cpu().numpy(), dirs


def _scores(proba: np.ndarray, y: np.ndarray, n_classes: int) -> dict:
    """WA (eq 15), UA (eq 16), per-class recall and the cross-entropy of averaged probabilities ``(N, C)``."""
    pred = proba.argmax(1)
    nll = -np.log(np.clip(proba[np.arange(len(y)), y], 1e-12, None))
    return {"wa": weighted_accuracy(y, pred), "ua": unweighted_accuracy(y, pred, n_classes), "loss": float(nll.mean()),
            "recall": per_class_recall(y, pred, n_classes), "pred": pred}


def _folds(exp: ExperimentConfig, features: Features) -> list[Fold]:
    return make_folds(features.table, exp.protocol, n_folds=exp.n_folds, split_seed=exp.split_seed, split_file=exp.split_file)


def validation_scores(exp: ExperimentConfig, features: Features, n: int, *, store: RunStore | str | os.PathLike | None = None,
                      device=None, train: bool = True) -> pd.DataFrame:
    """Validation WA, UA (percent) and loss of the ensembles of the first k = 1 ... ``n`` members
    of ``exp``, per seed and fold; no test fold is read.

    Members not trained yet are trained (``train=False``: folds whose members are not all finished
    are left out). The scores are kept in the run store (``validation.csv``) and read back.

    Returns:
        one row per seed, fold and k: ``seed, fold, members, val_wa, val_ua, val_loss``; its
        ``attrs["missing"]`` lists the ``(seed, fold)`` left out.
    """
    store = store if isinstance(store, RunStore) else RunStore(store)
    device = _training_device(device)
    exps = members(exp, n)
    rows, missing = [], []
    for seed in exp.seeds:
        for fold in _folds(exp, features):
            d, runs = _ensemble_dir(exps, n_utterances(features, exp), seed, fold.name, store)
            path = d / "validation.csv"
            if not path.is_file():
                proba, y, _ = _probabilities(exps, features, fold, seed, store, device, "val", train)
                if proba is None:
                    missing.append((seed, fold.name))
                    continue
                scores = [_scores(proba[:k].mean(0), y, len(features.classes)) for k in range(1, n + 1)]
                table = pd.DataFrame([{"seed": seed, "fold": fold.name, "members": k, "val_wa": 100 * sc["wa"],
                                       "val_ua": 100 * sc["ua"], "val_loss": sc["loss"]} for k, sc in enumerate(scores, 1)])
                _describe(d.parent.parent, {"model": exp.model, "members": runs})
                atomic_write_text(path, table.round(4).to_csv(index=False))
            rows.append(pd.read_csv(path, dtype={"fold": str}))
    out = (pd.concat(rows, ignore_index=True) if rows
           else pd.DataFrame(columns=["seed", "fold", "members", "val_wa", "val_ua", "val_loss"]))
    out.attrs["missing"] = missing
    return out


def choose_size(scores: pd.DataFrame) -> int:
    """The number of members with the best mean validation UA over folds and seeds (a tie: the fewer)."""
    mean = scores.groupby("members")["val_ua"].mean().round(2)
    return int(mean[mean == mean.max()].index.min())


def run_ensemble(exp: ExperimentConfig, features: Features, k: int, *, store: RunStore | str | os.PathLike | None = None,
                 device=None, train: bool = True) -> ExperimentResult:
    """The test folds of the ensemble of the first ``k`` members of ``exp``, read once.

    Call it for the ``k`` :func:`choose_size` chose. Each fold's metrics and predictions (averaged
    probabilities) are kept in the run store and read back; ``seconds`` is the members' training
    time together. The result's config is ``exp`` labelled :func:`ensemble_label` ``(k)``, so it
    gets a row of its own in ``summary.csv``.
    """
    from ..studies import _labelled

    store = store if isinstance(store, RunStore) else RunStore(store)
    device = _training_device(device)
    exps = members(exp, k)
    rows, preds, missing = [], [], []
    for seed in exp.seeds:
        for fold in _folds(exp, features):
            d, runs = _ensemble_dir(exps, n_utterances(features, exp), seed, fold.name, store)
            if not store.done(d):
                proba, y, dirs = _probabilities(exps, features, fold, seed, store, device, "test", train)
                if proba is None:
                    missing.append((seed, fold.name))
                    continue
                ev = _scores(proba.mean(0), y, len(features.classes))
                ev.update(true=y, proba=proba.mean(0), alpha=None)
                member_metrics = [json.loads((m / "metrics.json").read_text()) for m in dirs]
                metrics = _metrics_record(ev, features.classes, device, features, seed=seed, fold=fold.name, members=k,
                                          best_epoch=0, seconds=sum(m["seconds"] for m in member_metrics), n_test=len(y))
                metrics["device"] = member_metrics[0].get("device", metrics["device"])  # what trained the members
                _describe(d.parent.parent, {"model": exp.model, "members": runs})
                store.save(d, metrics=metrics, curves=pd.DataFrame(columns=["epoch", "stage"]),
                           predictions=_prediction_frame(features.table, fold.test, ev, features.classes, seed, fold.name),
                           state=None)
            m, c, p = store.load(d)
            rows.append(m)
            preds.append(p)
    config = _labelled(exp, ensemble_label(k))
    if not rows:
        raise AmsnetError(store.root, f"holds no finished fold of the {k}-member ensemble of {exp.model}",
                          "train its members first (amsnet pretrain --studies seed_ensemble)")
    return ExperimentResult(config, pd.DataFrame(rows), pd.DataFrame(columns=["epoch", "stage", "seed", "fold"]),
                            pd.concat(preds, ignore_index=True), list(features.classes), missing)
