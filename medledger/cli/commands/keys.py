"""``medledger keys``: identities in the local keystore (one passphrase-protected file each), and ETH
for their gas from a local development node (``keys fund``, ``keys create --fund``).

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
from typing import TYPE_CHECKING, Any

import click

from medledger.errors import KeystoreError

from ..context import State, with_state
from ..errors import MedledgerGroup
from ..lazy import lazy
from ..options import common_options, format_option
from ..output import Column, emit, key_info_json, listing, note, output_format
from . import keysync

if TYPE_CHECKING:
    from medledger import chain, keystore
    from medledger.chain import devfund
else:
    chain = lazy("medledger.chain")
    devfund = lazy("medledger.chain.devfund")
    keystore = lazy("medledger.keystore")

#: ETH that `keys fund` (and `keys create --fund`) sends by default: gas for a deployment and more.
DEFAULT_FUND_ETH = 10.0

#: Hidden, for tests only: scrypt cost (power of two) of keystores written by ``keys create``.
#: Lowering it makes keystores fast to crack; never set it for real keys.
SCRYPT_N_ENV = "MEDLEDGER_KEYSTORE_SCRYPT_N"
#: Where ``keys create --import-key`` reads the private key from when set (else a hidden prompt).
IMPORT_KEY_ENV = "MEDLEDGER_IMPORT_KEY"
#: Where ``keys create --import-encryption-key`` reads the X25519 secret from (else a hidden prompt).
IMPORT_ENCRYPTION_KEY_ENV = "MEDLEDGER_IMPORT_ENCRYPTION_KEY"


@click.group(cls=MedledgerGroup)
def keys() -> None:
    """Create, list and show local identities (keystore files); keep a patient's keys in step (sync)."""


def _scrypt_n() -> int:
    raw = os.environ.get(SCRYPT_N_ENV)
    if not raw:
        return keystore.DEFAULT_SCRYPT_N
    if not keystore.weak_kdf_allowed():
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
    passphrase = keystore.passphrase_from_env(name)
    if passphrase is not None:
        return passphrase
    try:
        return click.prompt(f"New passphrase for '{name}'", hide_input=True, confirmation_prompt=True, err=True)
    except click.Abort:
        raise KeystoreError(
            f"no passphrase for the new keystore '{name}': set {keystore.passphrase_env_var(name)} or run the "
            "command in a terminal to be asked for it"
        ) from None


@keys.command("create")
@click.argument("name")
@click.option(
    "--import-key",
    "import_key",
    is_flag=True,
    help=f"Use an existing Ethereum private key (read from ${IMPORT_KEY_ENV} or a hidden prompt, never argv).",
)
@click.option(
    "--import-encryption-key",
    "import_encryption",
    is_flag=True,
    help=f"Restore an existing X25519 encryption secret (from ${IMPORT_ENCRYPTION_KEY_ENV} or a hidden prompt).",
)
@click.option(
    "--fund", is_flag=True, help=f"On a local development chain: send it {DEFAULT_FUND_ETH:g} ETH (see `keys fund`)."
)
@common_options(identity=False)
@with_state
def create(state: State, name: str, import_key: bool, import_encryption: bool, fund: bool) -> None:
    """Create identity NAME: an Ethereum account and an X25519 encryption key pair, saved under a
    passphrase in <home>/keys/NAME.json."""
    store = state.keystore(scrypt_n=_scrypt_n())
    store.path_for(name)  # validates the name before asking for anything
    if store.exists(name):
        raise KeystoreError(f"a keystore named '{name}' already exists ({store.path_for(name)}); choose another name")
    if fund:
        devfund.dev_client(_chain(state))  # refused here, before anything is written, on any other chain
    private_key = _secret(IMPORT_KEY_ENV, "Private key to import (64 hex digits)") if import_key else None
    encryption_secret = None
    if import_encryption:
        text = _secret(IMPORT_ENCRYPTION_KEY_ENV, "X25519 encryption secret to import (64 hex digits)").strip()
        text = text[2:] if text[:2].lower() == "0x" else text
        if not re.fullmatch(r"[0-9a-fA-F]{64}", text):
            raise KeystoreError("not a valid encryption secret: expected 64 hex digits (optionally with 0x)")
        encryption_secret = bytes.fromhex(text)
    passphrase = _new_passphrase(name)
    identity = store.create(name, passphrase, private_key, encryption_secret=encryption_secret)
    info = store.public(identity.name)
    note(f"Back up {info.path}: without it and its passphrase this identity cannot be recovered.")
    funded = _fund(state, info.address, DEFAULT_FUND_ETH) if fund else None
    emit(
        {**key_info_json(info), "imported": import_key, "funded": _funded_json(funded)},
        f"Created identity '{name}'\n"
        f"  address         {info.address}\n"
        f"  encryption key  {info.encryption_public_hex}\n"
        f"  file            {info.path}" + (f"\n  {_funded_text(funded)}" if funded else ""),
    )


def _chain(state: State) -> chain.Chain:
    from medledger.client import connect_chain  # with the home's durability: the funding is reported written

    return connect_chain(state.settings())


def _fund(state: State, address: str, eth: float) -> devfund.Funded:
    return devfund.fund(_chain(state), address, int(eth * devfund.WEI_PER_ETH))


def _funded_json(funded: devfund.Funded | None) -> dict[str, Any] | None:
    if funded is None:
        return None
    return {
        "address": funded.address,
        "amount_wei": funded.amount_wei,
        "from": funded.source,
        "tx_hash": funded.tx_hash,
        "balance_wei": funded.balance_wei,
    }


def _funded_text(funded: devfund.Funded) -> str:
    eth = devfund.WEI_PER_ETH
    return (
        f"funded          {funded.amount_wei / eth:g} ETH from dev account {funded.source} "
        f"(balance {funded.balance_wei / eth:g} ETH)"
    )


@keys.command("fund")
@click.argument("name")
@click.option(
    "--eth",
    type=click.FloatRange(min=0, min_open=True, max=1000),
    default=DEFAULT_FUND_ETH,
    show_default=True,
    help="How much ETH to send.",
)
@common_options(identity=False)
@with_state
def fund(state: State, name: str, eth: float) -> None:
    """Send ETH for gas to NAME (a local identity or an address) from a dev account of the local chain.

    Only on a local development node (anvil, as `medledger node up` starts it): refused on any other
    chain, where an identity is funded from an account that holds ETH."""
    address = state.address(name, "NAME")
    funded = _fund(state, address, eth)
    emit(_funded_json(funded), f"{address}: {_funded_text(funded).removeprefix('funded').strip()}")


KEY_COLUMNS = [
    Column("name", "NAME"),
    Column("address", "ADDRESS"),
    Column("encryption_public_key", "ENCRYPTION KEY"),
    Column("path", "FILE", in_table=False),
    Column("passphrase_env", "PASSPHRASE VARIABLE", in_table=False),
]


@keys.command("list")
@format_option
@common_options(identity=False)
@with_state
def list_(state: State) -> None:
    """List the identities in the keystore (no passphrase needed)."""
    output_format()
    store = state.keystore()
    infos = store.list()
    for bad in infos.unreadable:
        note(f"Warning: identity {bad.name!r} is not listed: {bad.reason}")
    listing(
        [key_info_json(i) for i in infos],
        KEY_COLUMNS,
        empty=f"No identities in {store.path}; create one with `medledger keys create NAME`.",
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
        f"passphrase env  {keystore.passphrase_env_var(info.name)}",
    )


keys.add_command(keysync.sync)

COMMANDS = [keys]
