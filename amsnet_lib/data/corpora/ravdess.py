"""RAVDESS, the Ryerson Audio-Visual Database of Emotional Speech and Song (Livingstone & Russo,
PLoS ONE 2018), its speech part: 1440 utterances of 24 actors (odd numbers male, even female),
60 each, two fixed English statements.

``Actor_AA/MM-VC-EE-II-SS-RR-AA.wav``: modality ``MM`` (03 audio-only), vocal channel ``VC``
(01 speech), emotion ``EE``, intensity ``II`` (01 normal, 02 strong; neutral has no strong),
statement ``SS`` (01 "Kids are talking by the door", 02 "Dogs are sitting by the door"),
repetition ``RR``, actor ``AA``. The official release (Zenodo record 1188976,
``Audio_Speech_Actors_01-24.zip``) is 48 kHz WAV; a copy converted to another format under the
same folders and stems (e.g. 16 kHz FLAC) loads too. Licence: CC BY-NC-SA 4.0.

Verification: every file of the official release is checked against ``ravdess_manifest.csv``
(official name, SHA-256, sample rate, channels, frames) shipped with the package; a converted copy
cannot match the official bytes, so it is checked for the same set of stems and, file by file, the
same duration (within 20 ms).
"""
from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import pandas as pd

from ...errors import CorpusError
from ._common import ENV_VARS, duration_or_skip, file_problems, file_sha256, make_table, obtain_archive, resolve_data_dir, skip_or_raise

__all__ = ["CLASSES", "CODES", "DOWNLOAD_URL", "load_ravdess"]

#: Official download of the speech part (about 200 MB).
DOWNLOAD_URL = "https://zenodo.org/record/1188976/files/Audio_Speech_Actors_01-24.zip?download=1"

#: Emotion code -> class name: the project's names where EmoDB has the class, ``calm`` and
#: ``surprise`` otherwise.
CODES = {"01": "neutral", "02": "calm", "03": "happiness", "04": "sadness", "05": "anger", "06": "fear",
         "07": "disgust", "08": "surprise"}
#: Class order (index = integer label): EmoDB's order for the classes they share, then RAVDESS's own.
CLASSES = ["anger", "disgust", "fear", "happiness", "sadness", "neutral", "calm", "surprise"]
INTENSITIES = {"01": "normal", "02": "strong"}
STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}
#: Extra columns of the table, after the standard ones.
EXTRA_COLUMNS = ["intensity", "statement", "repetition"]

MANIFEST = Path(__file__).with_name("ravdess_manifest.csv")
#: Audio formats a copy may be in (the official release: .wav).
SUFFIXES = (".wav", ".flac")

_NAME = re.compile(r"^03-01-(?P<emotion>0[1-8])-(?P<intensity>0[12])-(?P<statement>0[12])-(?P<repetition>0[12])"
                   r"-(?P<actor>\d\d)$")
_TOLERANCE_S = 0.02
_MAX_NAMED = 10
_VERIFIED: set[tuple] = set()


def load_ravdess(
    data_dir: str | os.PathLike | None = None,
    download: bool | str = "auto",
    skip_bad: bool = True,
    verify: bool = True,
    url: str | None = None,
) -> pd.DataFrame:
    """Load RAVDESS's speech part as a corpus table (see ``docs/DESIGN.md``, "Corpus table").

    Args:
        data_dir: folder holding the ``Actor_01`` ... ``Actor_24`` folders; default from
            :func:`~amsnet_lib.data.corpora.resolve_data_dir` (``AMSNET_RAVDESS_DIR``, else
            ``<repo>/data/ravdess``).
        download: ``"auto"`` or ``True``: download and unpack the official release when the
            folder is absent (or empty); ``False``: never download.
        skip_bad: leave out unreadable files, listed in ``attrs["skipped"]``, instead of raising.
        verify: check the copy against the shipped manifest (see the module docstring).
        url: download address; default :data:`DOWNLOAD_URL`.

    Returns:
        Table with 1440 rows sorted by actor and file name, classes :data:`CLASSES`; ``speaker``
        the actor (``"01"``..``"24"``), ``gender`` from the actor's number, ``session`` ``None``,
        ``text`` the statement code (``"01"``/``"02"``), and the extra columns ``intensity``
        (``normal``/``strong``), ``statement`` (its words) and ``repetition`` (``"01"``/``"02"``).

    Raises:
        CorpusError: the corpus is absent and cannot be downloaded, or it is incomplete or
            corrupt (the offending files are named).
    """
    if download not in ("auto", True, False):
        raise ValueError(f"download must be 'auto', True or False, got {download!r}")
    root = resolve_data_dir("ravdess", data_dir)
    if not looks_like_ravdess(root):
        fix = (f"download {url or DOWNLOAD_URL} and unzip it into {root} (so that {root / 'Actor_01'} holds "
               f"its files), or set {ENV_VARS['ravdess']} (or pass data_dir / --data-dir) to a folder holding "
               "RAVDESS's Actor_NN folders")
        obtain_archive(root, download, url or DOWNLOAD_URL, corpus="RAVDESS", has_content=looks_like_ravdess,
                       what="Actor_NN folders", fix=fix)
    files = _audio_files(root)
    if verify:
        _verify(root, files)
    rows, skipped = [], []
    for stem, path in sorted(files.items()):
        match = _NAME.match(Path(stem).name)
        if match is None or Path(stem).parent.name != f"Actor_{match['actor']}":
            skip_or_raise(CorpusError(path, "is not a RAVDESS speech file name (Actor_AA/03-01-EE-II-SS-RR-AA)",
                                      "remove the file from the RAVDESS folder"), skipped, skip_bad)
            continue
        duration = duration_or_skip(path, skipped, skip_bad)
        if duration is None:
            continue
        actor = match["actor"]
        rows.append({
            "path": str(path.absolute()),
            "label": CODES[match["emotion"]],
            "speaker": actor,
            "gender": "m" if int(actor) % 2 else "f",
            "session": None,
            "text": match["statement"],
            "duration": duration,
            "intensity": INTENSITIES[match["intensity"]],
            "statement": STATEMENTS[match["statement"]],
            "repetition": match["repetition"],
        })
    return make_table(rows, "ravdess", CLASSES, skipped, extra_columns=EXTRA_COLUMNS)


