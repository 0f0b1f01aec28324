"""The record registry's part of the facade: ids namespaced by patient, headers rebuilt from events.

The contract keeps one commitment per record (the keccak of its :class:`RecordHeader`); every call
that acts on an existing record takes the current header. :meth:`RecordCalls.record` rebuilds it from
the record's events (``RecordRegistered`` / ``BatchAnchored``, ``RecordAmended``, ``RecordErased``,
filtered by patient) and checks it against the commitment, so a node that leaves an event out (or
makes one up) is caught before the header is used. CIDs go on chain as ``(codec, digest)`` only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import keccak

from medledger import codes
from medledger.errors import TamperingDetected

from .base import ContractBase, Sender, Tx
from .base import address_of as _address
from .events import (
    BatchAnchored,
    ChainEvent,
    Receipt,
    RecordAmended,
    RecordErased,
    RecordRegistered,
    encode_topic,
)
from .history import EventHistory, LogScan
from .outbox import SignedTx
from .types import ZERO32, RecordEntry, RecordHeader, RecordInfo, cid_parts

_HEADER_TYPES = ["address", "uint8", "uint32", "bool", "bool", "uint32", "bytes32", "bytes32", "bytes32"]
_REBUILD_ATTEMPTS = 2  # a write landing between the log query and the commitment read: ask again


def header_commitment(header: RecordHeader) -> bytes:
    """What the contract stores for ``header``: ``keccak256(abi.encode(header))``."""
    return keccak(abi_encode(_HEADER_TYPES, list(header.as_abi())))


def rebuild(patient: str, events: Iterable[ChainEvent]) -> dict[bytes, RecordInfo]:
    """Every record and batch of ``patient`` that ``events`` (its record events, oldest first) create,
    with its header as the events leave it (``created_at`` 0: the caller adds block times)."""
    found: dict[bytes, RecordInfo] = {}
    headers: dict[bytes, RecordHeader] = {}
    for e in events:
        if isinstance(e, RecordRegistered):
            headers[e.record_id] = RecordHeader(e.author, e.category, e.key_epoch, fingerprint=e.fingerprint)
            found[e.record_id] = RecordInfo(
                e.record_id, patient, None, e.purpose, e.cid, created_block=e.log.block_number
            )
        elif isinstance(e, BatchAnchored):
            headers[e.root] = RecordHeader(e.author, e.category, e.key_epoch, is_batch=True, leaf_count=e.leaf_count)
            found[e.root] = RecordInfo(e.root, patient, None, e.purpose, e.cid, created_block=e.log.block_number)
        elif isinstance(e, RecordAmended):
            if e.record_id in headers:
                headers[e.record_id] = replace(headers[e.record_id], previous=e.previous_id)
            if e.previous_id in headers:
                headers[e.previous_id] = replace(headers[e.previous_id], next=e.record_id)
        elif isinstance(e, RecordErased) and e.record_id in headers:
            headers[e.record_id] = replace(headers[e.record_id], erased=True, fingerprint=ZERO32)
    return {rid: replace(info, header=headers[rid]) for rid, info in found.items()}


class RecordCalls(ContractBase):
    """Records and batches of one deployment, each named by ``(patient, record id)``."""

    # --- reading --------------------------------------------------------------------------------------
    def record_commitment(self, patient: str, record_id: bytes) -> bytes:
        """The stored commitment of a record (zero: the patient has no record with this id)."""
        return bytes(self._view("recordCommitment", _address(patient), record_id))

    def is_record_header(self, patient: str, record_id: bytes, header: RecordHeader) -> bool:
        return bool(self._view("isRecordHeader", _address(patient), record_id, header.as_abi()))

    def _record_events(self, patient: str, record_id: bytes) -> list[ChainEvent]:
        rid, who = encode_topic("bytes32", record_id), encode_topic("address", patient)
        created = [self.codec.topic0(k) for k in (RecordRegistered, BatchAnchored, RecordErased)]
        amended = self.codec.topic0(RecordAmended)
        queries: list[list[Any]] = [[created, rid, who], [amended, rid, None, who], [amended, None, rid, who]]
        found: list[ChainEvent] = []
        for topics in queries:
            found.extend(self.raw_logs(topics))
        return sorted(found, key=lambda e: (e.log.block_number, e.log.log_index))

    def record(self, patient: str, record_id: bytes) -> RecordInfo:
        """The record (or batch) ``record_id`` of ``patient``, its header rebuilt from its events and
        checked against the chain's commitment (``exists`` False: the patient has none by that id).
        Raises :class:`~medledger.errors.TamperingDetected` if the node's events do not rebuild it."""
        patient = _address(patient)
        for _ in range(_REBUILD_ATTEMPTS):
            info = rebuild(patient, self._record_events(patient, record_id)).get(bytes(record_id))
            commitment = self.record_commitment(patient, record_id)
            if commitment == ZERO32:
                return RecordInfo(bytes(record_id), patient, None)
            if info is not None and info.header is not None and header_commitment(info.header) == commitment:
                return replace(info, created_at=self.chain.block_time(info.created_block))
        raise TamperingDetected(
            f"The events the node returned for record 0x{bytes(record_id).hex()} of patient {patient} do not "
            "rebuild its on-chain commitment (events left out or altered)"
        )

    def records_of(self, patient: str, history: EventHistory | None = None) -> list[RecordInfo]:
        """Every record and batch of ``patient``, oldest first, rebuilt from its events (read through
        ``history``, default a log scan; not checked one by one against the commitments: :meth:`record`
        does that before a record is used)."""
        patient = _address(patient)
        source = history or LogScan(self)
        events = source.events((RecordRegistered, BatchAnchored, RecordAmended, RecordErased), patient=patient)
        return [
            replace(info, created_at=source.block_time(info.created_block))
            for info in rebuild(patient, events).values()
        ]

    def patients_with_record(self, record_id: bytes) -> list[str]:
        """Every patient that has a record or batch named ``record_id`` (ids are per patient)."""
        created = [self.codec.topic0(k) for k in (RecordRegistered, BatchAnchored)]
        found = self.raw_logs([created, encode_topic("bytes32", record_id)])
        return sorted({e.patient for e in found if isinstance(e, (RecordRegistered, BatchAnchored))})

    def records_registered_by(self, tx: SignedTx) -> list[tuple[str, bytes]]:
        """``(patient, record id)`` of every record or batch the signed transaction ``tx`` registers
        (empty: it calls another function, or another contract)."""
        if tx.to is None or tx.to.lower() != self.address.lower():
            return []
        try:
            function, args = self._contract.decode_function_input(tx.input_data())
        except ValueError:
            return []
        name = function.fn_name
        if name == "registerRecords":
            return [(str(args["patient"]), bytes(e["recordId"])) for e in args["entries"]]
        if name in ("registerRecord", "amendRecord"):
            return [(str(args["patient"]), bytes(args["recordId"]))]
        if name == "anchorBatch":
            return [(str(args["patient"]), bytes(args["root"]))]
        return []

    def verify_fingerprint(self, patient: str, record_id: bytes, header: RecordHeader, fingerprint: bytes) -> bool:
        return bool(self._view("verifyFingerprint", _address(patient), record_id, header.as_abi(), fingerprint))

    def verify_batch_inclusion(
        self, patient: str, root: bytes, header: RecordHeader, reading_id: bytes, fingerprint: bytes,
        proof: Sequence[bytes],
    ) -> bool:  # fmt: skip
        args = (_address(patient), root, header.as_abi(), reading_id, fingerprint, list(proof))
        return bool(self._view("verifyBatchInclusion", *args))

    # --- writing --------------------------------------------------------------------------------------
    def register_record(
        self, patient: str, record_id: bytes, category: int, purpose: int, key_epoch: int, fingerprint: bytes,
        cid: bytes, *, sender: Sender,
    ) -> Receipt:  # fmt: skip
        """Register a record whose record key is sealed to ``category``'s key of epoch ``key_epoch``;
        ``cid``: the binary CIDv1 of its ciphertext (only its codec and digest go on chain)."""
        codec, digest = cid_parts(cid)
        args = (_address(patient), record_id, int(category), int(purpose), int(key_epoch), fingerprint, codec, digest)
        return self.send(Tx("registerRecord", args, _context(category, purpose)), sender)

    def register_records(
        self, patient: str, category: int, purpose: int, key_epoch: int, entries: Sequence[RecordEntry],
        *, sender: Sender,
    ) -> Receipt:  # fmt: skip
        """Register several records of one category in one transaction (all or none)."""
        args = (_address(patient), int(category), int(purpose), int(key_epoch), [e.as_abi() for e in entries])
        return self.send(Tx("registerRecords", args, _context(category, purpose)), sender)

    def amend_record(
        self, patient: str, previous_id: bytes, previous: RecordHeader, record_id: bytes, purpose: int,
        key_epoch: int, fingerprint: bytes, cid: bytes, *, sender: Sender,
    ) -> Receipt:  # fmt: skip
        """A new version ``record_id`` of ``previous_id`` (whose current header is ``previous``)."""
        codec, digest = cid_parts(cid)
        args = (
            _address(patient), previous_id, previous.as_abi(), record_id, int(purpose), int(key_epoch), fingerprint,
            codec, digest,
        )  # fmt: skip
        return self.send(Tx("amendRecord", args, _context(previous.category, purpose)), sender)

    def anchor_batch(
        self, patient: str, root: bytes, category: int, purpose: int, key_epoch: int, leaf_count: int, cid: bytes,
        *, sender: Sender,
    ) -> Receipt:  # fmt: skip
        codec, digest = cid_parts(cid)
        args = (_address(patient), root, int(category), int(purpose), int(key_epoch), int(leaf_count), codec, digest)
        return self.send(Tx("anchorBatch", args, _context(category, purpose)), sender)

    def erase_record(self, patient: str, record_id: bytes, header: RecordHeader, *, sender: Sender) -> Receipt:
        return self.send(Tx("eraseRecord", (_address(patient), record_id, header.as_abi())), sender)

    def record_access(
        self, patient: str, record_id: bytes, header: RecordHeader, purpose: int, *, sender: Sender
    ) -> Receipt:
        args = (_address(patient), record_id, header.as_abi(), int(purpose))
        return self.send(Tx("recordAccess", args, _context(header.category, purpose)), sender)


def _context(category: int, purpose: int) -> dict[str, int]:
    return {"category": int(codes.Category(int(category))), "purpose": int(purpose)}
