"""The record blob: what goes to IPFS for every record (header, sealed record key, ciphertext)."""

from __future__ import annotations

import base64
import binascii
import json
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Union, cast

from medledger.errors import CryptoError, DecryptionError, KeyNotFound, RecordFormatError, TamperingDetected

from ._shapes import (
    CHUNK_SIZE,
    KEY_BYTES,
    MAX_CATEGORY,
    MAX_CHUNK_SIZE,
    MAX_EPOCH,
    SEAL_OVERHEAD,
    STREAM_HEADER_BYTES,
    ReadableStream,
    WritableStream,
    check_code,
    check_key,
    checksum,
    read_exact,
    record_id_bytes,
)
from .primitives import KeyPair, new_record_key, seal, secret_of, unseal
from .stream import RecordDecryptor, RecordEncryptor

BLOB_MAGIC = b"MLR1"
BLOB_FORMAT_VERSION = 1
BLOB_CIPHER = "xchacha20poly1305-secretstream"
MAX_HEADER_BYTES = 64 * 1024
_LENGTH = struct.Struct(">I")


_HEADER_FIELDS = frozenset({
    "format", "cipher", "record_id", "patient", "category", "key_epoch",
    "sealed_record_key", "stream_header", "chunk_size",
})


@dataclass(frozen=True)
class RecordHeader:
    """The clear-text header of a record blob. It holds no personal data.

    On the wire a blob is::

        b"MLR1"                       4 bytes, magic
        header length                 4 bytes, unsigned big-endian
        header                        UTF-8 JSON object, keys sorted, no whitespace:
            format              1
            cipher              "xchacha20poly1305-secretstream"
            record_id           "0x" + 64 hex digits
            patient             checksummed address
            category            int, category code
            key_epoch           int, epoch of the category key the record key is sealed to
            sealed_record_key   base64, record key sealed to the category public key (80 bytes)
            stream_header       base64, secretstream header (24 bytes)
            chunk_size          int, plaintext bytes per chunk (65536)
        ciphertext                    secretstream chunks of chunk_size + 17 bytes, the last shorter
                                      and tagged FINAL; AD = "medledger/record/v1" || id || patient
    """

    record_id: bytes
    patient: str
    category: int
    key_epoch: int
    sealed_record_key: bytes = field(repr=False)
    stream_header: bytes = field(repr=False)
    chunk_size: int = CHUNK_SIZE
    format: int = BLOB_FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        """The header as the JSON object written to the blob."""
        return {
            "format": self.format,
            "cipher": BLOB_CIPHER,
            "record_id": "0x" + self.record_id.hex(),
            "patient": self.patient,
            "category": self.category,
            "key_epoch": self.key_epoch,
            "sealed_record_key": base64.b64encode(self.sealed_record_key).decode("ascii"),
            "stream_header": base64.b64encode(self.stream_header).decode("ascii"),
            "chunk_size": self.chunk_size,
        }

    def encode(self) -> bytes:
        """Magic, length prefix and JSON: the bytes that precede the ciphertext."""
        body = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode("utf-8")
        return BLOB_MAGIC + _LENGTH.pack(len(body)) + body


