"""The contract's events as named, frozen values, decoded from raw logs with the ABI.

Every event medledger reads has a dataclass here whose fields are the event's arguments in
snake_case (``keyEnvelope`` -> ``key_envelope``); the decoder converts each value by the field's
declared type (addresses checksummed, codes as :mod:`medledger.codes` members, masks as frozensets).
When the contract's events change, only these classes change (a test compares them with the ABI).
Events the package does not use (AccessControl's role events) are skipped.
(Over 400 lines on purpose: one small class per contract event, all in one place beside the decoder.)
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from enum import IntEnum
from typing import Any, TypeVar

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

from medledger import codes

from .types import cid_from_parts


@dataclass(frozen=True)
class LogPosition:
    """Where an event was emitted."""

    block_number: int
    log_index: int
    tx_hash: str


_NOWHERE = LogPosition(0, 0, "")


@dataclass(frozen=True, kw_only=True)
class ChainEvent:
    """Base of every decoded event."""

    log: LogPosition = field(default=_NOWHERE, compare=False)


# --- participants ---------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class PatientRegistered(ChainEvent):
    patient: str
    encryption_key: bytes


@dataclass(frozen=True, kw_only=True)
class PatientKeyRotated(ChainEvent):
    patient: str
    encryption_key: bytes


@dataclass(frozen=True, kw_only=True)
class CategoryKeyRotated(ChainEvent):
    patient: str
    category: codes.Category
    epoch: int
    public_key: bytes
    by: str


@dataclass(frozen=True, kw_only=True)
class ParticipantRegistered(ChainEvent):
    account: str
    kind: codes.ParticipantKind
    registrar: str
    credential_ref: bytes
    encryption_key: bytes


@dataclass(frozen=True, kw_only=True)
class ParticipantKeyRotated(ChainEvent):
    account: str
    encryption_key: bytes


@dataclass(frozen=True, kw_only=True)
class ParticipantSuspended(ChainEvent):
    account: str
    registrar: str
    reason_code: bytes


@dataclass(frozen=True, kw_only=True)
class ParticipantReinstated(ChainEvent):
    account: str
    registrar: str


# --- consent ----------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class ConsentGranted(ChainEvent):
    patient: str
    grantee: str
    access: codes.Access
    categories: frozenset[codes.Category]
    purposes: frozenset[codes.Purpose]
    start: int
    expiry: int
    key_envelope: bytes
    by: str
    delegation: int


@dataclass(frozen=True, kw_only=True)
class ConsentRevoked(ChainEvent):
    patient: str
    grantee: str
    access: codes.Access
    by: str


@dataclass(frozen=True, kw_only=True)
class SignedConsentConsumed(ChainEvent):
    patient: str
    grantee: str
    access: codes.Access
    issued_at: int


@dataclass(frozen=True, kw_only=True)
class SignedRequestsInvalidated(ChainEvent):
    patient: str
    new_nonce: int
    by: str


@dataclass(frozen=True, kw_only=True)
class DelegateAppointed(ChainEvent):
    patient: str
    delegate: str
    id: int
    categories: frozenset[codes.Category]
    expiry: int


@dataclass(frozen=True, kw_only=True)
class DelegateRemoved(ChainEvent):
    patient: str
    delegate: str
    id: int


@dataclass(frozen=True, kw_only=True)
class EmergencyAccessOpened(ChainEvent):
    patient: str
    clinician: str
    expires_at: int
    run_start: int
    reason_code: bytes


@dataclass(frozen=True, kw_only=True)
class EmergencyAccessConfirmed(ChainEvent):
    patient: str
    clinician: str
    by: str


@dataclass(frozen=True, kw_only=True)
class EmergencyAccessClosed(ChainEvent):
    patient: str
    clinician: str
    by: str


@dataclass(frozen=True, kw_only=True)
class EmergencyOptOutChanged(ChainEvent):
    patient: str
    opted_out: bool


@dataclass(frozen=True, kw_only=True)
class KeyEnvelopePublished(ChainEvent):
    patient: str
    recipient: str
    categories: frozenset[codes.Category]
    envelope: bytes
    by: str


# --- records ------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class RecordRegistered(ChainEvent):
    record_id: bytes
    patient: str
    author: str
    category: codes.Category
    purpose: codes.Purpose
    key_epoch: int
    fingerprint: bytes
    cid_codec: int
    cid_digest: bytes

    @property
    def cid(self) -> bytes:
        """The binary CIDv1 of the ciphertext."""
        return cid_from_parts(self.cid_codec, self.cid_digest)


@dataclass(frozen=True, kw_only=True)
class RecordAmended(ChainEvent):
    previous_id: bytes
    record_id: bytes
    patient: str


@dataclass(frozen=True, kw_only=True)
class BatchAnchored(ChainEvent):
    root: bytes
    patient: str
    author: str
    category: codes.Category
    purpose: codes.Purpose
    key_epoch: int
    leaf_count: int
    cid_codec: int
    cid_digest: bytes

    @property
    def cid(self) -> bytes:
        """The binary CIDv1 of the batch's ciphertext."""
        return cid_from_parts(self.cid_codec, self.cid_digest)


