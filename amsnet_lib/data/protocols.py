"""Evaluation protocols: which utterances each fold trains and tests on.

- ``paper``: stratified random k-fold (k = 5: 80 % train, 20 % test), as in the paper. The same
  speakers appear in training and test, so it measures speaker-*dependent* accuracy.
- ``loso``: leave one speaker out (EmoDB: 10 folds), speaker-independent.
- ``loso_session``: leave one session out (IEMOCAP: 5 folds, each session's two speakers unseen).
- ``split_file``: a CSV ``path,fold`` giving each utterance's test fold.
- ``emobox``: EmoBox's published folds (Ma et al., Interspeech 2024), shipped in
  ``amsnet_lib/data/corpora/folds/`` with their provenance: EmoDB 5 speaker-dependent folds,
  RAVDESS 6 speaker-independent folds of 4 actors. Numbers under it are comparable with EmoBox's
  leaderboard.
- ``corpus_folds``: for a table of several corpora (``load_corpus("emodb+ravdess")``), each corpus split by
  its own speaker-independent protocol (EmoDB ``loso``, RAVDESS ``emobox``, IEMOCAP ``loso_session``) with
  the other corpora's utterances in every fold's training part: each corpus's test folds are those a model
  of that corpus alone is measured on, so the two compare fold by fold.

Folds depend only on the table, the protocol and ``split_seed``: every model of a study is
evaluated on the same folds.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import CORPUS_FOLDS
from ..errors import ManifestError


@dataclass(frozen=True)
class Fold:
    """One train/test partition, as positional indices into the corpus table."""

    name: str
    train: np.ndarray
    test: np.ndarray


def original_rows(table: pd.DataFrame) -> np.ndarray:
    """Boolean ``(len(table),)``: the rows that are recordings of the corpus, not augmented copies
    (a copy names its original in the ``source`` column, :func:`amsnet_lib.data.channels.augmented_features`)."""
    if "source" not in table.columns:
        return np.ones(len(table), bool)
    return (table["source"].fillna("").astype(str) == "").to_numpy()


def make_folds(
    table: pd.DataFrame,
    protocol: str = "paper",
    *,
    n_folds: int = 5,
    split_seed: int = 0,
    split_file: str | None = None,
) -> list[Fold]:
    """The folds of a protocol over a corpus table (see the module docstring).

    A table with augmented copies (a ``source`` column, :func:`amsnet_lib.data.channels.augmented_features`)
    is split over its originals, so its folds are those of the originals alone; no copy is in any
    fold (the engine adds each copy to the fit part of its original's fold).
    """
    from sklearn.model_selection import StratifiedKFold

    if "source" in table.columns:
        original = np.flatnonzero(original_rows(table))
        folds = make_folds(table.iloc[original].drop(columns="source").reset_index(drop=True), protocol,
                           n_folds=n_folds, split_seed=split_seed, split_file=split_file)
        return [Fold(f.name, original[f.train], original[f.test]) for f in folds]

    n = len(table)
    idx = np.arange(n)
    if protocol == "paper":
        skf = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=split_seed)
        return [Fold(f"fold{k}", tr, te) for k, (tr, te) in enumerate(skf.split(idx, table["label"]))]
    if protocol in ("loso", "loso_session"):
        column = "speaker" if protocol == "loso" else "session"
        groups = table[column]
        if groups.isna().any():
            raise ValueError(f"protocol {protocol!r} needs a {column!r} for every utterance")
        names = sorted(groups.unique())
        if len(names) < 2:
            raise ValueError(f"protocol {protocol!r} needs at least two values of {column!r}, got {names}")
        return [Fold(str(g), idx[groups.to_numpy() != g], idx[groups.to_numpy() == g]) for g in names]
    if protocol == "split_file":
        return _folds_from_file(table, split_file)
    if protocol == "emobox":
        return emobox_folds(table)
    if protocol == "corpus_folds":
        return corpus_folds(table)
    raise ValueError(f"unknown protocol {protocol!r}; use paper, loso, loso_session, split_file, emobox or corpus_folds")


#: Folder of the shipped EmoBox fold lists (``emobox_<corpus>.csv``).
EMOBOX_DIR = Path(__file__).resolve().parent / "corpora" / "folds"


def emobox_folds(table: pd.DataFrame) -> list[Fold]:
    """EmoBox's folds of a named corpus (``table.attrs["corpus"]``: ``emodb`` or ``ravdess``),
    each utterance matched on its file's stem.

    Raises:
        ManifestError: the corpus has no EmoBox folds shipped, or an utterance has none.
    """
    corpus = table.attrs.get("corpus")
    folds_csv = EMOBOX_DIR / f"emobox_{corpus}.csv"
    if not folds_csv.is_file():
        shipped = sorted(p.stem.removeprefix("emobox_") for p in EMOBOX_DIR.glob("emobox_*.csv"))
        raise ManifestError(folds_csv, f"no EmoBox folds are shipped for the corpus {corpus!r}",
                            f"use the protocol emobox with one of {shipped}, or give your own folds with "
                            "protocol split_file")
    splits = pd.read_csv(folds_csv, dtype=str)
    by_stem = {Path(p).stem: f for p, f in zip(splits["path"], splits["fold"])}
    folds = [by_stem.get(Path(p).stem) for p in table["path"]]
    missing = [p for p, f in zip(table["path"], folds) if f is None]
    if missing:
        raise ManifestError(folds_csv, f"gives no fold for {len(missing)} utterance(s) of the corpus, e.g. {missing[0]}",
                            "use the corpus as released (EmoBox's folds name every utterance of it)")
    folds = np.asarray(folds)
    idx = np.arange(len(table))
    return [Fold(str(f), idx[folds != f], idx[folds == f]) for f in sorted(set(folds))]


def corpus_folds(table: pd.DataFrame) -> list[Fold]:
    """Each corpus of a joined table split by its own protocol (:data:`~amsnet_lib.config.CORPUS_FOLDS`), the
    other corpora always in training.

    Args:
        table: corpora joined by :func:`~amsnet_lib.data.corpora.load_corpora` (a ``corpus`` column; speakers
            named ``<corpus>:<speaker>``).

    Returns:
        The folds of every corpus in name order, each named ``<corpus>_<fold>`` after the fold of that corpus
        alone (``emodb_03``, ``ravdess_fold_1``); its training part is every utterance not in its test part.

    Raises:
        ValueError: no ``corpus`` column, or a corpus whose protocol is not known.
    """
    if "corpus" not in table.columns:
        raise ValueError("protocol 'corpus_folds' splits a table of several corpora (load_corpus('emodb+ravdess')); "
                         "this table has no corpus column")
    corpora = table["corpus"].astype(str).to_numpy()
    idx = np.arange(len(table))
    folds = []
    for corpus in sorted(set(corpora)):
        if corpus not in CORPUS_FOLDS:
            raise ValueError(f"protocol 'corpus_folds' knows the folds of {sorted(CORPUS_FOLDS)}, not of {corpus!r}")
        rows = idx[corpora == corpus]
        alone = table.iloc[rows].reset_index(drop=True)
        if "speaker" in alone.columns:  # the speakers as the corpus alone names them: the same fold names
            alone["speaker"] = alone["speaker"].astype("string").str.removeprefix(f"{corpus}:").astype(object)
        alone.attrs = {**table.attrs, "corpus": corpus}
        for fold in make_folds(alone, CORPUS_FOLDS[corpus]):
            test = rows[fold.test]
            folds.append(Fold(f"{corpus}_{fold.name}", np.setdiff1d(idx, test), test))
    return folds


def _folds_from_file(table: pd.DataFrame, split_file: str | None) -> list[Fold]:
    fix = "give a CSV with columns path,fold where fold names each utterance's test fold"
    if not split_file or not Path(split_file).is_file():
        raise ManifestError(split_file, "split file not found", fix)
    try:
        splits = pd.read_csv(split_file, dtype=str)
    except Exception as e:
        raise ManifestError(split_file, f"cannot be read as CSV ({e})", fix) from None
    if not {"path", "fold"} <= set(splits.columns):
        raise ManifestError(split_file, f"has columns {list(splits.columns)}, needs path and fold", fix)
    # Match on full path, else on file name, so split files stay portable across machines.
    by_name = {Path(p).name: f for p, f in zip(splits["path"], splits["fold"])}
    by_path = dict(zip(splits["path"], splits["fold"]))
    folds = [by_path.get(p, by_name.get(Path(p).name)) for p in table["path"]]
    missing = [p for p, f in zip(table["path"], folds) if f is None or pd.isna(f)]
    if missing:
        raise ManifestError(split_file, f"gives no fold for {len(missing)} utterances, e.g. {missing[0]}", fix)
    folds = np.asarray(folds)
    idx = np.arange(len(table))
    names = sorted(set(folds))
    if len(names) < 2:
        raise ManifestError(split_file, "defines fewer than two folds", fix)
    return [Fold(str(f), idx[folds != f], idx[folds == f]) for f in names]


def validation_groups(table: pd.DataFrame, validation: str) -> dict:
    """The keyword arguments of :func:`validation_split` for a corpus table and a validation mode: under
    ``speaker`` whole speakers are held out, and in a table of several corpora (a ``corpus`` column) speakers
    of each corpus, so that the epochs are chosen on every corpus the model is for."""
    if validation != "speaker":
        return {}
    strata = table["corpus"].to_numpy() if "corpus" in table.columns else None
    return {"groups": table["speaker"].to_numpy(), "strata": strata}


def validation_split(labels: np.ndarray, train: np.ndarray, fraction: float, seed: int,
                     groups: np.ndarray | None = None, strata: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Hold-out of ``fraction`` of a fold's training indices for model selection.

    The test fold is never involved: early stopping and checkpoint selection look only at this
    split. Without ``groups`` the hold-out is stratified by label (utterances of the training
    speakers); with ``groups`` (one speaker name per corpus row) whole speakers are held out,
    about ``fraction`` of the training part, so that choices are made on voices the model did not
    train on, as a speaker-independent test fold asks; with ``strata`` as well (each row's corpus)
    about ``fraction`` of the speakers of each stratum that has two or more (when none has, as
    without ``strata``). Returns ``(fit_indices, val_indices)``;
    ``fraction=0`` gives no validation set.
    """
    from sklearn.model_selection import GroupShuffleSplit, train_test_split

    if fraction <= 0:
        return train, train[:0]
    if groups is not None and strata is not None:
        within, g = np.asarray(strata)[train], np.asarray(groups)
        fits, vals = [], []
        for k in np.unique(within):
            part = train[within == k]
            if len(set(g[part])) >= 2:
                fit, val = validation_split(labels, part, fraction, seed, groups=groups)
            else:  # a stratum of one training speaker cannot lend one to validation without losing all its training
                fit, val = part, train[:0]
            fits.append(fit)
            vals.append(val)
        if not any(len(v) for v in vals):  # no corpus has two: speakers of any corpus, as without strata
            return validation_split(labels, train, fraction, seed, groups=groups)
        return np.sort(np.concatenate(fits)), np.sort(np.concatenate(vals))
    if groups is not None:
        g = np.asarray(groups)[train]
        if len(set(g)) < 2:
            raise ValueError(f"a validation split by speaker needs at least two training speakers, got {sorted(set(g))}")
        fit, val = next(GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed).split(train, groups=g))
        return np.sort(train[fit]), np.sort(train[val])
    y = labels[train]
    counts = np.bincount(y)
    n_val = int(np.ceil(fraction * len(train)))
    # Stratify when every class can give one validation item; tiny sets fall back to random.
    stratify = y if counts[counts > 0].min() >= 2 and n_val >= (counts > 0).sum() else None
    fit, val = train_test_split(train, test_size=fraction, random_state=seed, stratify=stratify)
    return np.sort(fit), np.sort(val)
