"""Streaming input for uploads: bytes, a binary file, a path or an iterable of bytes chunks, read
one chunk at a time; and the body of one ``add`` request carrying several small contents."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, BinaryIO, Union

#: Size of the pieces the request body is cut into while streaming an upload.
UPLOAD_CHUNK = 256 * 1024

Data = Union[bytes, bytearray, memoryview]
Source = Union[Data, BinaryIO, Iterable[Data], "os.PathLike[str]"]


class ChunkReader:
    """A minimal read-only binary file over a source of chunks.

    ipfshttpclient's multipart encoder calls ``read(chunk_size)`` until it gets ``b""``; this holds
    at most one chunk of the source at a time. It deliberately has no ``name`` attribute, so no
    file name (which could reveal something about the content) is sent to the node.
    """

    def __init__(self, source: Any, observer: Callable[[bytes], object] | None = None) -> None:
        #: sees every piece handed to the upload (to compute its CID locally)
        self._observer = observer
        self._read = None
        self._iter: Iterator[Data] | None = None
        if hasattr(source, "read"):
            self._read = source.read
        else:
            self._iter = iter(source)
        self._buf = memoryview(b"")
        self._done = False
        self.bytes_read = 0
        #: an exception the source raised; the upload is ended early and the caller re-raises it
        self.error: BaseException | None = None

    def readable(self) -> bool:
        return True

    def _next_chunk(self) -> bool:
        while not self._done:
            if self._read is not None:
                chunk = self._read(UPLOAD_CHUNK)
                if not chunk:
                    self._done = True
                    return False
            else:
                assert self._iter is not None
                try:
                    chunk = next(self._iter)
                except StopIteration:
                    self._done = True
                    return False
            if isinstance(chunk, str):
                raise TypeError("add_stream needs bytes, got str chunks (encode them first)")
            if not isinstance(chunk, (bytes, bytearray, memoryview)):
                raise TypeError(f"add_stream needs bytes chunks, got {type(chunk).__name__}")
            if len(chunk):
                self._buf = memoryview(bytes(chunk) if not isinstance(chunk, bytes) else chunk)
                return True
        return False

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = UPLOAD_CHUNK
        if not self._buf:
            try:
                more = self._next_chunk()
            except Exception as error:  # noqa: BLE001 - handed back to the caller by _add
                # Raising here would leave the HTTP request half sent on a socket that stays open
                # until garbage collection, and js-ipfs would keep waiting for the rest while
                # holding its repo lock (so gc and block removal hang). End the body instead.
                self.error = error
                self._done = True
                more = False
            if not more:
                return b""
        out = self._buf[:size].tobytes()
        self._buf = self._buf[size:]
        self.bytes_read += len(out)
        if self._observer is not None:
            self._observer(out)
        return out

    def close(self) -> None:
        self._buf = memoryview(b"")


def as_reader(source: Any, observer: Callable[[bytes], object] | None = None) -> tuple[ChunkReader, Any]:
    """Wrap ``source`` (bytes, file object, path or iterable of bytes) in a :class:`ChunkReader`.

    Returns the reader and a file object to close afterwards (when we opened a path), or None.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        return ChunkReader(io.BytesIO(bytes(source)), observer), None
    if isinstance(source, str):
        raise TypeError(
            "add_stream needs bytes, a binary file, a path object or an iterable of "
            "bytes; a str is ambiguous (use pathlib.Path for a file, or encode it)"
        )
    if isinstance(source, os.PathLike):
        fh = open(source, "rb")  # noqa: SIM115 - closed by the caller
        return ChunkReader(fh, observer), fh
    if hasattr(source, "read") or isinstance(source, Iterable):
        return ChunkReader(source, observer), None
    raise TypeError(
        f"cannot add a {type(source).__name__}: pass bytes, a binary file object, a path or an iterable of bytes"
    )


# --- several small contents in one request --------------------------------------------------------------
def multipart_body(blobs: Sequence[Data]) -> tuple[bytes, str]:
    """The ``multipart/form-data`` body of one ``add`` request carrying ``blobs`` as files named by
    their position (``p0``, ``p1``, ...: nothing about the content; js-ipfs answers a bare number with
    the CID instead of the name), and its Content-Type header. Every
    part has a Content-Type of its own (js-ipfs refuses a part without one)."""
    boundary = os.urandom(16).hex()
    parts = [
        b'--%s\r\nContent-Disposition: file; filename="p%d"\r\nContent-Type: application/octet-stream\r\n\r\n%s\r\n'
        % (boundary.encode(), position, bytes(blob))
        for position, blob in enumerate(blobs)
    ]
    parts.append(b"--%s--\r\n" % boundary.encode())
    return b"".join(parts), f'multipart/form-data; boundary="{boundary}"'


class IncompleteAdd(ValueError):
    """The node answered for the first ``done`` files of a request and then stopped: js-ipfs adds (and
    pins) the parts of a multipart request one after the other and ends its answer early when one fails."""

    def __init__(self, done: int, count: int) -> None:
        super().__init__(f"the node answered for {done} of {count} files and then stopped")
        self.done = done
        self.count = count


def added_cids(answers: Any, count: int) -> list[str]:
    """The CID the node answered for each of ``count`` files of a :func:`multipart_body`, in order;
    :class:`IncompleteAdd` if it answered for the first few only, ValueError if the answer does not
    name each of them exactly once."""
    by_name: dict[str, str] = {}
    for answer in answers if isinstance(answers, list) else []:
        if isinstance(answer, dict) and isinstance(answer.get("Name"), str) and isinstance(answer.get("Hash"), str):
            by_name[answer["Name"]] = answer["Hash"]
    names = [f"p{i}" for i in range(count)]
    if 0 < len(by_name) < count and sorted(by_name) == sorted(names[: len(by_name)]):
        raise IncompleteAdd(len(by_name), count)
    if sorted(by_name) != sorted(names):
        raise ValueError(f"the answer names {sorted(by_name)[:4]}... for files p0..p{count - 1}")
    return [by_name[name] for name in names]
