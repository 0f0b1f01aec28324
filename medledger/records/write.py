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
from medledger.chain import ZERO32, CategoryKey, Receipt, RecordInfo
from medledger.chain.outbox import JournalEntry, journaling
from medledger.client import Client, as_address
from medledger.errors import MedledgerError
from medledger.keyring import Keyring
from medledger.keystore import Identity
from medledger.storage import cid_to_bytes

from .journal import journal_write, recover_pending, registered
from .models import Progress, WriteResult
from .payload import Concat, Source, open_source, payload_header, prepare
from .read import find_record


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
    author: str,
    key: CategoryKey,
    content_type: str,
    record_key: bytes | None = None,
    progress: Progress | None = None,
    batch: bool = False,
) -> Stored:
    """The first half of every write: encrypt ``source`` as ``key.patient``'s record of ``key.category``
    under a record key sealed to ``key`` (the current category key), add the ciphertext to IPFS,
    journal it (a ``batch``'s header holds no fingerprint) and pin it (the journal first: if it cannot
    be written, nothing is pinned). Follow with :func:`commit` (or :func:`discard`)."""
    stream, name, owned = open_source(source)
    try:
        header = payload_header(content_type, name)
        writer = crypto.write_record_blob(
            Concat(header, stream, progress),
            record_id,
            key.patient,
            int(key.category),
            key.epoch,
            key.public_key,
            record_key=record_key,
        )
        cid = client.store.add_stream(iter(writer), pin=False)
    finally:
        if owned:
            stream.close()
    journal = journal_write(  # unpinned blocks are garbage: a failure here leaves nothing behind
        client, record_id, cid, key.patient, author, ZERO32 if batch else writer.fingerprint, key.epoch
    )
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
    patient: str | None = None,
    purpose: int = codes.Purpose.DIRECT_CARE,
    content_type: str | None = None,
    progress: Progress | None = None,
) -> WriteResult:
    """Register ``source`` as a new version of ``patient``'s record ``previous`` (same category; None:
    the one patient that has a record of that id). Only the patient or the previous version's author
    may amend it."""
    info = find_record(client, previous, patient)
    return _write(client, author, info.patient, source, info.category, purpose, content_type, info, None, progress)


def _write(
    client: Client,
    author: Identity,
    patient: str,
    source: Source,
    category: int | None,
    purpose: int,
    content_type: str | None,
    supersedes: RecordInfo | None,
    record_id: bytes | None,
    progress: Progress | None,
) -> WriteResult:
    recover_pending(client)
    content_type, cat = prepare(source, content_type, category)
    check_access(client, patient, author.address, codes.Access.WRITE, cat, purpose)
    if record_id is not None and registered(client, patient, record_id):
        raise MedledgerError(
            f"Patient {patient} already has a record 0x{record_id.hex()}, so nothing was written; read it, or "
            "write with another record id"
        )
    rid = record_id or secrets.token_bytes(32)  # 32 random bytes: no collision to check for
    key = Keyring(client).current_key(patient, cat)  # per record: a stale key is refused here
    stored = seal_and_store(
        client, source, record_id=rid, author=author.address, key=key, content_type=content_type, progress=progress
    )
    cid = cid_to_bytes(stored.cid)
    contract = client.contract
    if supersedes is None:
        commit(client, stored, lambda: contract.register_record(
            patient, rid, cat, purpose, key.epoch, stored.fingerprint, cid, sender=author
        ))  # fmt: skip
    else:
        commit(client, stored, lambda: contract.amend_record(
            patient, supersedes.record_id, supersedes.current(), rid, purpose, key.epoch, stored.fingerprint, cid,
            sender=author,
        ))  # fmt: skip
    return WriteResult(rid, stored.cid, stored.fingerprint, cat, content_type, stored.size)
