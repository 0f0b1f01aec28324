"""Key envelopes kept like records: journaled before they are pinned, unpinned unless their
transaction lands.

An envelope (secrets sealed to one reader) is useful only once a transaction points at it (a read
grant, ``publishKeyEnvelope``). :func:`publishing` adds it to IPFS unpinned, journals it (its CID,
patient and recipient, in the home's journal beside the record writes), pins it, and then runs the
block that sends the transaction; that transaction is kept in the same entry before it leaves
(:func:`medledger.chain.outbox.journaling`). The entry goes once the transaction is written. If the
block fails before anything was sent, or the chain refused or reverted it, the envelope is unpinned
at once. A writer killed anywhere leaves an entry that :func:`settle` (run by recovery,
:func:`medledger.records.recover_pending`) settles: the transaction landed (or was re-sent and
landed) -> kept; it may still land -> left alone; otherwise (never signed, reverted, lost) ->
unpinned. So no pinned envelope outlives a transaction that never happened.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from medledger.chain.outbox import JournalEntry, journal_directory, journaling
from medledger.chain.recovery import Outcome, describe_outcome
from medledger.client import Client
from medledger.errors import MedledgerError

__all__ = ["is_envelope_entry", "publishing", "settle"]

#: The journal entry's marker (and its file name's prefix).
KIND = "envelope"


def is_envelope_entry(entry: JournalEntry) -> bool:
    return entry.fields.get("kind") == KIND


@contextlib.contextmanager
def publishing(client: Client, envelope: bytes, *, patient: str, recipient: str) -> Iterator[bytes]:
    """Pin ``envelope`` (journaled first) and yield its on-chain pointer; send the one transaction that
    publishes it inside the block. See the module's docstring for what a failure or a kill leaves."""
    cid = client.store.add_bytes(envelope, pin=False)  # unpinned blocks are garbage: nothing to undo yet
    pointer = client.pointer_of(cid, len(envelope))
    path = journal_directory(client.settings.cache_dir, client.chain.chain_id) / f"{KIND}-{pointer.hex()}.json"
    entry = JournalEntry.create(path, {"kind": KIND, "cid": cid, "patient": patient, "recipient": recipient})
    try:
        client.store.pin(cid)
        with journaling(entry):
            yield pointer
    except BaseException:
        if entry.tx is None:  # never sent, or refused or reverted: it can never be pointed at
            _discard(client, entry)
        else:
            entry.release()  # it may still land, or be re-sent: recovery settles it
        raise
    entry.remove()


def _discard(client: Client, entry: JournalEntry) -> None:
    try:
        client.store.unpin(str(entry.fields["cid"]))
    except MedledgerError:  # the original error matters more; recovery unpins it later
        entry.release()
        return
    entry.remove()


def settle(client: Client, entry: JournalEntry, outcomes: dict[str, Outcome]) -> tuple[str, str]:
    """Settle the envelope entry of a writer that stopped: ``(what, outcome)`` for the report."""
    cid = str(entry.fields["cid"])
    tx = entry.tx
    if tx is None:
        client.store.unpin(cid)
        entry.remove()
        return f"key envelope {cid}", (
            f"rolled back (its transaction was never sent): unpinned; {entry.fields.get('recipient')} did not get "
            "these keys: grant again, or run `medledger keys sync` (it sends every reader the keys it lacks)"
        )
    label = f"{tx.what} (tx {tx.tx_hash})"
    outcome = outcomes.get(tx.tx_hash)
    if outcome is None:
        return label, "pending (its transaction was not looked at yet); still journaled"
    said = describe_outcome(outcome)
    if not outcome.final:
        return label, said
    if not outcome.landed:
        client.store.unpin(cid)
        said += "; its key envelope was unpinned"
    entry.remove()
    return label, said
