"""Format 1 record blobs (read only): ``MLR1`` + a length-prefixed JSON header that names the
record, the patient, the category and the key epoch in clear, then the secretstream ciphertext
with associated data ``"medledger/record/v1" || record id || patient`` (:func:`record_ad`).

medledger writes format 2 (:mod:`.blob`). Blobs written before it stay readable here; their CID on
chain fixes their bytes, so a format 1 blob cannot be substituted for a format 2 one.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from dataclasses import dataclass, field
from typing import Any

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
    checksum,
    read_exact,
    record_id_bytes,
)
from .category_keys import CategoryKeys, for_epoch
from .primitives import unseal
from .stream import RecordDecryptor

LEGACY_MAGIC = b"MLR1"
LEGACY_FORMAT_VERSION = 1
LEGACY_CIPHER = "xchacha20poly1305-secretstream"
MAX_HEADER_BYTES = 64 * 1024
_LENGTH = struct.Struct(">I")


_HEADER_FIELDS = frozenset({
    "format", "cipher", "record_id", "patient", "category", "key_epoch",
    "sealed_record_key", "stream_header", "chunk_size",
})


@dataclass(frozen=True)
class LegacyRecordHeader:
    """The clear-text header of a format 1 record blob (read only: medledger writes format 2).

    It names the record, the patient, the category and the key epoch in clear, which is why
    format 2 replaced it.

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
    format: int = LEGACY_FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        """The header as the JSON object written to the blob."""
        return {
            "format": self.format,
            "cipher": LEGACY_CIPHER,
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
        return LEGACY_MAGIC + _LENGTH.pack(len(body)) + body


def _b64(value: object, name: str) -> bytes:
    if not isinstance(value, str):
        raise TamperingDetected(f"record blob header field {name!r} is not a base64 string; the blob was altered")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise TamperingDetected(f"record blob header field {name!r} is not valid base64; the blob was altered") from None


def _header_from_json(obj: object) -> LegacyRecordHeader:
    def bad(what: str) -> TamperingDetected:
        return TamperingDetected(f"record blob header is malformed ({what}); the blob was altered or corrupted")

    if not isinstance(obj, dict):
        raise bad("not a JSON object")
    if obj.get("format") != LEGACY_FORMAT_VERSION:
        version = obj.get("format")
        if isinstance(version, int) and not isinstance(version, bool) and version > LEGACY_FORMAT_VERSION:
            raise RecordFormatError(
                f"record blob format {version} (in a format 1 container) is not one this medledger "
                "understands; upgrade medledger to read it"
            )
        raise bad("missing or invalid 'format'")
    missing = sorted(_HEADER_FIELDS - obj.keys())
    if missing:
        raise bad(f"missing fields: {', '.join(missing)}")
    extra = sorted(obj.keys() - _HEADER_FIELDS)
    if extra:
        raise bad(f"unexpected fields: {', '.join(extra)}")
    if obj["cipher"] != LEGACY_CIPHER:
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
    return LegacyRecordHeader(
        record_id=record_id, patient=patient, category=obj["category"], key_epoch=obj["key_epoch"],
        sealed_record_key=sealed, stream_header=stream_header, chunk_size=obj["chunk_size"],
    )


def parse_legacy_header(
    stream: ReadableStream,
    *,
    expected_record_id: bytes | str | None = None,
    expected_patient: bytes | str | None = None,
) -> LegacyRecordHeader:
    """The JSON header of a format 1 blob whose magic was already read; checked against the
    expected record and patient."""
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
    return header




def unseal_legacy_record_key(header: LegacyRecordHeader, category_keys: CategoryKeys) -> bytes:
    """The record key of a format 1 blob, unsealed with the category key of the epoch it names."""
    missing = KeyNotFound(
        f"no key for category {header.category} epoch {header.key_epoch} to open record "
        f"0x{header.record_id.hex()}; ask the patient ({header.patient}) for a key envelope "
        "that includes this category and epoch"
    )
    secret = for_epoch(category_keys, header.category, header.key_epoch, missing)
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


def open_legacy_blob(
    header: LegacyRecordHeader,
    rest: ReadableStream,
    category_keys: CategoryKeys,
    expected_fingerprint: bytes | None,
) -> RecordDecryptor:
    """The decryptor of a format 1 blob whose header was parsed."""
    decryptor = RecordDecryptor(
        unseal_legacy_record_key(header, category_keys), header.record_id, header.patient,
        header.stream_header, rest, chunk_size=header.chunk_size, expected_fingerprint=expected_fingerprint,
    )
    decryptor.key_epoch = header.key_epoch
    return decryptor
