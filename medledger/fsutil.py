"""Files that survive a crash: the one place medledger writes a file atomically and durably.

Every file medledger writes (keystores, deployments, journal entries, signed requests, node state,
caches) goes through :func:`atomic_write` (or, for streams, :func:`atomic_writer`): the data goes
to a temporary file in the same directory, is flushed and fsynced, then renamed over the destination
(or hard-linked into place when the destination must not exist yet), and the directory is fsynced so
the rename itself is durable.
A reader therefore sees the old file or the new one, never a torn one, even after ``kill -9`` or a
power cut. Nothing here knows about medledger's formats.
"""

from __future__ import annotations

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
