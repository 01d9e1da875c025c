"""Your own corpus: a CSV manifest, or a folder with one sub-folder per label.

CSV manifest (UTF-8, header required)::

    path,label,speaker,gender,session,text
    clips/a.wav,angry,spk1,f,,
    /abs/b.flac,sad,spk2,m,s1,hello

``path`` and ``label`` are required, the other columns optional (other column names are
ignored). Relative paths are relative to the CSV's folder. Gender accepts ``m``/``f``/
``male``/``female`` (any case) or empty.

Folder layout: ``<folder>/<label>/**/<file>`` (searched recursively inside each label folder
for the files named as audio, :data:`amsnet_lib.data.audio.AUDIO_EXTENSIONS`: WAV, FLAC, Ogg,
MP3, AIFF; hidden files and folders are ignored; every other file is listed in
``attrs["skipped"]``, never passed over in silence).

Labels are compared exactly: two labels that differ only in case (``ANGER`` and ``anger``) are
refused with the fix, rather than becoming two classes or being merged under a spelling the
loader would have to guess (the class names end up in checkpoints and tables). So is a label
holding control characters (a terminal escape sequence would reach every printout).
"""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Sequence

import pandas as pd

from ...errors import CorpusError, ManifestError
from ..audio import AUDIO_EXTENSIONS
from ._common import duration_or_skip, make_table

__all__ = ["load_custom", "AUDIO_EXTENSIONS"]

_REQUIRED = ("path", "label")
_OPTIONAL = ("speaker", "gender", "session", "text")
_GENDERS = {"m": "m", "male": "m", "f": "f", "female": "f", "": None}


def load_custom(
    source: str | os.PathLike,
    classes: Sequence[str] | None = None,
    skip_bad: bool = True,
    name: str | None = None,
) -> pd.DataFrame:
    """Load a CSV manifest or a folder-per-label corpus as a corpus table.

    Args:
        source: a ``.csv`` manifest or a folder with one sub-folder per label.
        classes: class order; default the sorted unique labels. Every label must be in it.
        skip_bad: leave out unreadable, empty or too short audio files and report them in
            ``attrs["skipped"]`` as ``(path, reason)``; when ``False`` they raise AudioError.
        name: the corpus's name in tables, summaries and run keys; default the manifest's file
            name without ``.csv`` (or the folder's name). A name of a built-in corpus (``emodb``,
            ``iemocap``) gets ``-custom`` appended: those names choose the built-in corpora's
            settings and label their results.

    Returns:
        Table in the manifest's row order (folder: sorted by path), ``attrs["corpus"]`` is
        its name (see ``name``); durations come from the file headers.

    Raises:
        ManifestError: malformed manifest (missing columns, no rows, bad encoding, a file
            that does not exist, unknown label...), naming the file, the line and the fix.
        CorpusError: a folder without label sub-folders holding audio.
        AudioError: a bad audio file with ``skip_bad=False``.
    """
    if not str(source).strip():  # Path("") is the current folder
        raise CorpusError(None, "an empty corpus path was given", "pass a CSV manifest or a folder with one sub-folder "
                          "per label")
    source = Path(source).expanduser().absolute()
    passed: list[tuple[str, str]] = []
    if source.is_dir():
        entries, passed = _scan_folder(source)
        where = {}
    elif source.is_file():
        entries, where = _read_manifest(source)
    else:
        raise CorpusError(source, "does not exist" if not source.exists() else "is not a regular file or a folder",
                          "pass an existing CSV manifest or a folder with one sub-folder per label")
    _refuse_case_variants(entries, where, source)
    _refuse_unprintable(entries, where, source)
    found = sorted({e["label"] for e in entries})
    if classes is None:
        classes = found
    else:
        classes = [str(c) for c in classes]
        if len(set(classes)) != len(classes):
            raise ValueError(f"classes has duplicates: {classes}")
        unknown = [label for label in found if label not in classes]
        if unknown:
            first = next(e for e in entries if e["label"] == unknown[0])
            raise ManifestError(source, f"{where.get(first['path'], first['path'])}: label(s) {unknown} "
                                f"are not among the given classes {classes}",
                                "add them to classes, or leave those rows out of the manifest")
    rows, skipped = [], list(passed)
    for entry in entries:
        entry["duration"] = duration_or_skip(entry["path"], skipped, skip_bad)
        if entry["duration"] is not None:
            rows.append(entry)
    return make_table(rows, corpus_name(source, name), classes, skipped)


def corpus_name(source: str | os.PathLike, name: str | None = None) -> str:
    """The name of a manifest or folder corpus: ``name``, else the file's stem or the folder's name."""
    name = (str(name) if name else Path(source).stem).strip() or "custom"
    return f"{name}-custom" if name.lower() in ("emodb", "iemocap") else name


def _refuse_case_variants(entries: list[dict], where: dict[str, str], source: Path) -> None:
    """ManifestError when two labels differ only in case: they would silently become two classes."""
    first: dict[str, dict[str, str]] = {}  # casefolded label -> {spelling: path of its first row}
    for e in entries:
        spellings = first.setdefault(e["label"].casefold(), {})
        spellings.setdefault(e["label"], e["path"])
    clash = next((s for s in first.values() if len(s) > 1), None)
    if clash is not None:
        named = ", ".join(f"{label!r} ({where.get(path, path)})" for label, path in clash.items())
        raise ManifestError(source, f"labels {named} differ only in case, so they would be separate classes",
                            "spell each class one way in the whole corpus (labels are compared exactly)")


