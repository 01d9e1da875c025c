"""EmoDB, the Berlin Database of Emotional Speech (Burkhardt et al., Interspeech 2005).

535 utterances ``wav/SSTTTEV.wav``: speaker ``SS`` (10 actors), text ``TTT`` (a01..b10),
emotion ``E`` (German initial), version ``V``. The folder is verified file by file against
``emodb_manifest.csv`` (name, sha256, size) shipped with the package, and downloaded from the
official site when absent.
"""
from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import pandas as pd

from ...errors import CorpusError
from ._common import ENV_VARS, duration_or_skip, file_problems, file_sha256, make_table, obtain_archive, resolve_data_dir, skip_or_raise

__all__ = ["CLASSES", "CODES", "DOWNLOAD_URL", "load_emodb"]

#: Official download (about 40 MB). Module-level so tests can point it at a local server.
#: Plain HTTP, the address the corpus's site gives: the transport protects nothing, and what does
#: is the check after unpacking, where every file's size and SHA-256 must match the manifest
#: shipped inside this package (:func:`_verify`, on by default): a tampered or truncated download
#: is refused, whoever served it.
DOWNLOAD_URL = "http://emodb.bilderbar.info/download/download.zip"

#: Emotion code → class name. The order of ``CLASSES`` follows the codes W L E A F T N.
CODES = {"W": "anger", "L": "boredom", "E": "disgust", "A": "fear", "F": "happiness", "T": "sadness",
         "N": "neutral"}
CLASSES = list(CODES.values())

#: Speaker → gender, from the corpus's official documentation (erklaerung.txt).
GENDERS = {"03": "m", "10": "m", "11": "m", "12": "m", "15": "m",
           "08": "f", "09": "f", "13": "f", "14": "f", "16": "f"}

MANIFEST = Path(__file__).with_name("emodb_manifest.csv")

_NAME = re.compile(r"^(?P<speaker>\d\d)(?P<text>[ab]\d\d)(?P<code>[WLEAFTN])(?P<version>[a-z])\.wav$")

# Folders that passed verification in this process, keyed on their files' (name, size,
# mtime_ns): a second load_corpus("emodb") skips hashing unless a file changed. Nothing is
# written next to the data, which may be read-only.
_VERIFIED: set[tuple] = set()

# At most this many file names are spelled out in one error message.
_MAX_NAMED = 10


def load_emodb(
    data_dir: str | os.PathLike | None = None,
    download: bool | str = "auto",
    skip_bad: bool = True,
    verify: bool = True,
    url: str | None = None,
) -> pd.DataFrame:
    """Load EmoDB as a corpus table (see ``docs/DESIGN.md``, "Corpus table").

    Args:
        data_dir: folder holding EmoDB's ``wav/`` folder; default from
            :func:`~amsnet_lib.data.corpora.resolve_data_dir`.
        download: ``"auto"`` or ``True``: download and unpack the corpus when the folder is
            absent (or empty); ``False``: never download.
        skip_bad: with ``verify=False``, leave out unreadable or oddly named files and report
            them in ``attrs["skipped"]`` instead of raising. Verified copies have none.
        verify: check every file's presence, size and SHA-256 against the shipped manifest
            (about 0.1 s for the 535 files; repeated loads in one process reuse the result).
        url: download address; default :data:`DOWNLOAD_URL`.

    Returns:
        Table with 535 rows sorted by file name, classes :data:`CLASSES`, session ``None``,
        text the sentence code (``"a01"``..``"b10"``).

    Raises:
        CorpusError: the corpus is absent and cannot be downloaded, or is incomplete or
            corrupt (the offending files are named).
    """
    if download not in ("auto", True, False):
        raise ValueError(f"download must be 'auto', True or False, got {download!r}")
    root = resolve_data_dir("emodb", data_dir)
    wav_dir = root / "wav"
    if not wav_dir.is_dir():
        _obtain(root, download, url or DOWNLOAD_URL)
    if verify:
        _verify(wav_dir)
    rows, skipped = [], []
    for path in sorted(wav_dir.iterdir()):
        if path.name.startswith("."):
            continue  # editor or OS metadata (.DS_Store, ._x.wav), never corpus files
        match = _NAME.match(path.name)
        if match is None or match["speaker"] not in GENDERS:
            skip_or_raise(CorpusError(path, "is not an EmoDB file name (SSTTTEV.wav with a known speaker)",
                                      "remove the file from the EmoDB folder"), skipped, skip_bad)
            continue
        duration = duration_or_skip(path, skipped, skip_bad)
        if duration is None:
            continue
        rows.append({
            "path": str(path.absolute()),
            "label": CODES[match["code"]],
            "speaker": match["speaker"],
            "gender": GENDERS[match["speaker"]],
            "session": None,
            "text": match["text"],
            "duration": duration,
        })
    return make_table(rows, "emodb", CLASSES, skipped)


