"""Shapes every crypto module checks: sizes, ids, addresses, streams (package-internal)."""

from __future__ import annotations

from typing import Protocol, Union

import nacl.bindings as sodium
from eth_utils import is_address, to_checksum_address

from medledger.errors import CryptoError

#: Length of every symmetric key, X25519 key, record id and fingerprint.
KEY_BYTES = 32
RECORD_ID_BYTES = 32
ADDRESS_BYTES = 20
FINGERPRINT_BYTES = 32
#: Plaintext bytes per secretstream chunk.
CHUNK_SIZE = 64 * 1024
#: Largest chunk size a blob header may announce (bounds memory when reading untrusted blobs).
MAX_CHUNK_SIZE = 16 * 1024 * 1024
#: Authentication overhead per chunk (tag byte + Poly1305 MAC).
ABYTES: int = sodium.crypto_secretstream_xchacha20poly1305_ABYTES
STREAM_HEADER_BYTES: int = sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES
TAG_MESSAGE: int = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
TAG_FINAL: int = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL
#: Minimum length of a sealed box (ephemeral public key + MAC).
SEAL_OVERHEAD = 48

#: Category codes and key epochs must fit the contracts' types (uint16 mask bit, uint64 epoch).
MAX_CATEGORY = 15
MAX_EPOCH = 2**64 - 1


class ReadableStream(Protocol):
    """Anything with a binary ``read(n)``: an open file, ``io.BytesIO``, an HTTP response."""

    def read(self, size: int = -1, /) -> bytes: ...


class WritableStream(Protocol):
    """Anything with a binary ``write``: an open file, ``io.BytesIO``."""

    def write(self, data: bytes, /) -> object: ...


BytesLike = Union[bytes, bytearray, memoryview]


# --- shape checks --------------------------------------------------------------------------------
def as_bytes(value: object, what: str) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise CryptoError(f"{what} must be bytes, not {type(value).__name__}")


def check_len(value: object, length: int, what: str) -> bytes:
    data = as_bytes(value, what)
    if len(data) != length:
        raise CryptoError(f"{what} must be {length} bytes, got {len(data)}")
    return data


def check_key(key: object, what: str = "record key") -> bytes:
    return check_len(key, KEY_BYTES, what)


def record_id_bytes(record_id: bytes | str) -> bytes:
    """Accept a 32-byte record id as bytes or as a (0x-prefixed) hex string."""
    if isinstance(record_id, str):
        text = record_id[2:] if record_id[:2].lower() == "0x" else record_id
        try:
            record_id = bytes.fromhex(text)
        except ValueError:
            raise CryptoError("record id must be 32 bytes or 64 hex digits") from None
    return check_len(record_id, RECORD_ID_BYTES, "record id")


def address_bytes(patient: bytes | str) -> bytes:
    """Accept a 20-byte address as bytes or as a hex string (any case)."""
    if isinstance(patient, str):
        if not is_address(patient):
            raise CryptoError(f"{patient!r} is not an Ethereum address (0x + 40 hex digits)")
        return bytes.fromhex(patient[2:] if patient[:2].lower() == "0x" else patient)
    return check_len(patient, ADDRESS_BYTES, "patient address")


def checksum(patient: bytes | str) -> str:
    return to_checksum_address(address_bytes(patient))


def check_chunk_size(chunk_size: int) -> int:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int):
        raise CryptoError("chunk size must be an integer")
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise CryptoError(f"chunk size must be between 1 and {MAX_CHUNK_SIZE} bytes, got {chunk_size}")
    return chunk_size


def read_exact(stream: ReadableStream, size: int) -> bytes:
    """Read ``size`` bytes, or fewer only at end of stream (short reads from pipes are retried)."""
    first = stream.read(size)
    if not first:
        return b""
    if len(first) == size:
        return bytes(first)
    parts = [first]
    got = len(first)
    while got < size:
        part = stream.read(size - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def check_code(value: int, what: str, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise CryptoError(f"{what} must be an integer between 0 and {maximum}, got {value!r}")
    return value
