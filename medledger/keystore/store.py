"""A directory of keystore files, one per identity name, and the identities they hold."""

from __future__ import annotations

import builtins
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from medledger import paths
from medledger.crypto import KeyPair, generate_keypair
from medledger.errors import CryptoError, KeyNotFound, KeystoreError
from medledger.fsutil import DestinationExists, atomic_write

from . import format as fmt
from .names import is_valid_name, validate_name


def default_keystore_dir() -> Path:
    """``$MEDLEDGER_HOME/keys``."""
    return paths.keys_dir()


@dataclass(frozen=True)
class KeyInfo:
    """The public side of an identity: readable without the passphrase."""

    name: str
    address: str
    encryption_public: bytes
    path: Path
    #: the weaker part's key-derivation cost as a scrypt n at r = 8 (None if unknown)
    kdf_cost: int | None = None

    @property
    def weak(self) -> bool:
        """The file's key derivation is below medledger's default cost."""
        return self.kdf_cost is not None and self.kdf_cost < fmt.DEFAULT_SCRYPT_N

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


@dataclass(frozen=True)
class UnreadableKeystore:
    """A keystore file that could not be read, and why (the message of its KeystoreError)."""

    name: str
    path: Path
    reason: str


class KeyListing(builtins.list[KeyInfo]):
    """The identities a keystore directory holds, as far as their files can be read; the files
    that cannot be read are in ``unreadable`` (so one corrupt file hides nothing else)."""

    def __init__(self, infos: builtins.list[KeyInfo], unreadable: builtins.list[UnreadableKeystore]) -> None:
        super().__init__(infos)
        self.unreadable: tuple[UnreadableKeystore, ...] = tuple(unreadable)


def _account_for(private_key: bytes | str | None) -> LocalAccount:
    if private_key is None:
        account: LocalAccount = Account.create()
        return account
    try:
        account = Account.from_key(fmt.private_key_bytes(private_key))
    except KeystoreError:
        raise
    except Exception:
        raise KeystoreError("not a valid private key: it is outside the secp256k1 key range") from None
    return account


class Keystore:
    """A directory of keystore files, one per identity name."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, scrypt_n: int = fmt.DEFAULT_SCRYPT_N) -> None:
        """``path`` defaults to :func:`default_keystore_dir`; ``scrypt_n`` (a power of two) sets the
        cost of files this object writes. Lower it only in tests."""
        self.path = Path(path).expanduser() if path is not None else default_keystore_dir()
        self.scrypt_n = fmt.check_scrypt_n(scrypt_n)

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
            if entry.is_file() and is_valid_name(name):
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
        account = _account_for(private_key)
        try:
            keypair = generate_keypair() if encryption_secret is None else KeyPair.from_secret(encryption_secret)
        except CryptoError as exc:
            raise KeystoreError(f"invalid encryption secret for keystore '{name}': {exc}") from None
        self._write(path, fmt.encode(account, keypair, passphrase, self.scrypt_n), name, replace=False)
        return Identity(name=name, address=account.address, account=account, encryption=keypair)

    def import_key(self, name: str, private_key_hex: str, passphrase: str) -> Identity:
        """Create identity ``name`` around an existing Ethereum private key (64 hex digits) and a
        new X25519 key."""
        return self.create(name, passphrase, private_key=fmt.private_key_bytes(private_key_hex))

    def change_passphrase(self, name: str, old_passphrase: str, new_passphrase: str) -> None:
        """Re-encrypt identity ``name`` under a new passphrase (atomic replace of the file)."""
        if not isinstance(new_passphrase, str) or not new_passphrase:
            raise KeystoreError(f"cannot protect keystore '{name}' with an empty passphrase")
        identity = self.unlock(name, old_passphrase)
        data = fmt.encode(identity.account, identity.encryption, new_passphrase, self.scrypt_n)
        self._write(self.path_for(name), data, name, replace=True)

    def _write(self, path: Path, data: bytes, name: str, *, replace: bool) -> None:
        """Write the file atomically with mode 0600: replacing it, or (``replace=False``) only if
        no file of that name exists, checked and created in one step."""
        try:
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
            atomic_write(path, data, mode=0o600, exclusive=not replace)
        except DestinationExists:
            raise KeystoreError(
                f"a keystore named '{name}' already exists ({path}); choose another name"
            ) from None
        except OSError as exc:
            raise KeystoreError(f"cannot write keystore '{name}' in {self.path}: {exc.strerror}") from None

    # --- reading ---------------------------------------------------------------------------------
    def _load(self, name: str) -> tuple[Path, fmt.ParsedFile]:
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
            parsed = fmt.parse(json.loads(raw.decode("utf-8")))
        except (UnicodeDecodeError, ValueError):
            raise KeystoreError(
                f"keystore file {path} is malformed (not valid JSON); restore it from a backup"
            ) from None
        except fmt.Malformed as exc:
            raise KeystoreError(
                f"keystore file {path} is malformed ({exc}); restore it from a backup"
            ) from None
        return path, parsed

    def public(self, name: str) -> KeyInfo:
        """Name, address and encryption public key of identity ``name`` (no passphrase needed)."""
        path, parsed = self._load(name)
        return KeyInfo(name=name, address=parsed.address, encryption_public=parsed.public, path=path,
                       kdf_cost=parsed.weakest()[1])

    def list(self) -> KeyListing:
        """Public information of every readable identity in the directory, sorted by name; the
        files that cannot be read are named in the result's ``unreadable``."""
        infos: builtins.list[KeyInfo] = []
        unreadable: builtins.list[UnreadableKeystore] = []
        for name in self.names():
            try:
                infos.append(self.public(name))
            except KeyNotFound:
                continue  # removed since the directory was listed
            except KeystoreError as error:
                unreadable.append(UnreadableKeystore(name, self.path_for(name), str(error)))
        return KeyListing(infos, unreadable)

    def unlock(self, name: str, passphrase: str) -> Identity:
        """Decrypt identity ``name``. Raises WrongPassphrase, KeyNotFound or KeystoreError."""
        path, parsed = self._load(name)
        account, keypair = fmt.decrypt(parsed, passphrase, name, path)
        return Identity(name=name, address=account.address, account=account, encryption=keypair)
