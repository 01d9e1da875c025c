"""Errors that name the offending file and the fix."""
from __future__ import annotations

import os


class AmsnetError(ValueError):
    """Base of every amsnet error.

    Args:
        path: the file or directory at fault (``None`` when there is none).
        problem: what is wrong, in one sentence.
        fix: what the user should do about it.
    """

    def __init__(self, path: str | os.PathLike | None, problem: str, fix: str):
        self.path = None if path is None else str(path)
        self.problem = problem
        self.fix = fix
        where = f"{self.path}: " if self.path else ""
        super().__init__(f"{where}{problem}. Fix: {fix}")


class AudioError(AmsnetError):
    """An audio file that cannot be used (unreadable, empty, too short...)."""


class CorpusError(AmsnetError):
    """A corpus that is missing, incomplete or corrupt."""


class ManifestError(AmsnetError):
    """A malformed manifest, label file or split file."""


class CheckpointError(AmsnetError):
    """A checkpoint that cannot be loaded or does not fit the request."""


def _kind(reason: str) -> str:
    """A reason without its closing parenthesised detail (``unreadable (error: ...)`` -> ``unreadable``)."""
    import re

    return re.sub(r"\s*\(.*\)\s*$", "", reason)


def group_reasons(items) -> list[tuple[str, int, str]]:
    """Problems grouped by reason, for a summary instead of one line per file.

    Args:
        items: ``(path, reason)`` pairs, e.g. the utterances an evaluation left out, the
            feature warnings of a corpus or the files its loader skipped.

    Returns:
        ``(reason, count, example_path)`` per group, the largest group first. Reasons that differ
        only in their numbers (``truncated: only the first 3 s of 4.2 s are used``) or in a closing
        parenthesised detail (``unreadable (error: ...)``) form one group, shown with its first
        member's reason.
    """
    import re

    groups: dict[str, list] = {}
    for path, reason in items:
        key = re.sub(r"\d+(\.\d+)?", "#", _kind(str(reason)))
        groups.setdefault(key, [str(reason), 0, str(path)])[1] += 1
    return sorted((tuple(g) for g in groups.values()), key=lambda g: -g[1])


def problem_lines(items) -> list[str]:
    """The one way problems with files are shown (skipped files, feature warnings, utterances left
    out): one line per group of :func:`group_reasons`, largest first. A group of one file names it
    with its reason (``a.wav: clipped``); a larger one gives its count, its reason without the
    detail, and one example with its detail (``12 x unreadable (e.g. b.wav: error 0)``).
    """
    lines = []
    for reason, count, path in group_reasons(items):
        if count == 1:
            lines.append(f"{path}: {reason}")
            continue
        kind = _kind(reason)
        detail = reason[len(kind):].strip()[1:-1] if reason != kind else ""
        lines.append(f"{count} x {kind} (e.g. {path}{': ' + detail if detail else ''})")
    return lines
