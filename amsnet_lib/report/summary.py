"""``summary.csv``, the run store's one-row-per-experiment index: written row by row as experiments finish
(:func:`update_summary`, under a file lock, atomically), and rebuilt by ``run_all.sh --no-train`` from the
experiments it reads (:func:`begin_summary_rebuild` ... :func:`end_summary_rebuild`), so it holds no row that no
configuration names any more. The tables (:mod:`amsnet_lib.report.tables`) read it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..atomic import atomic_write_text, locked

#: The columns that identify a row of ``summary.csv`` (one row per experiment).
SUMMARY_KEYS = ["corpus", "protocol", "recipe", "model", "variant"]
#: ``summary.csv``'s column naming what wrote a row: :data:`SUITE` (the notebooks' sessions), ``amsnet
#: train``, a script; empty for a row written before the column existed.
WRITTEN_BY = "written_by"
#: What the notebooks' sessions write: the rows a ``run_all.sh --no-train`` rebuild reads back.
SUITE = "notebooks"


def _read_summary(path: Path) -> pd.DataFrame:
    """``summary.csv`` as written; one from before the tuned recipe gains its ``recipe`` column (every row the paper's)."""
    old = pd.read_csv(path, keep_default_na=False)
    if "recipe" not in old:
        old.insert(old.columns.get_loc("model") if "model" in old else 0, "recipe", "paper")
    return old


def update_summary(result, path: str | os.PathLike = "results/tables/summary.csv", *, written_by: str = "") -> pd.DataFrame:
    """Insert or replace an experiment's row (``result``: an
    :class:`~amsnet_lib.train.training.ExperimentResult`, or its ``summary()`` dict) in ``summary.csv``,
    the machine-readable summary every table of the report reads.

    ``written_by``: what writes it (:data:`WRITTEN_BY`; :data:`SUITE` for the notebooks' sessions,
    whose rows a ``--no-train`` rebuild reads back and so judges; other writers' rows it keeps).
    Under :func:`~amsnet_lib.atomic.locked`: processes updating one summary at once each keep their
    row; the file is replaced atomically.
    """
    row = dict(result) if isinstance(result, dict) else result.summary()
    row.setdefault("recipe", "paper")
    row[WRITTEN_BY] = written_by
    with locked(path) as path:
        old = _read_summary(path) if path.is_file() else pd.DataFrame(columns=list(row))
        if len(old):
            same = np.logical_and.reduce([old[k].astype(str) == str(row[k]) for k in SUMMARY_KEYS])
            old = old[~same]
        new = pd.concat([old, pd.DataFrame([row])], ignore_index=True).sort_values(SUMMARY_KEYS, kind="stable")
        atomic_write_text(path, new.to_csv(index=False))
    return new


def drop_summary_rows(path: str | os.PathLike, *, corpus: str, protocol: str, model: str, recipe: str, variant: str,
                      keep: str | None = None) -> int:
    """Remove from ``summary.csv`` the rows of ``corpus``, ``protocol``, ``model`` and ``recipe`` whose
    variant matches the regular expression ``variant``, except the variant ``keep``: rows of a
    configuration no longer measured (e.g. seed ensembles of another size). Locked and atomic as
    :func:`update_summary`; returns the number of rows removed."""
    with locked(path) as path:
        if not path.is_file():
            return 0
        old = _read_summary(path)
        v = old["variant"].astype(str)
        hit = ((old["corpus"].astype(str) == corpus) & (old["protocol"].astype(str) == protocol)
               & (old["model"].astype(str) == model) & (old["recipe"].astype(str) == recipe)
               & v.str.match(variant) & (v != str(keep)))
        if hit.any():
            atomic_write_text(path, old[~hit].to_csv(index=False))
        return int(hit.sum())


def _summary_before(path: Path) -> Path:
    """Where :func:`begin_summary_rebuild` keeps the summary a rebuild started from (a dotfile beside it)."""
    return path.with_name(f".{path.stem}-before{path.suffix}")


def _suite_rows(old: pd.DataFrame) -> np.ndarray:
    """Rows the notebooks' sessions wrote (:data:`SUITE`)."""
    return (old[WRITTEN_BY].astype(str) == SUITE).to_numpy(copy=True) if WRITTEN_BY in old else np.zeros(len(old), dtype=bool)


def begin_summary_rebuild(path: str | os.PathLike, corpora: Sequence[str] | None = None,
                          protocols: Sequence[str] | None = None) -> None:
    """Start ``summary.csv`` without the notebooks' rows (:data:`SUITE`) of ``corpora`` and ``protocols``
    (None: every one), so that what a run of the notebooks writes into it (``run_all.sh --no-train``:
    the experiments they read back from the run store) is all it holds of them: a row of an
    experiment no configuration names any more does not survive. The rows other writers made
    (``amsnet train``, scripts, or before :data:`WRITTEN_BY` existed), which the notebooks do not
    read, are kept, and so are rows of corpora and protocols the run does not read. The summary it
    started from is kept beside it until :func:`end_summary_rebuild`; after an interrupted rebuild,
    the rebuild starts again from that first one.
    """
    with locked(path) as path:
        before = _summary_before(path)
        if path.is_file() and not before.is_file():
            path.replace(before)
        if not before.is_file():
            return
        old = _read_summary(before)
        read = _suite_rows(old)
        for col, values in (("corpus", corpora), ("protocol", protocols)):
            if values is not None:
                read &= old[col].astype(str).isin(list(values)).to_numpy()
        if read.all():
            path.unlink(missing_ok=True)  # the run's rows make a new one, as in a fresh clone
        else:
            atomic_write_text(path, old[~read].to_csv(index=False))


def end_summary_rebuild(path: str | os.PathLike) -> pd.DataFrame:
    """Finish a rebuild begun by :func:`begin_summary_rebuild`: returns the rows of the summary it
    started from whose experiment (``SUMMARY_KEYS``) has no row any more, and forgets that summary.
    Nothing begun: an empty table."""
    with locked(path) as path:
        before = _summary_before(path)
        if not before.is_file():
            return pd.DataFrame(columns=SUMMARY_KEYS)
        old = _read_summary(before)
        new = _read_summary(path) if path.is_file() else pd.DataFrame(columns=SUMMARY_KEYS)
        kept = set(map(tuple, new[SUMMARY_KEYS].astype(str).to_numpy()))
        gone = old[[tuple(r) not in kept for r in old[SUMMARY_KEYS].astype(str).to_numpy()]]
        before.unlink()
        return gone.reset_index(drop=True)
