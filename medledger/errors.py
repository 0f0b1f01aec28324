"""The exceptions medledger raises.

Every error derives from :class:`MedledgerError`, so callers can catch one type. Each subclass names
what went wrong and carries the data a caller needs (the service and URL that did not answer, the
chain ids that differ, the decoded custom error of a revert); its message says what happened in
plain words. What a *user* should do next (a command to run) is the caller's business: the command
line maps these classes to exit codes and hints (:mod:`medledger.cli.errors`).
Messages never contain health data: only ids, addresses, codes, CIDs and paths.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class MedledgerError(Exception):
    """Root of every error medledger raises on purpose."""


class InvalidRequest(MedledgerError, ValueError):
    """A call's options contradict each other, so it cannot be done as asked (nothing was done)."""


class MalformedRequest(InvalidRequest):
    """A signed consent request (an EIP-712 payload, a medledger request file) or its signature is not
    well formed; ``part`` names what is wrong (``message.expiry``, ``domain``, ``signature``)."""

    def __init__(self, message: str, part: str = "") -> None:
        self.part = part
        super().__init__(message)


class InvalidAddress(InvalidRequest):
    """``value`` is not an address, or is mixed case with a wrong EIP-55 checksum (nothing was done)."""

    def __init__(self, value: str, problem: str) -> None:
        self.value = value
        super().__init__(f"{value} {problem}")


class InvalidNumber(InvalidRequest):
    """``name`` = ``value`` is not a number the contract accepts (``problem`` says why; nothing was done)."""

    def __init__(self, name: str, value: object, problem: str) -> None:
        self.name, self.value = name, value
        super().__init__(f"{name} {value!r} {problem}")


# --- configuration and local services -------------------------------------------------------------
class ConfigError(MedledgerError):
    """The configuration file or environment is malformed or incomplete."""


class ServiceError(MedledgerError):
    """A local service (anvil, the IPFS daemon) could not be started, stopped or reached."""


class ServiceUnavailable(ServiceError):
    """``service`` (e.g. "Ethereum node", "IPFS node") does not answer at ``url``."""

    def __init__(self, service: str, url: str, reason: str = "") -> None:
        self.service = service
        self.url = url
        self.reason = reason
        super().__init__(f"No {service} answers at {url}" + (f" ({reason})" if reason else ""))


class WriteInterrupted(ServiceUnavailable):
    """Transaction ``tx_hash`` (``what``) was signed and journaled, but ``service`` stopped answering
    when it was ``stage`` ("possibly sent", "sent", "mined, but not yet saved"): it is not written
    yet, and not lost either: the journal settles it (and re-sends it if the chain forgot it) once the
    node answers again."""

    def __init__(self, service: str, url: str, reason: str, tx_hash: str, what: str, stage: str) -> None:
        super().__init__(service, url, reason)
        self.tx_hash, self.what, self.stage = tx_hash, what, stage
        ServiceError.__init__(
            self,
            f"No {service} answers at {url} ({reason}). Transaction {tx_hash} ({what}) was {stage}, so it is "
            "not written yet; it is kept in this home's journal, which settles it (re-sending it if the chain "
            "forgot it) once the node answers again",
        )


class JournalUnwritable(MedledgerError):
    """The journal entry of a write could not be written to ``path`` (``reason``: the system's words,
    e.g. no space left): the write stopped before anything was pinned or sent."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(
            f"Cannot write the journal entry {path} ({reason}), so nothing was written: no ciphertext was "
            "pinned and no transaction was sent"
        )


# --- keys and wallets ----------------------------------------------------------------------------
class KeystoreError(MedledgerError):
    """A keystore file is missing, malformed or cannot be written."""


class WrongPassphrase(KeystoreError):
    """The passphrase does not open the keystore."""


class KeyNotFound(KeystoreError):
    """No key (participant, category key, record key) is available for the requested operation."""


class KeysNotPublished(KeyNotFound):
    """``patient`` has not published its category keys (it registers, or a delegate publishes them)."""

    def __init__(self, patient: str) -> None:
        self.patient = patient
        super().__init__(f"Patient {patient} has not published category keys")


class StaleCategoryKey(KeyNotFound):
    """The current key of ``category`` of ``patient`` (epoch ``epoch``) is stale since
    ``valid_until``: a reader it was released to has lost (or will have lost) its access by then, so
    no record may be sealed to it. The patient (or a delegate) rotates the category's key."""

    def __init__(self, message: str, patient: str, category: int, epoch: int, valid_until: int) -> None:
        self.patient, self.category, self.epoch, self.valid_until = patient, category, epoch, valid_until
        super().__init__(message)


class RejectedKeyWarning(UserWarning):
    """A category secret delivered in a key envelope does not match the public key the chain
    recorded for its category and epoch: it was ignored (never used). Its envelope was junk or
    forged by whoever published it."""


# --- cryptography and integrity ------------------------------------------------------------------
class CryptoError(MedledgerError):
    """Encryption or decryption failed for a reason other than tampering (bad key length, format)."""


