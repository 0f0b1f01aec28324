"""Records: encrypt, store on IPFS, fingerprint on chain; read with consent, audit and verification.

Write: validate (FHIR R4 via :mod:`fhir`, or an attachment with a content type), check the write
consent on chain, encrypt as a stream under a fresh record key sealed to the category key, add the
ciphertext to IPFS (pinned, CIDv1), then register the fingerprint on chain. A journal entry written
between the two steps makes a crash safe: :func:`recover_pending` either finds the record on chain
or unpins the orphaned ciphertext, so no on-chain record ever points at missing data.

Read: check consent, record the access on chain (the audit trail), fetch the ciphertext, check its
CID, decrypt, check the fingerprint. Plaintext is written to a temporary file beside the
destination and renamed only once every check passed; on failure it is deleted.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import struct
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import psutil

from . import codes, crypto, fhir
from .chain import utc
from .client import Client, as_address
from .consent import check_access
from .errors import (
    MedledgerError,
    RecordErased,
    RecordFormatError,
    StorageError,
    TamperingDetected,
    UnknownRecord,
)
from .keyring import Keyring
from .keystore import Identity
from .storage import cid_from_bytes, cid_to_bytes

PAYLOAD_MAGIC = b"MLP1"
BATCH_CONTENT_TYPE = "application/vnd.medledger.batch+json"
FHIR_CONTENT_TYPE = "application/fhir+json"
_LEN = struct.Struct(">I")
ZERO32 = b"\0" * 32

Progress = Callable[[int], None]


@dataclass(frozen=True)
class WriteResult:
    record_id: bytes
    cid: str
    fingerprint: bytes
    category: codes.Category
    content_type: str
    size: int

    @property
    def record_hex(self) -> str:
        return "0x" + self.record_id.hex()


@dataclass(frozen=True)
class ReadResult:
    record_id: bytes
    patient: str
    author: str
    category: codes.Category
    content_type: str
    size: int
    emergency: bool
    data: bytes | None = None  # when no destination file was given
    path: Path | None = None


@dataclass(frozen=True)
class BatchResult:
    root: bytes
    cid: str
    reading_ids: list[bytes]
    fingerprints: list[bytes]
    proofs: list[list[bytes]] = field(repr=False)


@dataclass(frozen=True)
class RecordSummary:
    record_id: bytes
    patient: str
    author: str
    category: codes.Category
    purpose: codes.Purpose
    cid: str
    created_at: int
    erased: bool
    is_batch: bool
    leaf_count: int
    previous: bytes | None
    superseded_by: bytes | None

    def to_json(self) -> dict[str, Any]:
        return {
            "record_id": "0x" + self.record_id.hex(),
            "patient": self.patient,
            "author": self.author,
            "category": codes.slug(self.category),
            "purpose": codes.slug(self.purpose),
            "cid": self.cid,
            "created_at": self.created_at,
            "erased": self.erased,
            "batch": self.is_batch,
            "leaf_count": self.leaf_count,
            "previous": "0x" + self.previous.hex() if self.previous else None,
            "superseded_by": "0x" + self.superseded_by.hex() if self.superseded_by else None,
        }


# --- payload (inside the encryption) ------------------------------------------------------------
class _Concat(io.RawIOBase):
    """A readable stream over a header and another stream, read in bounded pieces."""

    def __init__(self, head: bytes, tail: BinaryIO, progress: Progress | None = None) -> None:
        self._head = head
        self._tail = tail
        self._progress = progress

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = 1 << 20
        if self._head:
            out, self._head = self._head[:size], self._head[size:]
            return out
        out = self._tail.read(size)
        if out and self._progress:
            self._progress(len(out))
        return out


def _payload_header(content_type: str, name: str | None) -> bytes:
    body = json.dumps({"content_type": content_type, "name": name}, sort_keys=True).encode()
    return PAYLOAD_MAGIC + _LEN.pack(len(body)) + body


def _split_payload(chunks: Iterator[bytes]) -> tuple[dict[str, Any], Iterator[bytes]]:
    buf = b""
    for chunk in chunks:
        buf += chunk
        if len(buf) >= 8:
            break
    if buf[:4] != PAYLOAD_MAGIC:
        raise TamperingDetected("The decrypted record does not start with a medledger payload header")
    (length,) = _LEN.unpack(buf[4:8])
    if length > 1 << 16:
        raise TamperingDetected("The decrypted payload header is implausibly large")
    while len(buf) < 8 + length:
        try:
            buf += next(chunks)
        except StopIteration:
            raise TamperingDetected("The decrypted record ends inside its payload header") from None
    meta = json.loads(buf[8 : 8 + length])
    rest = buf[8 + length :]

    def body() -> Iterator[bytes]:
        if rest:
            yield rest
        yield from chunks

    return meta, body()


# --- journal of writes between IPFS and chain ---------------------------------------------------
def _journal_dir(client: Client) -> Path:
    path = client.settings.cache_dir / "pending" / str(client.chain.chain_id)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _process_started(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, ValueError):
        return None


def _in_progress(entry: dict[str, Any]) -> bool:
    """Whether the process that wrote a journal entry still runs (its write may be in flight):
    such an entry is not settled, or a record about to be registered would lose its ciphertext."""
    pid = entry.get("pid")
    if not isinstance(pid, int):
        return False
    started = _process_started(pid)
    return started is not None and started == entry.get("started")


def _journal_write(client: Client, record_id: bytes, entry: dict[str, Any]) -> Path:
    path = _journal_dir(client) / f"{record_id.hex()}.json"
    tmp = path.with_suffix(".tmp")
    entry = {**entry, "pid": os.getpid(), "started": _process_started(os.getpid())}
    tmp.write_text(json.dumps(entry))
    os.replace(tmp, path)
    return path


def recover_pending(client: Client) -> list[tuple[str, str]]:
    """Settle writes interrupted between the IPFS add and the chain transaction.

    A record that reached the chain is kept; otherwise its ciphertext is unpinned. Writes still in
    progress (their process, or this one, still runs) are left alone. Returns
    ``(record id, "registered" | "rolled back")`` pairs. Safe to run at any time."""
    settled = []
    for path in sorted(_journal_dir(client).glob("*.json")):
        try:
            entry = json.loads(path.read_text())
        except FileNotFoundError:
            continue  # settled meanwhile by its writer
        except ValueError:
            path.unlink(missing_ok=True)
            continue
        if _in_progress(entry):
            continue
        if _registered(client, bytes.fromhex(entry["record_id"][2:])):
            settled.append((entry["record_id"], "registered"))
        else:
            client.store.unpin(entry["cid"])
            settled.append((entry["record_id"], "rolled back"))
        path.unlink(missing_ok=True)
    return settled


# --- write ---------------------------------------------------------------------------------------
def _open_source(source: Path | bytes | BinaryIO) -> tuple[BinaryIO, str | None, bool]:
    if isinstance(source, (bytes, bytearray)):
        return io.BytesIO(bytes(source)), None, True
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            return path.open("rb"), path.name, True
        except OSError as exc:
            raise RecordFormatError(f"Cannot read {path}: {exc.strerror}") from None
    return source, getattr(source, "name", None), False


def _looks_like_fhir(data: bytes) -> bool:
    """JSON with a resourceType near the top: validate it as FHIR rather than store it blindly."""
    head = data[:4096].lstrip()
    return head.startswith(b"{") and b'"resourceType"' in head


def prepare(
    source: Path | bytes | BinaryIO, content_type: str | None, category: int | None
) -> tuple[str, codes.Category]:
    """Validate the input and settle its content type and category (nothing is uploaded yet)."""
    if isinstance(source, (str, Path)) and content_type is None:
        content_type = fhir.detect_content_type(Path(source))
    if content_type is None and isinstance(source, (bytes, bytearray)) and _looks_like_fhir(bytes(source)):
        content_type = FHIR_CONTENT_TYPE
    if content_type is None:
        content_type = FHIR_CONTENT_TYPE if category is None else "application/octet-stream"
    if content_type in (FHIR_CONTENT_TYPE, "application/json"):
        raw = Path(source).read_bytes() if isinstance(source, (str, Path)) else source
        if not isinstance(raw, (bytes, bytearray)):
            raise RecordFormatError("FHIR input must be a file path or bytes")
        summary = fhir.validate_fhir(bytes(raw))
        content_type = FHIR_CONTENT_TYPE
        if category is None:
            if summary.category is None:
                raise RecordFormatError(
                    f"Cannot infer a category for a FHIR {summary.resource_type} "
                    f"({', '.join(summary.resource_types)}); pass one explicitly."
                )
            category = summary.category
    if category is None:
        raise RecordFormatError(f"A {content_type} attachment needs an explicit category.")
    return content_type, codes.Category(int(category))


@dataclass(frozen=True)
class _Stored:
    """A ciphertext added to IPFS (pinned) and journaled, not yet registered on chain."""

    record_id: bytes
    cid: str
    fingerprint: bytes
    size: int  # the record's own bytes (the payload header excluded), as read_record reports them
    journal: Path


def _seal_and_store(
    client: Client,
    source: Path | bytes | BinaryIO,
    *,
    record_id: bytes,
    patient: str,
    category: int,
    epoch: int,
    public: bytes,
    content_type: str,
    record_key: bytes | None = None,
    progress: Progress | None = None,
) -> _Stored:
    """The first half of every write: encrypt ``source`` under a record key sealed to the category
    key, add the ciphertext to IPFS and journal it. Follow with :func:`_commit` (or :func:`_discard`)."""
    stream, name, owned = _open_source(source)
    try:
        header = _payload_header(content_type, name)
        writer = crypto.write_record_blob(
            _Concat(header, stream, progress), record_id, patient, category, epoch, public, record_key=record_key
        )
        cid = client.store.add_stream(iter(writer))
    finally:
        if owned:
            stream.close()
    journal = _journal_write(client, record_id, {"record_id": "0x" + record_id.hex(), "cid": cid, "patient": patient})
    return _Stored(record_id, cid, writer.fingerprint, writer.plaintext_size - len(header), journal)


def _discard(client: Client, stored: _Stored) -> None:
    """Undo :func:`_seal_and_store`: unpin the ciphertext and drop its journal entry."""
    try:
        client.store.unpin(stored.cid)
    except MedledgerError:
        pass  # recover_pending would have done it from the journal; the original error matters more
    stored.journal.unlink(missing_ok=True)


def _commit(client: Client, stored: _Stored, fn: Any, author: Identity, category: int, purpose: int) -> None:
    """The second half of a write: the chain transaction; on any failure the ciphertext is discarded."""
    try:
        client.transact(fn, author, category=int(category), purpose=int(purpose))
    except BaseException:
        _discard(client, stored)
        raise
    stored.journal.unlink(missing_ok=True)


def _registered(client: Client, record_id: bytes) -> bool:
    """Whether a record or batch with this id is registered on chain."""
    return int(client.call(client.contract.functions.record(record_id))[0], 16) != 0


def write_record(
    client: Client,
    author: Identity,
    patient: str,
    source: Path | bytes | BinaryIO,
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
    return _write(client, author, as_address(patient), source, category, purpose, content_type, None, record_id, progress)


def amend_record(
    client: Client,
    author: Identity,
    previous: bytes,
    source: Path | bytes | BinaryIO,
    *,
    purpose: int = codes.Purpose.DIRECT_CARE,
    content_type: str | None = None,
    progress: Progress | None = None,
) -> WriteResult:
    """Register ``source`` as a new version of record ``previous`` (same patient and category)."""
    info = _record_info(client, previous)
    return _write(
        client, author, as_address(info["patient"]), source, info["category"], purpose, content_type, previous, None, progress
    )


def _write(
    client: Client,
    author: Identity,
    patient: str,
    source: Path | bytes | BinaryIO,
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
    if record_id is not None and _registered(client, record_id):
        raise MedledgerError(
            f"Record 0x{record_id.hex()} is already registered, so nothing was written; read it, or write "
            "with another record id"
        )
    record_id = record_id or secrets.token_bytes(32)  # 32 random bytes: no collision to check for
    epoch, public = Keyring(client).directory(patient).public_key(cat)
    stored = _seal_and_store(
        client, source, record_id=record_id, patient=patient, category=cat, epoch=epoch, public=public,
        content_type=content_type, progress=progress,
    )
    fns = client.contract.functions
    cid = cid_to_bytes(stored.cid)
    if supersedes is None:
        fn = fns.registerRecord(record_id, patient, int(cat), int(purpose), stored.fingerprint, cid)
    else:
        fn = fns.amendRecord(supersedes, record_id, int(purpose), stored.fingerprint, cid)
    _commit(client, stored, fn, author, cat, purpose)
    return WriteResult(record_id, stored.cid, stored.fingerprint, cat, content_type, stored.size)


# --- read ----------------------------------------------------------------------------------------
def _record_info(client: Client, record_id: bytes) -> dict[str, Any]:
    info = client.call(client.contract.functions.record(record_id))
    patient, category, created, erased, is_batch, leaves, fingerprint, prev, nxt = info
    if int(patient, 16) == 0:
        raise UnknownRecord(f"No record or batch has id 0x{record_id.hex()} on chain {client.chain.chain_id}")
    return {
        "patient": patient,
        "category": category,
        "created_at": created,
        "erased": erased,
        "is_batch": is_batch,
        "leaf_count": leaves,
        "fingerprint": bytes(fingerprint),
        "previous": bytes(prev),
        "next": bytes(nxt),
    }


def _check_readable(client: Client, record_id: bytes) -> dict[str, Any]:
    info = _record_info(client, record_id)
    if info["erased"]:
        erased = client.logs("RecordErased", recordId=record_id)
        when = ""
        if erased:
            when = f" on {utc(client.block_time(erased[-1]['blockNumber']))}"
        raise RecordErased(
            f"Record 0x{record_id.hex()} was erased by its patient{when}; it can no longer be read.",
            "RecordIsErased",
            {"recordId": record_id},
        )
    return info


def _precheck(client: Client, reader: Identity, info: dict[str, Any], purpose: int) -> None:
    """Refuse early (one eth_call) rather than after downloading the ciphertext."""
    if reader.address != as_address(info["patient"]):
        check_access(client, info["patient"], reader.address, codes.Access.READ, info["category"], purpose)


def _audit(client: Client, reader: Identity, record_id: bytes, info: dict[str, Any], purpose: int) -> bool:
    """Check consent, then record the access on chain (not needed for the patient's own reads)."""
    if reader.address == as_address(info["patient"]):
        return False
    receipt = client.transact(
        client.contract.functions.recordAccess(record_id, int(purpose)),
        reader,
        category=info["category"],
        purpose=int(purpose),
    )
    events = client.events(receipt, "RecordAccessed")
    return bool(events and events[0]["args"]["emergency"])


def _fetch_verified(client: Client, cid: str, spool: BinaryIO) -> None:
    """Copy the ciphertext of ``cid`` to ``spool`` and check that it really has that CID."""
    for chunk in client.store.cat_stream(cid):
        spool.write(chunk)
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
) -> ReadResult:
    """Read a record: consent check, audit entry, fetch, CID check, decrypt, fingerprint check.

    With ``out`` the plaintext is written there (atomically, only if every check passes);
    otherwise it is returned in ``ReadResult.data``."""
    info = _check_readable(client, record_id)
    if info["is_batch"]:
        raise RecordFormatError(f"0x{record_id.hex()} is a batch; read it with read_batch")
    registered = client.logs("RecordRegistered", recordId=record_id)
    if not registered:
        raise UnknownRecord(f"Record 0x{record_id.hex()} has no registration event")
    args = registered[-1]["args"]
    cid = cid_from_bytes(bytes(args["cid"]))
    _precheck(client, reader, info, purpose)
    with tempfile.TemporaryFile() as spool:
        # Fetch and verify the ciphertext before the audit entry: a read that cannot even fetch
        # leaves no access in the trail. The ciphertext alone reveals nothing.
        _fetch_verified(client, cid, spool)
        emergency = _audit(client, reader, record_id, info, purpose)
        keys = Keyring(client).secrets(reader, info["patient"], [info["category"]])
        decryptor = crypto.open_record_blob(
            spool,
            keys,
            expected_record_id=record_id,
            expected_patient=info["patient"],
            expected_fingerprint=info["fingerprint"],
            category=info["category"],
        )
        meta, body = _split_payload(iter(decryptor))
        size, data, path = _deliver(body, out)
    return ReadResult(
        record_id,
        as_address(info["patient"]),
        args["author"],
        codes.Category(info["category"]),
        meta.get("content_type", "application/octet-stream"),
        size,
        emergency,
        data,
        path,
    )


