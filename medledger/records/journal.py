"""The journal of record writes in flight, and settling what a crash left.

A record write (:mod:`.write`) adds its ciphertext to IPFS unpinned, journals it (record id, CID,
patient, author, fingerprint, key epoch) and only then pins it; its transaction is sent inside the
entry (:func:`medledger.chain.outbox.journaling`), so the signed transaction is on disk before it
leaves. A bulk ``registerRecords`` (:mod:`medledger.ingest`) is one signed transaction kept in the
entry of every record it carries. The entry goes once the transaction is written. When the journal
cannot be written (a full disk), the write stops before anything is pinned
(:class:`~medledger.errors.JournalUnwritable`).

:func:`recover_pending` settles what a crash left: first the transactions (found mined, waited for,
sent again if the chain forgot them, or given up on: :mod:`medledger.chain.recovery`; a transaction
shared by several records is settled once, so they all go the same way), then each record:

- its transaction registered *this* record: the receipt has an event for the patient's record of
  that id with the journaled author (who signed), fingerprint, key epoch and CID -> kept:
  ``registered`` (``re-applied`` when it had to be sent again);
- its transaction may still be mined (pending, or blocked behind a missing nonce) -> left alone with
  its ciphertext pinned: ``pending``. What a sent transaction may still register is never unpinned;
- no transaction, or one that reverted or can never be mined -> the ciphertext is unpinned: ``rolled
  back``, unless the patient's record of that id, rebuilt from the chain, is this one (same author,
  fingerprint, key epoch and CID: registered by a retry) -> ``registered``. A record of the same id
  under another patient, or by another author, is not ours.

Key envelopes are journaled in the same directory (:mod:`medledger.keyring.published`) and settled
here too, after the transactions: kept if their transaction landed, else unpinned.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medledger.chain import ZERO32
from medledger.chain.events import BatchAnchored, RecordRegistered
from medledger.chain.outbox import Journal, JournalEntry, SignedTx, journal_directory, process_started
from medledger.chain.recovery import Outcome, recover_transactions
from medledger.client import Client
from medledger.keyring.published import is_envelope_entry
from medledger.keyring.published import settle as settle_envelope
from medledger.storage import cid_to_bytes

__all__ = ["journal_dir", "journal_write", "process_started", "recover_pending", "registered"]

#: Entries with a ``tx`` field as the chain layer writes it; older entries have no ``format``.
FORMAT = 2


def journal_dir(client: Client, *, create: bool = True) -> Path:
    path = journal_directory(client.settings.cache_dir, client.chain.chain_id)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def journal_write(
    client: Client,
    record_id: bytes,
    cid: str,
    patient: str,
    author: str,
    fingerprint: bytes = ZERO32,
    key_epoch: int | None = None,
) -> JournalEntry:
    """Journal a ciphertext (added, not yet pinned) about to be registered by ``author`` as
    ``patient``'s record ``record_id`` with ``fingerprint`` (zero for a batch, whose header holds
    none) sealed to ``key_epoch``, with this process's identity.
    :class:`~medledger.errors.JournalUnwritable` if the entry cannot be written (nothing is left
    behind)."""
    path = journal_dir(client, create=False) / f"{record_id.hex()}-{patient.lower().removeprefix('0x')}.json"
    fields: dict[str, Any] = {
        "format": FORMAT,
        "record_id": "0x" + record_id.hex(),
        "cid": cid,
        "patient": patient,
        "author": author,
        "fingerprint": "0x" + fingerprint.hex(),
    }
    if key_epoch is not None:
        fields["key_epoch"] = int(key_epoch)
    return JournalEntry.create(path, fields)


def registered(
    client: Client, patient: str, record_id: bytes, *, author: str | None = None, fingerprint: bytes | None = None
) -> bool:
    """Whether ``patient`` has a record or batch ``record_id`` on chain (with this ``author`` and
    ``fingerprint``, when given: then it is the one a journaled write registered; an erased one keeps
    its author but no fingerprint)."""
    info = client.contract.record(patient, record_id)
    if not info.exists:
        return False
    if author is not None and info.author.lower() != author.lower():
        return False
    return fingerprint is None or info.erased or info.fingerprint == fingerprint


def recover_pending(client: Client, *, wait: float = 0.0) -> list[tuple[str, str]]:
    """Settle the writes interrupted by a crash (see the module's docstring); ``wait``: seconds to
    wait for a transaction still pending. Writes of running processes are left alone. Returns
    ``(record id or transaction, outcome)`` pairs. Safe to run at any time."""
    journal = Journal(journal_dir(client, create=False))
    if not journal.directory.is_dir():
        return []  # nothing was ever journaled here
    with journal.recovering():
        recovery = recover_transactions(client.chain, journal, wait=wait)
        settled = list(recovery.reports)
        carriers = _carriers(client, recovery.outcomes)
        for entry in journal.entries():
            if "record_id" in entry.fields and not entry.in_progress():
                outcome = _settle_record(client, entry, recovery.outcomes, carriers)
                settled.append((str(entry.fields["record_id"]), outcome))
            elif is_envelope_entry(entry) and not entry.in_progress():
                settled.append(settle_envelope(client, entry, recovery.outcomes))
    return settled


def _key(patient: str, record_id: bytes | str) -> tuple[str, str]:
    return patient.lower(), record_id if isinstance(record_id, str) else "0x" + record_id.hex()


def _carriers(client: Client, outcomes: dict[str, Outcome]) -> dict[tuple[str, str], Outcome]:
    """The journaled transaction that registers each record, by ``(patient, record id)``: a bulk
    registration is kept in every one of its records' entries, but a writer killed while keeping it
    leaves some of them without it; those follow it too (it may have been sent again)."""
    carriers: dict[tuple[str, str], Outcome] = {}
    for outcome in outcomes.values():
        for patient, record_id in client.contract.records_registered_by(outcome.tx):
            known = carriers.get(_key(patient, record_id))
            if known is None or (known.final and not known.landed):  # what may still land, or did, counts
                carriers[_key(patient, record_id)] = outcome
    return carriers


def _settle_record(
    client: Client, entry: JournalEntry, outcomes: dict[str, Outcome], carriers: dict[tuple[str, str], Outcome]
) -> str:
    tx = entry.tx
    outcome = outcomes.get(tx.tx_hash) if tx is not None else None
    if tx is None:
        outcome = carriers.get(_key(str(entry.fields["patient"]), str(entry.fields["record_id"])))
        tx = outcome.tx if outcome is not None else None
    elif outcome is None:
        return "pending (its transaction was not looked at yet)"  # never undo what may still land
    if outcome is not None and not outcome.final:
        return f"pending ({outcome.state}: {outcome.detail})"
    if outcome is not None and outcome.landed and _registers(client, entry, tx, outcome.receipt):
        entry.remove()
        return "re-applied" if outcome.state == "re-sent" else "registered"
    if _registered_elsewhere(client, entry):
        entry.remove()
        return "registered"
    client.store.unpin(str(entry.fields["cid"]))
    entry.remove()
    return "rolled back"


def _hex(value: Any) -> str:
    return "0x" + bytes(value).hex()


def _matches(entry: JournalEntry, author: str, fingerprint: bytes, key_epoch: int, cid: bytes, erased: bool) -> bool:
    """Whether a record with these header fields and CID is the one ``entry`` journaled (fields an
    older entry does not have are not compared; an erased record has no fingerprint any more)."""
    fields = entry.fields
    if "author" in fields and author.lower() != str(fields["author"]).lower():
        return False
    if "key_epoch" in fields and key_epoch != int(fields["key_epoch"]):
        return False
    if cid != cid_to_bytes(str(fields["cid"])):
        return False
    return erased or _hex(fingerprint) == fields.get("fingerprint")


def _ours(event: Any, entry: JournalEntry) -> bool:
    """Whether a RecordRegistered/BatchAnchored event registered the record this entry journaled."""
    record = isinstance(event, RecordRegistered)
    if _hex(event.record_id if record else event.root) != entry.fields["record_id"]:
        return False
    if str(event.patient).lower() != str(entry.fields["patient"]).lower():
        return False
    fingerprint = bytes(event.fingerprint) if record else ZERO32  # a batch's header holds none
    return _matches(entry, event.author, fingerprint, int(event.key_epoch), bytes(event.cid), False)


def _registers(client: Client, entry: JournalEntry, tx: SignedTx | None, receipt: dict[str, Any] | None) -> bool:
    """Whether the mined transaction registered this very record, authored by its signer."""
    if tx is None or receipt is None:
        return False
    events = client.contract.codec.decode_all(receipt.get("logs", []))
    return any(
        isinstance(e, (RecordRegistered, BatchAnchored)) and _ours(e, entry) and e.author.lower() == tx.sender.lower()
        for e in events
    )


def _registered_elsewhere(client: Client, entry: JournalEntry) -> bool:
    """Whether the patient's record of this id, rebuilt from the chain, is the one journaled (another
    transaction registered it: a retry)."""
    record_id = bytes.fromhex(str(entry.fields["record_id"])[2:])
    info = client.contract.record(str(entry.fields["patient"]), record_id)
    if not info.exists:
        return False
    header = info.current()
    return _matches(entry, header.author, header.fingerprint, header.key_epoch, bytes(info.cid), header.erased)
