"""Safe writes of shared files: atomic replacement, and a lock around read-modify-writes.

Every cache entry, run-store file, checkpoint, export, table and figure is written through here,
so an interrupted run never leaves a truncated file behind. Atomic replacement alone does not
stop two processes that each read a table, add their row and write it back from losing one of
the rows (two processes of 40 ``update_summary`` calls each left 51, in another run 47, of 80
rows): every such read-modify-write holds :func:`locked` on the file.

Public: scripts and benchmarks that write results use the same functions.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from filelock import FileLock

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "check_writable", "locked"]


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; it replaces ``path`` when the block succeeds.

    The folder is created. The file gets the usual permissions (``0666 & ~umask``, not
    mkstemp's 0600, so shipped files stay readable). On an exception the temporary file is
    removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (flushed to disk before the rename)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode())


def lock_path(path: str | os.PathLike) -> Path:
    """The lock file of ``path``: ``<path>.lock`` beside it (left in place; git ignores ``*.lock``)."""
    path = Path(path)
    return path.with_name(path.name + ".lock")


@contextmanager
def locked(path: str | os.PathLike) -> Iterator[Path]:
    """Hold an exclusive lock on ``path`` (for every process that takes it here) within the block.

    The lock is an OS file lock (``filelock``; ``fcntl.flock`` on Linux) on :func:`lock_path`, so
    the kernel releases it when its holder dies: a killed writer never leaves a stale lock. A
    second process waits until the first one leaves the block. The folder is created.

    Yields:
        ``path`` as a :class:`~pathlib.Path`, to read and then replace with :func:`atomic_write_text`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(lock_path(path)):
        yield path


def check_writable(path: str | os.PathLike, what: str, fix: str, *, folder: bool = False) -> Path:
    """Make sure files can be written at ``path`` before any work that would write them starts.

    Args:
        path: a file to be written (its folder is checked), or with ``folder=True`` a folder to
            write files into.
        what: what the location is for, in words ("run store", "--summary file"...).
        fix: what the user should do when it cannot be written.
        folder: ``path`` is a folder rather than a file.

    Returns:
        ``path``. Missing folders are created (as the writes would create them).

    Raises:
        AmsnetError: the path or one of its parents is a regular file, the file to be written is
            a folder, or the folder cannot be created or written; the message names the path.
            Writability is probed by creating and removing a file, not just ``os.access``,
            which says yes to root on a read-only file system.
    """
    from .errors import AmsnetError

    path = Path(path).expanduser()
    where = path if folder else path.parent
    if folder and path.exists() and not path.is_dir():
        raise AmsnetError(path, f"the {what} is a file, not a folder", fix)
    if not folder and path.is_dir():
        raise AmsnetError(path, f"the {what} is a folder, not a file", fix)
    blocker = next((p for p in (where, *where.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise AmsnetError(path, f"the {what} cannot be created: {blocker} is a file, not a folder", fix)
    try:
        where.mkdir(parents=True, exist_ok=True)
        if not os.access(where, os.W_OK | os.X_OK):
            raise PermissionError(13, "permission denied")
        fd, probe = tempfile.mkstemp(dir=where, prefix=".amsnet-write-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise AmsnetError(path, f"the {what} cannot be written ({reason.lower()} in {where})", fix) from error
    return path
