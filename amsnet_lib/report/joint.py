"""Beyond the paper: a model trained on two corpora against the model of each corpus alone (issue #38 item 5).

A run under the protocol ``corpus_folds`` (``amsnet train --corpus emodb+ravdess --protocol corpus_folds``)
tests each corpus on its own speaker-independent folds with the other corpus always in training. Its test
predictions on one corpus are set beside those of the model trained on that corpus alone, on the same
folds and utterances: each joint prediction is the most probable of the classes that corpus's audio can
have (its own label set; the probabilities renormalised over them, which leaves their order as it is),
so the joint model is not charged for the classes only the other corpus has.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePath

import numpy as np
import pandas as pd

from ..metrics import unweighted_accuracy, weighted_accuracy
from .significance import significance_table
from .tables import NOT_RUN


@dataclass
class CorpusView:
    """One corpus's share of a joint run, named as the model of that corpus alone names it: what
    :func:`~amsnet_lib.report.significance.significance_table` reads (``predictions``, ``classes``, ``missing``)."""

    predictions: pd.DataFrame
    classes: list[str]
    missing: list = field(default_factory=list)


def corpus_view(joint, corpus: str, alone) -> CorpusView:
    """``joint``'s test predictions on ``corpus``'s folds, in the fold names, paths and class order of ``alone``.

    Args:
        joint: the :class:`~amsnet_lib.train.training.ExperimentResult` of a ``corpus_folds`` run (folds named
            ``<corpus>_<fold>``, paths relative to the corpora's common folder).
        corpus: e.g. ``emodb``.
        alone: the result of the same model trained on ``corpus`` alone under that corpus's protocol.

    Returns:
        :class:`CorpusView`: ``pred`` is the joint model's most probable class among ``alone.classes``; the
        folds ``alone`` has not finished, or the joint run has not, are ``missing``.

    Raises:
        ValueError: a class of ``alone`` the joint model does not know, or a test file of ``alone`` that the
            joint run's fold does not hold.
    """
    classes = list(alone.classes)
    unknown = [c for c in classes if c not in joint.classes]
    if unknown:
        raise ValueError(f"the joint model has no class {unknown} of {corpus}: was it trained on {corpus}?")
    prefix = f"{corpus}_"
    mine = joint.predictions[joint.predictions["fold"].astype(str).str.startswith(prefix)].copy()
    mine["key"] = pd.Series([_fold_key(f.removeprefix(prefix)) for f in mine["fold"].astype(str)], index=mine.index,
                            dtype=object)
    mine["name"] = [PurePath(p).name for p in mine["path"]]
    finished = set(mine["key"])
    ref = alone.predictions.copy()
    ref["key"] = pd.Series([_fold_key(f) for f in ref["fold"]], index=ref.index, dtype=object)
    ref = ref[ref["key"].isin(finished)]
    ref["name"] = [PurePath(p).name for p in ref["path"]]
    merged = ref[["seed", "fold", "key", "path", "name", "true"]].merge(
        mine.drop(columns=["fold", "path", "true", "pred"]), on=["seed", "key", "name"], how="left", validate="one_to_one")
    proba = merged[[f"p_{c}" for c in classes]].to_numpy(dtype=float)
    if np.isnan(proba).any():
        lost = merged.loc[np.isnan(proba).any(axis=1), "path"].iloc[0]
        raise ValueError(f"the joint run's {corpus} folds do not hold the test file {lost} of the model trained alone")
    view = merged[["seed", "fold", "path", "true"]].assign(pred=proba.argmax(axis=1))
    unfinished = {f for f in alone.predictions["fold"] if _fold_key(f) not in finished}
    return CorpusView(view, classes, sorted({str(f) for f in unfinished} | {str(m) for m in getattr(alone, "missing", [])}))


def _fold_key(fold) -> str:
    """A fold's name for matching: a stored predictions file reads EmoDB's speaker ``03`` back as the number 3."""
    text = str(fold)
    return str(int(text)) if text.isdigit() else text


def fold_mean(view) -> dict:
    """WA and UA (%) as the tables give them: per fold and seed, then the mean."""
    n = len(view.classes)
    per = [(weighted_accuracy(g["true"], g["pred"]), unweighted_accuracy(g["true"], g["pred"], n))
           for _, g in view.predictions.groupby(["seed", "fold"])]
    wa, ua = np.mean(per, axis=0) if per else (np.nan, np.nan)
    return {"wa": round(100 * float(wa), 2), "ua": round(100 * float(ua), 2), "n_folds": len(per)}


def corpus_comparison(joint, alone: dict, label: str = "trained on both corpora") -> pd.DataFrame:
    """Per corpus: the model alone and the joint model on the same finished folds, WA/UA (%) and the paired test.

    Args:
        joint: a ``corpus_folds`` run's result.
        alone: corpus -> the same model's result on that corpus alone (its own protocol's folds).
        label: what the joint model is called in the table.

    Returns:
        One row per corpus: ``corpus``, ``folds`` (compared / the corpus's), WA and UA of each, ``ΔWA``/``ΔUA``
        (joint − alone, pp), ``p (UA, bootstrap)`` and ``p (WA, McNemar)`` on the same test utterances.
    """
    rows = []
    for corpus, res in alone.items():
        view = corpus_view(joint, corpus, res)
        n_all = res.predictions["fold"].nunique() + len(getattr(res, "missing", []))
        if not len(view.predictions):
            rows.append({"corpus": corpus, "folds": f"0 of {n_all}", f"WA {label} (%)": NOT_RUN})
            continue
        done = view.predictions[["seed", "fold"]].drop_duplicates()
        ref = CorpusView(res.predictions.merge(done, on=["seed", "fold"]), list(res.classes))
        a, b = fold_mean(ref), fold_mean(view)
        # on the folds both finished: the others are counted in "folds"
        sig = significance_table({label: CorpusView(view.predictions, view.classes), "alone": ref}, label).iloc[0]
        rows.append({"corpus": corpus, "folds": f"{b['n_folds']} of {n_all}",
                     "WA alone (%)": a["wa"], "UA alone (%)": a["ua"],
                     f"WA {label} (%)": b["wa"], f"UA {label} (%)": b["ua"],
                     "ΔWA (pp)": round(b["wa"] - a["wa"], 2), "ΔUA (pp)": round(b["ua"] - a["ua"], 2),
                     "ΔUA 95 % CI": sig["ΔUA 95 % CI"], "p (UA, bootstrap)": sig["p (UA, bootstrap)"],
                     "p (WA, McNemar)": sig["p (WA, McNemar)"]})
    return pd.DataFrame(rows)
