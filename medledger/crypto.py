"""Encryption, fingerprints, Merkle batches and the record blob format.

Everything medledger stores off chain is encrypted here:

* **Key pairs** are X25519 (PyNaCl). A participant has one for receiving sealed data; a patient has
  one per record category and key epoch ("category keys").
* **Sealed boxes** (:func:`seal` / :func:`unseal`) carry small secrets to a public key: the record
  key sealed to its category key, and key envelopes sealed to a grantee.
* **Records** are encrypted with libsodium's secretstream XChaCha20-Poly1305 under a fresh random
  32-byte record key, in 64 KiB plaintext chunks. Every chunk is authenticated with the associated
  data ``b"medledger/record/v1" + record_id (32 bytes) + patient address (20 bytes)``, so a
  ciphertext cannot be replayed under another record or patient; the last chunk carries
  ``TAG_FINAL``, so truncation and appended data are detected. Encryption and decryption stream:
  memory stays flat whatever the record size.
* **Fingerprints** are keyed, so nobody without the record key can confirm a guess of the content:
  ``HMAC-SHA256(HKDF-SHA256(record_key, info=b"medledger/fingerprint/v1"), plaintext)``.
* **Batches** of readings are committed on chain as the root of an OpenZeppelin-compatible Merkle
  tree (sorted-pair keccak256, double-hashed leaves).
* **Blobs** (what goes to IPFS) are ``MLR1`` + a length-prefixed JSON header of non-personal fields
  + the secretstream ciphertext; see :class:`RecordHeader`.
* **Key envelopes** deliver category secret keys from a patient to a grantee, a delegate or herself.

Error policy: a key, id or address of the wrong shape raises :class:`~medledger.errors.CryptoError`;
a key that cannot open a sealed box raises :class:`~medledger.errors.DecryptionError`; anything that
shows the data was altered (authentication failure, wrong record binding, truncation, appended data,
fingerprint mismatch, malformed header) raises :class:`~medledger.errors.TamperingDetected`.
Messages name the failed check and the ids involved, never the data.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import json
import math
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict, Union, cast

import nacl.bindings as sodium
import nacl.exceptions
import nacl.utils
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_utils import is_address, keccak, to_checksum_address
from nacl.public import PrivateKey, PublicKey, SealedBox

from medledger.errors import (
    CryptoError,
    DecryptionError,
    KeyNotFound,
    RecordFormatError,
    TamperingDetected,
)

__all__ = [
    "ABYTES",
    "BLOB_FORMAT_VERSION",
    "BLOB_MAGIC",
    "CHUNK_SIZE",
    "KEY_BYTES",
    "EnvelopeContents",
    "KeyPair",
    "RecordBlobWriter",
    "RecordDecryptor",
    "RecordEncryptor",
    "RecordHeader",
    "batch_leaf",
    "ciphertext_size",
    "decrypt_bytes",
    "encrypt_bytes",
    "fingerprint_key",
    "fingerprint_of",
    "generate_keypair",
    "leaf_fingerprint",
    "make_envelope",
    "merkle_proof",
    "merkle_proofs",
    "merkle_root",
    "new_record_key",
    "open_envelope",
    "open_record_blob",
    "open_record_blob_into",
    "parse_record_header",
    "public_from_secret",
    "record_ad",
    "seal",
    "unseal",
    "unseal_record_key",
    "verify_merkle_proof",
    "write_record_blob",
]

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
_TAG_MESSAGE: int = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
_TAG_FINAL: int = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL
#: Minimum length of a sealed box (ephemeral public key + MAC).
SEAL_OVERHEAD = 48

RECORD_AD_PREFIX = b"medledger/record/v1"
FINGERPRINT_INFO = b"medledger/fingerprint/v1"
LEAF_FINGERPRINT_INFO = b"medledger/leaf-fingerprint/v1"

BLOB_MAGIC = b"MLR1"
BLOB_FORMAT_VERSION = 1
BLOB_CIPHER = "xchacha20poly1305-secretstream"
MAX_HEADER_BYTES = 64 * 1024
_LENGTH = struct.Struct(">I")

ENVELOPE_FORMAT = "medledger/envelope/v1"

#: Category codes and key epochs must fit the contracts' types (uint16 mask bit, uint64 epoch).
_MAX_CATEGORY = 15
_MAX_EPOCH = 2**64 - 1


class ReadableStream(Protocol):
    """Anything with a binary ``read(n)``: an open file, ``io.BytesIO``, an HTTP response."""

    def read(self, size: int = -1, /) -> bytes: ...


class WritableStream(Protocol):
    """Anything with a binary ``write``: an open file, ``io.BytesIO``."""

    def write(self, data: bytes, /) -> object: ...


BytesLike = Union[bytes, bytearray, memoryview]


# --- shape checks --------------------------------------------------------------------------------
def _as_bytes(value: object, what: str) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise CryptoError(f"{what} must be bytes, not {type(value).__name__}")


def _check_len(value: object, length: int, what: str) -> bytes:
    data = _as_bytes(value, what)
    if len(data) != length:
        raise CryptoError(f"{what} must be {length} bytes, got {len(data)}")
    return data


def _check_key(key: object, what: str = "record key") -> bytes:
    return _check_len(key, KEY_BYTES, what)


def _record_id_bytes(record_id: bytes | str) -> bytes:
    """Accept a 32-byte record id as bytes or as a (0x-prefixed) hex string."""
    if isinstance(record_id, str):
        text = record_id[2:] if record_id[:2].lower() == "0x" else record_id
        try:
            record_id = bytes.fromhex(text)
        except ValueError:
            raise CryptoError("record id must be 32 bytes or 64 hex digits") from None
    return _check_len(record_id, RECORD_ID_BYTES, "record id")


def _address_bytes(patient: bytes | str) -> bytes:
    """Accept a 20-byte address as bytes or as a hex string (any case)."""
    if isinstance(patient, str):
        if not is_address(patient):
            raise CryptoError(f"{patient!r} is not an Ethereum address (0x + 40 hex digits)")
        return bytes.fromhex(patient[2:] if patient[:2].lower() == "0x" else patient)
    return _check_len(patient, ADDRESS_BYTES, "patient address")


def _checksum(patient: bytes | str) -> str:
    return to_checksum_address(_address_bytes(patient))


def _check_chunk_size(chunk_size: int) -> int:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int):
        raise CryptoError("chunk size must be an integer")
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise CryptoError(f"chunk size must be between 1 and {MAX_CHUNK_SIZE} bytes, got {chunk_size}")
    return chunk_size


def _read_exact(stream: ReadableStream, size: int) -> bytes:
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


def record_ad(record_id: bytes | str, patient: bytes | str) -> bytes:
    """The associated data authenticated with every chunk of a record."""
    return RECORD_AD_PREFIX + _record_id_bytes(record_id) + _address_bytes(patient)


def new_record_key() -> bytes:
    """A fresh random 32-byte record key."""
    return nacl.utils.random(KEY_BYTES)


def ciphertext_size(plaintext_size: int, chunk_size: int = CHUNK_SIZE) -> int:
    """Bytes of secretstream ciphertext (without the stream header) for a plaintext of this size."""
    chunks = max(1, math.ceil(plaintext_size / _check_chunk_size(chunk_size)))
    return plaintext_size + chunks * ABYTES


# --- key pairs and sealed boxes ------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class KeyPair:
    """An X25519 key pair. ``repr`` shows only the public key."""

    secret: bytes
    public: bytes

    def __repr__(self) -> str:
        return f"KeyPair(public=0x{self.public.hex()})"

    def __post_init__(self) -> None:
        secret = _check_key(self.secret, "X25519 secret key")
        public = _check_key(self.public, "X25519 public key")
        if public_from_secret(secret) != public:
            raise CryptoError("the X25519 public key does not belong to the secret key")
        object.__setattr__(self, "secret", secret)
        object.__setattr__(self, "public", public)

    @classmethod
    def from_secret(cls, secret: bytes) -> KeyPair:
        """Rebuild a key pair from its 32-byte secret."""
        return cls(secret=bytes(secret), public=public_from_secret(secret))


def generate_keypair() -> KeyPair:
    """A new random X25519 key pair."""
    private = PrivateKey.generate()
    return KeyPair(secret=bytes(private), public=bytes(private.public_key))


def public_from_secret(secret: bytes) -> bytes:
    """The X25519 public key of a 32-byte secret key."""
    return bytes(PrivateKey(_check_key(secret, "X25519 secret key")).public_key)


def _secret_of(keypair_or_secret: KeyPair | bytes) -> bytes:
    if isinstance(keypair_or_secret, KeyPair):
        return keypair_or_secret.secret
    return _check_key(keypair_or_secret, "X25519 secret key")


def seal(public_key: bytes, data: bytes) -> bytes:
    """Encrypt ``data`` so that only the holder of the matching secret key can read it.

    Anonymous sealed box: 48 bytes longer than ``data``; the sender cannot open it afterwards.
    """
    box = SealedBox(PublicKey(_check_key(public_key, "X25519 public key")))
    return bytes(box.encrypt(_as_bytes(data, "data to seal")))


def unseal(keypair_or_secret: KeyPair | bytes, sealed: bytes) -> bytes:
    """Open a sealed box. Raises DecryptionError if this key cannot open it."""
    box = SealedBox(PrivateKey(_secret_of(keypair_or_secret)))
    sealed = _as_bytes(sealed, "sealed box")
    if len(sealed) < SEAL_OVERHEAD:
        raise DecryptionError(
            f"sealed box is {len(sealed)} bytes, shorter than the {SEAL_OVERHEAD}-byte minimum: "
            "it is truncated or not a sealed box"
        )
    try:
        return bytes(box.decrypt(sealed))
    except nacl.exceptions.CryptoError:
        raise DecryptionError(
            "this key cannot open the sealed box: it was sealed to another public key "
            "(or altered). Check that you are using the intended recipient's key."
        ) from None


# --- fingerprints --------------------------------------------------------------------------------
def _hkdf(record_key: bytes, info: bytes) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info)
    return hkdf.derive(_check_key(record_key))


def fingerprint_key(record_key: bytes) -> bytes:
    """``HKDF-SHA256(record_key, info=b"medledger/fingerprint/v1")``: the key of the fingerprint."""
    return _hkdf(record_key, FINGERPRINT_INFO)


def fingerprint_of(record_key: bytes, data: BytesLike | ReadableStream, *, chunk_size: int = CHUNK_SIZE) -> bytes:
    """The keyed fingerprint ``HMAC-SHA256(fingerprint_key(record_key), plaintext)``.

    ``data`` is bytes or a binary stream (read to its end in chunks).
    """
    mac = hmac.new(fingerprint_key(record_key), digestmod=hashlib.sha256)
    if isinstance(data, (bytes, bytearray, memoryview)):
        mac.update(data)
    else:
        _check_chunk_size(chunk_size)
        while chunk := data.read(chunk_size):
            mac.update(chunk)
    return mac.digest()


def leaf_fingerprint(record_key: bytes, reading_id: bytes | str, data: bytes) -> bytes:
    """Fingerprint of one reading in a batch: ``HMAC-SHA256(k, reading_id || data)``.

    ``k = HKDF-SHA256(record_key, info=b"medledger/leaf-fingerprint/v1")``, a key separate from
    the whole-record fingerprint key so the two kinds of fingerprint can never be confused.
    """
    rid = _record_id_bytes(reading_id)
    key = _hkdf(record_key, LEAF_FINGERPRINT_INFO)
    return hmac.new(key, rid + _as_bytes(data, "reading data"), hashlib.sha256).digest()


# --- Merkle batches (OpenZeppelin MerkleProof compatible) -----------------------------------------
def batch_leaf(reading_id: bytes | str, fingerprint: bytes) -> bytes:
    """Leaf of a batch tree: ``keccak256(keccak256(abi.encode(bytes32 readingId, bytes32 fp)))``."""
    encoded = _record_id_bytes(reading_id) + _check_len(fingerprint, FINGERPRINT_BYTES, "fingerprint")
    return keccak(keccak(encoded))


def _hash_pair(a: bytes, b: bytes) -> bytes:
    """OpenZeppelin ``Hashes.commutativeKeccak256``: hash the pair in sorted order."""
    return keccak(a + b) if a < b else keccak(b + a)


def _levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    if not leaves:
        raise CryptoError("a Merkle tree needs at least one leaf")
    level = [_check_len(leaf, 32, f"Merkle leaf {i}") for i, leaf in enumerate(leaves)]
    levels = [level]
    while len(level) > 1:
        nxt = [_hash_pair(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])  # odd node: promoted unchanged to the next level
        levels.append(nxt)
        level = nxt
    return levels


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """Root of the tree over ``leaves`` (32-byte hashes, kept in the given order)."""
    return _levels(leaves)[-1][0]


def _proof_from_levels(levels: list[list[bytes]], index: int) -> list[bytes]:
    proof: list[bytes] = []
    for level in levels[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        index //= 2
    return proof


def merkle_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """Proof for ``leaves[index]``, accepted by OpenZeppelin ``MerkleProof.verify``."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf index {index} is out of range for {len(leaves)} leaves")
    return _proof_from_levels(_levels(leaves), index)


