"""The record blob: what goes to IPFS for every record (format 2).

A blob tells nothing about its record: not the record id, not the patient, not the category, not
the key epoch, and not the exact length of the content. The reader supplies the record id, the
patient and the category (it knows them from the chain) and tries the category keys it holds,
newest epoch first, on the sealed record key. Byte layout::

    offset  size  field
    0       4     magic b"MLR2"
    4       1     suite 0x01: X25519 sealed box (record key), secretstream XChaCha20-Poly1305,
                  Padmé padding
    5       4     chunk size c, unsigned big-endian (1 .. 16 MiB; 65536 by default)
    9       80    the 32-byte record key sealed to the category public key of the current epoch
    89      24    secretstream header
    113     ...   frames of c + 17 bytes, the last one shorter (see :mod:`.padded`)

Every frame is authenticated with the associated data::

    b"medledger/record/v2" || header bytes 0..112 || record id (32) || patient (20)
        || category (2, unsigned big-endian)

so changing any header field (chunk size, suite, sealed key, stream header) or reading the blob as
another record, patient or category fails authentication. Format 1 blobs (``MLR1``) are still
read (:mod:`.legacy`).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from medledger.errors import (
    CryptoError,
    DecryptionError,
    KeyNotFound,
    NoKeyOpens,
    RecordFormatError,
    TamperingDetected,
)

from ._shapes import (
    ABYTES,
    CHUNK_SIZE,
    KEY_BYTES,
    MAX_CATEGORY,
    MAX_CHUNK_SIZE,
    MAX_EPOCH,
    SEAL_OVERHEAD,
    STREAM_HEADER_BYTES,
    ReadableStream,
    WritableStream,
    address_bytes,
    check_chunk_size,
    check_code,
    check_key,
    read_exact,
    record_id_bytes,
)
from .category_keys import CategoryKeys, candidates
from .legacy import LEGACY_MAGIC, LegacyRecordHeader, open_legacy_blob, parse_legacy_header, unseal_legacy_record_key
from .padded import PaddedDecryptor, PaddedEncryptor, padded_length
from .primitives import new_record_key, seal, unseal
from .stream import PullStream

BLOB_MAGIC = b"MLR2"
BLOB_FORMAT_VERSION = 2
#: X25519 sealed box for the record key, secretstream XChaCha20-Poly1305, Padmé padding.
SUITE = 1
_FIXED = struct.Struct(">4sBI")  # magic, suite, chunk size
SEALED_KEY_BYTES = KEY_BYTES + SEAL_OVERHEAD
HEADER_BYTES = _FIXED.size + SEALED_KEY_BYTES + STREAM_HEADER_BYTES
BLOB_AD_PREFIX = b"medledger/record/v2"


@dataclass(frozen=True)
class RecordHeader:
    """The clear header of a format 2 blob: only what every blob has (see the module docstring)."""

    sealed_record_key: bytes = field(repr=False)
    stream_header: bytes = field(repr=False)
    chunk_size: int = CHUNK_SIZE
    suite: int = SUITE
    format: int = BLOB_FORMAT_VERSION

    def encode(self) -> bytes:
        """The 113 bytes that precede the frames."""
        return _FIXED.pack(BLOB_MAGIC, self.suite, self.chunk_size) + self.sealed_record_key + self.stream_header

    @classmethod
    def decode(cls, raw: bytes) -> RecordHeader:
        """Parse the 113 header bytes (magic included). TamperingDetected if malformed."""
        if len(raw) != HEADER_BYTES:
            raise TamperingDetected("record blob is truncated inside its header")
        _magic, suite, chunk_size = _FIXED.unpack_from(raw)
        if suite != SUITE:
            raise RecordFormatError(
                f"record blob uses cipher suite {suite}, which this medledger does not know; "
                "upgrade medledger to read it (or the blob was altered)"
            )
        if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
            raise TamperingDetected(
                f"record blob header is malformed (chunk size {chunk_size} is not between 1 and "
                f"{MAX_CHUNK_SIZE}); the blob was altered or corrupted"
            )
        sealed = raw[_FIXED.size:_FIXED.size + SEALED_KEY_BYTES]
        return cls(sealed_record_key=sealed, stream_header=raw[_FIXED.size + SEALED_KEY_BYTES:],
                   chunk_size=chunk_size, suite=suite)


def blob_ad(header: RecordHeader, record_id: bytes | str, patient: bytes | str, category: int) -> bytes:
    """The associated data every frame of the blob is authenticated with."""
    category = check_code(category, "category", MAX_CATEGORY)
    return (BLOB_AD_PREFIX + header.encode() + record_id_bytes(record_id) + address_bytes(patient)
            + category.to_bytes(2, "big"))


def blob_size(plaintext_size: int, chunk_size: int = CHUNK_SIZE) -> int:
    """The size of the blob of a record of ``plaintext_size`` bytes: it depends on the Padmé-rounded
    size only."""
    stream = padded_length(plaintext_size)
    return HEADER_BYTES + stream + math.ceil(stream / check_chunk_size(chunk_size)) * ABYTES


class RecordBlobWriter:
    """Produce a record blob: iterate it to get the header bytes, then the ciphertext chunks.

    A fresh record key is drawn (unless ``record_key`` is given) and sealed to
    ``category_public_key`` (the key of epoch ``epoch``, which the blob does not record).
    ``record_key`` and ``header`` are available at once; ``fingerprint`` and ``plaintext_size``
    once the iteration is exhausted.
    """

    def __init__(
        self,
        plaintext: ReadableStream,
        record_id: bytes | str,
        patient: bytes | str,
        category: int,
        epoch: int,
        category_public_key: bytes,
        *,
        record_key: bytes | None = None,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        self.category = check_code(int(category), "category", MAX_CATEGORY)
        self.key_epoch = check_code(int(epoch), "key epoch", MAX_EPOCH)
        self.record_key: bytes = new_record_key() if record_key is None else check_key(record_key)
        self._encryptor = PaddedEncryptor(self.record_key, plaintext, chunk_size=chunk_size)
        self.header = RecordHeader(
            sealed_record_key=seal(category_public_key, self.record_key),
            stream_header=self._encryptor.header,
            chunk_size=chunk_size,
        )
        self._encryptor.bind(blob_ad(self.header, record_id, patient, self.category))

    def __iter__(self) -> Iterator[bytes]:
        chunks = iter(self._encryptor)  # a second iteration raises CryptoError here
        yield self.header.encode()
        yield from chunks

    @property
    def finished(self) -> bool:
        """True once the whole blob was produced."""
        return self._encryptor.finished

    @property
    def fingerprint(self) -> bytes:
        """Keyed fingerprint of the plaintext (to commit on chain)."""
        return self._encryptor.fingerprint

    @property
    def plaintext_size(self) -> int:
        """Plaintext bytes encrypted so far."""
        return self._encryptor.plaintext_size


def write_record_blob(
    plaintext: ReadableStream,
    record_id: bytes | str,
    patient: bytes | str,
    category: int,
    epoch: int,
    category_public_key: bytes,
    *,
    record_key: bytes | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> RecordBlobWriter:
    """Start a record blob; see :class:`RecordBlobWriter`. Iterate the result for the bytes."""
    return RecordBlobWriter(plaintext, record_id, patient, category, epoch, category_public_key,
                            record_key=record_key, chunk_size=chunk_size)


def parse_record_header(
    stream: ReadableStream,
    *,
    expected_record_id: bytes | str | None = None,
    expected_patient: bytes | str | None = None,
) -> tuple[RecordHeader | LegacyRecordHeader, ReadableStream]:
    """Read the header of a record blob; return it and the stream, positioned at the ciphertext.

    Raises RecordFormatError if the stream is not a medledger blob (bad magic) or is of a newer
    format, TamperingDetected if the header is malformed. A format 2 header names no record or
    patient (they are checked by the decryption); a format 1 header is checked against
    ``expected_record_id`` and ``expected_patient`` here.
    """
    magic = read_exact(stream, len(BLOB_MAGIC))
    if magic == LEGACY_MAGIC:
        legacy = parse_legacy_header(stream, expected_record_id=expected_record_id,
                                     expected_patient=expected_patient)
        return legacy, stream
    if magic != BLOB_MAGIC:
        if len(magic) == 4 and magic[:3] == b"MLR" and magic[3:].isdigit():
            raise RecordFormatError(
                f"record blob format {magic[3:].decode()} is newer than this medledger understands "
                f"(format {BLOB_FORMAT_VERSION}); upgrade medledger to read it"
            )
        raise RecordFormatError(
            "not a medledger record blob (the first bytes are not the 'MLR2' magic); check the CID"
        )
    return RecordHeader.decode(magic + read_exact(stream, HEADER_BYTES - len(magic))), stream


def _trial_open(header: RecordHeader, keys: CategoryKeys, category: int | None, what: str) -> tuple[bytes, int | None]:
    """(record key, epoch of the key that opened it): the held keys tried newest epoch first."""
    tried = candidates(keys, category)
    label = f"category {category}" if category is not None else "the category"
    if not tried:
        raise KeyNotFound(
            f"no key for {label} to open {what}; ask the patient for a key envelope that includes "
            "this category"
        )
    for epoch, secret in tried:
        try:
            record_key = unseal(secret, header.sealed_record_key)
        except DecryptionError:
            continue
        if len(record_key) != KEY_BYTES:
            raise TamperingDetected(f"{what}: the sealed record key holds {len(record_key)} bytes instead of {KEY_BYTES}")
        return record_key, epoch
    epochs = ", ".join(str(e) for e, _ in tried if e is not None) or "one key"
    raise NoKeyOpens(
        f"the category keys at hand ({label}, epoch {epochs}) cannot open the record key of {what}: "
        "it was sealed to a key epoch you do not hold, or to another category, or the blob was "
        "altered. Ask the patient for a current key envelope."
    )


def unseal_record_key(
    header: RecordHeader | LegacyRecordHeader, category_keys: CategoryKeys, *, category: int | None = None
) -> bytes:
    """The record key of a blob. Format 2: the held keys of ``category`` are tried, newest epoch
    first; format 1: the key of the category and epoch the header names.

    Raises KeyNotFound if no key is given for the category (format 1: for its epoch),
    DecryptionError if none of the keys opens the sealed record key.
    """
    if isinstance(header, LegacyRecordHeader):
        return unseal_legacy_record_key(header, category_keys)
    return _trial_open(header, category_keys, category, "this record")[0]


def open_record_blob(
    stream: ReadableStream,
    category_keys: CategoryKeys,
    *,
    expected_record_id: bytes | str | None = None,
    expected_patient: bytes | str | None = None,
    expected_fingerprint: bytes | None = None,
    category: int | None = None,
) -> PullStream:
    """Open a record blob for reading; iterate the result for the plaintext chunks.

    Pass the record id, patient, category and fingerprint registered on chain: a format 2 blob
    opens only with the right record id, patient and category (they are its associated data, so
    they are required), and the decrypted content is checked against the fingerprint. Without
    ``expected_fingerprint`` only integrity (not origin) of the ciphertext is established. The
    result has ``record_key`` and ``key_epoch`` (the epoch of the category key that opened it).
    """
    header, rest = parse_record_header(
        stream, expected_record_id=expected_record_id, expected_patient=expected_patient
    )
    if isinstance(header, LegacyRecordHeader):
        return open_legacy_blob(header, rest, category_keys, expected_fingerprint)
    if expected_record_id is None or expected_patient is None or category is None:
        raise CryptoError(
            "a format 2 record blob does not name its record, patient or category: pass "
            "expected_record_id, expected_patient and category (the values registered on chain)"
        )
    record_id = record_id_bytes(expected_record_id)
    record_key, epoch = _trial_open(header, category_keys, category, f"record 0x{record_id.hex()}")
    decryptor = PaddedDecryptor(
        record_key, record_id, blob_ad(header, record_id, expected_patient, category), header.stream_header, rest,
        chunk_size=header.chunk_size, expected_fingerprint=expected_fingerprint,
    )
    decryptor.key_epoch = epoch
    return decryptor


def open_record_blob_into(
    stream: ReadableStream,
    out: WritableStream,
    category_keys: CategoryKeys,
    *,
    expected_record_id: bytes | str | None = None,
    expected_patient: bytes | str | None = None,
    expected_fingerprint: bytes | None = None,
    category: int | None = None,
) -> PullStream:
    """Decrypt a record blob into the binary file object ``out``; return the finished decryptor.

    On an exception ``out`` may hold a partial, unverified prefix of the plaintext: discard it.
    """
    decryptor = open_record_blob(
        stream, category_keys, expected_record_id=expected_record_id, expected_patient=expected_patient,
        expected_fingerprint=expected_fingerprint, category=category,
    )
    for chunk in decryptor:
        out.write(chunk)
    return decryptor
