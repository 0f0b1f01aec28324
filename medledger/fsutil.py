"""Files that survive a crash: the one place medledger writes a file atomically and durably.

Every file medledger writes (keystores, deployments, signed requests, node state, caches) goes
through :func:`atomic_write` (or, for streams, :func:`atomic_writer`): the data goes
to a temporary file in the same directory, is flushed and fsynced, then renamed over the destination
(or hard-linked into place when the destination must not exist yet), and the directory is fsynced so
the rename itself is durable.
A reader therefore sees the old file or the new one, never a torn one, even after ``kill -9`` or a
power cut. A journal, whose records are only ever added, is appended to instead (:func:`append_line`).
Nothing here knows about medledger's formats.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


class DestinationExists(FileExistsError):
    """:func:`atomic_write` with ``exclusive=True`` found the destination already there."""


def fsync_directory(directory: str | os.PathLike[str]) -> None:
    """Make a rename or unlink in ``directory`` durable (best effort where the OS cannot)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_writer(
    path: str | os.PathLike[str],
    *,
    mode: int = 0o644,
    exclusive: bool = False,
    durable: bool = True,
) -> Iterator[BinaryIO]:
    """Stream a file into place atomically: write to the yielded binary handle; the file appears at
    ``path`` only when the ``with`` block ends without an exception (options as :func:`atomic_write`).
    On an exception nothing is left behind, neither the destination nor a temporary file."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    left_behind = True
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        left_behind = _place(tmp, target, exclusive)
    finally:
        if left_behind:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
    if durable:
        fsync_directory(target.parent)


def _place(tmp: str, target: Path, exclusive: bool) -> bool:
    """Put ``tmp`` in place as ``target``; return whether ``tmp`` is still there (to remove)."""
    if not exclusive:
        os.replace(tmp, target)
        return False
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise DestinationExists(f"{target} already exists") from None
    except OSError:  # a file system without hard links: a checked replace
        if target.exists():
            raise DestinationExists(f"{target} already exists") from None
        os.replace(tmp, target)
        return False
    return True


def atomic_write(
    path: str | os.PathLike[str],
    data: bytes | str,
    *,
    mode: int = 0o644,
    exclusive: bool = False,
    durable: bool = True,
) -> Path:
    """Write ``data`` to ``path`` atomically; return the path.

    ``mode`` is applied to the file before it becomes visible (use ``0o600`` for secrets).
    ``exclusive`` refuses to replace an existing file (:class:`DestinationExists`); the check and
    the creation are one atomic ``link``. ``durable=False`` skips the fsyncs, for caches that can be
    rebuilt and for files whose loss in a power cut costs nothing but cleanup (the write journal).
    Raises :class:`OSError` (with ``errno``) when the directory cannot be written, and leaves no
    temporary file behind.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    with atomic_writer(path, mode=mode, exclusive=exclusive, durable=durable) as handle:
        handle.write(raw)
    return Path(path)


def append_line(path: str | os.PathLike[str], line: str, *, create: bool = False) -> None:
    """Append ``line`` and a newline to ``path``: the one way medledger writes a journal, whose
    records are added, never rewritten. ``create``: the file must not exist yet (it is made here);
    otherwise it must exist. Not fsynced: a killed process leaves the page cache to the kernel, and a
    power cut can cost the newest lines. A kill can tear only the last line, which a reader skips.
    Raises :class:`OSError` (with ``errno``); a file this call created is removed again if the write
    fails (a full disk leaves nothing behind)."""
    flags = os.O_WRONLY | os.O_APPEND | (os.O_CREAT | os.O_EXCL if create else 0)
    fd = os.open(path, flags, 0o600)
    try:
        data = (line + "\n").encode("utf-8")
        if os.write(fd, data) != len(data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    except BaseException:
        os.close(fd)
        if create:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        raise
    os.close(fd)


@contextmanager
def file_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if need be) for the ``with`` block: processes
    (and threads, each through its own open) wait for each other. The kernel drops the lock of a
    process that dies, so a crash never leaves it held."""
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
