"""Streaming authenticated encryption: libsodium secretstream XChaCha20-Poly1305 in chunks."""

from __future__ import annotations

import hashlib
import hmac
import io
import math
from collections.abc import Iterator

import nacl.bindings as sodium
import nacl.exceptions

from medledger.errors import CryptoError, TamperingDetected

from ._shapes import (
    ABYTES,
    CHUNK_SIZE,
    FINGERPRINT_BYTES,
    STREAM_HEADER_BYTES,
    TAG_FINAL,
    TAG_MESSAGE,
    ReadableStream,
    address_bytes,
    as_bytes,
    check_chunk_size,
    check_key,
    check_len,
    read_exact,
    record_id_bytes,
)
from .fingerprints import fingerprint_key

RECORD_AD_PREFIX = b"medledger/record/v1"


def record_ad(record_id: bytes | str, patient: bytes | str) -> bytes:
    """The associated data authenticated with every chunk of a record."""
    return RECORD_AD_PREFIX + record_id_bytes(record_id) + address_bytes(patient)


def ciphertext_size(plaintext_size: int, chunk_size: int = CHUNK_SIZE) -> int:
    """Bytes of secretstream ciphertext (without the stream header) for a plaintext of this size."""
    chunks = max(1, math.ceil(plaintext_size / check_chunk_size(chunk_size)))
    return plaintext_size + chunks * ABYTES


class StreamBase:
    """What every encryptor and decryptor shares: the record key, the secretstream state, the
    plaintext size so far and, at the end, the keyed fingerprint of the plaintext. Iterable once."""

    _whole = "stream was processed"  # how each subclass says "the whole input went through"
    _role = "stream"

    def __init__(self, record_key: bytes, chunk_size: int) -> None:
        self.record_key: bytes = check_key(record_key)
        #: the key epoch whose category key opened the record key (set by ``open_record_blob``)
        self.key_epoch: int | None = None
        self._chunk_size = check_chunk_size(chunk_size)
        self._state = sodium.crypto_secretstream_xchacha20poly1305_state()
        self._mac = hmac.new(fingerprint_key(self.record_key), digestmod=hashlib.sha256)
        self._size = 0
        self._started = False
        self._fingerprint: bytes | None = None

    def __iter__(self) -> Iterator[bytes]:
        if self._started:
            raise CryptoError(f"this {self._role} was already iterated; create a new one to do it again")
        self._started = True
        return self._chunks()

    def _chunks(self) -> Iterator[bytes]:
        raise NotImplementedError  # pragma: no cover

    def _absorb(self, plain: bytes) -> None:
        """Count ``plain`` as record content: its size and its fingerprint."""
        self._mac.update(plain)
        self._size += len(plain)

    @property
    def finished(self) -> bool:
        """True once the final chunk went through (for the decryptor: and any expected fingerprint matched)."""
        return self._fingerprint is not None

    @property
    def fingerprint(self) -> bytes:
        """Keyed fingerprint of the plaintext (see :func:`fingerprint_of`), known once finished."""
        if self._fingerprint is None:
            raise CryptoError(
                f"the fingerprint is known only after the whole {self._whole}; iterate to the end first"
            )
        return self._fingerprint

    @property
    def plaintext_size(self) -> int:
        """Plaintext bytes so far (the total once finished)."""
        return self._size


class PushStream(StreamBase):
    """The encrypting side: ``header`` (the 24-byte secretstream header) is available at once and
    must be stored with the ciphertext."""

    _whole = "input was encrypted"
    _role = "encryptor"

    def __init__(self, record_key: bytes, source: ReadableStream, chunk_size: int) -> None:
        super().__init__(record_key, chunk_size)
        self._source = source
        self.header: bytes = sodium.crypto_secretstream_xchacha20poly1305_init_push(self._state, self.record_key)

    def _push(self, plain: bytes, ad: bytes, tag: int) -> bytes:
        return bytes(sodium.crypto_secretstream_xchacha20poly1305_push(self._state, plain, ad, tag))