def _read_manifest(manifest: Path | None = None) -> dict[str, tuple[int, str]]:
    """``{file name: (size in bytes, sha256 hex)}`` from the shipped manifest."""
    with open(manifest or MANIFEST, newline="", encoding="utf-8") as f:
        return {row["file"]: (int(row["size"]), row["sha256"]) for row in csv.DictReader(f)}


def _sha256(path: Path) -> str:
    return file_sha256(path)


def _verify(wav_dir: Path, manifest: Path | None = None) -> None:
    """Check that ``wav_dir`` holds exactly the manifest's files, byte for byte.

    ``manifest`` defaults to :data:`MANIFEST`, looked up at call time so tests can swap it.

    Raises:
        CorpusError: naming the missing, extra and corrupt (size or hash mismatch) files.
    """
    manifest = Path(manifest or MANIFEST)
    expected = _read_manifest(manifest)
    present = {p.name: p for p in wav_dir.iterdir() if p.is_file() and not p.name.startswith(".")}
    stats = {name: p.stat() for name, p in present.items()}
    key = (str(wav_dir.resolve()), str(manifest.resolve()),
           tuple(sorted((n, s.st_size, s.st_mtime_ns) for n, s in stats.items())))
    if key in _VERIFIED:
        return
    missing = sorted(set(expected) - set(present))
    extra = sorted(set(present) - set(expected))
    # The size check is free and catches truncated copies before any hashing.
    corrupt = sorted(name for name in set(expected) & set(present)
                     if stats[name].st_size != expected[name][0] or _sha256(present[name]) != expected[name][1])
    problems = file_problems((("missing", missing), ("unexpected", extra),
                              ("corrupt (size or SHA-256 mismatch)", corrupt)), _MAX_NAMED)
    if problems:
        raise CorpusError(
            wav_dir, f"is not a complete, intact copy of EmoDB's {len(expected)} files: " + "; ".join(problems),
            f"re-download EmoDB ({DOWNLOAD_URL}) and unzip it into {wav_dir.parent}, or point "
            f"{ENV_VARS['emodb']} at a complete copy (extra files must be moved out of wav/)")
    _VERIFIED.add(key)


def _obtain(root: Path, download: bool | str, url: str) -> None:
    """Download and unpack EmoDB into ``root`` (absent or empty), or explain why not."""
    fix = (f"download {url} and unzip it into {root} (so that {root / 'wav'} holds the .wav files), "
           f"or set {ENV_VARS['emodb']} (or pass data_dir / --data-dir) to a folder holding EmoDB's "
           "wav/ folder")
    obtain_archive(root, download, url, corpus="EmoDB", has_content=lambda d: (d / "wav").is_dir(),
                   what="wav/ folder", fix=fix)


def _write_manifest(wav_dir: str | os.PathLike, out: str | os.PathLike | None = None) -> int:
    """Regenerate ``emodb_manifest.csv`` from a trusted copy of EmoDB's ``wav/`` folder.

    Run once by a maintainer, e.g.
    ``python -c "from amsnet_lib.data.corpora.emodb import _write_manifest; _write_manifest('data/emodb/wav')"``.
    Columns: ``file`` (name), ``sha256`` (hex), ``size`` (bytes); rows sorted by name.
    ``out`` defaults to the shipped :data:`MANIFEST`.

    Returns:
        Number of rows written (535 for the official corpus).
    """
    paths = sorted(p for p in Path(wav_dir).iterdir()
                   if p.is_file() and p.suffix == ".wav" and not p.name.startswith("."))
    with open(out or MANIFEST, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["file", "sha256", "size"])
        for p in paths:
            writer.writerow([p.name, _sha256(p), p.stat().st_size])
    return len(paths)