def looks_like_ravdess(folder: Path) -> bool:
    return folder.is_dir() and any(p.is_dir() for p in folder.glob("Actor_[0-9][0-9]"))


def _audio_files(root: Path) -> dict[str, Path]:
    """``{"Actor_AA/stem": path}`` of the audio files under ``root``'s actor folders."""
    out = {}
    for actor in sorted(root.glob("Actor_[0-9][0-9]")):
        for path in sorted(actor.iterdir()):
            if path.is_file() and path.suffix.lower() in SUFFIXES and not path.name.startswith("."):
                out[f"{actor.name}/{path.stem}"] = path
    return out


def read_manifest(manifest: Path | None = None) -> dict[str, dict]:
    """``{"Actor_AA/stem": {"file", "sha256", "sample_rate", "channels", "frames"}}`` of the official release."""
    with open(manifest or MANIFEST, newline="", encoding="utf-8") as f:
        return {str(Path(row["original_file"]).with_suffix("")): {
            "file": row["original_file"], "sha256": row["sha256"], "sample_rate": int(row["sample_rate"]),
            "channels": int(row["channels"]), "frames": int(row["frames"])} for row in csv.DictReader(f)}


def _verify(root: Path, files: dict[str, Path], manifest: Path | None = None) -> None:
    """Check that ``root`` holds exactly the release's utterances, intact (see the module docstring).

    Raises:
        CorpusError: naming the missing, unexpected and corrupt files.
    """
    import soundfile as sf

    manifest = Path(manifest or MANIFEST)
    expected = read_manifest(manifest)
    stats = {stem: p.stat() for stem, p in files.items()}
    key = (str(root.resolve()), str(manifest.resolve()),
           tuple(sorted((s, st.st_size, st.st_mtime_ns) for s, st in stats.items())))
    if key in _VERIFIED:
        return
    missing = sorted(set(expected) - set(files))
    extra = sorted(set(files) - set(expected))
    corrupt = []
    for stem in sorted(set(expected) & set(files)):
        path, want = files[stem], expected[stem]
        if path.suffix.lower() == ".wav" and path.name == Path(want["file"]).name:
            if file_sha256(path) != want["sha256"]:
                corrupt.append(f"{stem}{path.suffix} (SHA-256 differs from the official file's)")
            continue
        try:
            seconds = sf.info(str(path)).duration
        except RuntimeError as error:
            corrupt.append(f"{stem}{path.suffix} (unreadable: {error})")
            continue
        official = want["frames"] / want["sample_rate"]
        if abs(seconds - official) > _TOLERANCE_S:
            corrupt.append(f"{stem}{path.suffix} ({seconds:.3f} s, the official file {official:.3f} s)")
    problems = file_problems((("missing", missing), ("unexpected", extra), ("corrupt", corrupt)), _MAX_NAMED)
    if problems:
        raise CorpusError(root, f"is not a complete, intact copy of RAVDESS's {len(expected)} speech files: "
                          + "; ".join(problems),
                          f"re-download RAVDESS ({DOWNLOAD_URL}) and unzip it into {root}, or point "
                          f"{ENV_VARS['ravdess']} at a complete copy (other files must be moved out of the Actor_NN folders)")
    _VERIFIED.add(key)