class RecordBlobWriter:
    """Produce a record blob: iterate it to get the header bytes, then the ciphertext chunks.

    A fresh record key is drawn (unless ``record_key`` is given) and sealed to
    ``category_public_key``. ``record_key`` and ``header`` are available at once;
    ``fingerprint`` and ``plaintext_size`` once the iteration is exhausted.
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
        self.record_key: bytes = new_record_key() if record_key is None else check_key(record_key)
        self._encryptor = RecordEncryptor(self.record_key, record_id, patient, plaintext, chunk_size=chunk_size)
        self.header = RecordHeader(
            record_id=record_id_bytes(record_id),
            patient=checksum(patient),
            category=check_code(int(category), "category", MAX_CATEGORY),
            key_epoch=check_code(int(epoch), "key epoch", MAX_EPOCH),
            sealed_record_key=seal(category_public_key, self.record_key),
            stream_header=self._encryptor.header,
            chunk_size=chunk_size,
        )

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


def _b64(value: object, name: str) -> bytes:
    if not isinstance(value, str):
        raise TamperingDetected(f"record blob header field {name!r} is not a base64 string; the blob was altered")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise TamperingDetected(f"record blob header field {name!r} is not valid base64; the blob was altered") from None


def _header_from_json(obj: object) -> RecordHeader:
    def bad(what: str) -> TamperingDetected:
        return TamperingDetected(f"record blob header is malformed ({what}); the blob was altered or corrupted")

    if not isinstance(obj, dict):
        raise bad("not a JSON object")
    if obj.get("format") != BLOB_FORMAT_VERSION:
        version = obj.get("format")
        if isinstance(version, int) and not isinstance(version, bool) and version > BLOB_FORMAT_VERSION:
            raise RecordFormatError(
                f"record blob format {version} is newer than this medledger understands "
                f"(format {BLOB_FORMAT_VERSION}); upgrade medledger to read it"
            )
        raise bad("missing or invalid 'format'")
    missing = sorted(_HEADER_FIELDS - obj.keys())
    if missing:
        raise bad(f"missing fields: {', '.join(missing)}")
    extra = sorted(obj.keys() - _HEADER_FIELDS)
    if extra:
        raise bad(f"unexpected fields: {', '.join(extra)}")
    if obj["cipher"] != BLOB_CIPHER:
        raise bad("unknown cipher")
    try:
        if not isinstance(obj["record_id"], str):
            raise CryptoError("not a string")
        record_id = record_id_bytes(obj["record_id"])
    except CryptoError:
        raise bad("'record_id' is not 32 bytes of hex") from None
    try:
        if not isinstance(obj["patient"], str):
            raise CryptoError("not a string")
        patient = checksum(obj["patient"])
    except CryptoError:
        raise bad("'patient' is not an address") from None
    for name, maximum in (("category", MAX_CATEGORY), ("key_epoch", MAX_EPOCH), ("chunk_size", MAX_CHUNK_SIZE)):
        value = obj[name]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
            raise bad(f"{name!r} is not an integer between 0 and {maximum}")
    if obj["chunk_size"] < 1:
        raise bad("'chunk_size' is zero")
    sealed = _b64(obj["sealed_record_key"], "sealed_record_key")
    if len(sealed) != KEY_BYTES + SEAL_OVERHEAD:
        raise bad(f"'sealed_record_key' is {len(sealed)} bytes instead of {KEY_BYTES + SEAL_OVERHEAD}")
    stream_header = _b64(obj["stream_header"], "stream_header")
    if len(stream_header) != STREAM_HEADER_BYTES:
        raise bad(f"'stream_header' is {len(stream_header)} bytes instead of {STREAM_HEADER_BYTES}")
    return RecordHeader(
        record_id=record_id, patient=patient, category=obj["category"], key_epoch=obj["key_epoch"],
        sealed_record_key=sealed, stream_header=stream_header, chunk_size=obj["chunk_size"],
    )


def parse_record_header(
    stream: ReadableStream,
    *,
    expected_record_id: bytes | str | None = None,
    expected_patient: bytes | str | None = None,
) -> tuple[RecordHeader, ReadableStream]:
    """Read the header of a record blob; return it and the stream, positioned at the ciphertext.

    Raises RecordFormatError if the stream is not a medledger blob (bad magic) or is of a newer
    format, TamperingDetected if the header is malformed or names another record or patient
    than expected.
    """
    magic = read_exact(stream, len(BLOB_MAGIC))
    if magic != BLOB_MAGIC:
        raise RecordFormatError(
            "not a medledger record blob (the first bytes are not the 'MLR1' magic); check the CID"
        )
    prefix = read_exact(stream, _LENGTH.size)
    if len(prefix) != _LENGTH.size:
        raise TamperingDetected("record blob is truncated inside its header length")
    (length,) = _LENGTH.unpack(prefix)
    if length > MAX_HEADER_BYTES:
        raise TamperingDetected(
            f"record blob header claims {length} bytes, more than the {MAX_HEADER_BYTES}-byte limit; "
            "the blob was altered"
        )
    body = read_exact(stream, length)
    if len(body) != length:
        raise TamperingDetected("record blob is truncated inside its header")
    try:
        obj = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise TamperingDetected("record blob header is not valid UTF-8 JSON; the blob was altered") from None
    header = _header_from_json(obj)
    if expected_record_id is not None and header.record_id != record_id_bytes(expected_record_id):
        raise TamperingDetected(
            f"record blob belongs to record 0x{header.record_id.hex()}, not the expected "
            f"0x{record_id_bytes(expected_record_id).hex()}: the CID does not point to this record's blob"
        )
    if expected_patient is not None and header.patient != checksum(expected_patient):
        raise TamperingDetected(
            f"record blob 0x{header.record_id.hex()} names patient {header.patient}, not the expected "
            f"{checksum(expected_patient)}"
        )
    return header, stream


CategoryKeys = Union[
    bytes,
    KeyPair,
    Mapping[int, Union[bytes, KeyPair]],
    Mapping[int, Mapping[int, Union[bytes, KeyPair]]],
]
"""Category secret keys: one secret, a map ``epoch -> secret``, or ``category -> epoch -> secret``
(the shape of an opened key envelope's ``keys``)."""


def _select_key(header: RecordHeader, keys: CategoryKeys) -> bytes:
    def missing() -> KeyNotFound:
        return KeyNotFound(
            f"no key for category {header.category} epoch {header.key_epoch} to open record "
            f"0x{header.record_id.hex()}; ask the patient ({header.patient}) for a key envelope "
            "that includes this category and epoch"
        )

    if isinstance(keys, (bytes, bytearray, memoryview, KeyPair)):
        return secret_of(keys)
    if not isinstance(keys, Mapping):
        raise CryptoError("category keys must be a secret key, a KeyPair or a mapping of epochs to keys")
    values = list(keys.values())
    by_epoch: Mapping[int, bytes | KeyPair] | None
    if values and all(isinstance(v, Mapping) for v in values):
        # every value is a mapping: the ``category -> epoch -> secret`` shape
        by_epoch = cast("Mapping[int, Mapping[int, bytes | KeyPair]]", keys).get(header.category)
        if by_epoch is None:
            raise missing()
    else:
        # otherwise the flat ``epoch -> secret`` shape (its values are checked by _secret_of)
        by_epoch = cast("Mapping[int, bytes | KeyPair]", keys)
    key = by_epoch.get(header.key_epoch)
    if key is None:
        raise missing()
    return secret_of(key)


def unseal_record_key(header: RecordHeader, category_keys: CategoryKeys) -> bytes:
    """The record key of a blob, unsealed with the category key of the header's epoch.

    Raises KeyNotFound if no key for that epoch is given, DecryptionError if the key cannot
    open the sealed record key.
    """
    secret = _select_key(header, category_keys)
    try:
        record_key = unseal(secret, header.sealed_record_key)
    except DecryptionError:
        raise DecryptionError(
            f"the category key at hand cannot open the record key of record 0x{header.record_id.hex()} "
            f"(category {header.category}, epoch {header.key_epoch}): it is a key of another category "
            "or epoch, or the header was altered. Ask the patient for a current key envelope."
        ) from None
    if len(record_key) != KEY_BYTES:
        raise TamperingDetected(
            f"record 0x{header.record_id.hex()}: the sealed record key holds {len(record_key)} bytes "
            f"instead of {KEY_BYTES}"
        )
    return record_key


def open_record_blob(
    stream: ReadableStream,
    category_keys: CategoryKeys,
    *,
    expected_record_id: bytes | str | None = None,
    expected_patient: bytes | str | None = None,
    expected_fingerprint: bytes | None = None,
) -> RecordDecryptor:
    """Open a record blob for reading; iterate the result for the plaintext chunks.

    Pass the record id, patient and fingerprint committed on chain: the header is checked against
    the first two, and the decrypted content against the fingerprint. Without
    ``expected_fingerprint`` only integrity (not origin) of the ciphertext is established.
    """
    header, rest = parse_record_header(
        stream, expected_record_id=expected_record_id, expected_patient=expected_patient
    )
    record_key = unseal_record_key(header, category_keys)
    return RecordDecryptor(
        record_key, header.record_id, header.patient, header.stream_header, rest,
        chunk_size=header.chunk_size, expected_fingerprint=expected_fingerprint,
    )


def open_record_blob_into(
    stream: ReadableStream,
    out: WritableStream,
    category_keys: CategoryKeys,
    *,
    expected_record_id: bytes | str | None = None,
    expected_patient: bytes | str | None = None,
    expected_fingerprint: bytes | None = None,
) -> RecordDecryptor:
    """Decrypt a record blob into the binary file object ``out``; return the finished decryptor.

    On an exception ``out`` may hold a partial, unverified prefix of the plaintext: discard it.
    """
    decryptor = open_record_blob(
        stream, category_keys, expected_record_id=expected_record_id,
        expected_patient=expected_patient, expected_fingerprint=expected_fingerprint,
    )
    for chunk in decryptor:
        out.write(chunk)
    return decryptor

