"""The journal of record writes in flight, and settling what a crash left.

A record write (:mod:`.write`) adds its ciphertext to IPFS unpinned, journals it (record id, CID,
patient, fingerprint) and only then pins it; its transaction is sent inside the entry
(:func:`medledger.chain.outbox.journaling`), so the signed transaction is on disk before it leaves.
The entry goes once the transaction is written. When the journal cannot be written (a full disk),
the write stops before anything is pinned (:class:`~medledger.errors.JournalUnwritable`).

:func:`recover_pending` settles what a crash left: first the transactions (found mined, waited for,
sent again if the chain forgot them, or given up on: :mod:`medledger.chain.recovery`), then each
record:

- its transaction registered *this* record (the receipt's event names the record id, the patient,
  the author who signed and the fingerprint) -> kept: ``registered`` (``re-applied`` when it had to
  be sent again);
- its transaction may still be mined (pending, or blocked behind a missing nonce) -> left alone with
  its ciphertext pinned: ``pending``. What a sent transaction may still register is never unpinned;
- no transaction, or one that reverted or can never be mined -> the ciphertext is unpinned: ``rolled
  back`` (unless the same record is registered by another transaction, a retry: ``registered``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medledger.chain.events import BatchAnchored, RecordRegistered
from medledger.chain.outbox import Journal, JournalEntry, SignedTx, journal_directory, process_started
from medledger.chain.recovery import Outcome, recover_transactions
from medledger.client import Client

__all__ = ["journal_dir", "journal_write", "process_started", "recover_pending", "registered"]

#: Entries with a ``tx`` field as the chain layer writes it; older entries have no ``format``.
FORMAT = 2


def journal_dir(client: Client, *, create: bool = True) -> Path:
    path = journal_directory(client.settings.cache_dir, client.chain.chain_id)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def journal_write(client: Client, record_id: bytes, cid: str, patient: str, fingerprint: bytes) -> JournalEntry:
    """Journal a ciphertext (added, not yet pinned) about to be registered, with this process's
    identity. :class:`~medledger.errors.JournalUnwritable` if the entry cannot be written (nothing is
    left behind)."""
    path = journal_dir(client, create=False) / f"{record_id.hex()}.json"
    fields = {
        "format": FORMAT,
        "record_id": "0x" + record_id.hex(),
        "cid": cid,
        "patient": patient,
        "fingerprint": "0x" + fingerprint.hex(),
    }
    return JournalEntry.create(path, fields)


def registered(client: Client, record_id: bytes) -> bool:
    """Whether a record or batch with this id is registered on chain."""
    return client.contract.record(record_id).exists


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
        for entry in journal.entries():
            if "record_id" in entry.fields and not entry.in_progress():
                outcome = _settle_record(client, entry, recovery.outcomes)
                settled.append((str(entry.fields["record_id"]), outcome))
    return settled


def _settle_record(client: Client, entry: JournalEntry, outcomes: dict[str, Outcome]) -> str:
    record_id = bytes.fromhex(str(entry.fields["record_id"])[2:])
    tx = entry.tx
    if tx is None and entry.fields.get("format") != FORMAT and registered(client, record_id):
        entry.remove()  # an entry of the journal before transactions were kept: it landed
        return "registered"
    outcome = outcomes.get(tx.tx_hash) if tx is not None else None
    if tx is not None and outcome is None:
        return "pending (its transaction was not looked at yet)"  # never undo what may still land
    if outcome is not None and not outcome.final:
        return f"pending ({outcome.state}: {outcome.detail})"
    if outcome is not None and outcome.landed and _registers(client, entry, tx, outcome.receipt):
        entry.remove()
        return "re-applied" if outcome.state == "re-sent" else "registered"
    if _registered_elsewhere(client, record_id, entry):
        entry.remove()
        return "registered"
    client.store.unpin(str(entry.fields["cid"]))
    entry.remove()
    return "rolled back"


def _ours(event: Any, entry: JournalEntry) -> bool:
    """Whether a RecordRegistered/BatchAnchored event is the record this entry journaled."""
    record_id = getattr(event, "record_id", None) or getattr(event, "root", None)
    if record_id is None or "0x" + bytes(record_id).hex() != entry.fields["record_id"]:
        return False
    if str(event.patient).lower() != str(entry.fields["patient"]).lower():
        return False
    fingerprint = getattr(event, "fingerprint", None)
    return fingerprint is None or "0x" + bytes(fingerprint).hex() == entry.fields.get("fingerprint")


def _registers(client: Client, entry: JournalEntry, tx: SignedTx | None, receipt: dict[str, Any] | None) -> bool:
    """Whether the mined transaction registered this very record, authored by its signer."""
    if tx is None or receipt is None:
        return False
    events = client.contract.codec.decode_all(receipt.get("logs", []))
    return any(
        isinstance(e, (RecordRegistered, BatchAnchored)) and _ours(e, entry) and e.author.lower() == tx.sender.lower()
        for e in events
    )


def _registered_elsewhere(client: Client, record_id: bytes, entry: JournalEntry) -> bool:
    """Whether another transaction registered this record (the same id, patient and fingerprint)."""
    if not registered(client, record_id):
        return False
    events: list[Any] = [*client.contract.logs(RecordRegistered, record_id=record_id)]
    events += client.contract.logs(BatchAnchored, root=record_id)
    return any(_ours(e, entry) for e in events)
