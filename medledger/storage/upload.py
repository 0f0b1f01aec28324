"""Streaming input for uploads: bytes, a binary file, a path or an iterable of bytes chunks, read
one chunk at a time."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable, Iterator
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
        raise TypeError("add_stream needs bytes, a binary file, a path object or an iterable of "
                        "bytes; a str is ambiguous (use pathlib.Path for a file, or encode it)")
    if isinstance(source, os.PathLike):
        fh = open(source, "rb")  # noqa: SIM115 - closed by the caller
        return ChunkReader(fh, observer), fh
    if hasattr(source, "read") or isinstance(source, Iterable):
        return ChunkReader(source, observer), None
    raise TypeError(f"cannot add a {type(source).__name__}: pass bytes, a binary file object, "
                    "a path or an iterable of bytes")

