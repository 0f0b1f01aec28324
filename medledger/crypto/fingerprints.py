"""Keyed fingerprints: nobody without the record key can confirm a guess of the content."""

from __future__ import annotations

import hashlib
import hmac

from ._shapes import CHUNK_SIZE, BytesLike, ReadableStream, as_bytes, check_chunk_size, record_id_bytes
from .primitives import hkdf

FINGERPRINT_INFO = b"medledger/fingerprint/v1"
LEAF_FINGERPRINT_INFO = b"medledger/leaf-fingerprint/v1"


def fingerprint_key(record_key: bytes) -> bytes:
    """``HKDF-SHA256(record_key, info=b"medledger/fingerprint/v1")``: the key of the fingerprint."""
    return hkdf(record_key, FINGERPRINT_INFO)


def fingerprint_of(record_key: bytes, data: BytesLike | ReadableStream, *, chunk_size: int = CHUNK_SIZE) -> bytes:
    """The keyed fingerprint ``HMAC-SHA256(fingerprint_key(record_key), plaintext)``.

    ``data`` is bytes or a binary stream (read to its end in chunks).
    """
    mac = hmac.new(fingerprint_key(record_key), digestmod=hashlib.sha256)
    if isinstance(data, (bytes, bytearray, memoryview)):
        mac.update(data)
    else:
        check_chunk_size(chunk_size)
        while chunk := data.read(chunk_size):
            mac.update(chunk)
    return mac.digest()


def leaf_fingerprint(record_key: bytes, reading_id: bytes | str, data: bytes) -> bytes:
    """Fingerprint of one reading in a batch: ``HMAC-SHA256(k, reading_id || data)``.

    ``k = HKDF-SHA256(record_key, info=b"medledger/leaf-fingerprint/v1")``, a key separate from
    the whole-record fingerprint key so the two kinds of fingerprint can never be confused.
    """
    rid = record_id_bytes(reading_id)
    key = hkdf(record_key, LEAF_FINGERPRINT_INFO)
    return hmac.new(key, rid + as_bytes(data, "reading data"), hashlib.sha256).digest()

