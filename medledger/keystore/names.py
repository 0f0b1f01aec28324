"""Keystore names and the environment variables their passphrases may come from."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from medledger.errors import KeystoreError

NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
#: Prefix of every passphrase variable (``MEDLEDGER_PASSPHRASE`` and ``MEDLEDGER_PASSPHRASE_<NAME>``).
PASSPHRASE_ENV = "MEDLEDGER_PASSPHRASE"
#: Prefixes of the environment variables that may carry secrets (passphrases, keys to import):
#: long-lived processes medledger starts never inherit them.
SECRET_ENV_PREFIXES = (PASSPHRASE_ENV, "MEDLEDGER_IMPORT_")


def without_secrets(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` without the variables that may carry medledger secrets."""
    return {k: v for k, v in environ.items() if not k.startswith(SECRET_ENV_PREFIXES)}


def is_valid_name(name: object) -> bool:
    return isinstance(name, str) and bool(NAME.fullmatch(name)) and set(name) != {"."}


def validate_name(name: str) -> str:
    """Check a keystore name: 1 to 64 of ``A-Z a-z 0-9 _ . -``, not only dots."""
    if not is_valid_name(name):
        raise KeystoreError(
            f"invalid keystore name {name!r}: use 1 to 64 letters, digits, '_', '.' or '-'"
        )
    return name


def passphrase_env_var(name: str) -> str:
    """The per-identity environment variable: ``MEDLEDGER_PASSPHRASE_<NAME>``.

    The name is upper-cased and every character other than A-Z and 0-9 becomes ``_``.
    """
    return f"{PASSPHRASE_ENV}_" + re.sub(r"[^A-Z0-9]", "_", name.upper())


def passphrase_from_env(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The passphrase for keystore ``name`` from the environment, or None.

    Reads ``MEDLEDGER_PASSPHRASE_<NAME>`` first, then ``MEDLEDGER_PASSPHRASE``; empty values count
    as unset.
    """
    env = os.environ if environ is None else environ
    for var in (passphrase_env_var(name), PASSPHRASE_ENV):
        value = env.get(var)
        if value:
            return value
    return None
