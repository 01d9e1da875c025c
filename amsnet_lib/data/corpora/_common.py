"""Pieces shared by the corpus loaders: the table layout, data-directory resolution, skipping."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from ...errors import AmsnetError

#: Columns of every corpus table, in this order (IEMOCAP appends ``improvised``).
COLUMNS = ["path", "label", "speaker", "gender", "session", "text", "duration"]

#: Environment variables naming a corpus's folder.
ENV_VARS = {"emodb": "AMSNET_EMODB_DIR", "iemocap": "AMSNET_IEMOCAP_DIR"}

#: Repository root: the parent of the ``amsnet_lib`` package folder.
REPO_ROOT = Path(__file__).resolve().parents[3]


def resolve_data_dir(corpus: str, data_dir: str | os.PathLike | None = None) -> Path:
    """Folder where a named corpus lives (or will be downloaded to).

    Precedence: the ``data_dir`` argument > the environment variable
    (``AMSNET_EMODB_DIR`` / ``AMSNET_IEMOCAP_DIR``) > ``<repo root>/data/<corpus>``.

    Args:
        corpus: ``"emodb"`` or ``"iemocap"``.
        data_dir: explicit folder, e.g. from the CLI's ``--data-dir``.

    Returns:
        Absolute path; it need not exist.
    """
    corpus = corpus.lower()
    if corpus not in ENV_VARS:
        raise ValueError(f"unknown corpus {corpus!r}; expected one of {sorted(ENV_VARS)}")
    if data_dir is None:
        # An empty variable counts as unset, as shells commonly export VAR= to clear it.
        data_dir = os.environ.get(ENV_VARS[corpus]) or REPO_ROOT / "data" / corpus
    return Path(data_dir).expanduser().absolute()


def make_table(
    rows: Iterable[dict],
    corpus: str,
    classes: Sequence[str],
    skipped: Sequence[tuple[str, str]] = (),
    extra_columns: Sequence[str] = (),
) -> pd.DataFrame:
    """Build a corpus table with the contract's columns, dtypes and ``attrs``."""
    columns = COLUMNS + list(extra_columns)
    table = pd.DataFrame(list(rows), columns=columns)
    # Object dtype keeps None as None (not NaN) in the optional text columns.
    for column in ("path", "label", "speaker", "gender", "session", "text"):
        table[column] = table[column].astype(object)
        table[column] = table[column].where(table[column].notna(), None)
    table["duration"] = table["duration"].astype("float64")
    if "improvised" in columns:
        table["improvised"] = table["improvised"].astype(bool)
    table.attrs = {"corpus": corpus, "classes": list(classes), "skipped": [tuple(s) for s in skipped]}
    return table


def skip_or_raise(error: AmsnetError, skipped: list[tuple[str, str]], skip_bad: bool) -> None:
    """Record ``error`` in ``skipped`` as ``(path, reason)``, or raise it when ``skip_bad`` is off."""
    if not skip_bad:
        raise error
    skipped.append((str(error.path), error.problem))


def duration_or_skip(path, skipped: list[tuple[str, str]], skip_bad: bool) -> float | None:
    """Duration in seconds from the file header, or ``None`` after :func:`skip_or_raise` when the
    file is not usable audio (unreadable, empty, too short)."""
    from ..audio import audio_info
    from ...errors import AudioError

    try:
        return audio_info(path)[0]
    except AudioError as error:
        skip_or_raise(error, skipped, skip_bad)
        return None
