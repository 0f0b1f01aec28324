"""A participant's keys, each identity in one passphrase-protected JSON file.

A keystore directory (default ``$MEDLEDGER_HOME/keys``, ``MEDLEDGER_HOME`` defaulting to
``~/.medledger``) holds one ``<name>.json`` file per identity::

    {
      "medledger_keystore": 1,
      "address": "0x…",                      checksummed Ethereum address
      "encryption_public_key": "0x…",        X25519 public key (32 bytes, hex)
      "ethereum": { … },                     standard V3 keystore of the Ethereum key (scrypt)
      "encryption": {                        the X25519 secret key
        "cipher": "aes-256-gcm",
        "kdf": "scrypt",
        "kdfparams": {"n": …, "r": 8, "p": 1, "dklen": 32, "salt": "<hex>"},
        "nonce": "<hex, 12 bytes>",
        "ciphertext": "<hex, 32 + 16 bytes>"
      }
    }

The X25519 secret is encrypted with AES-256-GCM under a scrypt key of the same cost as the V3
part, with associated data ``b"medledger/keystore/v1" + address (20 bytes) + public key (32 bytes)``
so the public fields cannot be swapped without detection. ``list`` and ``public`` read only the
public fields and need no passphrase. Files are written atomically with mode 0600 and existing
files are never overwritten by ``create``/``import_key``.

Passphrases never come from the command line: :func:`passphrase_from_env` reads them from the
environment, otherwise the CLI prompts.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import re
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import is_address, to_checksum_address

from medledger.crypto import KeyPair, generate_keypair
from medledger.errors import CryptoError, KeyNotFound, KeystoreError, WrongPassphrase

__all__ = [
    "DEFAULT_SCRYPT_N",
    "Identity",
    "KeyInfo",
    "Keystore",
    "default_keystore_dir",
    "medledger_home",
    "passphrase_env_var",
    "passphrase_from_env",
    "validate_name",
]

#: scrypt cost of both parts of a keystore file (eth-account's default for V3 keystores).
DEFAULT_SCRYPT_N = 2**18
SCRYPT_R = 8
SCRYPT_P = 1
#: Largest scrypt cost accepted from a file (bounds the memory a hostile file can make us use).
MAX_SCRYPT_N = 2**20
#: Largest scrypt memory (128 * n * r bytes) accepted from a file: 1 GiB.
MAX_SCRYPT_MEMORY = 2**30
FORMAT_VERSION = 1
_AD_PREFIX = b"medledger/keystore/v1"
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def medledger_home() -> Path:
    """``$MEDLEDGER_HOME``, or ``~/.medledger`` when unset."""
    return Path(os.environ.get("MEDLEDGER_HOME") or "~/.medledger").expanduser()


def default_keystore_dir() -> Path:
    """``$MEDLEDGER_HOME/keys``."""
    return medledger_home() / "keys"


def validate_name(name: str) -> str:
    """Check a keystore name: 1 to 64 of ``A-Z a-z 0-9 _ . -``, not only dots."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or set(name) == {"."}:
        raise KeystoreError(
            f"invalid keystore name {name!r}: use 1 to 64 letters, digits, '_', '.' or '-'"
        )
    return name


def passphrase_env_var(name: str) -> str:
    """The per-identity environment variable: ``MEDLEDGER_PASSPHRASE_<NAME>``.

    The name is upper-cased and every character other than A-Z and 0-9 becomes ``_``.
    """
    return "MEDLEDGER_PASSPHRASE_" + re.sub(r"[^A-Z0-9]", "_", name.upper())


def passphrase_from_env(name: str, environ: dict[str, str] | None = None) -> str | None:
    """The passphrase for keystore ``name`` from the environment, or None.

    Reads ``MEDLEDGER_PASSPHRASE_<NAME>`` first, then ``MEDLEDGER_PASSPHRASE``; empty values count
    as unset.
    """
    env = os.environ if environ is None else environ
    for var in (passphrase_env_var(name), "MEDLEDGER_PASSPHRASE"):
        value = env.get(var)
        if value:
            return value
    return None


@dataclass(frozen=True)
class KeyInfo:
    """The public side of an identity: readable without the passphrase."""

    name: str
    address: str
    encryption_public: bytes
    path: Path

    @property
    def encryption_public_hex(self) -> str:
        """The X25519 public key as ``0x`` + 64 hex digits."""
        return "0x" + self.encryption_public.hex()


