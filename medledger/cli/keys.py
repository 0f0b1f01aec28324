"""``medledger keys``: identities in the local keystore (one passphrase-protected file each).

Secrets never come from the command line. ``keys create`` reads the passphrase from
``MEDLEDGER_PASSPHRASE_<NAME>`` (or ``MEDLEDGER_PASSPHRASE``), else asks twice on the terminal;
``--import-key`` reads the private key from ``MEDLEDGER_IMPORT_KEY``, else a hidden prompt;
``--import-encryption-key`` reads the X25519 secret from ``MEDLEDGER_IMPORT_ENCRYPTION_KEY``, else a
hidden prompt.

For medledger's own test suite only, the hidden environment variable ``MEDLEDGER_KEYSTORE_SCRYPT_N``
(a power of two) lowers the scrypt cost of the files ``keys create`` writes; it is honoured only
when the suite has switched weak keystores on (:func:`medledger.keystore.allow_weak_kdf_for_tests`),
and refused otherwise.
"""

from __future__ import annotations

import os
import re

import click

from medledger.errors import KeystoreError
from medledger.keystore import DEFAULT_SCRYPT_N, passphrase_env_var, passphrase_from_env, weak_kdf_allowed

from .common import (
    IMPORT_ENCRYPTION_KEY_ENV,
    IMPORT_KEY_ENV,
    SCRYPT_N_ENV,
    MedledgerGroup,
    State,
    common_options,
    emit,
    key_info_json,
    note,
    table,
    with_state,
)


@click.group(cls=MedledgerGroup)
def keys() -> None:
    """Create, list and show local identities (keystore files)."""


def _scrypt_n() -> int:
    raw = os.environ.get(SCRYPT_N_ENV)
    if not raw:
        return DEFAULT_SCRYPT_N
    if not weak_kdf_allowed():
        raise KeystoreError(
            f"{SCRYPT_N_ENV} is set, but it is a knob of medledger's test suite that would make the new "
            "keystore's passphrase quick to guess; `keys create` does not honour it. Unset it."
        )
    try:
        return int(raw)
    except ValueError:
        raise KeystoreError(f"{SCRYPT_N_ENV} must be a power of two, not {raw!r}") from None


def _secret(env: str, prompt: str) -> str:
    value = os.environ.get(env)
    if value:
        return value
    try:
        return click.prompt(prompt, hide_input=True, err=True)
    except click.Abort:
        raise KeystoreError(f"no key given: set {env} or run the command in a terminal to be asked for it") from None


def _new_passphrase(name: str) -> str:
    passphrase = passphrase_from_env(name)
    if passphrase is not None:
        return passphrase
    try:
        return click.prompt(
            f"New passphrase for '{name}'", hide_input=True, confirmation_prompt=True, err=True
        )
    except click.Abort:
        raise KeystoreError(
            f"no passphrase for the new keystore '{name}': set {passphrase_env_var(name)} or run the "
            "command in a terminal to be asked for it"
        ) from None


@keys.command("create")
@click.argument("name")
@click.option(
    "--import-key", "import_key", is_flag=True,
    help=f"Use an existing Ethereum private key (read from ${IMPORT_KEY_ENV} or a hidden prompt, never argv).",
)
@click.option(
    "--import-encryption-key", "import_encryption", is_flag=True,
    help=f"Restore an existing X25519 encryption secret (from ${IMPORT_ENCRYPTION_KEY_ENV} or a hidden prompt).",
)
@common_options(identity=False)
@with_state
def create(state: State, name: str, import_key: bool, import_encryption: bool) -> None:
    """Create identity NAME: an Ethereum account and an X25519 encryption key pair, saved under a
    passphrase in <home>/keys/NAME.json."""
    keystore = state.keystore(scrypt_n=_scrypt_n())
    keystore.path_for(name)  # validates the name before asking for anything
    if keystore.exists(name):
        raise KeystoreError(f"a keystore named '{name}' already exists ({keystore.path_for(name)}); choose another name")
    private_key = _secret(IMPORT_KEY_ENV, "Private key to import (64 hex digits)") if import_key else None
    encryption_secret = None
    if import_encryption:
        text = _secret(IMPORT_ENCRYPTION_KEY_ENV, "X25519 encryption secret to import (64 hex digits)").strip()
        text = text[2:] if text[:2].lower() == "0x" else text
        if not re.fullmatch(r"[0-9a-fA-F]{64}", text):
            raise KeystoreError("not a valid encryption secret: expected 64 hex digits (optionally with 0x)")
        encryption_secret = bytes.fromhex(text)
    passphrase = _new_passphrase(name)
    identity = keystore.create(name, passphrase, private_key, encryption_secret=encryption_secret)
    info = keystore.public(identity.name)
    note(f"Back up {info.path}: without it and its passphrase this identity cannot be recovered.")
    emit(
        {**key_info_json(info), "imported": import_key},
        f"Created identity '{name}'\n"
        f"  address         {info.address}\n"
        f"  encryption key  {info.encryption_public_hex}\n"
        f"  file            {info.path}",
    )


@keys.command("list")
@common_options(identity=False)
@with_state
def list_(state: State) -> None:
    """List the identities in the keystore (no passphrase needed)."""
    keystore = state.keystore()
    infos = keystore.list()
    for bad in infos.unreadable:
        note(f"Warning: identity {bad.name!r} is not listed: {bad.reason}")
    emit(
        [key_info_json(i) for i in infos],
        lambda: table(
            ["NAME", "ADDRESS", "ENCRYPTION KEY"],
            [(i.name, i.address, i.encryption_public_hex) for i in infos],
            empty=f"No identities in {keystore.path}; create one with `medledger keys create NAME`.",
        ),
    )


@keys.command("show")
@click.argument("name")
@common_options(identity=False)
@with_state
def show(state: State, name: str) -> None:
    """Show the address and encryption public key of identity NAME (no passphrase needed)."""
    info = state.keystore().public(name)
    emit(
        key_info_json(info),
        f"name            {info.name}\n"
        f"address         {info.address}\n"
        f"encryption key  {info.encryption_public_hex}\n"
        f"file            {info.path}\n"
        f"passphrase env  {passphrase_env_var(info.name)}",
    )


COMMANDS = [keys]