class PullStream(StreamBase):
    """The decrypting side: frames of ``chunk_size + ABYTES`` bytes, each authenticated before its
    plaintext is used."""

    _whole = "ciphertext was decrypted"
    _role = "decryptor"
    _binding = "another record id or patient"

    def __init__(
        self,
        record_key: bytes,
        record_id: bytes | str,
        stream_header: bytes,
        source: ReadableStream,
        chunk_size: int,
        expected_fingerprint: bytes | None,
    ) -> None:
        super().__init__(record_key, chunk_size)
        self._record_id = record_id_bytes(record_id)
        self._source = source
        self._expected = (
            None if expected_fingerprint is None
            else check_len(expected_fingerprint, FINGERPRINT_BYTES, "expected fingerprint")
        )
        header = as_bytes(stream_header, "stream header")
        if len(header) != STREAM_HEADER_BYTES:
            raise TamperingDetected(
                f"record 0x{self._record_id.hex()}: the stream header is {len(header)} bytes instead "
                f"of {STREAM_HEADER_BYTES}; the blob was altered or truncated"
            )
        sodium.crypto_secretstream_xchacha20poly1305_init_pull(self._state, header, self.record_key)

    def _tampered(self, check: str) -> TamperingDetected:
        return TamperingDetected(f"record 0x{self._record_id.hex()}: {check}")

    def _read_frame(self, index: int) -> bytes:
        frame = read_exact(self._source, self._chunk_size + ABYTES)
        if len(frame) < ABYTES:
            raise self._tampered(f"truncated: the ciphertext ends after {index} chunk(s) without the final chunk")
        return frame

    def _pull(self, frame: bytes, ad: bytes, index: int) -> tuple[bytes, int]:
        try:
            plain, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(self._state, frame, ad)
        except nacl.exceptions.CryptoError:
            ending = (
                " (the stream ends inside this chunk, so it may also have been cut or extended)"
                if len(frame) < self._chunk_size + ABYTES else ""
            )
            raise self._tampered(
                f"authentication failed on chunk {index}{ending}: the ciphertext was altered, or "
                f"it belongs to {self._binding}, or the record key is wrong"
            ) from None
        return bytes(plain), int(tag)

    def _finish(self, index: int) -> None:
        """After the final chunk: nothing may follow, and the fingerprint must match."""
        if self._source.read(1):
            raise self._tampered(f"extra data follows the final chunk (chunk {index})")
        digest = self._mac.digest()
        if self._expected is not None and not hmac.compare_digest(digest, self._expected):
            raise self._tampered(
                "fingerprint mismatch: the decrypted content differs from the content "
                "whose fingerprint was committed"
            )
        self._fingerprint = digest

    @property
    def verified(self) -> bool:
        """True once finished and an expected fingerprint was given and matched."""
        return self.finished and self._expected is not None


class RecordEncryptor(PushStream):
    """Encrypt a plaintext stream chunk by chunk; iterate it to get the ciphertext.

    ``header`` (the 24-byte secretstream header) is available at once and must be stored with the
    ciphertext. After the iteration is exhausted, ``fingerprint`` and ``plaintext_size`` describe
    the plaintext. At most two plaintext chunks are held in memory at a time. An encryptor can be
    iterated once. Every chunk is authenticated with :func:`record_ad`.
    """

    def __init__(
        self,
        record_key: bytes,
        record_id: bytes | str,
        patient: bytes | str,
        source: ReadableStream,
        *,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        self._ad = record_ad(record_id, patient)
        super().__init__(record_key, source, chunk_size)

    def _chunks(self) -> Iterator[bytes]:
        size = self._chunk_size
        chunk = read_exact(self._source, size)
        while True:
            following = read_exact(self._source, size) if len(chunk) == size else b""
            tag = TAG_FINAL if not following else TAG_MESSAGE
            self._absorb(chunk)
            yield self._push(chunk, self._ad, tag)
            if tag == TAG_FINAL:
                self._fingerprint = self._mac.digest()
                return
            chunk = following


class RecordDecryptor(PullStream):
    """Decrypt a secretstream ciphertext stream; iterate it to get the plaintext chunks.

    Each chunk is authenticated before it is yielded. Truncation (no final chunk), data after the
    final chunk and, when ``expected_fingerprint`` is given, a fingerprint mismatch are detected
    before the last plaintext chunk is yielded. Earlier chunks have been yielded by then, so treat
    the output as untrusted until the iteration ends without an exception (write to a temporary
    file and keep it only on success).
    """

    def __init__(
        self,
        record_key: bytes,
        record_id: bytes | str,
        patient: bytes | str,
        stream_header: bytes,
        source: ReadableStream,
        *,
        chunk_size: int = CHUNK_SIZE,
        expected_fingerprint: bytes | None = None,
    ) -> None:
        self._ad = record_ad(record_id, patient)
        super().__init__(record_key, record_id, stream_header, source, chunk_size, expected_fingerprint)

    def _chunks(self) -> Iterator[bytes]:
        index = 0
        while True:
            plain, tag = self._pull(self._read_frame(index), self._ad, index)
            self._absorb(plain)
            if tag == TAG_FINAL:
                self._finish(index)
                yield plain
                return
            if tag != TAG_MESSAGE:
                raise self._tampered(f"unexpected secretstream tag {tag} on chunk {index}")
            yield plain
            index += 1


def encrypt_bytes(
    record_key: bytes,
    record_id: bytes | str,
    patient: bytes | str,
    data: bytes,
    *,
    chunk_size: int = CHUNK_SIZE,
) -> bytes:
    """Encrypt a small payload: returns ``stream header (24 bytes) || ciphertext``."""
    encryptor = RecordEncryptor(record_key, record_id, patient, io.BytesIO(as_bytes(data, "data")),
                                chunk_size=chunk_size)
    return encryptor.header + b"".join(encryptor)


def decrypt_bytes(
    record_key: bytes,
    record_id: bytes | str,
    patient: bytes | str,
    blob: bytes,
    *,
    chunk_size: int = CHUNK_SIZE,
    expected_fingerprint: bytes | None = None,
) -> bytes:
    """Decrypt the output of :func:`encrypt_bytes` (same key, record id, patient, chunk size)."""
    blob = as_bytes(blob, "ciphertext")
    decryptor = RecordDecryptor(
        record_key, record_id, patient, blob[:STREAM_HEADER_BYTES], io.BytesIO(blob[STREAM_HEADER_BYTES:]),
        chunk_size=chunk_size, expected_fingerprint=expected_fingerprint,
    )
    return b"".join(decryptor)

