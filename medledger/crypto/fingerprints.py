"""Keyed fingerprints: nobody without the record key can confirm a guess of the content. Also the
opaque tags of short codes that go on chain (:func:`opaque_tag`): nobody without the key can confirm
a guess of the code either."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

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


TAG_NONCE_BYTES = 16


def opaque_tag(key: bytes, domain: bytes, value: bytes, *, nonce: bytes | None = None) -> bytes:
    """A 32-byte tag of a short ``value`` (a coded reason, a credential number) that only holders of
    ``key`` can check a guess against: ``nonce (16 random bytes) || HMAC-SHA256(HKDF(key, domain),
    nonce || value)[:16]``. The nonce makes two tags of the same value unrelated to everyone else."""
    nonce = secrets.token_bytes(TAG_NONCE_BYTES) if nonce is None else bytes(nonce)
    if len(nonce) != TAG_NONCE_BYTES:
        raise ValueError(f"a tag nonce has {TAG_NONCE_BYTES} bytes, not {len(nonce)}")
    mac = hmac.new(hkdf(key, domain), nonce + as_bytes(value, "tagged value"), hashlib.sha256).digest()
    return nonce + mac[: 32 - TAG_NONCE_BYTES]


def tag_matches(key: bytes, domain: bytes, tag: bytes, value: bytes) -> bool:
    """Whether ``tag`` is an :func:`opaque_tag` of ``value`` under ``key`` and ``domain``."""
    if len(tag) != 32:
        return False
    return hmac.compare_digest(opaque_tag(key, domain, value, nonce=tag[:TAG_NONCE_BYTES]), bytes(tag))


_CODE = re.compile(r"[A-Za-z0-9.:/_-]{1,64}")


def code_tag(key: bytes, domain: bytes, code: str) -> bytes:
    """:func:`opaque_tag` of a short code (a SNOMED CT concept id, a register and number such as
    ``GMC:1234567``): letters, digits and ``.:/_-``, at most 64 characters, never free text."""
    if not _CODE.fullmatch(code):
        raise ValueError(
            f"{code!r} is not a code: use letters, digits and . : / _ - (at most 64 characters), no free text"
        )
    return opaque_tag(key, domain, code.encode())
