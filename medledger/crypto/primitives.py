"""X25519 key pairs, sealed boxes, HKDF and fresh record keys."""

from __future__ import annotations

from dataclasses import dataclass

import nacl.exceptions
import nacl.utils
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from nacl.public import PrivateKey, PublicKey, SealedBox

from medledger.errors import CryptoError, DecryptionError

from ._shapes import KEY_BYTES, SEAL_OVERHEAD, as_bytes, check_key


@dataclass(frozen=True, repr=False)
class KeyPair:
    """An X25519 key pair. ``repr`` shows only the public key."""

    secret: bytes
    public: bytes

    def __repr__(self) -> str:
        return f"KeyPair(public=0x{self.public.hex()})"

    def __post_init__(self) -> None:
        secret = check_key(self.secret, "X25519 secret key")
        public = check_key(self.public, "X25519 public key")
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
    return bytes(PrivateKey(check_key(secret, "X25519 secret key")).public_key)


def secret_of(keypair_or_secret: KeyPair | bytes) -> bytes:
    if isinstance(keypair_or_secret, KeyPair):
        return keypair_or_secret.secret
    return check_key(keypair_or_secret, "X25519 secret key")


def seal(public_key: bytes, data: bytes) -> bytes:
    """Encrypt ``data`` so that only the holder of the matching secret key can read it.

    Anonymous sealed box: 48 bytes longer than ``data``; the sender cannot open it afterwards.
    """
    box = SealedBox(PublicKey(check_key(public_key, "X25519 public key")))
    return bytes(box.encrypt(as_bytes(data, "data to seal")))


def unseal(keypair_or_secret: KeyPair | bytes, sealed: bytes) -> bytes:
    """Open a sealed box. Raises DecryptionError if this key cannot open it."""
    box = SealedBox(PrivateKey(secret_of(keypair_or_secret)))
    sealed = as_bytes(sealed, "sealed box")
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


def hkdf(record_key: bytes, info: bytes) -> bytes:
    """``HKDF-SHA256(record_key, salt=None, info)``: 32 bytes."""
    derivation = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info)
    return derivation.derive(check_key(record_key))


def new_record_key() -> bytes:
    """A fresh random 32-byte record key."""
    return nacl.utils.random(KEY_BYTES)
