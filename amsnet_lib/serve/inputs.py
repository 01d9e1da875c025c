"""What ``predict``, ``evaluate`` and ``stream`` are given, as a list of audio files: files, folders
(scanned recursively for the names of :data:`~amsnet_lib.data.audio.AUDIO_EXTENSIONS`), CSV manifests
(a ``path`` column, optionally ``speaker``), corpus tables and the named corpora.

An input that yields nothing (an empty folder, a broken manifest) becomes an item with its error,
naming the fix; a missing file stays a path, and loading it gives its error row.
"""
from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..data.audio import AUDIO_EXTENSIONS

__all__ = ["collect_inputs"]


@dataclass
class _Item:
    path: str
    error: str = ""
    speaker: str = ""


def _scan_folder(folder: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """Every file under ``folder`` named as audio (:data:`~amsnet_lib.data.audio.AUDIO_EXTENSIONS`; a
    broken link or a FIFO among them is returned too, so that loading it names the problem), and
    ``(path, reason)`` of every other non-hidden file passed over."""
    files, passed = [], []
    for p in sorted(folder.rglob("*")):
        if any(part.startswith(".") for part in p.relative_to(folder).parts) or p.is_dir():
            continue
        if p.suffix.lower() in AUDIO_EXTENSIONS:
            files.append(p)
        else:
            passed.append((str(p), f"not read: not named as audio ({', '.join(AUDIO_EXTENSIONS)}); name it directly "
                                   "to read it anyway"))
    return files, passed


def _read_manifest(csv_path: Path) -> list[_Item]:
    """``path`` column of a CSV manifest (relative paths are relative to the CSV's folder)."""
    try:
        text = csv_path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        return [_Item(str(csv_path), f"manifest cannot be read as UTF-8 CSV ({error}). Fix: save it as UTF-8 CSV "
                      "with a header line holding a `path` column")]
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows:
        return [_Item(str(csv_path), "manifest is empty. Fix: write a header line with a `path` column, then one row per file")]
    header = [h.strip().lower() for h in rows[0]]
    if "path" not in header:
        return [_Item(str(csv_path), f"manifest header {rows[0]} has no `path` column. Fix: name the column of "
                      "audio file paths `path`")]
    col = header.index("path")
    spk = header.index("speaker") if "speaker" in header else None
    items = []
    for n, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        value = row[col].strip() if col < len(row) else ""
        if not value:
            items.append(_Item(f"{csv_path}:line {n}", "empty path in manifest. Fix: fill in the path or remove the row"))
            continue
        p = Path(value).expanduser()
        speaker = row[spk].strip() if spk is not None and spk < len(row) else ""
        items.append(_Item(str(p if p.is_absolute() else (csv_path.parent / p).absolute()), speaker=speaker))
    if not items:
        return [_Item(str(csv_path), "manifest has a header but no rows. Fix: add one row per audio file")]
    return items


def collect_inputs(paths_or_manifest, data_dir=None) -> list[tuple[str, str]]:
    """Expand files, folders (recursive, the files named as audio: :data:`~amsnet_lib.data.audio.AUDIO_EXTENSIONS`),
    CSV manifests (``path`` column) and the named corpora (``emodb``, ``ravdess``, ``iemocap``: every
    utterance; ``data_dir`` their folder, as :func:`~amsnet_lib.data.corpora.load_corpus`; a file or
    folder of that name wins).

    Returns:
        ``(path, error)`` pairs in input order; ``error`` is empty for a file to process, or
        says why an input yields nothing (empty folder, broken manifest). Missing files are
        returned as paths: loading them gives their error row.
    """
    return [(it.path, it.error) for it in collect_items(paths_or_manifest, data_dir=data_dir)]


def _corpus_items(name: str, data_dir) -> list[_Item]:
    """A named corpus's utterances (with speakers), and what its loader skipped as error rows."""
    from ..data.corpora import load_corpus

    table = load_corpus(name, data_dir=data_dir, download=False)
    items = collect_items(table[["path", "speaker"]])
    return items + [_Item(str(p), str(reason)) for p, reason in table.attrs.get("skipped", [])]


def collect_items(paths_or_manifest, passed: list | None = None, data_dir=None) -> list[_Item]:
    """``collect_inputs`` with each file's speaker (a manifest's or DataFrame's ``speaker`` column; else empty);
    ``passed`` receives ``(path, reason)`` of the files a folder scan passed over."""
    if isinstance(paths_or_manifest, pd.DataFrame):  # e.g. a corpus table
        if "path" not in paths_or_manifest.columns:
            raise ValueError("a DataFrame input needs a `path` column")
        speakers = (paths_or_manifest["speaker"] if "speaker" in paths_or_manifest.columns
                    else pd.Series([""] * len(paths_or_manifest)))
        return [_Item(str(p), speaker="" if s is None or s != s else str(s))
                for p, s in zip(paths_or_manifest["path"], speakers)]
    if isinstance(paths_or_manifest, (str, os.PathLike)):
        paths_or_manifest = [paths_or_manifest]
    out: list[_Item] = []
    from ..data.corpora import NAMED

    for entry in paths_or_manifest:
        if not str(entry).strip():  # Path("") is the current folder: it would be scanned whole
            out.append(_Item(str(entry), "an empty path was given. Fix: give an audio file, a folder or a manifest"))
            continue
        p = Path(entry).expanduser()
        if not p.exists() and str(entry).lower() in NAMED:
            out.extend(_corpus_items(str(entry), data_dir))
        elif p.is_dir():
            files, skipped = _scan_folder(p)
            if passed is not None:
                passed.extend(skipped)
            if not files:
                other = f" ({len(skipped)} other file(s) passed over)" if skipped else ""
                out.append(_Item(str(p), f"folder holds no audio files{other}. Fix: pass the audio files or a folder "
                                 f"that contains them ({', '.join(AUDIO_EXTENSIONS)})"))
            out.extend(_Item(str(f)) for f in files)
        elif p.suffix.lower() == ".csv" and p.is_file():
            out.extend(_read_manifest(p))
        else:
            out.append(_Item(str(p)))
    return out