def merkle_proofs(leaves: Sequence[bytes]) -> list[list[bytes]]:
    """Proofs for every leaf, in leaf order (builds the tree once)."""
    levels = _levels(leaves)
    return [_proof_from_levels(levels, i) for i in range(len(leaves))]


def verify_merkle_proof(root: bytes, leaf: bytes, proof: Sequence[bytes]) -> bool:
    """Same computation as OpenZeppelin ``MerkleProof.verify`` (processProof, sorted pairs)."""
    computed = bytes(leaf)
    for node in proof:
        computed = _hash_pair(computed, bytes(node))
    return hmac.compare_digest(computed, bytes(root))


# --- streaming record encryption -----------------------------------------------------------------
class _RecordStream:
    """What the encryptor and decryptor share: the plaintext size so far and, at the end, the
    keyed fingerprint of the plaintext."""

    _size: int
    _fingerprint: bytes | None
    _whole = "stream was processed"  # how each subclass says "the whole input went through"

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


class RecordEncryptor(_RecordStream):
    """Encrypt a plaintext stream chunk by chunk; iterate it to get the ciphertext.

    ``header`` (the 24-byte secretstream header) is available at once and must be stored with the
    ciphertext. After the iteration is exhausted, ``fingerprint`` and ``plaintext_size`` describe
    the plaintext. At most two plaintext chunks are held in memory at a time. An encryptor can be
    iterated once.
    """

    _whole = "input was encrypted"

    def __init__(
        self,
        record_key: bytes,
        record_id: bytes | str,
        patient: bytes | str,
        source: ReadableStream,
        *,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        key = _check_key(record_key)
        self._ad = record_ad(record_id, patient)
        self._chunk_size = _check_chunk_size(chunk_size)
        self._source = source
        self._state = sodium.crypto_secretstream_xchacha20poly1305_state()
        self.header: bytes = sodium.crypto_secretstream_xchacha20poly1305_init_push(self._state, key)
        self._mac = hmac.new(fingerprint_key(key), digestmod=hashlib.sha256)
        self._size = 0
        self._started = False
        self._fingerprint: bytes | None = None

    def __iter__(self) -> Iterator[bytes]:
        if self._started:
            raise CryptoError("this encryptor was already iterated; create a new one to encrypt again")
        self._started = True
        return self._chunks()

    def _chunks(self) -> Iterator[bytes]:
        size = self._chunk_size
        chunk = _read_exact(self._source, size)
        while True:
            following = _read_exact(self._source, size) if len(chunk) == size else b""
            tag = _TAG_FINAL if not following else _TAG_MESSAGE
            self._mac.update(chunk)
            self._size += len(chunk)
            yield sodium.crypto_secretstream_xchacha20poly1305_push(self._state, chunk, self._ad, tag)
            if tag == _TAG_FINAL:
                self._fingerprint = self._mac.digest()
                return
            chunk = following



class RecordDecryptor(_RecordStream):
    """Decrypt a secretstream ciphertext stream; iterate it to get the plaintext chunks.

    Each chunk is authenticated before it is yielded. Truncation (no final chunk), data after the
    final chunk and, when ``expected_fingerprint`` is given, a fingerprint mismatch are detected
    before the last plaintext chunk is yielded. Earlier chunks have been yielded by then, so treat
    the output as untrusted until the iteration ends without an exception (write to a temporary
    file and keep it only on success).
    """

    _whole = "ciphertext was decrypted"

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
        key = _check_key(record_key)
        self._record_id = _record_id_bytes(record_id)
        self._ad = record_ad(self._record_id, patient)
        self._chunk_size = _check_chunk_size(chunk_size)
        self._source = source
        self._expected = (
            None if expected_fingerprint is None
            else _check_len(expected_fingerprint, FINGERPRINT_BYTES, "expected fingerprint")
        )
        header = _as_bytes(stream_header, "stream header")
        if len(header) != STREAM_HEADER_BYTES:
            raise TamperingDetected(
                f"record 0x{self._record_id.hex()}: the stream header is {len(header)} bytes instead "
                f"of {STREAM_HEADER_BYTES}; the blob was altered or truncated"
            )
        self._state = sodium.crypto_secretstream_xchacha20poly1305_state()
        sodium.crypto_secretstream_xchacha20poly1305_init_pull(self._state, header, key)
        self._mac = hmac.new(fingerprint_key(key), digestmod=hashlib.sha256)
        self._size = 0
        self._started = False
        self._fingerprint: bytes | None = None

    def _tampered(self, check: str) -> TamperingDetected:
        return TamperingDetected(f"record 0x{self._record_id.hex()}: {check}")

    def __iter__(self) -> Iterator[bytes]:
        if self._started:
            raise CryptoError("this decryptor was already iterated; create a new one to decrypt again")
        self._started = True
        return self._chunks()

    def _chunks(self) -> Iterator[bytes]:
        index = 0
        while True:
            chunk = _read_exact(self._source, self._chunk_size + ABYTES)
            if len(chunk) < ABYTES:
                raise self._tampered(
                    f"truncated: the ciphertext ends after {index} chunk(s) without the final chunk"
                )
            try:
                plain, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(self._state, chunk, self._ad)
            except nacl.exceptions.CryptoError:
                ending = (
                    " (the stream ends inside this chunk, so it may also have been cut or extended)"
                    if len(chunk) < self._chunk_size + ABYTES else ""
                )
                raise self._tampered(
                    f"authentication failed on chunk {index}{ending}: the ciphertext was altered, or "
                    "it belongs to another record id or patient, or the record key is wrong"
                ) from None
            self._mac.update(plain)
            self._size += len(plain)
            if tag == _TAG_FINAL:
                if self._source.read(1):
                    raise self._tampered(f"extra data follows the final chunk (chunk {index})")
                digest = self._mac.digest()
                if self._expected is not None and not hmac.compare_digest(digest, self._expected):
                    raise self._tampered(
                        "fingerprint mismatch: the decrypted content differs from the content "
                        "whose fingerprint was committed"
                    )
                self._fingerprint = digest
                yield plain
                return
            if tag != _TAG_MESSAGE:
                raise self._tampered(f"unexpected secretstream tag {tag} on chunk {index}")
            yield plain
            index += 1

    @property
    def verified(self) -> bool:
        """True once finished and an expected fingerprint was given and matched."""
        return self.finished and self._expected is not None



def encrypt_bytes(
    record_key: bytes,
    record_id: bytes | str,
    patient: bytes | str,
    data: bytes,
    *,
    chunk_size: int = CHUNK_SIZE,
) -> bytes:
    """Encrypt a small payload: returns ``stream header (24 bytes) || ciphertext``."""
    encryptor = RecordEncryptor(record_key, record_id, patient, io.BytesIO(_as_bytes(data, "data")),
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
    blob = _as_bytes(blob, "ciphertext")
    decryptor = RecordDecryptor(
        record_key, record_id, patient, blob[:STREAM_HEADER_BYTES], io.BytesIO(blob[STREAM_HEADER_BYTES:]),
        chunk_size=chunk_size, expected_fingerprint=expected_fingerprint,
    )
    return b"".join(decryptor)


# --- blob container ------------------------------------------------------------------------------
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


def _check_code(value: int, what: str, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise CryptoError(f"{what} must be an integer between 0 and {maximum}, got {value!r}")
    return value


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
        self.record_key: bytes = new_record_key() if record_key is None else _check_key(record_key)
        self._encryptor = RecordEncryptor(self.record_key, record_id, patient, plaintext, chunk_size=chunk_size)
        self.header = RecordHeader(
            record_id=_record_id_bytes(record_id),
            patient=_checksum(patient),
            category=_check_code(int(category), "category", _MAX_CATEGORY),
            key_epoch=_check_code(int(epoch), "key epoch", _MAX_EPOCH),
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
        record_id = _record_id_bytes(obj["record_id"])
    except CryptoError:
        raise bad("'record_id' is not 32 bytes of hex") from None
    try:
        if not isinstance(obj["patient"], str):
            raise CryptoError("not a string")
        patient = _checksum(obj["patient"])
    except CryptoError:
        raise bad("'patient' is not an address") from None
    for name, maximum in (("category", _MAX_CATEGORY), ("key_epoch", _MAX_EPOCH), ("chunk_size", MAX_CHUNK_SIZE)):
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
    magic = _read_exact(stream, len(BLOB_MAGIC))
    if magic != BLOB_MAGIC:
        raise RecordFormatError(
            "not a medledger record blob (the first bytes are not the 'MLR1' magic); check the CID"
        )
    prefix = _read_exact(stream, _LENGTH.size)
    if len(prefix) != _LENGTH.size:
        raise TamperingDetected("record blob is truncated inside its header length")
    (length,) = _LENGTH.unpack(prefix)
    if length > MAX_HEADER_BYTES:
        raise TamperingDetected(
            f"record blob header claims {length} bytes, more than the {MAX_HEADER_BYTES}-byte limit; "
            "the blob was altered"
        )
    body = _read_exact(stream, length)
    if len(body) != length:
        raise TamperingDetected("record blob is truncated inside its header")
    try:
        obj = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise TamperingDetected("record blob header is not valid UTF-8 JSON; the blob was altered") from None
    header = _header_from_json(obj)
    if expected_record_id is not None and header.record_id != _record_id_bytes(expected_record_id):
        raise TamperingDetected(
            f"record blob belongs to record 0x{header.record_id.hex()}, not the expected "
            f"0x{_record_id_bytes(expected_record_id).hex()}: the CID does not point to this record's blob"
        )
    if expected_patient is not None and header.patient != _checksum(expected_patient):
        raise TamperingDetected(
            f"record blob 0x{header.record_id.hex()} names patient {header.patient}, not the expected "
            f"{_checksum(expected_patient)}"
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
        return _secret_of(keys)
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
    return _secret_of(key)


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


# --- key envelopes -------------------------------------------------------------------------------
class EnvelopeContents(TypedDict):
    """An opened key envelope: the patient and her category secret keys by category and epoch."""

    patient: str
    keys: dict[int, dict[int, bytes]]


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode("utf-8")


def make_envelope(recipient_public: bytes, patient: bytes | str, keys: Mapping[int, Mapping[int, bytes]]) -> bytes:
    """Seal category secret keys (``category -> epoch -> secret``) to a recipient's public key.

    The sealed content is canonical JSON:
    ``{"format": "medledger/envelope/v1", "keys": {"<category>": {"<epoch>": base64}}, "patient": address}``.
    """
    encoded: dict[str, dict[str, str]] = {}
    for category, by_epoch in keys.items():
        cat = _check_code(category, "category", _MAX_CATEGORY)
        encoded[str(cat)] = {}
        for epoch, secret in by_epoch.items():
            ep = _check_code(epoch, "key epoch", _MAX_EPOCH)
            raw = _secret_of(secret) if isinstance(secret, KeyPair) else _check_key(secret, "category secret key")
            encoded[str(cat)][str(ep)] = base64.b64encode(raw).decode("ascii")
    payload = {"format": ENVELOPE_FORMAT, "patient": _checksum(patient), "keys": encoded}
    return seal(recipient_public, _canonical(payload))


def _int_key(text: object, what: str, maximum: int) -> int:
    if not isinstance(text, str) or not text.isdigit() or str(int(text)) != text or int(text) > maximum:
        raise TamperingDetected(f"key envelope is malformed: {what} {text!r} is not a valid number")
    return int(text)


def open_envelope(
    secret: KeyPair | bytes,
    blob: bytes,
    *,
    expected_patient: bytes | str | None = None,
) -> EnvelopeContents:
    """Open a key envelope with the recipient's secret key.

    Raises DecryptionError if the envelope was sealed to another key, TamperingDetected if its
    content is malformed or (when ``expected_patient`` is given) names another patient.
    """
    try:
        raw = unseal(secret, blob)
    except DecryptionError:
        raise DecryptionError(
            "this key envelope was not sealed to your encryption key (or was altered); ask the "
            "patient to issue an envelope to your current public key"
        ) from None

    def bad(what: str) -> TamperingDetected:
        return TamperingDetected(f"key envelope is malformed ({what})")

    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise bad("not UTF-8 JSON") from None
    if not isinstance(obj, dict) or set(obj) != {"format", "patient", "keys"}:
        raise bad("unexpected structure")
    if obj["format"] != ENVELOPE_FORMAT:
        raise bad("unknown format")
    if not isinstance(obj["patient"], str) or not is_address(obj["patient"]):
        raise bad("'patient' is not an address")
    patient = to_checksum_address(obj["patient"])
    if not isinstance(obj["keys"], dict):
        raise bad("'keys' is not an object")
    keys: dict[int, dict[int, bytes]] = {}
    for cat_text, by_epoch in obj["keys"].items():
        category = _int_key(cat_text, "category", _MAX_CATEGORY)
        if not isinstance(by_epoch, dict):
            raise bad(f"keys of category {category} are not an object")
        keys[category] = {}
        for epoch_text, b64 in by_epoch.items():
            epoch = _int_key(epoch_text, "epoch", _MAX_EPOCH)
            try:
                secret_key = base64.b64decode(b64, validate=True) if isinstance(b64, str) else b""
            except (binascii.Error, ValueError):
                secret_key = b""
            if len(secret_key) != KEY_BYTES:
                raise bad(f"key of category {category} epoch {epoch} is not 32 bytes of base64")
            keys[category][epoch] = secret_key
    if expected_patient is not None and patient != _checksum(expected_patient):
        raise TamperingDetected(
            f"key envelope carries keys of patient {patient}, not of the expected {_checksum(expected_patient)}"
        )
    return {"patient": patient, "keys": keys}
