"""Reading records: check consent, fetch the ciphertext, check its CID, open its record key, record
the access on chain (the audit trail: only reads that can decrypt are recorded), decrypt, check the
fingerprint. Plaintext reaches its destination only
once every check passed. Also listing, erasure and fingerprint checks.

Record ids are per patient: every function takes the ``patient`` whose record is meant; without
one, the one patient that has a record of that id (:func:`find_record`; several:
:class:`~medledger.errors.AmbiguousRecord`). The record's current header is rebuilt from its events
and checked against the chain (:meth:`~medledger.chain.contract.MedledgerContract.record`)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from medledger import codes, crypto
from medledger.access import check_access
from medledger.chain import RecordInfo, utc
from medledger.chain.events import RecordAccessed, RecordErased
from medledger.client import Client, as_address
from medledger.errors import AmbiguousRecord, RecordFormatError, StorageError, TamperingDetected, UnknownRecord
from medledger.errors import RecordErased as RecordErasedError
from medledger.fsutil import atomic_writer
from medledger.keyring import Keyring
from medledger.keystore import Identity
from medledger.storage import cid_from_bytes

from .models import Progress, ReadResult, RecordSummary
from .payload import split_payload


def find_record(client: Client, record_id: bytes, patient: str | None = None) -> RecordInfo:
    """The record or batch ``record_id`` of ``patient`` (None: of the one patient that has a record
    of that id); :class:`UnknownRecord` if there is none, :class:`AmbiguousRecord` if several
    patients have one and none was named."""
    if patient is None:
        patients = client.contract.patients_with_record(record_id)
        if len(patients) > 1:
            raise AmbiguousRecord(record_id, patients)
        if not patients:
            raise UnknownRecord(record_id, client.chain.chain_id)
        patient = patients[0]
    info = client.contract.record(as_address(patient), record_id)
    if not info.exists:
        raise UnknownRecord(record_id, client.chain.chain_id, patient=info.patient)
    return info


def check_readable(client: Client, record_id: bytes, patient: str | None = None) -> RecordInfo:
    """The record (as :func:`find_record`) if it was not erased."""
    info = find_record(client, record_id, patient)
    if info.erased:
        erased = client.contract.logs(RecordErased, record_id=record_id, patient=info.patient)
        when = f" on {utc(client.block_time(erased[-1].log.block_number))}" if erased else ""
        raise RecordErasedError(
            f"Record 0x{record_id.hex()} was erased by its patient{when}; it can no longer be read.",
            "RecordIsErased",
            {"patient": info.patient, "recordId": record_id},
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
    receipt = client.contract.record_access(info.patient, info.record_id, info.current(), purpose, sender=reader)
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
    patient: str | None = None,
    purpose: int = codes.Purpose.DIRECT_CARE,
    out: Path | None = None,
    progress: Progress | None = None,
) -> ReadResult:
    """Read a record: consent check, fetch, CID check, key check, audit entry, decrypt, fingerprint check.

    With ``out`` the plaintext is written there (atomically, only if every check passes);
    otherwise it is returned in ``ReadResult.data``. ``progress`` is told the ciphertext bytes
    fetched."""
    info = check_readable(client, record_id, patient)
    if info.is_batch:
        raise RecordFormatError(f"0x{record_id.hex()} is a batch; read it with read_batch")
    precheck(client, reader, info, purpose)
    with tempfile.TemporaryFile() as spool:
        # Fetch and verify the ciphertext, and open its record key, before the audit entry: a read
        # that cannot fetch, or whose reader holds no key that opens the record (e.g. an emergency
        # clinician nobody released keys to yet), leaves no access in the trail.
        fetch_verified(client, cid_from_bytes(info.cid), spool, progress)
        keys = Keyring(client).secrets(reader, info.patient, [info.category])
        decryptor = crypto.open_record_blob(
            spool,
            keys,
            expected_record_id=record_id,
            expected_patient=info.patient,
            expected_fingerprint=info.fingerprint,
            category=info.category,
        )
        emergency = audit(client, reader, info, purpose)
        meta, body = split_payload(iter(decryptor))
        size, data, path = _deliver(body, out)
    content_type = meta.get("content_type", "application/octet-stream")
    return ReadResult(record_id, info.patient, info.author, info.category, content_type, size, emergency, data, path)


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


def erase_record(client: Client, caller: Identity, record_id: bytes, *, patient: str | None = None) -> bool:
    """Erase a record (GDPR): mark it erased on chain, then unpin its ciphertext and delete its blocks
    (the only copy of its sealed record key) from our IPFS node. Only its patient may (the chain
    refuses anyone else). Returns whether it was erased now."""
    info = find_record(client, record_id, patient)
    receipt = client.contract.erase_record(info.patient, record_id, info.current(), sender=caller)
    try:
        client.store.remove(cid_from_bytes(info.cid))
    except StorageError:
        pass  # the chain state is what makes it unreadable through medledger
    return receipt.emitted(RecordErased)


def list_records(client: Client, patient: str, *, include_erased: bool = True) -> list[RecordSummary]:
    """A patient's records and batches (rebuilt from chain events, read through ``client.history``: a
    log scan or the event index), oldest first."""
    patient = as_address(patient)
    found = client.contract.records_of(patient, client.history)
    out = [_summary(info) for info in found if include_erased or not info.erased]
    return sorted(out, key=lambda r: (r.created_at, r.record_id))


def _summary(info: RecordInfo) -> RecordSummary:
    return RecordSummary(
        info.record_id, info.patient, info.author, info.category, info.purpose, cid_from_bytes(info.cid),
        info.created_at, info.erased, info.is_batch, info.leaf_count, info.previous, info.superseded_by,
    )  # fmt: skip


def verify_fingerprint(client: Client, record_id: bytes, fingerprint: bytes, *, patient: str | None = None) -> bool:
    """Whether ``fingerprint`` is the one registered for the record (False once it was erased)."""
    info = find_record(client, record_id, patient)
    return client.contract.verify_fingerprint(info.patient, record_id, info.current(), fingerprint)
