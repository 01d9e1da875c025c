"""Safe writes of shared files: atomic replacement, and a lock around read-modify-writes.

Every cache entry, run-store file, checkpoint, export, table and figure is written through here,
so an interrupted run never leaves a truncated file behind. Atomic replacement alone does not
stop two processes that each read a table, add their row and write it back from losing one of
the rows (two processes of 40 ``update_summary`` calls each left 51, in another run 47, of 80
rows): every such read-modify-write holds :func:`locked` on the file.

What is already at an output path is never destroyed by the way it is written (issue 41): a
regular file is replaced atomically and keeps its permission bits; a symbolic link is written
through (its target is replaced, the link stays); a character device (``/dev/null``, a terminal)
or a FIFO is streamed into, never replaced; a block device, a socket or a link loop is refused.
:func:`check_distinct` refuses an output that is one of the command's inputs.

Public: scripts and benchmarks that write results use the same functions.
"""
from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from filelock import FileLock

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "check_distinct", "check_writable", "locked"]


def _stat(path: Path) -> os.stat_result | None:
    """``os.stat`` through links; ``None`` when nothing is there (a dangling link included).

    Raises:
        AmsnetError: ``path`` is a symbolic link loop (or too many links deep).
    """
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as error:
        if error.errno == errno.ELOOP:
            from .errors import AmsnetError

            raise AmsnetError(path, "is a symbolic link loop", "point the link at a file, or give another path") from error
        raise


def _kind(st: os.stat_result) -> str:
    """What a stat result describes, in words."""
    mode = st.st_mode
    for test, name in ((stat.S_ISREG, "regular file"), (stat.S_ISDIR, "folder"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISFIFO, "FIFO (named pipe)"), (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "special file"


def _streamed(st: os.stat_result | None) -> bool:
    """Output that is written into, never replaced: a character device or a FIFO."""
    return st is not None and (stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode))


def _refuse_special(path: Path, st: os.stat_result | None) -> None:
    if st is not None and not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode) or _streamed(st)):
        from .errors import AmsnetError

        raise AmsnetError(path, f"is a {_kind(st)}; amsnet writes files, character devices and FIFOs only",
                          "give another output path")


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path to write to; what it holds goes to ``path`` when the block succeeds.

    By what is at ``path`` (through symbolic links):

    - nothing, or a regular file: the temporary file is beside the target and replaces it
      atomically (``os.replace``); a file it replaces keeps its permission bits (and owner and
      group, where this process may set them); a new file gets the usual permissions
      (``0666 & ~umask``, not mkstemp's 0600, so shipped files stay readable). A hard link to the
      replaced file keeps the old content.
    - a symbolic link: written through, the link stays and its target (however many links deep)
      is replaced as above; a dangling link creates its target.
    - a character device (``/dev/null``, a terminal) or a FIFO: the temporary file is in the
      system's temporary folder (writers may seek and read back), and its bytes are streamed into
      ``path`` once the block succeeds (opening a FIFO waits for its reader, as a shell's ``>``).
    - a block device, a socket, a link loop: AmsnetError, before the block runs.

    The target's folder is created. On an exception the temporary file is removed and ``path``
    is left as it was.
    """
    path = Path(path)
    st = _stat(path)
    _refuse_special(path, st)
    if _streamed(st):
        fd, tmp = tempfile.mkstemp(prefix=f".amsnet-{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            yield Path(tmp)
            with open(tmp, "rb") as src, open(path, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    if st is not None and stat.S_ISREG(st.st_mode):
        if (st.st_uid, st.st_gid) != (os.getuid(), os.getgid()):
            try:
                os.chown(tmp, st.st_uid, st.st_gid)
            except OSError:  # only root may give a file away: it then belongs to the writer
                pass
        os.chmod(tmp, stat.S_IMODE(st.st_mode))
    else:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (flushed to disk before the rename); see :func:`atomic_path`."""
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
            a folder, a read-only file, a block device, a socket or a symbolic link loop, or the
            folder cannot be created or written; the message names the path. Writability is
            probed by creating and removing a file, not just ``os.access``, which says yes to
            root on a read-only file system. A character device or a FIFO must be writable
            itself (:func:`atomic_path` streams into it); a link is checked at its target.
    """
    from .errors import AmsnetError

    path = Path(path).expanduser()
    if folder and path.exists() and not path.is_dir():
        raise AmsnetError(path, f"the {what} is a file, not a folder", fix)
    if not folder and path.is_dir():
        raise AmsnetError(path, f"the {what} is a folder, not a file", fix)
    where = path if folder else path.parent
    if not folder:
        try:
            st = _stat(path)
        except AmsnetError as error:
            raise AmsnetError(path, f"the {what} {error.problem}", fix) from None
        if st is not None and not stat.S_ISREG(st.st_mode):
            if not _streamed(st):
                raise AmsnetError(path, f"the {what} is a {_kind(st)}, not a file", fix)
            if not os.access(path, os.W_OK):
                raise AmsnetError(path, f"the {what} is a {_kind(st)} that cannot be written (permission denied)", fix)
            return path
        if st is not None and (not os.access(path, os.W_OK) or not st.st_mode & 0o222):
            raise AmsnetError(path, f"the {what} is a read-only file (mode {stat.S_IMODE(st.st_mode):o}), which "
                              "amsnet does not overwrite", f"{fix}, or make it writable (chmod u+w) to replace it")
        if path.is_symlink():
            where = Path(os.path.realpath(path)).parent
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


def check_distinct(outputs: Iterable[tuple[str, str | os.PathLike | None]],
                   inputs: Iterable[tuple[str, str | os.PathLike | None]]) -> None:
    """Refuse an output that would overwrite one of the inputs, or two outputs that name one file.

    Args:
        outputs: ``(what, path)`` of every file a command writes (``None``: not written),
            e.g. ``("--out", "pred.csv")``.
        inputs: ``(what, path)`` of every file it reads (a manifest, a checkpoint, audio files);
            paths that are not regular files (folders, missing ones) are ignored.

    Raises:
        AmsnetError: an output is an input, compared by device and inode, so the same file under
            another name, through a symbolic link or a hard link is caught; or two outputs resolve
            to the same file. The message names both.
    """
    from .errors import AmsnetError

    read: dict[tuple[int, int], tuple[str, str]] = {}
    for what, p in inputs:
        if p is None or str(p) == "":
            continue
        try:
            st = os.stat(p)
        except (OSError, ValueError):
            continue
        if stat.S_ISREG(st.st_mode):
            read.setdefault((st.st_dev, st.st_ino), (what, str(p)))
    written: dict[str, tuple[str, str]] = {}
    for what, p in outputs:
        if p is None or str(p) == "":
            continue
        try:
            st = os.stat(p)
        except (OSError, ValueError):
            st = None
        if st is not None and not stat.S_ISREG(st.st_mode):
            continue  # a device or FIFO is streamed into, never replaced: /dev/null twice is fine
        if st is not None and (st.st_dev, st.st_ino) in read:
            in_what, in_path = read[(st.st_dev, st.st_ino)]
            same = "" if os.path.abspath(in_path) == os.path.abspath(p) else f" {in_path}"
            raise AmsnetError(p, f"{what} is the {in_what}{same} (the same file): writing it would destroy the input",
                              f"give {what} another file name")
        real = os.path.realpath(p)
        if real in written:
            other, other_path = written[real]
            raise AmsnetError(p, f"{what} and {other} ({other_path}) name the same file, so one would overwrite the other",
                              f"give {what} and {other} different file names")
        written[real] = (what, str(p))
