"""Views of the audit trail: who read which record, when, and why; consent, delegate and emergency
history. Rebuilt from the contract's events alone, so anyone with chain access sees the same; read
through ``client.history`` (a log scan, or the event index when the caller gave it one: same rows)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from . import codes
from .chain import FOREVER, ChainEvent, utc
from .chain.events import (
    BatchAnchored,
    ConsentGranted,
    ConsentRevoked,
    DelegateAppointed,
    DelegateRemoved,
    EmergencyAccessClosed,
    EmergencyAccessConfirmed,
    EmergencyAccessOpened,
    EmergencyOptOutChanged,
    RecordAccessed,
    RecordAmended,
    RecordErased,
    RecordRegistered,
    SignedConsentConsumed,
    SignedRequestsInvalidated,
)
from .client import Client, as_address
from .times import LAST_DATE, iso

_EVENTS: tuple[type[ChainEvent], ...] = (
    RecordAccessed,
    RecordRegistered,
    BatchAnchored,
    RecordAmended,
    RecordErased,
    ConsentGranted,
    ConsentRevoked,
    SignedConsentConsumed,
    SignedRequestsInvalidated,
    DelegateAppointed,
    DelegateRemoved,
    EmergencyAccessOpened,
    EmergencyAccessConfirmed,
    EmergencyAccessClosed,
    EmergencyOptOutChanged,
)


@dataclass(frozen=True)
class AuditEntry:
    time: int
    block: int
    event: str
    actor: str
    record: str | None
    purpose: str | None
    detail: str
    emergency: bool
    tx_hash: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "time_utc": iso(self.time),
            "block": self.block,
            "tx_hash": self.tx_hash,
            "event": self.event,
            "actor": self.actor,
            "record": self.record,
            "purpose": self.purpose,
            "detail": self.detail,
            "emergency": self.emergency,
        }


def _cats(categories: Iterable[codes.Category]) -> str:
    return ", ".join(codes.label(c) for c in sorted(categories))


def _purposes(purposes: Iterable[codes.Purpose]) -> str:
    return ", ".join(codes.label(p) for p in sorted(purposes))


def _short(record_id: bytes) -> str:
    return "0x" + record_id.hex()


def _until(expiry: int) -> str:
    return "with no expiry" if expiry >= FOREVER or expiry > LAST_DATE else f"until {utc(expiry)}"


Described = tuple[str, str | None, str | None, bool, str]  # actor, record, purpose, emergency, detail


def _record_event(client: Client, e: ChainEvent) -> Described | None:
    if isinstance(e, RecordAccessed):
        record, purpose = _short(e.record_id), codes.label(e.purpose)
        detail = (
            f"read record {record[:12]}… under emergency access"
            if e.emergency
            else f"read record {record[:12]}… for {purpose}"
        )
        return e.accessor, record, purpose, e.emergency, detail
    if isinstance(e, RecordRegistered):
        purpose = codes.label(e.purpose)
        return (
            e.author,
            _short(e.record_id),
            purpose,
            False,
            f"wrote a record of {codes.label(e.category)} for {purpose}",
        )
    if isinstance(e, BatchAnchored):
        return e.author, _short(e.root), None, False, f"anchored {e.leaf_count} {codes.label(e.category)} readings"
    if isinstance(e, RecordAmended):
        # The event has no author field: the author is whoever sent the amending transaction.
        record = _short(e.record_id)
        detail = f"amended record {_short(e.previous_id)[:12]}… (new version {record[:12]}…)"
        return client.history.sender(e), record, None, False, detail
    if isinstance(e, RecordErased):
        return e.patient, _short(e.record_id), None, False, "erased the record"
    return None


def _consent_event(e: ChainEvent) -> Described:
    if isinstance(e, ConsentGranted):
        detail = (
            f"granted {e.grantee} {codes.label(e.access)} access to {_cats(e.categories)} for "
            f"{_purposes(e.purposes)} {_until(e.expiry)}"
        )
        return e.by, None, None, False, detail
    if isinstance(e, ConsentRevoked):
        return e.by, None, None, False, f"revoked the {codes.label(e.access)} consent of {e.grantee}"
    if isinstance(e, SignedConsentConsumed):
        detail = (
            f"signed a request (issued {utc(e.issued_at)}) on the {codes.label(e.access)} consent of {e.grantee}; "
            "submitted, it changed nothing"
        )
        return e.patient, None, None, False, detail
    if isinstance(e, SignedRequestsInvalidated):
        return e.by, None, None, False, f"voided every outstanding signed request (nonce now {e.new_nonce})"
    if isinstance(e, DelegateAppointed):
        detail = f"appointed delegate {e.delegate} for {_cats(e.categories)} {_until(e.expiry)}"
        return e.patient, None, None, False, detail
    if isinstance(e, DelegateRemoved):
        return e.patient, None, None, False, f"removed delegate {e.delegate}"
    if isinstance(e, EmergencyAccessOpened):
        detail = f"opened emergency access until {utc(e.expires_at)} (reason code 0x{e.reason_code.hex()[:12]}…)"
        return e.clinician, None, None, True, detail
    if isinstance(e, EmergencyAccessConfirmed):
        return e.by, None, None, True, f"confirmed the emergency access of {e.clinician}"
    if isinstance(e, EmergencyAccessClosed):
        return e.by, None, None, False, f"closed the emergency access of {e.clinician}"
    if isinstance(e, EmergencyOptOutChanged):
        detail = "opted out of emergency access" if e.opted_out else "opted back into emergency access"
        return e.patient, None, None, False, detail
    raise TypeError(f"not an audited event: {type(e).__name__}")


def _entry(client: Client, event: ChainEvent) -> AuditEntry:
    actor, record, purpose, emergency, detail = _record_event(client, event) or _consent_event(event)
    block = event.log.block_number
    time = client.history.block_time(block)
    return AuditEntry(time, block, type(event).__name__, actor, record, purpose, detail, emergency, event.log.tx_hash)


def trail(client: Client, patient: str, events: Iterable[type[ChainEvent]] = _EVENTS) -> list[AuditEntry]:
    """The patient's complete history, oldest first, from events alone."""
    raw = client.history.events(tuple(events), patient=as_address(patient))
    return [_entry(client, e) for e in raw]


def accesses(client: Client, patient: str) -> list[AuditEntry]:
    """Only who read what: record accesses and emergency openings."""
    return trail(client, patient, (RecordAccessed, EmergencyAccessOpened))


def to_csv(entries: Iterable[AuditEntry]) -> str:
    buf = io.StringIO()
    fields = ["time", "time_utc", "block", "tx_hash", "event", "actor", "record", "purpose", "emergency", "detail"]
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    for e in entries:
        writer.writerow(e.to_json())
    return buf.getvalue()


def to_json(entries: Iterable[AuditEntry]) -> str:
    return json.dumps([e.to_json() for e in entries], indent=2)
