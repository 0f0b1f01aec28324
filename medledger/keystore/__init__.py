"""A participant's keys, each identity in one passphrase-protected JSON file.

Modules: :mod:`.format` (the file format: parse, encode, open), :mod:`.store` (the directory:
create, list, unlock), :mod:`.names` (names and passphrase variables).

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

from medledger.paths import medledger_home

from .format import (
    DEFAULT_SCRYPT_N,
    MIN_SCRYPT_N,
    WeakKeystoreWarning,
    allow_weak_kdf_for_tests,
    weak_kdf_allowed,
)
from .names import passphrase_env_var, passphrase_from_env, validate_name
from .store import Identity, KeyInfo, KeyListing, Keystore, UnreadableKeystore, default_keystore_dir

__all__ = [
    "DEFAULT_SCRYPT_N",
    "MIN_SCRYPT_N",
    "Identity",
    "KeyInfo",
    "KeyListing",
    "Keystore",
    "UnreadableKeystore",
    "WeakKeystoreWarning",
    "allow_weak_kdf_for_tests",
    "default_keystore_dir",
    "medledger_home",
    "passphrase_env_var",
    "passphrase_from_env",
    "validate_name",
    "weak_kdf_allowed",
]
