"""Encryption, fingerprints, Merkle batches and the record blob format.

The package is split by concern: :mod:`.primitives` (key pairs, sealed boxes, HKDF),
:mod:`.stream` and :mod:`.padded` (streaming AEAD), :mod:`.fingerprints`, :mod:`.merkle`,
:mod:`.blob` and :mod:`.legacy` (the record blob formats 2 and 1), :mod:`.category_keys` (which
key opens a blob) and :mod:`.envelope` (the key envelope format). Import from the package itself:
``from medledger import crypto; crypto.seal(...)``.

Everything medledger stores off chain is encrypted here:

* **Key pairs** are X25519 (PyNaCl). A participant has one for receiving sealed data; a patient has
  one per record category and key epoch ("category keys").
* **Sealed boxes** (:func:`seal` / :func:`unseal`) carry small secrets to a public key: the record
  key sealed to its category key, and key envelopes sealed to a grantee.
* **Records** are encrypted with libsodium's secretstream XChaCha20-Poly1305 under a fresh random
  32-byte record key, in 64 KiB plaintext chunks, padded to a Padmé size (:mod:`.padded`). Every
  chunk is authenticated with associated data made of the blob's clear header and the record id,
  patient and category the reader supplies (:func:`blob_ad`), so a ciphertext cannot be replayed
  under another record, patient or category and no header field can be changed unnoticed; the
  authenticated tags mark the end of the content and of the stream, so truncation and appended
  data are detected. Encryption and decryption stream: memory stays flat whatever the record size.
  (:func:`encrypt_bytes` and :class:`RecordEncryptor` are the unpadded format 1 stream, with
  associated data ``b"medledger/record/v1" + record_id + patient``.)
* **Fingerprints** are keyed, so nobody without the record key can confirm a guess of the content:
  ``HMAC-SHA256(HKDF-SHA256(record_key, info=b"medledger/fingerprint/v1"), plaintext)``.
* **Batches** of readings are committed on chain as the root of an OpenZeppelin-compatible Merkle
  tree (sorted-pair keccak256, double-hashed leaves).
* **Blobs** (what goes to IPFS) are ``MLR2`` + a fixed 113-byte header (cipher suite, chunk size,
  sealed record key, stream header) + padded secretstream frames; the blob names no record,
  patient, category or key epoch and its length shows only a Padmé-rounded size. See
  :mod:`.blob`; format 1 blobs are still read (:mod:`.legacy`).
* **Key envelopes** deliver category secret keys from a patient to a grantee, a delegate or herself.

Error policy: a key, id or address of the wrong shape raises :class:`~medledger.errors.CryptoError`;
a key that cannot open a sealed box raises :class:`~medledger.errors.DecryptionError`; anything that
shows the data was altered (authentication failure, wrong record binding, truncation, appended data,
fingerprint mismatch, malformed header) raises :class:`~medledger.errors.TamperingDetected`.
Messages name the failed check and the ids involved, never the data.
"""

from __future__ import annotations

from ._shapes import ABYTES, CHUNK_SIZE, KEY_BYTES
from .blob import (
    BLOB_FORMAT_VERSION,
    BLOB_MAGIC,
    HEADER_BYTES,
    RecordBlobWriter,
    RecordHeader,
    blob_ad,
    blob_size,
    open_record_blob,
    open_record_blob_into,
    parse_record_header,
    unseal_record_key,
    write_record_blob,
)
from .category_keys import CategoryKeys
from .envelope import EnvelopeContents, make_envelope, open_envelope
from .fingerprints import fingerprint_key, fingerprint_of, leaf_fingerprint
from .legacy import LegacyRecordHeader
from .merkle import batch_leaf, merkle_proof, merkle_proofs, merkle_root, verify_merkle_proof
from .padded import padme
from .primitives import KeyPair, generate_keypair, new_record_key, public_from_secret, seal, unseal
from .stream import (
    RecordDecryptor,
    RecordEncryptor,
    ciphertext_size,
    decrypt_bytes,
    encrypt_bytes,
    record_ad,
)

__all__ = [
    "ABYTES",
    "BLOB_FORMAT_VERSION",
    "BLOB_MAGIC",
    "CHUNK_SIZE",
    "HEADER_BYTES",
    "KEY_BYTES",
    "CategoryKeys",
    "EnvelopeContents",
    "KeyPair",
    "LegacyRecordHeader",
    "RecordBlobWriter",
    "RecordDecryptor",
    "RecordEncryptor",
    "RecordHeader",
    "batch_leaf",
    "blob_ad",
    "blob_size",
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
    "padme",
    "parse_record_header",
    "public_from_secret",
    "record_ad",
    "seal",
    "unseal",
    "unseal_record_key",
    "verify_merkle_proof",
    "write_record_blob",
]
