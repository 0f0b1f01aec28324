"""Writing records: validate, check the write consent, encrypt as a stream under a fresh record key
sealed to the category key, add the ciphertext to IPFS (CIDv1), journal it, pin it, then register the
fingerprint on chain with the signed transaction journaled before it is sent (:mod:`.journal`). A
failure before the transaction is sent (or one the chain refused) unpins the ciphertext again; after
it, the journal keeps the write until recovery settles it."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from medledger import codes, crypto
from medledger.access import check_access
from medledger.chain import Receipt
from medledger.chain.outbox import JournalEntry, journaling
from medledger.client import Client, as_address
from medledger.errors import MedledgerError, UnknownRecord
from medledger.keyring import Keyring
from medledger.keystore import Identity
from medledger.storage import cid_to_bytes

from .journal import journal_write, recover_pending, registered
from .models import Progress, WriteResult
from .payload import Concat, Source, open_source, payload_header, prepare


@dataclass(frozen=True)
class Stored:
    """A ciphertext added to IPFS (pinned) and journaled, not yet registered on chain."""

    record_id: bytes
    cid: str
    fingerprint: bytes
    size: int  # the record's own bytes (the payload header excluded), as read_record reports them
    journal: JournalEntry


def seal_and_store(
    client: Client,
    source: Source,
    *,
    record_id: bytes,
    patient: str,
    category: int,
    epoch: int,
    public: bytes,
    content_type: str,
    record_key: bytes | None = None,
    progress: Progress | None = None,
) -> Stored:
    """The first half of every write: encrypt ``source`` under a record key sealed to the category
    key, add the ciphertext to IPFS, journal it and pin it (the journal first: if it cannot be written,
    nothing is pinned). Follow with :func:`commit` (or :func:`discard`)."""
    stream, name, owned = open_source(source)
    try:
        header = payload_header(content_type, name)
        writer = crypto.write_record_blob(
            Concat(header, stream, progress), record_id, patient, category, epoch, public, record_key=record_key
        )
        cid = client.store.add_stream(iter(writer), pin=False)
    finally:
        if owned:
            stream.close()
    journal = journal_write(client, record_id, cid, patient, writer.fingerprint)  # unpinned blocks are garbage
    stored = Stored(record_id, cid, writer.fingerprint, writer.plaintext_size - len(header), journal)
    try:
        client.store.pin(cid)
    except BaseException:
        discard(client, stored)
        raise
    return stored


def discard(client: Client, stored: Stored) -> None:
    """Undo :func:`seal_and_store`: unpin the ciphertext and drop its journal entry."""
    try:
        client.store.unpin(stored.cid)
    except MedledgerError:
        pass  # recover_pending would have done it from the journal; the original error matters more
    stored.journal.remove()


def commit(client: Client, stored: Stored, register: Callable[[], Receipt]) -> Receipt:
    """The second half of a write: the chain transaction, journaled in the write's entry; returns
    once it is written. On a failure before the transaction was sent (or one it can never recover
    from: refused, reverted) the ciphertext is discarded; after it, the entry stays for recovery."""
    try:
        with journaling(stored.journal):
            receipt = register()
    except BaseException:
        if stored.journal.tx is None:
            discard(client, stored)
        else:
            stored.journal.release()  # kept for recovery: it may land, or be re-sent
        raise
    stored.journal.remove()
    return receipt


def write_record(
    client: Client,
    author: Identity,
    patient: str,
    source: Source,
    *,
    category: int | None = None,
    purpose: int = codes.Purpose.DIRECT_CARE,
    content_type: str | None = None,
    record_id: bytes | None = None,
    progress: Progress | None = None,
) -> WriteResult:
    """Encrypt ``source`` for ``patient``, store it on IPFS and register it on chain.

    ``record_id`` lets a caller retry with the same id: a record already on chain under it is
    reported, not duplicated. (New versions of a record: :func:`amend_record`.)"""
    patient = as_address(patient)
    return _write(client, author, patient, source, category, purpose, content_type, None, record_id, progress)


def amend_record(
    client: Client,
    author: Identity,
    previous: bytes,
    source: Source,
    *,
    purpose: int = codes.Purpose.DIRECT_CARE,
    content_type: str | None = None,
    progress: Progress | None = None,
) -> WriteResult:
    """Register ``source`` as a new version of record ``previous`` (same patient and category)."""
    info = client.contract.record(previous)
    if not info.exists:
        raise UnknownRecord(previous, client.chain.chain_id)
    return _write(client, author, info.patient, source, info.category, purpose, content_type, previous, None, progress)


def _write(
    client: Client,
    author: Identity,
    patient: str,
    source: Source,
    category: int | None,
    purpose: int,
    content_type: str | None,
    supersedes: bytes | None,
    record_id: bytes | None,
    progress: Progress | None,
) -> WriteResult:
    recover_pending(client)
    content_type, cat = prepare(source, content_type, category)
    check_access(client, patient, author.address, codes.Access.WRITE, cat, purpose)
    if record_id is not None and registered(client, record_id):
        raise MedledgerError(
            f"Record 0x{record_id.hex()} is already registered, so nothing was written; read it, or write "
            "with another record id"
        )
    rid = record_id or secrets.token_bytes(32)  # 32 random bytes: no collision to check for
    epoch, public = Keyring(client).directory(patient).public_key(cat)
    stored = seal_and_store(
        client, source, record_id=rid, patient=patient, category=cat, epoch=epoch, public=public,
        content_type=content_type, progress=progress,
    )  # fmt: skip
    cid = cid_to_bytes(stored.cid)
    contract = client.contract
    if supersedes is None:
        commit(client, stored, lambda: contract.register_record(
            rid, patient, cat, purpose, stored.fingerprint, cid, sender=author, key_epoch=epoch
        ))  # fmt: skip
    else:
        commit(client, stored, lambda: contract.amend_record(
            supersedes, rid, purpose, stored.fingerprint, cid, sender=author, category=cat, patient=patient,
            key_epoch=epoch,
        ))  # fmt: skip
    return WriteResult(rid, stored.cid, stored.fingerprint, cat, content_type, stored.size)
