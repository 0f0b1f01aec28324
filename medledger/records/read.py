"""Reading records: check consent, record the access on chain (the audit trail), fetch the
ciphertext, check its CID, decrypt, check the fingerprint. Plaintext reaches its destination only
once every check passed. Also listing, erasure and fingerprint checks."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from medledger import codes, crypto
from medledger.access import check_access
from medledger.chain import RecordInfo, utc
from medledger.chain.events import BatchAnchored, RecordAccessed, RecordErased, RecordRegistered
from medledger.client import Client, as_address
from medledger.errors import RecordErased as RecordErasedError
from medledger.errors import RecordFormatError, StorageError, TamperingDetected, UnknownRecord
from medledger.fsutil import atomic_writer
from medledger.keyring import Keyring
from medledger.keystore import Identity
from medledger.storage import cid_from_bytes

from .models import Progress, ReadResult, RecordSummary
from .payload import split_payload


def record_info(client: Client, record_id: bytes) -> RecordInfo:
    """The on-chain header of a record or batch; :class:`UnknownRecord` if there is none."""
    info = client.contract.record(record_id)
    if not info.exists:
        raise UnknownRecord(record_id, client.chain.chain_id)
    return info


def check_readable(client: Client, record_id: bytes) -> RecordInfo:
    """The header of a record that exists and was not erased."""
    info = record_info(client, record_id)
    if info.erased:
        erased = client.contract.logs(RecordErased, record_id=record_id)
        when = f" on {utc(client.block_time(erased[-1].log.block_number))}" if erased else ""
        raise RecordErasedError(
            f"Record 0x{record_id.hex()} was erased by its patient{when}; it can no longer be read.",
            "RecordIsErased",
            {"recordId": record_id},
        )
    return info


def precheck(client: Client, reader: Identity, info: RecordInfo, purpose: int) -> None:
    """Refuse early (one eth_call) rather than after downloading the ciphertext."""
    if reader.address != info.patient:
        check_access(client, info.patient, reader.address, codes.Access.READ, info.category, purpose)


def audit(client: Client, reader: Identity, info: RecordInfo, purpose: int) -> bool:
    """Record the access on chain (the chain checks consent again); the patient's own reads are not
    recorded. Returns whether the access rests on an emergency opening."""
    if reader.address == info.patient:
        return False
    receipt = client.contract.record_access(
        info.record_id, purpose, sender=reader, category=info.category, patient=info.patient
    )
    accessed = receipt.first(RecordAccessed)
    return bool(accessed and accessed.emergency)


def fetch_verified(client: Client, cid: str, spool: BinaryIO, progress: Progress | None = None) -> None:
    """Copy the ciphertext of ``cid`` to ``spool`` and check that it really has that CID."""
    for chunk in client.store.cat_stream(cid):
        spool.write(chunk)
        if progress is not None:
            progress(len(chunk))
    spool.flush()
    spool.seek(0)
    actual = client.store.cid_of(spool)
    if actual != cid:
        raise TamperingDetected(f"The IPFS node returned content whose CID is {actual}, not the registered {cid}")
    spool.seek(0)


def read_record(
    client: Client,
    reader: Identity,
    record_id: bytes,
    *,
    purpose: int = codes.Purpose.DIRECT_CARE,
    out: Path | None = None,
    progress: Progress | None = None,
) -> ReadResult:
    """Read a record: consent check, audit entry, fetch, CID check, decrypt, fingerprint check.

    With ``out`` the plaintext is written there (atomically, only if every check passes);
    otherwise it is returned in ``ReadResult.data``. ``progress`` is told the ciphertext bytes
    fetched."""
    info = check_readable(client, record_id)
    if info.is_batch:
        raise RecordFormatError(f"0x{record_id.hex()} is a batch; read it with read_batch")
    registration = client.contract.logs(RecordRegistered, record_id=record_id)
    if not registration:
        raise UnknownRecord(record_id, client.chain.chain_id, f"Record 0x{record_id.hex()} has no registration event")
    event = registration[-1]
    precheck(client, reader, info, purpose)
    with tempfile.TemporaryFile() as spool:
        # Fetch and verify the ciphertext before the audit entry: a read that cannot even fetch
        # leaves no access in the trail. The ciphertext alone reveals nothing.
        fetch_verified(client, cid_from_bytes(event.cid), spool, progress)
        emergency = audit(client, reader, info, purpose)
        keys = Keyring(client).secrets(reader, info.patient, [info.category])
        decryptor = crypto.open_record_blob(
            spool,
            keys,
            expected_record_id=record_id,
            expected_patient=info.patient,
            expected_fingerprint=info.fingerprint,
            category=info.category,
        )
        meta, body = split_payload(iter(decryptor))
        size, data, path = _deliver(body, out)
    content_type = meta.get("content_type", "application/octet-stream")
    return ReadResult(record_id, info.patient, event.author, info.category, content_type, size, emergency, data, path)


def _deliver(body: Iterator[bytes], out: Path | None) -> tuple[int, bytes | None, Path | None]:
    """Write plaintext to ``out`` (mode 0600) through a temporary file renamed only after the last
    (fingerprint) check passed, or collect it in memory. On any error nothing is left behind."""
    if out is None:
        data = b"".join(body)
        return len(data), data, None
    size = 0
    with atomic_writer(Path(out), mode=0o600) as handle:
        for chunk in body:
            handle.write(chunk)
            size += len(chunk)
    return size, None, Path(out)


def erase_record(client: Client, patient: Identity, record_id: bytes) -> bool:
    """Erase a record (GDPR): mark it erased on chain, then unpin its ciphertext and delete its blocks
    (the only copy of its sealed record key) from our IPFS node. Returns whether it was erased now."""
    info = record_info(client, record_id)
    receipt = client.contract.erase_record(record_id, sender=patient, patient=info.patient)
    cids: list[bytes]
    if info.is_batch:
        cids = [e.cid for e in client.contract.logs(BatchAnchored, root=record_id)]
    else:
        cids = [e.cid for e in client.contract.logs(RecordRegistered, record_id=record_id)]
    for cid in cids:
        try:
            client.store.remove(cid_from_bytes(cid))
        except StorageError:
            pass  # the chain state is what makes it unreadable through medledger
    return receipt.emitted(RecordErased)


def list_records(client: Client, patient: str, *, include_erased: bool = True) -> list[RecordSummary]:
    """A patient's records and batches (from chain events), oldest first."""
    patient = as_address(patient)
    found: list[RecordRegistered | BatchAnchored] = [
        *client.contract.logs(RecordRegistered, patient=patient),
        *client.contract.logs(BatchAnchored, patient=patient),
    ]
    out = []
    for event in found:
        record_id = event.record_id if isinstance(event, RecordRegistered) else event.root
        info = client.contract.record(record_id)
        if info.erased and not include_erased:
            continue
        out.append(
            RecordSummary(
                record_id,
                patient,
                event.author,
                event.category,
                event.purpose,
                cid_from_bytes(event.cid),
                info.created_at,
                info.erased,
                info.is_batch,
                info.leaf_count,
                info.previous,
                info.superseded_by,
            )
        )
    return sorted(out, key=lambda r: (r.created_at, r.record_id))


def verify_fingerprint(client: Client, record_id: bytes, fingerprint: bytes) -> bool:
    return client.contract.verify_fingerprint(record_id, fingerprint)
