"""IEMOCAP (Busso et al., 2008), four-class setting: angry, happy (+ excited), sad, neutral.

Reads ``IEMOCAP_full_release/SessionN/dialog/EmoEvaluation/<dialog>.txt``, whose label lines
look like::

    [6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]

(start - end in seconds, utterance id, majority label, valence/activation/dominance). Header
lines (``%``) and per-evaluator lines (``C-E1:\tNeutral;\t()``, ``A-F1: val 3; ...``) are ignored.
Audio is ``SessionN/sentences/wav/<dialog>/<utterance>.wav``; the transcription, when present,
comes from ``SessionN/dialog/transcriptions/<dialog>.txt``.

IEMOCAP is licensed per user and never downloaded.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from ...errors import CorpusError, ManifestError
from ._common import ENV_VARS, duration_or_skip, make_table, resolve_data_dir, skip_or_raise

__all__ = ["CLASSES", "LABELS", "EXCLUDED", "load_iemocap"]

CLASSES = ["angry", "happy", "sad", "neutral"]
#: Label code → class; excited is merged into happy (the usual 5531-utterance setting).
LABELS = {"ang": "angry", "hap": "happy", "exc": "happy", "sad": "sad", "neu": "neutral"}
#: Codes left out: frustration, surprise, fear, disgust, other, no agreement.
EXCLUDED = {"fru", "sur", "fea", "dis", "oth", "xxx"}

_NUMBER = r"(\d+(?:\.\d*)?)"
_LABEL_LINE = re.compile(
    rf"^\[\s*{_NUMBER}\s*-\s*{_NUMBER}\s*\]\s+(?P<utt>\S+)\s+(?P<code>\w+)\s+"
    rf"\[\s*{_NUMBER}\s*,\s*{_NUMBER}\s*,\s*{_NUMBER}\s*\]\s*$")
# Utterance ids: Ses01F_impro01_F000, Ses01M_script01_1_M025 (dialog = all but the last part;
# the last part's letter is the speaker's gender).
_UTTERANCE = re.compile(r"^(?P<dialog>Ses(?P<session>\d\d)[MF]_\w+)_(?P<gender>[MF])[^_\s]*$")
# A line that is meant to be a label line: it starts with "[" or names an utterance id.
_LABEL_LIKE = re.compile(r"^\s*\[|\bSes\d\d[MF]_")
_TRANSCRIPT = re.compile(r"^(?P<utt>Ses\d\d[MF]_\S+)\s+\[[^\]]*\]:\s?(?P<text>.*)$")


def load_iemocap(
    data_dir: str | os.PathLike | None = None,
    skip_bad: bool = True,
    check_audio: bool = True,
) -> pd.DataFrame:
    """Load IEMOCAP's four-class subset as a corpus table (see ``docs/DESIGN.md``).

    Args:
        data_dir: ``IEMOCAP_full_release`` or the folder containing it; default from
            :func:`~amsnet_lib.data.corpora.resolve_data_dir`.
        skip_bad: leave out labelled utterances whose audio is missing or unreadable and
            report them in ``attrs["skipped"]``; when ``False`` they raise.
        check_audio: read each wav header for the duration (and to find missing files).
            ``False`` touches no audio: the duration is the label file's end - start.

    Returns:
        Table sorted by utterance id, classes :data:`CLASSES`, speaker e.g. ``"Ses01M"``
        (the session's actor who speaks the utterance), session ``"Session1"``..,
        extra column ``improvised`` (bool). The full release gives 5531 rows
        (angry 1103, happy 1636, sad 1084, neutral 1708).

    Raises:
        CorpusError: the folder or a session's label folder is absent; a labelled utterance's
            wav is missing and ``skip_bad`` is ``False``.
        ManifestError: a malformed label line (file and line number named).
        AudioError: unreadable audio with ``skip_bad=False``.
    """
    root = _find_root(resolve_data_dir("iemocap", data_dir))
    rows, skipped = [], []
    for session_dir in sorted(root.glob("Session*"), key=lambda p: p.name):
        if not (session_dir.is_dir() and re.fullmatch(r"Session\d+", session_dir.name)):
            continue
        label_dir = session_dir / "dialog" / "EmoEvaluation"
        if not label_dir.is_dir():
            raise CorpusError(label_dir, "is missing, so this session has no labels",
                              "restore the session from the IEMOCAP_full_release archive")
        # Only the top level: Categorical/, Attribute/, Self-evaluation/ hold other formats;
        # "._*" files are macOS metadata shipped in some copies of the release.
        for label_file in sorted(label_dir.glob("*.txt")):
            if label_file.name.startswith("."):
                continue
            transcripts = _read_transcripts(session_dir / "dialog" / "transcriptions" / label_file.name)
            for utt, start, end, code in _read_labels(label_file):
                if code in EXCLUDED:
                    continue
                m = _UTTERANCE.match(utt)
                path = session_dir / "sentences" / "wav" / m["dialog"] / f"{utt}.wav"
                duration = end - start
                if check_audio:
                    if not path.is_file():
                        skip_or_raise(CorpusError(path, f"is missing but {label_file.name} labels it",
                                                  "restore the file from the IEMOCAP_full_release archive"),
                                      skipped, skip_bad)
                        continue
                    duration = duration_or_skip(path, skipped, skip_bad)
                    if duration is None:
                        continue
                rows.append({
                    "path": str(path.absolute()),
                    "label": LABELS[code],
                    "speaker": f"Ses{m['session']}{m['gender']}",
                    "gender": m["gender"].lower(),
                    "session": session_dir.name,
                    "text": transcripts.get(utt),
                    "duration": duration,
                    "improvised": "impro" in m["dialog"],
                })
    if not rows and not skipped:
        raise CorpusError(root, "holds no labelled utterances (no SessionN/dialog/EmoEvaluation/*.txt)",
                          f"point {ENV_VARS['iemocap']} (or data_dir) at IEMOCAP_full_release")
    rows.sort(key=lambda r: Path(r["path"]).name)
    return make_table(rows, "iemocap", CLASSES, skipped, extra_columns=["improvised"])


def _find_root(folder: Path) -> Path:
    """``IEMOCAP_full_release`` itself, whether ``folder`` is it or contains it."""
    for candidate in (folder, folder / "IEMOCAP_full_release"):
        if candidate.is_dir() and any(p.is_dir() and re.fullmatch(r"Session\d+", p.name)
                                      for p in candidate.iterdir()):
            return candidate
    raise CorpusError(
        folder, "does not hold IEMOCAP (no Session1..Session5 folders in it or in "
        "IEMOCAP_full_release/ inside it)",
        "IEMOCAP is licensed per user: request it at https://sail.usc.edu/iemocap/, unpack it, and set "
        f"{ENV_VARS['iemocap']} (or pass data_dir / --data-dir) to the IEMOCAP_full_release folder")


def _read_labels(label_file: Path) -> list[tuple[str, float, float, str]]:
    """``(utterance id, start s, end s, code)`` of each label line of one EmoEvaluation file.

    Raises:
        ManifestError: naming the file and line of a malformed label line, an unknown code,
            a malformed utterance id, or a repeated id.
    """
    fix = ("restore the file from the IEMOCAP_full_release archive "
           "(label lines read '[start - end]\\tid\\tcode\\t[v, a, d]')")
    try:
        lines = label_file.read_text(encoding="utf-8", errors="strict").splitlines()
    except UnicodeDecodeError:
        lines = label_file.read_text(encoding="latin-1").splitlines()  # stray non-UTF-8 comments
    except OSError as error:
        raise ManifestError(label_file, f"cannot be read ({error.strerror or error})", fix) from error
    labels, seen = [], {}
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("%") or not _LABEL_LIKE.search(line):
            continue  # blank, header, or a per-evaluator line such as "C-E1:\tNeutral;\t()"
        m = _LABEL_LINE.match(line.strip())
        where = f"line {number}"
        if m is None:
            raise ManifestError(label_file, f"{where}: malformed label line {line.strip()!r}", fix)
        utt, code = m["utt"], m["code"]
        start, end = float(m.group(1)), float(m.group(2))
        u = _UTTERANCE.match(utt)
        if u is None:
            raise ManifestError(label_file, f"{where}: {utt!r} is not an IEMOCAP utterance id "
                                "(SesNN[MF]_<dialog>_[MF]NNN)", fix)
        if code not in LABELS and code not in EXCLUDED:
            raise ManifestError(label_file, f"{where}: unknown emotion code {code!r} "
                                f"(expected one of {sorted(set(LABELS) | EXCLUDED)})", fix)
        if end < start:
            raise ManifestError(label_file, f"{where}: end time {end} is before start time {start}", fix)
        if utt in seen:
            raise ManifestError(label_file, f"{where}: utterance {utt} is labelled again "
                                f"(first on line {seen[utt]})", fix)
        seen[utt] = number
        labels.append((utt, start, end, code))
    return labels


def _read_transcripts(path: Path) -> dict[str, str]:
    """``{utterance id: text}`` from a transcription file; empty when there is none."""
    if not path.is_file():
        return {}
    text = path.read_bytes().decode("utf-8", errors="replace")
    found = {}
    for line in text.splitlines():
        m = _TRANSCRIPT.match(line.strip())
        if m:
            found[m["utt"]] = m["text"].strip()
    return found