def _deliver(body: Iterator[bytes], out: Path | None) -> tuple[int, bytes | None, Path | None]:
    """Write plaintext to ``out`` via a temporary file renamed only after the last (fingerprint)
    check passed, or collect it in memory. On any error nothing is left behind."""
    if out is None:
        data = b"".join(body)
        return len(data), data, None
    out = Path(out)
    fd, tmp_name = tempfile.mkstemp(prefix=".medledger-", dir=out.parent)
    size = 0
    try:
        with os.fdopen(fd, "wb") as tmp:
            for chunk in body:
                tmp.write(chunk)
                size += len(chunk)
        os.chmod(tmp_name, 0o600)
        os.replace(tmp_name, out)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return size, None, out


# --- batches -------------------------------------------------------------------------------------
def anchor_batch(
    client: Client,
    author: Identity,
    patient: str,
    readings: Iterable[Any],
    *,
    category: int = codes.Category.DEVICE_DATA,
    purpose: int = codes.Purpose.DIRECT_CARE,
) -> BatchResult:
    """Encrypt many readings as one blob and anchor the Merkle root of their fingerprints."""
    patient = as_address(patient)
    recover_pending(client)
    items = [json.dumps(r, sort_keys=True, separators=(",", ":")).encode() for r in readings]
    if not items:
        raise RecordFormatError("A batch needs at least one reading")
    check_access(client, patient, author.address, codes.Access.WRITE, category, purpose)
    key = crypto.new_record_key()
    reading_ids = [secrets.token_bytes(32) for _ in items]
    fingerprints = [crypto.leaf_fingerprint(key, rid, data) for rid, data in zip(reading_ids, items)]
    leaves = [crypto.batch_leaf(rid, fp) for rid, fp in zip(reading_ids, fingerprints)]
    root = crypto.merkle_root(leaves)
    body = json.dumps(
        {"readings": [{"id": "0x" + rid.hex(), "data": data.decode()} for rid, data in zip(reading_ids, items)]}
    ).encode()
    epoch, public = Keyring(client).directory(patient).public_key(category)
    stored = _seal_and_store(
        client, body, record_id=root, patient=patient, category=category, epoch=epoch, public=public,
        content_type=BATCH_CONTENT_TYPE, record_key=key,
    )
    fn = client.contract.functions.anchorBatch(
        root, patient, int(category), int(purpose), len(items), cid_to_bytes(stored.cid)
    )
    _commit(client, stored, fn, author, category, purpose)
    return BatchResult(root, stored.cid, reading_ids, fingerprints, crypto.merkle_proofs(leaves))


