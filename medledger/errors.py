"""The exceptions medledger raises.

Every error derives from :class:`MedledgerError`, so callers can catch one type. Each subclass names
what went wrong; its message says what happened and, where there is one, what to do about it.
Messages never contain health data: only ids, addresses, codes, CIDs and paths.
"""

from __future__ import annotations


class MedledgerError(Exception):
    """Root of every error medledger raises on purpose."""

    #: Process exit code used by the CLI for this class of error.
    exit_code: int = 1


# --- configuration and local services -------------------------------------------------------------
class ConfigError(MedledgerError):
    """The configuration file or environment is malformed or incomplete."""

    exit_code = 2


class ServiceError(MedledgerError):
    """A local service (anvil, the IPFS daemon) could not be started, stopped or reached."""

    exit_code = 3


class ServiceUnavailable(ServiceError):
    """A service is down or unreachable. The message names the address tried and how to start it."""


# --- keys and wallets ----------------------------------------------------------------------------
class KeystoreError(MedledgerError):
    """A keystore file is missing, malformed or cannot be written."""

    exit_code = 4


class WrongPassphrase(KeystoreError):
    """The passphrase does not open the keystore."""


class KeyNotFound(KeystoreError):
    """No key (participant, category key, record key) is available for the requested operation."""


# --- cryptography and integrity ------------------------------------------------------------------
class CryptoError(MedledgerError):
    """Encryption or decryption failed for a reason other than tampering (bad key length, format)."""

    exit_code = 5


class DecryptionError(CryptoError):
    """The key at hand cannot open this ciphertext (wrong key, or a key for another record)."""


class NoKeyOpens(KeyNotFound, DecryptionError):
    """None of the category keys at hand opens a record blob's sealed record key. A blob does not
    say which key epoch it was sealed to, so this is both: the needed epoch is not held
    (KeyNotFound) or a held key is wrong (DecryptionError). The remedy is a current key envelope."""


class TamperingDetected(CryptoError):
    """Ciphertext, CID or fingerprint does not match what was committed: the data was altered."""

    exit_code = 6


# --- record content ------------------------------------------------------------------------------
class RecordFormatError(MedledgerError):
    """Input is not a valid record: invalid FHIR JSON, unknown content type, unreadable file."""

    exit_code = 7


# --- storage -------------------------------------------------------------------------------------
class StorageError(MedledgerError):
    """The content-addressed store (IPFS) failed an operation."""

    exit_code = 8


class ContentNotFound(StorageError):
    """The store does not hold the requested CID (or did not return it before the timeout)."""


# --- chain ---------------------------------------------------------------------------------------
class ChainError(MedledgerError):
    """A blockchain call or transaction failed."""

    exit_code = 9


class ContractRevert(ChainError):
    """A contract call reverted. ``error_name`` and ``args`` hold the decoded custom error."""

    def __init__(self, message: str, error_name: str | None = None, args: dict | None = None) -> None:
        super().__init__(message)
        self.error_name = error_name
        self.error_args = args or {}


class AccessDenied(ContractRevert):
    """The chain refused an access: no consent, expired or not yet valid consent, wrong category or
    purpose, suspended participant, or caller not authorised for the operation."""

    exit_code = 10


class RecordErased(ContractRevert):
    """The record was erased by its patient; it can no longer be read."""

    exit_code = 11


class DeploymentNotFound(ChainError):
    """No medledger deployment is known for the selected chain."""


# --- codes ---------------------------------------------------------------------------------------
class UnknownCode(MedledgerError, ValueError):
    """A category, purpose, access or participant-kind name, number or mask is not known. The
    message lists the valid names."""

    exit_code = 2


class UnknownRecord(ChainError):
    """No record or batch with this id is registered on the selected chain."""
