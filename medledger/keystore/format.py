"""The keystore file format: one JSON document per identity, its parsing, writing and opening.

Nothing here touches the file system; :mod:`.store` reads and writes the files.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import is_address, to_checksum_address

from medledger.crypto import KeyPair
from medledger.errors import CryptoError, KeystoreError, WrongPassphrase

#: scrypt cost of both parts of a keystore file (eth-account's default for V3 keystores).
DEFAULT_SCRYPT_N = 2**18
#: The production floor: a keystore below it is neither written nor unlocked outside the test suite
#: (scrypt n = 2**15 with r = 8 costs tens of milliseconds per guess; n = 2 cost 19 microseconds).
MIN_SCRYPT_N = 2**15
#: The floor for a V3 part that uses PBKDF2 (which medledger never writes) instead of scrypt.
MIN_PBKDF2_ROUNDS = 600_000
SCRYPT_R = 8
SCRYPT_P = 1
#: Largest scrypt cost accepted from a file (bounds the memory a hostile file can make us use).
MAX_SCRYPT_N = 2**20
#: Largest scrypt memory (128 * n * r bytes) accepted from a file: 1 GiB.
MAX_SCRYPT_MEMORY = 2**30
FORMAT_VERSION = 1
_AD_PREFIX = b"medledger/keystore/v1"
_SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class WeakKeystoreWarning(UserWarning):
    """A keystore file's key derivation is above the production floor but below medledger's
    default cost: its passphrase is cheaper to guess than it should be."""


_weak_kdf_allowed = False


def allow_weak_kdf_for_tests(allowed: bool = True) -> bool:
    """TEST SUITES ONLY: let keystores below the production floor (:data:`MIN_SCRYPT_N`) be written
    and unlocked, so that tests run in milliseconds. Returns the previous setting. A program that
    handles real keys never calls this."""
    global _weak_kdf_allowed
    previous, _weak_kdf_allowed = _weak_kdf_allowed, bool(allowed)
    return previous


def weak_kdf_allowed() -> bool:
    """Whether the test-only switch :func:`allow_weak_kdf_for_tests` is on."""
    return _weak_kdf_allowed


class Malformed(Exception):
    """The reason a keystore file is malformed (turned into a KeystoreError naming the file)."""


@dataclass(frozen=True)
class ParsedFile:
    """A keystore document whose shape was checked (nothing decrypted yet)."""

    address: str
    public: bytes
    v3: dict[str, Any]
    salt: bytes
    n: int
    r: int
    p: int
    nonce: bytes
    ciphertext: bytes

    def weakest(self) -> tuple[str, int]:
        """The weaker of the two parts' costs, as (description, scrypt-n equivalent)."""
        v3 = self.v3.get("crypto", self.v3.get("Crypto", {}))
        params = v3.get("kdfparams", {})
        if v3.get("kdf") == "pbkdf2":
            v3_cost = (f"ethereum pbkdf2 c={params['c']}", DEFAULT_SCRYPT_N if params["c"] >= MIN_PBKDF2_ROUNDS else 1)
        else:
            v3_cost = (f"ethereum scrypt n={params['n']} r={params['r']} p={params['p']}",
                       params["n"] * params["r"] * params["p"] // SCRYPT_R)
        own = (f"encryption scrypt n={self.n} r={self.r} p={self.p}", self.n * self.r * self.p // SCRYPT_R)
        return min(v3_cost, own, key=lambda cost: cost[1])


def check_strength(parsed: ParsedFile, path: Path) -> None:
    """Refuse a file below the production floor (outside tests); warn on one below the default."""
    what, cost = parsed.weakest()
    if _weak_kdf_allowed or cost >= DEFAULT_SCRYPT_N:
        return
    if cost < MIN_SCRYPT_N:
        raise KeystoreError(
            f"keystore file {path} uses a key derivation ({what}) below the floor of scrypt "
            f"n={MIN_SCRYPT_N} that medledger accepts outside its test suite: anyone holding the file "
            "can guess its passphrase quickly. Treat its keys as exposed: create a new identity and "
            "move to it (register its encryption key on chain)."
        )
    warnings.warn(WeakKeystoreWarning(
        f"keystore file {path} uses a weak key derivation ({what}; medledger writes n={DEFAULT_SCRYPT_N}): "
        "its passphrase is cheaper to guess than it should be. Change its passphrase to re-encrypt it "
        "at the default cost."), stacklevel=3)


# --- low-level helpers ---------------------------------------------------------------------------
def scrypt(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        passphrase.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=32, maxmem=256 * r * n + 2**20
    )


def _ad(address: str, public: bytes) -> bytes:
    return _AD_PREFIX + bytes.fromhex(address[2:]) + public


def check_scrypt_n(n: int) -> int:
    """The cost of files to write: a power of two, at least the production floor (the test suite
    may go lower with :func:`allow_weak_kdf_for_tests`)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 2 or n & (n - 1) or n > MAX_SCRYPT_N:
        raise KeystoreError(f"scrypt cost n must be a power of two between 2 and {MAX_SCRYPT_N}, got {n!r}")
    if n < MIN_SCRYPT_N and not _weak_kdf_allowed:
        raise KeystoreError(
            f"scrypt cost n={n} is below the production floor of {MIN_SCRYPT_N}: such a keystore's "
            "passphrase could be guessed quickly. Only medledger's test suite writes weaker files."
        )
    return n


def private_key_bytes(private_key: bytes | str) -> bytes:
    """Parse a private key given as 32 bytes or 64 hex digits (with or without 0x). Never echoes it."""
    if isinstance(private_key, str):
        text = private_key.strip()
        text = text[2:] if text[:2].lower() == "0x" else text
        if not re.fullmatch(r"[0-9a-fA-F]{64}", text):
            raise KeystoreError("not a valid private key: expected 64 hex digits (optionally with 0x)")
        raw = bytes.fromhex(text)
    elif isinstance(private_key, (bytes, bytearray)) and len(private_key) == 32:
        raw = bytes(private_key)
    else:
        raise KeystoreError("not a valid private key: expected 32 bytes or 64 hex digits")
    if not 0 < int.from_bytes(raw, "big") < _SECP256K1_ORDER:
        raise KeystoreError("not a valid private key: it is outside the secp256k1 key range")
    return raw


def _hex_field(obj: dict[str, Any], key: str, length: int | None = None) -> bytes:
    value = obj.get(key)
    if not isinstance(value, str):
        raise Malformed(f"'{key}' is missing or not a string")
    text = value[2:] if value[:2].lower() == "0x" else value
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise Malformed(f"'{key}' is not hex") from None
    if length is not None and len(raw) != length:
        raise Malformed(f"'{key}' is {len(raw)} bytes instead of {length}")
    return raw


def _int_field(obj: dict[str, Any], key: str, low: int, high: int) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Malformed(f"'{key}' is not an integer between {low} and {high}")
    return value


def _scrypt_params(params: dict[str, Any], part: str) -> tuple[int, int, int]:
    n = _int_field(params, "n", 2, MAX_SCRYPT_N)
    r = _int_field(params, "r", 1, 32)
    p = _int_field(params, "p", 1, 16)
    if n & (n - 1):
        raise Malformed(f"'{part}' scrypt n is not a power of two")
    if 128 * n * r > MAX_SCRYPT_MEMORY:
        raise Malformed(f"'{part}' scrypt parameters need more than 1 GiB of memory")
    return n, r, p


# --- parsing -------------------------------------------------------------------------------------
def _parse_v3(obj: dict[str, Any], address: str) -> dict[str, Any]:
    v3 = obj.get("ethereum")
    if not isinstance(v3, dict) or v3.get("version") != 3:
        raise Malformed("'ethereum' is not a V3 keystore")
    v3_crypto = v3.get("crypto", v3.get("Crypto"))
    if not isinstance(v3_crypto, dict) or not isinstance(v3_crypto.get("kdfparams"), dict):
        raise Malformed("'ethereum.crypto' is missing")
    v3_params = v3_crypto["kdfparams"]
    if v3_crypto.get("kdf") == "scrypt":
        _scrypt_params(v3_params, "ethereum")
    elif v3_crypto.get("kdf") == "pbkdf2":
        _int_field(v3_params, "c", 1, 10_000_000)
    else:
        raise Malformed("'ethereum' uses an unknown kdf")
    v3_address = v3.get("address")
    if isinstance(v3_address, str) and is_address(v3_address) and to_checksum_address(v3_address) != address:
        raise Malformed("'address' differs from the V3 keystore's address")
    return v3


def parse(obj: object) -> ParsedFile:
    """Check the shape of a keystore document; raise :class:`Malformed` naming what is wrong."""
    if not isinstance(obj, dict):
        raise Malformed("not a JSON object")
    if obj.get("medledger_keystore") != FORMAT_VERSION:
        raise Malformed("not a medledger keystore (missing 'medledger_keystore': 1)")
    address = obj.get("address")
    if not isinstance(address, str) or not is_address(address):
        raise Malformed("'address' is not an Ethereum address")
    address = to_checksum_address(address)
    public = _hex_field(obj, "encryption_public_key", 32)
    v3 = _parse_v3(obj, address)
    enc = obj.get("encryption")
    if not isinstance(enc, dict):
        raise Malformed("'encryption' is missing")
    if enc.get("cipher") != "aes-256-gcm" or enc.get("kdf") != "scrypt":
        raise Malformed("'encryption' uses an unknown cipher or kdf")
    params = enc.get("kdfparams")
    if not isinstance(params, dict):
        raise Malformed("'encryption.kdfparams' is missing")
    n, r, p = _scrypt_params(params, "encryption")
    if params.get("dklen", 32) != 32:
        raise Malformed("'encryption.kdfparams.dklen' is not 32")
    salt = _hex_field(params, "salt")
    if not 16 <= len(salt) <= 64:
        raise Malformed("'encryption.kdfparams.salt' has an unusual length")
    nonce = _hex_field(enc, "nonce", 12)
    ciphertext = _hex_field(enc, "ciphertext", 32 + 16)
    return ParsedFile(address, public, v3, salt, n, r, p, nonce, ciphertext)


# --- writing and opening -------------------------------------------------------------------------
def encode(account: LocalAccount, keypair: KeyPair, passphrase: str, n: int) -> bytes:
    """The keystore document of ``account`` and ``keypair`` under ``passphrase`` at scrypt cost ``n``."""
    v3 = Account.encrypt(account.key, passphrase, kdf="scrypt", iterations=n)
    salt = secrets.token_bytes(32)
    nonce = secrets.token_bytes(12)
    key = scrypt(passphrase, salt, n, SCRYPT_R, SCRYPT_P)
    ciphertext = AESGCM(key).encrypt(nonce, keypair.secret, _ad(account.address, keypair.public))
    document = {
        "medledger_keystore": FORMAT_VERSION,
        "address": account.address,
        "encryption_public_key": "0x" + keypair.public.hex(),
        "ethereum": v3,
        "encryption": {
            "cipher": "aes-256-gcm",
            "kdf": "scrypt",
            "kdfparams": {"n": n, "r": SCRYPT_R, "p": SCRYPT_P, "dklen": 32, "salt": salt.hex()},
            "nonce": nonce.hex(),
            "ciphertext": ciphertext.hex(),
        },
    }
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _open_v3(parsed: ParsedFile, passphrase: str, name: str, path: Path) -> LocalAccount:
    malformed = f"keystore file {path} is malformed (its V3 part cannot be read); restore it from a backup"
    try:
        private_key = Account.decrypt(parsed.v3, passphrase)
    except ValueError as exc:
        if "MAC mismatch" not in str(exc):
            raise KeystoreError(malformed) from None
        raise WrongPassphrase(
            f"wrong passphrase for keystore '{name}' ({path}). Without it this account cannot "
            "sign transactions, and the records and category keys sealed to its encryption key "
            "cannot be decrypted. Try again (passphrases are case-sensitive); a lost passphrase "
            "cannot be recovered."
        ) from None
    except Exception:
        raise KeystoreError(malformed) from None
    account: LocalAccount = Account.from_key(private_key)
    if account.address != parsed.address:
        raise KeystoreError(
            f"keystore file {path} was altered: its address does not match its key; restore it from a backup"
        )
    return account


def decrypt(parsed: ParsedFile, passphrase: str, name: str, path: Path) -> tuple[LocalAccount, KeyPair]:
    """Open both parts of a parsed keystore file. Raises WrongPassphrase or KeystoreError."""
    if not isinstance(passphrase, str):
        raise KeystoreError(f"the passphrase for keystore '{name}' must be a string")
    check_strength(parsed, path)
    account = _open_v3(parsed, passphrase, name, path)
    key = scrypt(passphrase, parsed.salt, parsed.n, parsed.r, parsed.p)
    try:
        secret = AESGCM(key).decrypt(parsed.nonce, parsed.ciphertext, _ad(parsed.address, parsed.public))
    except InvalidTag:
        raise KeystoreError(
            f"keystore file {path} was altered: its encryption key section failed authentication "
            "(the passphrase opened the Ethereum key); restore it from a backup"
        ) from None
    try:
        keypair = KeyPair(secret=secret, public=parsed.public)
    except CryptoError:
        raise KeystoreError(
            f"keystore file {path} was altered: its encryption public key does not match its secret"
        ) from None
    return account, keypair