def read_batch(
    client: Client, reader: Identity, root: bytes, *, purpose: int = codes.Purpose.DIRECT_CARE
) -> list[dict[str, Any]]:
    """Read an anchored batch; every reading is checked against the on-chain Merkle root."""
    info = _check_readable(client, root)
    if not info["is_batch"]:
        raise RecordFormatError(f"0x{root.hex()} is a single record; read it with read_record")
    anchored = client.logs("BatchAnchored", root=root)
    cid = cid_from_bytes(bytes(anchored[-1]["args"]["cid"]))
    _precheck(client, reader, info, purpose)
    with tempfile.TemporaryFile() as spool:
        _fetch_verified(client, cid, spool)
        _audit(client, reader, root, info, purpose)
        keys = Keyring(client).secrets(reader, info["patient"], [info["category"]])
        # The record key is needed both to decrypt and to recompute the leaves.
        decryptor = crypto.open_record_blob(
            spool, keys, expected_record_id=root, expected_patient=info["patient"], category=info["category"]
        )
        record_key = decryptor.record_key
        _meta, body = _split_payload(iter(decryptor))
        content = json.loads(b"".join(body))
    readings = []
    leaves = []
    for item in content["readings"]:
        rid = bytes.fromhex(item["id"][2:])
        data = item["data"].encode()
        fp = crypto.leaf_fingerprint(record_key, rid, data)
        leaves.append(crypto.batch_leaf(rid, fp))
        readings.append({"id": item["id"], "data": json.loads(data), "fingerprint": "0x" + fp.hex()})
    if len(leaves) != info["leaf_count"] or crypto.merkle_root(leaves) != root:
        raise TamperingDetected(f"The readings of batch 0x{root.hex()} do not hash to its anchored Merkle root")
    return readings