@dataclass(frozen=True)
class Identity:
    """An unlocked identity: the Ethereum account (signs) and the X25519 key pair (decrypts)."""

    name: str
    address: str
    account: LocalAccount = field(repr=False)
    encryption: KeyPair

    @property
    def info(self) -> KeyInfo:
        """The public side of this identity (``path`` is empty if unknown)."""
        return KeyInfo(self.name, self.address, self.encryption.public, Path())


# --- low-level helpers ---------------------------------------------------------------------------
def _scrypt(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        passphrase.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=32, maxmem=256 * r * n + 2**20
    )


def _ad(address: str, public: bytes) -> bytes:
    return _AD_PREFIX + bytes.fromhex(address[2:]) + public


def _check_scrypt_n(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 2 or n & (n - 1) or n > MAX_SCRYPT_N:
        raise KeystoreError(f"scrypt cost n must be a power of two between 2 and {MAX_SCRYPT_N}, got {n!r}")
    return n


def _private_key_bytes(private_key: bytes | str) -> bytes:
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


class _Malformed(Exception):
    """Internal: the reason a keystore file is malformed."""


def _hex_field(obj: dict[str, Any], key: str, length: int | None = None) -> bytes:
    value = obj.get(key)
    if not isinstance(value, str):
        raise _Malformed(f"'{key}' is missing or not a string")
    text = value[2:] if value[:2].lower() == "0x" else value
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise _Malformed(f"'{key}' is not hex") from None
    if length is not None and len(raw) != length:
        raise _Malformed(f"'{key}' is {len(raw)} bytes instead of {length}")
    return raw


def _int_field(obj: dict[str, Any], key: str, low: int, high: int) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _Malformed(f"'{key}' is not an integer between {low} and {high}")
    return value


@dataclass(frozen=True)
class _ParsedFile:
    address: str
    public: bytes
    v3: dict[str, Any]
    salt: bytes
    n: int
    r: int
    p: int
    nonce: bytes
    ciphertext: bytes


def _parse(obj: object) -> _ParsedFile:
    if not isinstance(obj, dict):
        raise _Malformed("not a JSON object")
    if obj.get("medledger_keystore") != FORMAT_VERSION:
        raise _Malformed("not a medledger keystore (missing 'medledger_keystore': 1)")
    address = obj.get("address")
    if not isinstance(address, str) or not is_address(address):
        raise _Malformed("'address' is not an Ethereum address")
    address = to_checksum_address(address)
    public = _hex_field(obj, "encryption_public_key", 32)
    v3 = obj.get("ethereum")
    if not isinstance(v3, dict) or v3.get("version") != 3:
        raise _Malformed("'ethereum' is not a V3 keystore")
    v3_crypto = v3.get("crypto", v3.get("Crypto"))
    if not isinstance(v3_crypto, dict) or not isinstance(v3_crypto.get("kdfparams"), dict):
        raise _Malformed("'ethereum.crypto' is missing")
    v3_params = v3_crypto["kdfparams"]
    if v3_crypto.get("kdf") == "scrypt":
        n_v3 = _int_field(v3_params, "n", 2, MAX_SCRYPT_N)
        r_v3 = _int_field(v3_params, "r", 1, 32)
        _int_field(v3_params, "p", 1, 16)
        if n_v3 & (n_v3 - 1):
            raise _Malformed("'ethereum' scrypt n is not a power of two")
        if 128 * n_v3 * r_v3 > MAX_SCRYPT_MEMORY:
            raise _Malformed("'ethereum' scrypt parameters need more than 1 GiB of memory")
    elif v3_crypto.get("kdf") == "pbkdf2":
        _int_field(v3_params, "c", 1, 10_000_000)
    else:
        raise _Malformed("'ethereum' uses an unknown kdf")
    v3_address = v3.get("address")
    if isinstance(v3_address, str) and is_address(v3_address) and to_checksum_address(v3_address) != address:
        raise _Malformed("'address' differs from the V3 keystore's address")
    enc = obj.get("encryption")
    if not isinstance(enc, dict):
        raise _Malformed("'encryption' is missing")
    if enc.get("cipher") != "aes-256-gcm" or enc.get("kdf") != "scrypt":
        raise _Malformed("'encryption' uses an unknown cipher or kdf")
    params = enc.get("kdfparams")
    if not isinstance(params, dict):
        raise _Malformed("'encryption.kdfparams' is missing")
    n = _int_field(params, "n", 2, MAX_SCRYPT_N)
    if n & (n - 1):
        raise _Malformed("'encryption' scrypt n is not a power of two")
    r = _int_field(params, "r", 1, 32)
    p = _int_field(params, "p", 1, 16)
    if 128 * n * r > MAX_SCRYPT_MEMORY:
        raise _Malformed("'encryption' scrypt parameters need more than 1 GiB of memory")
    if params.get("dklen", 32) != 32:
        raise _Malformed("'encryption.kdfparams.dklen' is not 32")
    salt = _hex_field(params, "salt")
    if not 16 <= len(salt) <= 64:
        raise _Malformed("'encryption.kdfparams.salt' has an unusual length")
    nonce = _hex_field(enc, "nonce", 12)
    ciphertext = _hex_field(enc, "ciphertext", 32 + 16)
    return _ParsedFile(address, public, v3, salt, n, r, p, nonce, ciphertext)


# --- the keystore directory ----------------------------------------------------------------------
class Keystore:
    """A directory of keystore files, one per identity name."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, scrypt_n: int = DEFAULT_SCRYPT_N) -> None:
        """``path`` defaults to :func:`default_keystore_dir`; ``scrypt_n`` (a power of two) sets the
        cost of files this object writes. Lower it only in tests."""
        self.path = Path(path).expanduser() if path is not None else default_keystore_dir()
        self.scrypt_n = _check_scrypt_n(scrypt_n)

    def __repr__(self) -> str:
        return f"Keystore({str(self.path)!r})"

    def path_for(self, name: str) -> Path:
        """The file of identity ``name`` (which need not exist)."""
        return self.path / f"{validate_name(name)}.json"

    def exists(self, name: str) -> bool:
        """Whether a keystore file for ``name`` exists."""
        return self.path_for(name).is_file()

    def names(self) -> builtins.list[str]:
        """Names of the identities in this directory, sorted."""
        if not self.path.is_dir():
            return []
        found = []
        for entry in self.path.glob("*.json"):
            name = entry.name[: -len(".json")]
            if entry.is_file() and _NAME.fullmatch(name) and set(name) != {"."}:
                found.append(name)
        return sorted(found)

    # --- writing ---------------------------------------------------------------------------------
    def create(
        self,
        name: str,
        passphrase: str,
        private_key: bytes | str | None = None,
        *,
        encryption_secret: bytes | None = None,
    ) -> Identity:
        """Create identity ``name``: a new (or the given) Ethereum key and a new (or the given)
        X25519 key, saved under ``passphrase``. Raises KeystoreError if ``name`` exists."""
        path = self.path_for(name)
        if path.exists():
            raise KeystoreError(
                f"a keystore named '{name}' already exists ({path}); choose another name "
                "or use the existing one"
            )
        if not isinstance(passphrase, str) or not passphrase:
            raise KeystoreError(f"cannot create keystore '{name}' with an empty passphrase")
        if private_key is None:
            account: LocalAccount = Account.create()
        else:
            try:
                account = Account.from_key(_private_key_bytes(private_key))
            except KeystoreError:
                raise
            except Exception:
                raise KeystoreError("not a valid private key: it is outside the secp256k1 key range") from None
        try:
            keypair = generate_keypair() if encryption_secret is None else KeyPair.from_secret(encryption_secret)
        except CryptoError as exc:
            raise KeystoreError(f"invalid encryption secret for keystore '{name}': {exc}") from None
        data = self._encode(account, keypair, passphrase)
        self._write_new(path, data, name)
        return Identity(name=name, address=account.address, account=account, encryption=keypair)

    def import_key(self, name: str, private_key_hex: str, passphrase: str) -> Identity:
        """Create identity ``name`` around an existing Ethereum private key (64 hex digits) and a
        new X25519 key."""
        return self.create(name, passphrase, private_key=_private_key_bytes(private_key_hex))

    def change_passphrase(self, name: str, old_passphrase: str, new_passphrase: str) -> None:
        """Re-encrypt identity ``name`` under a new passphrase (atomic replace of the file)."""
        if not isinstance(new_passphrase, str) or not new_passphrase:
            raise KeystoreError(f"cannot protect keystore '{name}' with an empty passphrase")
        identity = self.unlock(name, old_passphrase)
        data = self._encode(identity.account, identity.encryption, new_passphrase)
        self._write(self.path_for(name), data, name, replace=True)

    def _encode(self, account: LocalAccount, keypair: KeyPair, passphrase: str) -> bytes:
        n = self.scrypt_n
        v3 = Account.encrypt(account.key, passphrase, kdf="scrypt", iterations=n)
        salt = secrets.token_bytes(32)
        nonce = secrets.token_bytes(12)
        key = _scrypt(passphrase, salt, n, SCRYPT_R, SCRYPT_P)
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

    def _write_new(self, path: Path, data: bytes, name: str) -> None:
        self._write(path, data, name, replace=False)

    def _write(self, path: Path, data: bytes, name: str, *, replace: bool) -> None:
        """Write ``data`` to a 0600 temporary file in the directory, then move it into place
        atomically: ``os.replace`` when replacing, ``os.link`` (which refuses to overwrite) when
        creating."""
        try:
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=self.path)
        except OSError as exc:
            raise KeystoreError(f"cannot write keystore '{name}' in {self.path}: {exc.strerror}") from None
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            if replace:
                os.replace(tmp, path)
            else:
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    raise KeystoreError(
                        f"a keystore named '{name}' already exists ({path}); choose another name"
                    ) from None
                except OSError:  # file system without hard links: fall back to a checked replace
                    if path.exists():
                        raise KeystoreError(
                            f"a keystore named '{name}' already exists ({path}); choose another name"
                        ) from None
                    os.replace(tmp, path)
        except KeystoreError:
            raise
        except OSError as exc:
            raise KeystoreError(f"cannot write keystore file {path}: {exc.strerror}") from None
        finally:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        self._sync_directory()

    def _sync_directory(self) -> None:
        try:
            dir_fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(dir_fd)
        except OSError:
            pass
        finally:
            os.close(dir_fd)

    # --- reading ---------------------------------------------------------------------------------
    def _load(self, name: str) -> tuple[Path, _ParsedFile]:
        path = self.path_for(name)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            available = self.names()
            listing = f"; it holds: {', '.join(available)}" if available else "; it holds no keystores"
            raise KeyNotFound(
                f"no keystore named '{name}' in {self.path}{listing}. "
                f"Create it with `medledger keys create {name}` (or set MEDLEDGER_HOME to the "
                "directory that holds your keys)."
            ) from None
        except OSError as exc:
            raise KeystoreError(f"cannot read keystore file {path}: {exc.strerror}") from None
        try:
            parsed = _parse(json.loads(raw.decode("utf-8")))
        except (UnicodeDecodeError, ValueError):
            raise KeystoreError(
                f"keystore file {path} is malformed (not valid JSON); restore it from a backup"
            ) from None
        except _Malformed as exc:
            raise KeystoreError(
                f"keystore file {path} is malformed ({exc}); restore it from a backup"
            ) from None
        return path, parsed

    def public(self, name: str) -> KeyInfo:
        """Name, address and encryption public key of identity ``name`` (no passphrase needed)."""
        path, parsed = self._load(name)
        return KeyInfo(name=name, address=parsed.address, encryption_public=parsed.public, path=path)

    def list(self) -> builtins.list[KeyInfo]:
        """Public information of every identity in the directory, sorted by name."""
        return [self.public(name) for name in self.names()]

    def unlock(self, name: str, passphrase: str) -> Identity:
        """Decrypt identity ``name``. Raises WrongPassphrase, KeyNotFound or KeystoreError."""
        path, parsed = self._load(name)
        if not isinstance(passphrase, str):
            raise KeystoreError(f"the passphrase for keystore '{name}' must be a string")
        try:
            private_key = Account.decrypt(parsed.v3, passphrase)
        except ValueError as exc:
            if "MAC mismatch" not in str(exc):
                raise KeystoreError(
                    f"keystore file {path} is malformed (its V3 part cannot be read); restore it from a backup"
                ) from None
            raise WrongPassphrase(
                f"wrong passphrase for keystore '{name}' ({path}). Without it this account cannot "
                "sign transactions, and the records and category keys sealed to its encryption key "
                "cannot be decrypted. Try again (passphrases are case-sensitive); a lost passphrase "
                "cannot be recovered."
            ) from None
        except Exception:
            raise KeystoreError(
                f"keystore file {path} is malformed (its V3 part cannot be read); restore it from a backup"
            ) from None
        account: LocalAccount = Account.from_key(private_key)
        if account.address != parsed.address:
            raise KeystoreError(
                f"keystore file {path} was altered: its address does not match its key; restore it from a backup"
            )
        key = _scrypt(passphrase, parsed.salt, parsed.n, parsed.r, parsed.p)
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
        return Identity(name=name, address=account.address, account=account, encryption=keypair)
