"""Pieces shared by the corpus loaders: the table layout, data-directory resolution, skipping."""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from ...errors import AmsnetError

#: Columns of every corpus table, in this order (IEMOCAP appends ``improvised``).
COLUMNS = ["path", "label", "speaker", "gender", "session", "text", "duration"]

#: Environment variables naming a corpus's folder.
ENV_VARS = {"emodb": "AMSNET_EMODB_DIR", "iemocap": "AMSNET_IEMOCAP_DIR", "ravdess": "AMSNET_RAVDESS_DIR"}

#: Repository root: the parent of the ``amsnet_lib`` package folder.
REPO_ROOT = Path(__file__).resolve().parents[3]


def resolve_data_dir(corpus: str, data_dir: str | os.PathLike | None = None) -> Path:
    """Folder where a named corpus lives (or will be downloaded to).

    Precedence: the ``data_dir`` argument > the environment variable
    (``AMSNET_EMODB_DIR`` / ``AMSNET_IEMOCAP_DIR`` / ``AMSNET_RAVDESS_DIR``) > ``<repo root>/data/<corpus>``.

    Args:
        corpus: ``"emodb"``, ``"iemocap"`` or ``"ravdess"``.
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


def file_problems(groups, max_named: int = 10) -> list[str]:
    """``["3 missing file(s): a, b, c", ...]`` for each ``(what, names)`` group that has names, at most
    ``max_named`` names spelled out per group (a verification's error message)."""
    out = []
    for what, names in groups:
        if names:
            shown = ", ".join(names[:max_named]) + (f" and {len(names) - max_named} more" if len(names) > max_named else "")
            out.append(f"{len(names)} {what} file(s): {shown}")
    return out


def file_sha256(path) -> str:
    """SHA-256 (hex) of a file's bytes."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def obtain_archive(root: Path, download: bool | str, url: str, *, corpus: str, has_content, what: str, fix: str) -> None:
    """Download the zip at ``url`` and unpack it into ``root`` (absent or empty), or explain why not.

    Args:
        corpus: the corpus's name in messages and the progress bar.
        has_content: ``folder -> bool``: whether an unpacked folder holds the corpus (an archive
            wrapped in one top-level folder is unwrapped first).
        what: what ``has_content`` looks for, for messages (e.g. ``"wav/ folder"``).
        fix: what the user can do instead, for every error.

    Raises:
        CorpusError: ``root`` holds something else, download is off, or the download or the archive failed.
    """
    from ...errors import CorpusError

    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        # Never unpack into a folder holding something else: it is likely a wrong setting.
        raise CorpusError(root, f"exists but does not hold {corpus} (no {what})", fix)
    if not download:
        raise CorpusError(root, f"does not hold {corpus} (no {what}) and download=False", fix)
    created = [p for p in (root.parent, *root.parent.parents) if not p.exists()]  # innermost first
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        archive = _download(url, root.parent, corpus)
    except (OSError, urllib.error.URLError, ValueError) as error:
        for folder in created:  # a failed download leaves no empty folder behind (./data offline)
            try:
                folder.rmdir()
            except OSError:
                break
        raise CorpusError(root, f"does not hold {corpus} and downloading it from {url} failed ({error})",
                          fix) from error
    try:
        _unpack(archive, root, has_content, f"the archive holds no {what}, so it is not {corpus}")
    except (OSError, zipfile.BadZipFile) as error:
        raise CorpusError(root, f"the archive downloaded from {url} could not be unpacked ({error})",
                          fix) from error
    finally:
        archive.unlink(missing_ok=True)


def _download(url: str, folder: Path, corpus: str) -> Path:
    """Stream ``url`` into a temporary file in ``folder`` with a progress bar; return its path.

    Plain HTTP (EmoDB's official site offers nothing else) is safe here only because every file
    is then verified against the SHA-256 manifest shipped in the package."""
    from tqdm.auto import tqdm

    fd, name = tempfile.mkstemp(prefix=f".{corpus.lower()}-", suffix=".zip.part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"{corpus} download") as bar:
                while chunk := response.read(1 << 16):
                    out.write(chunk)
                    bar.update(len(chunk))
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def _unpack(archive: Path, root: Path, has_content, not_it: str) -> None:
    """Extract ``archive`` next to ``root``, then rename it into place in one step.

    A crash or a concurrent process never sees a half-extracted ``root``.
    """
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
    try:
        with zipfile.ZipFile(archive) as z:
            for member in z.namelist():
                # Refuse absolute paths and ".." so the archive cannot write outside staging.
                target = (staging / member).resolve()
                if not target.is_relative_to(staging.resolve()):
                    raise OSError(f"archive member {member!r} points outside the target folder")
            z.extractall(staging)
        content = staging
        entries = [p for p in staging.iterdir() if not p.name.startswith(("__MACOSX", "."))]
        if not has_content(staging) and len(entries) == 1 and has_content(entries[0]):
            content = entries[0]  # archive wrapped in one top-level folder
        if not has_content(content):
            raise OSError(not_it)
        if root.is_dir():
            root.rmdir()  # empty (checked by the caller); rename cannot replace a folder
        try:
            content.rename(root)
        except OSError:
            if not has_content(root):  # another process unpacked it meanwhile: fine
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
