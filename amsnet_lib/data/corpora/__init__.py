"""Corpus tables: one row per utterance, the same layout for every corpus.

>>> table = load_corpus("emodb")                      # doctest: +SKIP
>>> table.attrs["classes"]                            # doctest: +SKIP
['anger', 'boredom', 'disgust', 'fear', 'happiness', 'sadness', 'neutral']

Columns, in order: ``path`` (absolute str), ``label`` (str), ``speaker`` (str or None),
``gender`` (``"m"``/``"f"``/None), ``session`` (str or None), ``text`` (str or None),
``duration`` (float, seconds); IEMOCAP adds ``improvised`` (bool), RAVDESS ``intensity``,
``statement`` and ``repetition``. ``attrs``: ``corpus``,
``classes`` (fixed order), ``skipped`` (list of ``(path, reason)``).

Named corpora joined with ``+`` (``"emodb+ravdess"``, beyond the paper) load as one table with a
``corpus`` column, each speaker named ``<corpus>:<speaker>`` and the classes the union, in the
order of the first corpus, then the others' new ones (:func:`load_corpora`).
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ...errors import CorpusError
from . import emodb, iemocap, ravdess
from ._common import COLUMNS, resolve_data_dir
from .custom import load_custom
from .emodb import load_emodb
from .iemocap import load_iemocap
from .ravdess import load_ravdess

__all__ = ["CLASSES", "COLUMNS", "NAMED", "load_corpora", "load_corpus", "resolve_data_dir", "load_emodb", "load_iemocap", "load_ravdess",
           "load_custom"]

#: Fixed class order of each named corpus (index = integer label).
CLASSES = {"emodb": list(emodb.CLASSES), "iemocap": list(iemocap.CLASSES), "ravdess": list(ravdess.CLASSES)}
#: The corpora known by name.
NAMED = tuple(CLASSES)


def load_corpus(
    name_or_path: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    download: bool | str = "auto",
    skip_bad: bool = True,
    **options,
) -> pd.DataFrame:
    """Load a corpus as a table (one row per utterance).

    Args:
        name_or_path: ``"emodb"``, ``"iemocap"``, ``"ravdess"``, a CSV manifest, or a folder. A
            folder that is an EmoDB copy (``wav/`` + ``erklaerung.txt``), an IEMOCAP release
            (``SessionN/`` folders) or a RAVDESS copy (``Actor_NN/`` folders) loads as that
            corpus; any other folder is read as one sub-folder per label.
        data_dir: folder of a named corpus (overrides ``AMSNET_EMODB_DIR`` /
            ``AMSNET_IEMOCAP_DIR`` / ``AMSNET_RAVDESS_DIR`` and ``<repo>/data/<corpus>``); see
            :func:`resolve_data_dir`.
        download: EmoDB and RAVDESS: ``"auto"``/``True`` downloads it when absent, ``False`` never.
        skip_bad: leave out unusable files, listed in ``attrs["skipped"]``, instead of raising.
        **options: passed to the loader: ``verify``/``url`` (EmoDB, RAVDESS), ``check_audio``
            (IEMOCAP), ``classes`` (CSV manifest or folder).

    Returns:
        ``pandas.DataFrame`` with the columns above and ``attrs`` ``corpus``, ``classes``,
        ``skipped``.

    Raises:
        CorpusError: unknown name or path; a corpus absent, incomplete or corrupt.
        ManifestError: malformed manifest or label file.
        AudioError: unusable audio with ``skip_bad=False``.
    """
    name = str(name_or_path)
    if not name.strip():  # Path("") is the current folder, which would be read as a corpus
        raise CorpusError(None, "an empty corpus name was given", "pass emodb, iemocap, a CSV manifest or a folder")
    if "+" in name and not Path(name).expanduser().exists():
        if data_dir is not None or options:
            raise ValueError(f"{name}: data_dir and loader options apply to one named corpus; each corpus of a "
                             "combination is found through its own setting (AMSNET_EMODB_DIR, AMSNET_RAVDESS_DIR, ...)")
        return load_corpora(name.split("+"), download=download, skip_bad=skip_bad)
    if name.lower() == "emodb":
        return load_emodb(data_dir, download=download, skip_bad=skip_bad, **options)
    if name.lower() == "iemocap":
        return load_iemocap(data_dir, skip_bad=skip_bad, **options)
    if name.lower() == "ravdess":
        return load_ravdess(data_dir, download=download, skip_bad=skip_bad, **options)
    path = Path(name_or_path).expanduser().absolute()
    if not path.exists():
        raise CorpusError(path, "is neither a known corpus name (emodb, iemocap, ravdess) nor an existing CSV manifest "
                          "or folder", "check the spelling or the path")
    if data_dir is not None:
        raise ValueError("data_dir applies to the named corpora 'emodb', 'iemocap' and 'ravdess'; "
                         "for a path, pass the path only")
    if path.is_dir() and (path / "wav").is_dir() and (path / "erklaerung.txt").is_file():
        return load_emodb(path, download=False, skip_bad=skip_bad, **options)
    if path.is_dir() and _looks_like_iemocap(path):
        return load_iemocap(path, skip_bad=skip_bad, **options)
    if path.is_dir() and ravdess.looks_like_ravdess(path):
        return load_ravdess(path, download=False, skip_bad=skip_bad, **options)
    return load_custom(path, skip_bad=skip_bad, **options)


def _looks_like_iemocap(folder: Path) -> bool:
    if (folder / "IEMOCAP_full_release").is_dir():
        return True
    return any((p / "dialog" / "EmoEvaluation").is_dir() for p in folder.glob("Session[0-9]*"))


def load_corpora(names, download: bool | str = "auto", skip_bad: bool = True) -> pd.DataFrame:
    """Several named corpora as one table (beyond the paper: a model for voices and corpora it never
    heard trains on more than one).

    Args:
        names: two or more of ``emodb``, ``iemocap``, ``ravdess``, each found through its own setting
            (:func:`resolve_data_dir`).
        download, skip_bad: as :func:`load_corpus`, for each corpus.

    Returns:
        The corpora's tables one after another, with a ``corpus`` column; ``speaker`` is
        ``<corpus>:<speaker>`` (speaker ids repeat across corpora: EmoDB's ``03`` is not RAVDESS's);
        ``attrs``: ``corpus`` (the names joined with ``+``), ``classes`` (the union: the first corpus's
        order, then each next corpus's new classes), ``skipped`` (every corpus's).

    Raises:
        CorpusError: a name that is not a named corpus, a repeated one, fewer than two; as
            :func:`load_corpus` for each corpus.
    """
    names = [str(n).strip().lower() for n in names]
    unknown = [n for n in names if n not in NAMED]
    if unknown or len(set(names)) != len(names) or len(names) < 2:
        raise CorpusError(None, f"{'+'.join(names)} is not a combination of two or more different named corpora",
                          f"join names of {', '.join(NAMED)} with '+', each once (e.g. emodb+ravdess)")
    parts, classes, skipped = [], [], []
    for n in names:
        t = load_corpus(n, download=download, skip_bad=skip_bad)
        t = t.assign(corpus=n, speaker=[None if s is None or pd.isna(s) else f"{n}:{s}" for s in t["speaker"]])
        parts.append(t)
        classes += [c for c in t.attrs["classes"] if c not in classes]
        skipped += list(t.attrs.get("skipped", []))
    table = pd.concat(parts, ignore_index=True)
    front = [c for c in COLUMNS if c in table.columns] + ["corpus"]
    table = table[front + [c for c in table.columns if c not in front]]
    table.attrs = {"corpus": "+".join(names), "classes": classes, "skipped": skipped}
    return table