class DecryptionError(CryptoError):
    """The key at hand cannot open this ciphertext (wrong key, or a key for another record)."""


class NoKeyOpens(KeyNotFound, DecryptionError):
    """None of the category keys at hand opens a record blob's sealed record key. A blob does not
    say which key epoch it was sealed to, so this is both: the needed epoch is not held
    (KeyNotFound) or a held key is wrong (DecryptionError). The remedy is a current key envelope."""


class TamperingDetected(CryptoError):
    """Ciphertext, CID or fingerprint does not match what was committed: the data was altered."""


# --- record content ------------------------------------------------------------------------------
class RecordFormatError(MedledgerError):
    """Input is not a valid record: invalid FHIR JSON, unknown content type, unreadable file."""


# --- storage -------------------------------------------------------------------------------------
class StorageError(MedledgerError):
    """The content-addressed store (IPFS) failed an operation."""


class ContentNotFound(StorageError):
    """The store does not hold the requested CID (or did not return it before the timeout)."""


# --- chain ---------------------------------------------------------------------------------------
class ChainError(MedledgerError):
    """A blockchain call or transaction failed."""


class WrongChain(ChainError):
    """The node at ``url`` serves chain ``served``, not the configured ``expected``."""

    def __init__(self, url: str, served: int, expected: int) -> None:
        self.url, self.served, self.expected = url, served, expected
        super().__init__(
            f"The node at {url} serves chain {served}, but chain {expected} was configured; refusing to continue."
        )


class InsufficientFunds(ChainError):
    """The sending account cannot pay for gas (``detail``: the node's words)."""

    def __init__(self, url: str, detail: str) -> None:
        self.url, self.detail = url, detail
        super().__init__(f"The node at {url} refused the transaction: {detail}.")


class TransactionPending(ChainError):
    """Transaction ``tx_hash`` was sent but not mined within ``waited`` seconds; it may still be."""

    def __init__(self, tx_hash: str, waited: float, what: str = "") -> None:
        self.tx_hash, self.waited = tx_hash, waited
        subject = f"Transaction {tx_hash}" + (f" ({what})" if what else "")
        super().__init__(f"{subject} was not mined within {waited:.0f} s; it may still be mined later")


class ContractRevert(ChainError):
    """A contract call reverted. ``error_name`` and ``error_args`` hold the decoded custom error."""

    def __init__(self, message: str, error_name: str | None = None, args: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.error_name = error_name
        self.error_args = args or {}


class AccessDenied(ContractRevert):
    """An access or change is refused: no consent, expired or not yet valid consent, wrong category or
    purpose, suspended participant, or caller not authorised for the operation."""


class RecordErased(ContractRevert):
    """The record was erased by its patient; it can no longer be read."""


class DeploymentNotFound(ChainError):
    """No medledger deployment is recorded for ``chain_id`` (in the deployments file ``path``)."""

    def __init__(self, chain_id: int, path: Path, reason: str = "") -> None:
        self.chain_id, self.path, self.reason = chain_id, path, reason
        if reason:
            super().__init__(f"The deployments file {path} is malformed ({reason})")
        else:
            super().__init__(f"No medledger deployment is recorded for chain {chain_id} (looked for {path})")


class DeploymentGone(DeploymentNotFound):
    """The deployments file ``path`` records the contract at ``address`` on chain ``chain_id``, but
    the chain has no code there: the chain was reset, or restarted without its saved state."""

    def __init__(self, chain_id: int, path: Path, address: str) -> None:
        self.chain_id, self.path, self.reason, self.address = chain_id, path, "", address
        ChainError.__init__(  # not DeploymentNotFound's message: the file is fine, the chain is not
            self,
            f"The deployments file {path} records medledger's contract at {address} on chain {chain_id}, but "
            "the chain has no contract there: it was reset, or restarted without its saved state, so nothing "
            "on it can be read or written",
        )


class UnknownRecord(ChainError):
    """No record or batch with ``record_id`` is registered on chain ``chain_id`` (for ``patient``,
    when one was named: ids are per patient)."""

    def __init__(self, record_id: bytes, chain_id: int, what: str = "", patient: str | None = None) -> None:
        self.record_id, self.chain_id, self.patient = record_id, chain_id, patient
        whose = f" of patient {patient}" if patient else ""
        super().__init__(what or f"No record or batch{whose} has id 0x{record_id.hex()} on chain {chain_id}")


class AmbiguousRecord(InvalidRequest):
    """Several patients have a record named ``record_id`` (ids are per patient): the caller must say
    whose it means (``patients``: every one of them)."""

    def __init__(self, record_id: bytes, patients: list[str]) -> None:
        self.record_id, self.patients = record_id, patients
        super().__init__(
            f"Record id 0x{record_id.hex()} exists under {len(patients)} patients ({', '.join(patients)}); "
            "say whose record you mean"
        )


# --- codes ---------------------------------------------------------------------------------------
class UnknownCode(MedledgerError, ValueError):
    """A category, purpose, access or participant-kind name, number or mask is not known. The
    message lists the valid names."""
