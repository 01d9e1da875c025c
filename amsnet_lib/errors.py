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
