"""The plaintext inside a record's encryption: a small header (content type, file name) and the
bytes; and the validation that settles a new record's content type and category."""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from medledger import codes, fhir
from medledger.errors import RecordFormatError, TamperingDetected

from .models import FHIR_CONTENT_TYPE, Progress

PAYLOAD_MAGIC = b"MLP1"
MAX_HEADER = 1 << 16
_LEN = struct.Struct(">I")

Source = Path | bytes | BinaryIO


class Concat(io.RawIOBase):
    """A readable stream over a header and another stream, read in bounded pieces."""

    def __init__(self, head: bytes, tail: BinaryIO, progress: Progress | None = None) -> None:
        self._head = head
        self._tail = tail
        self._progress = progress

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = 1 << 20
        if self._head:
            out, self._head = self._head[:size], self._head[size:]
            return out
        out = self._tail.read(size)
        if out and self._progress:
            self._progress(len(out))
        return out


def payload_header(content_type: str, name: str | None) -> bytes:
    body = json.dumps({"content_type": content_type, "name": name}, sort_keys=True).encode()
    return PAYLOAD_MAGIC + _LEN.pack(len(body)) + body


def split_payload(chunks: Iterator[bytes]) -> tuple[dict[str, Any], Iterator[bytes]]:
    """The payload header's fields and an iterator over the record's own bytes."""
    buf = b""
    for chunk in chunks:
        buf += chunk
        if len(buf) >= 8:
            break
    if buf[:4] != PAYLOAD_MAGIC:
        raise TamperingDetected("The decrypted record does not start with a medledger payload header")
    (length,) = _LEN.unpack(buf[4:8])
    if length > MAX_HEADER:
        raise TamperingDetected("The decrypted payload header is implausibly large")
    while len(buf) < 8 + length:
        try:
            buf += next(chunks)
        except StopIteration:
            raise TamperingDetected("The decrypted record ends inside its payload header") from None
    meta = json.loads(buf[8 : 8 + length])
    rest = buf[8 + length :]

    def body() -> Iterator[bytes]:
        if rest:
            yield rest
        yield from chunks

    return meta, body()


def open_source(source: Source) -> tuple[BinaryIO, str | None, bool]:
    """A readable stream of ``source``, its file name, and whether the caller must close it."""
    if isinstance(source, (bytes, bytearray)):
        return io.BytesIO(bytes(source)), None, True
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            return path.open("rb"), path.name, True
        except OSError as exc:
            raise RecordFormatError(f"Cannot read {path}: {exc.strerror}") from None
    return source, getattr(source, "name", None), False


def _looks_like_fhir(data: bytes) -> bool:
    """JSON with a resourceType near the top: validate it as FHIR rather than store it blindly."""
    head = data[:4096].lstrip()
    return head.startswith(b"{") and b'"resourceType"' in head


_BLANK = b" \t\r\n\x0b\x0c"


def _blank(source: Source) -> bool:
    """Whether the content is empty or only whitespace (read until the first other byte; a stream is
    looked at only if it can be rewound)."""
    if isinstance(source, (bytes, bytearray)):
        return not bytes(source).strip(_BLANK)
    if isinstance(source, (str, Path)):
        try:
            with Path(source).open("rb") as handle:
                return _blank_stream(handle)
        except OSError as exc:
            raise RecordFormatError(f"Cannot read {source}: {exc.strerror}") from None
    if not (source.seekable() if hasattr(source, "seekable") else False):
        return False
    position = source.tell()
    try:
        return _blank_stream(source)
    finally:
        source.seek(position)


def _blank_stream(handle: BinaryIO) -> bool:
    while chunk := handle.read(1 << 16):
        if chunk.strip(_BLANK):
            return False
    return True


def prepare(source: Source, content_type: str | None, category: int | None) -> tuple[str, codes.Category]:
    """Validate the input and settle its content type and category (nothing is uploaded yet). Empty
    and whitespace-only content is refused whatever its type or category."""
    if _blank(source):
        name = f"{source} is" if isinstance(source, (str, Path)) else "The record is"
        raise RecordFormatError(f"{name} empty (nothing but whitespace): nothing to store")
    if isinstance(source, (str, Path)) and content_type is None:
        content_type = fhir.detect_content_type(Path(source))
    if content_type is None and isinstance(source, (bytes, bytearray)) and _looks_like_fhir(bytes(source)):
        content_type = FHIR_CONTENT_TYPE
    if content_type is None:
        content_type = FHIR_CONTENT_TYPE if category is None else "application/octet-stream"
    if content_type in (FHIR_CONTENT_TYPE, "application/json"):
        raw = Path(source).read_bytes() if isinstance(source, (str, Path)) else source
        if not isinstance(raw, (bytes, bytearray)):
            raise RecordFormatError("FHIR input must be a file path or bytes")
        summary = fhir.validate_fhir(bytes(raw))
        content_type = FHIR_CONTENT_TYPE
        if category is None:
            if summary.category is None:
                raise RecordFormatError(
                    f"Cannot infer a category for a FHIR {summary.resource_type} "
                    f"({', '.join(summary.resource_types)}); pass one explicitly."
                )
            category = summary.category
    if category is None:
        raise RecordFormatError(f"A {content_type} attachment needs an explicit category.")
    return content_type, codes.Category(int(category))