@dataclass(frozen=True, kw_only=True)
class RecordErased(ChainEvent):
    record_id: bytes
    patient: str


@dataclass(frozen=True, kw_only=True)
class RecordAccessed(ChainEvent):
    record_id: bytes
    patient: str
    accessor: str
    purpose: codes.Purpose
    emergency: bool


EVENT_TYPES: dict[str, type[ChainEvent]] = {
    cls.__name__: cls
    for cls in (
        PatientRegistered, PatientKeyRotated, CategoryKeyRotated, ParticipantRegistered,
        ParticipantKeyRotated, ParticipantSuspended, ParticipantReinstated, ConsentGranted, ConsentRevoked,
        SignedConsentConsumed, SignedRequestsInvalidated, DelegateAppointed, DelegateRemoved,
        EmergencyAccessOpened, EmergencyAccessConfirmed, EmergencyAccessClosed, EmergencyOptOutChanged,
        KeyEnvelopePublished, RecordRegistered, RecordAmended, BatchAnchored, RecordErased, RecordAccessed,
    )
}  # fmt: skip

E = TypeVar("E", bound=ChainEvent)


def snake(name: str) -> str:
    """``keyEnvelope`` -> ``key_envelope`` (the field name of an ABI argument)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


# --- conversion by declared field type ------------------------------------------------------------------
def _convert(hint: Any, value: Any) -> Any:
    if hint is str:
        return to_checksum_address(value)
    if hint is bytes:
        return bytes(value)
    if hint is bool:
        return bool(value)
    if hint is int:
        return int(value)
    if isinstance(hint, type) and issubclass(hint, IntEnum):
        return hint(int(value))
    if typing.get_origin(hint) is frozenset:
        (member,) = typing.get_args(hint)
        return codes.from_mask(member, int(value))
    raise TypeError(f"no conversion for {hint!r}")  # pragma: no cover - a new field type needs a rule


_HINTS: dict[type[ChainEvent], dict[str, Any]] = {}


def _hints(cls: type[ChainEvent]) -> dict[str, Any]:
    """The declared type of each argument field of ``cls`` (resolved once)."""
    if cls not in _HINTS:
        hints = typing.get_type_hints(cls)
        _HINTS[cls] = {f.name: hints[f.name] for f in fields(cls) if f.name != "log"}
    return _HINTS[cls]


def build_event(cls: type[E], args: Mapping[str, Any], log: LogPosition = _NOWHERE) -> E:
    """An event of ``cls`` from ABI-named arguments (extra arguments are ignored)."""
    hints = _hints(cls)
    values = {snake(k): v for k, v in args.items()}
    return cls(log=log, **{name: _convert(hint, values[name]) for name, hint in hints.items()})


# --- raw logs ------------------------------------------------------------------------------------------
def _abi_type(spec: Mapping[str, Any]) -> str:
    return str(spec["type"])


def _hex(value: Any) -> str:
    if isinstance(value, str):
        return value if value.startswith("0x") else "0x" + value
    return "0x" + bytes(value).hex()


def _int(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) else int(value)


class EventCodec:
    """Decodes raw logs (JSON-RPC or web3 receipts) of one contract ABI into :class:`ChainEvent` s,
    and encodes indexed-argument filters into log topics."""

    def __init__(self, abi: Iterable[Mapping[str, Any]]) -> None:
        self._by_topic: dict[bytes, Mapping[str, Any]] = {}
        self._by_name: dict[str, Mapping[str, Any]] = {}
        for entry in abi:
            if entry.get("type") != "event" or entry["name"] not in EVENT_TYPES:
                continue
            signature = f"{entry['name']}({','.join(_abi_type(i) for i in entry['inputs'])})"
            self._by_topic[keccak(text=signature)] = entry
            self._by_name[entry["name"]] = entry

    def topic0(self, cls: type[ChainEvent]) -> str:
        entry = self._entry(cls)
        signature = f"{entry['name']}({','.join(_abi_type(i) for i in entry['inputs'])})"
        return "0x" + keccak(text=signature).hex()

    def _entry(self, cls: type[ChainEvent]) -> Mapping[str, Any]:
        try:
            return self._by_name[cls.__name__]
        except KeyError:
            raise TypeError(f"the contract's ABI has no event {cls.__name__}") from None

    def topics(self, cls: type[ChainEvent], filters: Mapping[str, Any]) -> list[str | None]:
        """``[topic0, topic1, ...]`` matching ``filters`` (snake_case names of indexed arguments)."""
        indexed = [i for i in self._entry(cls)["inputs"] if i.get("indexed")]
        unknown = set(filters) - {snake(i["name"]) for i in indexed}
        if unknown:
            raise TypeError(f"{cls.__name__} has no indexed argument(s) {sorted(unknown)}")
        topics: list[str | None] = [self.topic0(cls)]
        for spec in indexed:
            value = filters.get(snake(spec["name"]))
            topics.append(None if value is None else encode_topic(_abi_type(spec), value))
        while topics and topics[-1] is None:
            topics.pop()
        return topics

    def decode(self, log: Mapping[str, Any]) -> ChainEvent | None:
        """The event of one raw log, or None if it is not one the package reads."""
        topics = [bytes.fromhex(_hex(t)[2:]) for t in log["topics"]]
        entry = self._by_topic.get(topics[0]) if topics else None
        if entry is None:
            return None
        indexed = [i for i in entry["inputs"] if i.get("indexed")]
        plain = [i for i in entry["inputs"] if not i.get("indexed")]
        args: dict[str, Any] = {}
        for spec, topic in zip(indexed, topics[1:], strict=True):
            (args[spec["name"]],) = abi_decode([_abi_type(spec)], topic)
        data = bytes.fromhex(_hex(log["data"])[2:])
        for spec, value in zip(plain, abi_decode([_abi_type(i) for i in plain], data), strict=True):
            args[spec["name"]] = value
        position = LogPosition(_int(log["blockNumber"]), _int(log["logIndex"]), _hex(log["transactionHash"]))
        return build_event(EVENT_TYPES[entry["name"]], args, position)

    def decode_all(self, logs: Iterable[Mapping[str, Any]]) -> list[ChainEvent]:
        return [event for event in (self.decode(log) for log in logs) if event is not None]


def encode_topic(abi_type: str, value: Any) -> str:
    """The log topic of an indexed argument of ``abi_type`` with ``value``."""
    return _hex(abi_encode([abi_type], [_plain(value)]))


def _plain(value: Any) -> Any:
    """A filter value as eth_abi takes it."""
    if isinstance(value, IntEnum):
        return int(value)
    return value


@dataclass(frozen=True)
class Receipt:
    """A mined transaction and the events it emitted (``simulated``: only checked, nothing sent)."""

    tx_hash: str
    block_number: int
    gas_used: int
    events: tuple[ChainEvent, ...] = ()
    simulated: bool = False

    def of(self, kind: type[E]) -> list[E]:
        """The events of ``kind``, in order."""
        return [e for e in self.events if isinstance(e, kind)]

    def first(self, kind: type[E]) -> E | None:
        found = self.of(kind)
        return found[0] if found else None

    def emitted(self, kind: type[ChainEvent]) -> bool:
        """Whether the transaction emitted ``kind`` (the contract emits only when state changed)."""
        return bool(self.of(kind))
