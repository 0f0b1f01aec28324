"""Encryption, fingerprints, Merkle batches and the record blob format.

The package is split by concern: :mod:`.primitives` (key pairs, sealed boxes, HKDF),
:mod:`.stream` (streaming AEAD), :mod:`.fingerprints`, :mod:`.merkle`, :mod:`.blob` (the record
blob format) and :mod:`.envelope` (the key envelope format). Import from the package itself:
``from medledger import crypto; crypto.seal(...)``.

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

from ._shapes import ABYTES, CHUNK_SIZE, KEY_BYTES
from .blob import (
    BLOB_FORMAT_VERSION,
    BLOB_MAGIC,
    CategoryKeys,
    RecordBlobWriter,
    RecordHeader,
    open_record_blob,
    open_record_blob_into,
    parse_record_header,
    unseal_record_key,
    write_record_blob,
)
from .envelope import EnvelopeContents, make_envelope, open_envelope
from .fingerprints import fingerprint_key, fingerprint_of, leaf_fingerprint
from .merkle import batch_leaf, merkle_proof, merkle_proofs, merkle_root, verify_merkle_proof
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
    "KEY_BYTES",
    "CategoryKeys",
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