def verify_reading_on_chain(client: Client, root: bytes, reading_id: bytes, fingerprint: bytes, proof: list[bytes]) -> bool:
    return bool(client.call(client.contract.functions.verifyBatchInclusion(root, reading_id, fingerprint, proof)))


# --- erase ---------------------------------------------------------------------------------------
def erase_record(client: Client, patient: Identity, record_id: bytes) -> bool:
    """Erase a record (GDPR): mark it erased on chain, then unpin its ciphertext and delete its blocks
    (the only copy of its sealed record key) from our IPFS node. Returns whether it was erased now."""
    info = _record_info(client, record_id)
    receipt = client.transact(client.contract.functions.eraseRecord(record_id), patient)
    name = "BatchAnchored" if info["is_batch"] else "RecordRegistered"
    topic: dict[str, Any] = {"root": record_id} if info["is_batch"] else {"recordId": record_id}
    for event in client.logs(name, **topic):
        cid = cid_from_bytes(bytes(event["args"]["cid"]))
        try:
            client.store.remove(cid)
        except StorageError:
            pass  # the chain state is what makes it unreadable through medledger
    return bool(client.events(receipt, "RecordErased"))


# --- listing -------------------------------------------------------------------------------------
def list_records(client: Client, patient: str, *, include_erased: bool = True) -> list[RecordSummary]:
    patient = as_address(patient)
    out = []
    for name in ("RecordRegistered", "BatchAnchored"):
        for event in client.logs(name, patient=patient):
            args = event["args"]
            record_id = bytes(args["recordId"] if name == "RecordRegistered" else args["root"])
            info = _record_info(client, record_id)
            if info["erased"] and not include_erased:
                continue
            out.append(
                RecordSummary(
                    record_id,
                    patient,
                    args["author"],
                    codes.Category(args["category"]),
                    codes.Purpose(args["purpose"]),
                    cid_from_bytes(bytes(args["cid"])),
                    info["created_at"],
                    info["erased"],
                    info["is_batch"],
                    info["leaf_count"],
                    info["previous"] if info["previous"] != ZERO32 else None,
                    info["next"] if info["next"] != ZERO32 else None,
                )
            )
    return sorted(out, key=lambda r: (r.created_at, r.record_id))


def verify_fingerprint(client: Client, record_id: bytes, fingerprint: bytes) -> bool:
    return bool(client.call(client.contract.functions.verifyFingerprint(record_id, fingerprint)))