def _refuse_unprintable(entries: list[dict], where: dict[str, str], source: Path) -> None:
    """ManifestError for a label that is blank or holds control characters (an ANSI escape
    sequence in a class name would reach the terminal with every table and prediction)."""
    bad = next((e for e in entries if not e["label"].isprintable() or not e["label"].strip()), None)
    if bad is not None:
        raise ManifestError(source, f"{where.get(bad['path'], bad['path'])}: label {bad['label']!r} is blank or holds "
                            "control characters", "name each class with printable characters")


def _read_manifest(csv_path: Path) -> tuple[list[dict], dict[str, str]]:
    """Rows of a CSV manifest, checked, and ``{path: "line N"}`` for later messages."""
    fix = ("write a UTF-8 CSV whose first line is a header with at least the columns path,label "
           "(optional speaker,gender,session,text), one row per existing audio file")
    raw = csv_path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")  # tolerate the BOM spreadsheet programs write
    except UnicodeDecodeError as error:
        line = raw[:error.start].count(b"\n") + 1
        raise ManifestError(csv_path, f"line {line}: is not valid UTF-8 text (byte {raw[error.start]:#04x})",
                            "save the manifest as UTF-8 (CSV UTF-8 in spreadsheet programs)") from error
    if "\x00" in text:
        raise ManifestError(csv_path, "is a binary file, not a CSV manifest", fix)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise ManifestError(csv_path, "is empty (no header line)", fix)
        names = [h.strip().lower() for h in header]
        missing = [c for c in _REQUIRED if c not in names]
        if missing:
            raise ManifestError(csv_path, f"line 1: header {header} lacks the column(s) {missing}", fix)
        duplicated = sorted({n for n in names if n and names.count(n) > 1})
        if duplicated:
            raise ManifestError(csv_path, f"line 1: column(s) {duplicated} appear more than once", fix)
        index = {name: names.index(name) for name in _REQUIRED + _OPTIONAL if name in names}
        entries, where = [], {}
        for row in reader:
            line = f"line {reader.line_num}"
            if not any(cell.strip() for cell in row):
                continue  # blank line
            if len(row) != len(header):
                raise ManifestError(csv_path, f"{line}: has {len(row)} fields, the header has {len(header)}",
                                    fix)
            values = {name: row[i].strip() for name, i in index.items()}
            if not values["path"] or not values["label"]:
                raise ManifestError(csv_path, f"{line}: empty path or label", fix)
            path = Path(values["path"]).expanduser()
            # Relative paths follow the manifest, not the current folder, so it can be moved.
            path = (path if path.is_absolute() else csv_path.parent / path).absolute()
            if path.is_dir():
                raise ManifestError(csv_path, f"{line}: {path} is a directory, not an audio file",
                                    "list the audio files inside it, one row each, or pass the folder itself "
                                    "as a corpus with one sub-folder per label")
            if not path.is_file():
                if path.exists() or path.is_symlink():  # a FIFO, a broken link, a link loop: say which
                    from ...errors import AudioError
                    from ..audio import _check_path

                    try:
                        _check_path(path)
                    except AudioError as error:
                        raise ManifestError(csv_path, f"{line}: {path} {error.problem}", error.fix) from None
                raise ManifestError(csv_path, f"{line}: audio file {path} does not exist",
                                    "fix the path (relative paths are relative to the manifest's folder) "
                                    "or remove the row")
            if str(path) in where:
                raise ManifestError(csv_path, f"{line}: {path} is listed again (first on {where[str(path)]})",
                                    "remove the duplicate row")
            gender = values.get("gender", "").lower()
            if gender not in _GENDERS:
                raise ManifestError(csv_path, f"{line}: gender {values['gender']!r} is not m, f, male, "
                                    "female or empty", fix)
            where[str(path)] = line
            entries.append({
                "path": str(path),
                "label": values["label"],
                "speaker": values.get("speaker") or None,
                "gender": _GENDERS[gender],
                "session": values.get("session") or None,
                "text": values.get("text") or None,
            })
    except csv.Error as error:
        raise ManifestError(csv_path, f"line {reader.line_num}: not valid CSV ({error})", fix) from error
    if not entries:
        raise ManifestError(csv_path, "has a header but no rows", fix)
    return entries, where


def _scan_folder(folder: Path) -> tuple[list[dict], list[tuple[str, str]]]:
    """One entry per file named as audio under ``folder/<label>/``, sorted by path (a broken link
    among them too: loading it names the problem), and ``(path, reason)`` of every other
    non-hidden file passed over."""
    entries, passed = [], []
    for label_dir in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(label_dir.rglob("*")):
            if any(part.startswith(".") for part in path.relative_to(label_dir).parts) or path.is_dir():
                continue
            if path.suffix.lower() in AUDIO_EXTENSIONS:
                entries.append({"path": str(path.absolute()), "label": label_dir.name, "speaker": None,
                                "gender": None, "session": None, "text": None})
            else:
                passed.append((str(path.absolute()), f"not read: not named as audio ({', '.join(AUDIO_EXTENSIONS)})"))
    if not entries:
        raise CorpusError(folder, f"holds no label sub-folders with audio files ({', '.join(AUDIO_EXTENSIONS)})",
                          "arrange the corpus as <folder>/<label>/<file>.wav (one sub-folder per label) "
                          "or pass a CSV manifest with columns path,label")
    return entries, passed
