"""The session state behind every command: option values, and what is built from them on first use
(settings, the connected client, the keystore, the unlocked ``--as`` identity).

Passphrases never come from the command line: from ``MEDLEDGER_PASSPHRASE_<NAME>`` (or
``MEDLEDGER_PASSPHRASE``), otherwise from a hidden prompt on the terminal.
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from medledger.errors import KeystoreError, MedledgerError, WrongPassphrase
from medledger.paths import medledger_home

if TYPE_CHECKING:
    from medledger.client import Client
    from medledger.config import Settings
    from medledger.keystore import Identity, Keystore

F = TypeVar("F", bound=Callable[..., Any])

IDENTITY_ENV = "MEDLEDGER_IDENTITY"
PASSPHRASE_ATTEMPTS = 3


class State:
    """Option values collected while parsing, and what is built from them on first use."""

    def __init__(self) -> None:
        self.config_file: Path | None = None
        self.home: Path | None = None
        self.rpc_url: str | None = None
        self.chain_id: int | None = None
        self.ipfs_api: str | None = None
        self.json: bool = False
        self.format: str | None = None
        self.verbose: int = 0
        self.identity_name: str | None = None
        self._settings: Settings | None = None
        self._client: Client | None = None
        self._identity: Identity | None = None
        self._keystore: Keystore | None = None

    def forget(self) -> None:
        """Drop what was built from the options (an option changed)."""
        self._settings = None
        self._client = None
        self._keystore = None

    # --- settings and connections ----------------------------------------------------------------
    def settings(self) -> Settings:
        from medledger.config import load_settings

        if self._settings is None:
            self._settings = load_settings(
                self.config_file,
                home=self.home or medledger_home(),
                rpc_url=self.rpc_url,
                chain_id=self.chain_id,
                ipfs_api=self.ipfs_api,
            )
        return self._settings

    def client(self) -> Client:
        """The connected :class:`medledger.client.Client` (connects on first use)."""
        if self._client is None:
            from medledger.client import Client

            self._client = Client.connect(self.settings())
        return self._client

    def keystore(self, scrypt_n: int | None = None) -> Keystore:
        from medledger.keystore import Keystore

        if scrypt_n is not None:
            return Keystore(self.settings().keys, scrypt_n=scrypt_n)
        if self._keystore is None:
            self._keystore = Keystore(self.settings().keys)
        return self._keystore

    # --- identities -----------------------------------------------------------------------------
    def require_name(self) -> str:
        if not self.identity_name:
            raise click.UsageError(
                "This command acts as one of your identities: pass --as NAME (or set "
                f"{IDENTITY_ENV}). `medledger keys list` shows the identities in your keystore."
            )
        return self.identity_name

    def identity(self) -> Identity:
        """The unlocked ``--as`` identity (passphrase from the environment or a hidden prompt)."""
        if self._identity is None:
            self._identity = unlock(self.keystore(), self.require_name())
        return self._identity

    def own_address(self) -> str:
        """The address of ``--as`` without unlocking it (public keystore fields only)."""
        if self._identity is not None:
            return self._identity.address
        return self.keystore().public(self.require_name()).address

    def address(self, text: str, what: str = "ADDRESS") -> str:
        """An address given as ``0x…`` or as the name of a keystore in the local keystore."""
        return resolve_address(self.keystore(), text, what)

    def address_or_self(self, text: str | None, what: str = "--patient") -> str:
        return self.address(text, what) if text else self.own_address()

    def names(self) -> dict[str, str]:
        """Local keystore names by address (for friendlier tables); unreadable files are skipped."""
        out: dict[str, str] = {}
        ks = self.keystore()
        for name in ks.names():
            try:
                out[ks.public(name).address] = name
            except MedledgerError:
                continue
        return out


def _unlock_once(keystore: Keystore, name: str, passphrase: str) -> Identity:
    """Unlock; a warning about a weak keystore file is shown as a note, not a Python warning."""
    from medledger.keystore import WeakKeystoreWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", WeakKeystoreWarning)
        identity = keystore.unlock(name, passphrase)
    for warning in caught:
        click.echo(f"Warning: {warning.message}", err=True)
    return identity


def unlock(keystore: Keystore, name: str) -> Identity:
    return unlock_with_passphrase(keystore, name)[0]


def unlock_with_passphrase(keystore: Keystore, name: str) -> tuple[Identity, str]:
    """Unlock ``name`` (passphrase from the environment or a hidden prompt); the identity and the
    passphrase that opened it (for a command that rewrites the file)."""
    from medledger.keystore import passphrase_env_var, passphrase_from_env

    info = keystore.public(name)  # fails early (KeyNotFound) before asking for a passphrase
    passphrase = passphrase_from_env(name)
    if passphrase is not None:
        return _unlock_once(keystore, name, passphrase), passphrase
    for attempt in range(1, PASSPHRASE_ATTEMPTS + 1):
        try:
            passphrase = click.prompt(f"Passphrase for keystore '{name}' ({info.address})", hide_input=True, err=True)
        except click.Abort:
            raise KeystoreError(
                f"no passphrase for keystore '{name}': set {passphrase_env_var(name)} or run the "
                "command in a terminal to be asked for it"
            ) from None
        try:
            return _unlock_once(keystore, name, passphrase), passphrase
        except WrongPassphrase:
            if attempt == PASSPHRASE_ATTEMPTS:
                raise
            click.echo("Wrong passphrase, try again.", err=True)
    raise AssertionError("unreachable")  # pragma: no cover


def resolve_address(keystore: Keystore, text: str, what: str = "ADDRESS") -> str:
    from eth_utils import is_hex_address

    from medledger.chain.addresses import checked_address
    from medledger.errors import InvalidAddress

    text = text.strip()
    if is_hex_address(text):
        try:
            return str(checked_address(text))
        except InvalidAddress as exc:
            raise click.BadParameter(str(exc), param_hint=what) from None
    if re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", text) and set(text) != {"."} and keystore.exists(text):
        return keystore.public(text).address
    raise click.BadParameter(
        f"{text!r} is neither an address (0x + 40 hex digits) nor the name of a keystore in {keystore.path}",
        param_hint=what,
    )


def get_state() -> State:
    ctx = click.get_current_context()
    return ctx.ensure_object(State)


def with_state(f: F) -> F:
    """Pass the :class:`State` as the first argument."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return f(get_state(), *args, **kwargs)

    return wrapper  # type: ignore[return-value]
