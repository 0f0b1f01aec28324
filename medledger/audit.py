"""Views of the audit trail: who read which record, when, and why; consent, delegate and emergency
history. Rebuilt from the contract's events alone, so anyone with chain access sees the same."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from . import codes
from .chain import utc
from .client import Client, as_address

_EVENTS = (
    "RecordAccessed",
    "RecordRegistered",
    "BatchAnchored",
    "RecordAmended",
    "RecordErased",
    "ConsentGranted",
    "ConsentRevoked",
    "DelegateAppointed",
    "DelegateRemoved",
    "EmergencyAccessOpened",
    "EmergencyAccessClosed",
    "EmergencyOptOutChanged",
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

    def to_json(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "time_utc": utc(self.time),
            "block": self.block,
            "event": self.event,
            "actor": self.actor,
            "record": self.record,
            "purpose": self.purpose,
            "detail": self.detail,
            "emergency": self.emergency,
        }


def _cats(mask: int) -> str:
    return ", ".join(codes.label(c) for c in sorted(codes.mask_to_categories(mask)))


def _purposes(mask: int) -> str:
    return ", ".join(codes.label(p) for p in sorted(codes.mask_to_purposes(mask)))


def _entry(client: Client, event: Any) -> AuditEntry:
    name = event["event"]
    a = event["args"]
    record = None
    purpose = None
    emergency = False
    actor = ""
    if name == "RecordAccessed":
        actor, record = a["accessor"], "0x" + bytes(a["recordId"]).hex()
        purpose = codes.label(codes.Purpose(a["purpose"]))
        emergency = a["emergency"]
        detail = f"read record {record[:12]}… under emergency access" if emergency else f"read record {record[:12]}… for {purpose}"
    elif name == "RecordRegistered":
        actor, record = a["author"], "0x" + bytes(a["recordId"]).hex()
        purpose = codes.label(codes.Purpose(a["purpose"]))
        detail = f"wrote a record of {codes.label(codes.Category(a['category']))} for {purpose}"
    elif name == "BatchAnchored":
        actor, record = a["author"], "0x" + bytes(a["root"]).hex()
        detail = f"anchored {a['leafCount']} {codes.label(codes.Category(a['category']))} readings"
    elif name == "RecordAmended":
        # The event has no author field: the author is whoever sent the amending transaction.
        actor = client.chain._rpc(lambda: client.chain.w3.eth.get_transaction(event["transactionHash"]))["from"]
        record = "0x" + bytes(a["recordId"]).hex()
        detail = f"amended record 0x{bytes(a['previousId']).hex()[:10]}… (new version {record[:12]}…)"
    elif name == "RecordErased":
        actor, record = a["patient"], "0x" + bytes(a["recordId"]).hex()
        detail = "erased the record"
    elif name == "ConsentGranted":
        actor = a["by"]
        access = codes.label(codes.Access(a["access"]))
        detail = (
            f"granted {a['grantee']} {access} access to {_cats(a['categories'])} for {_purposes(a['purposes'])} "
            f"until {utc(a['expiry'])}"
        )
    elif name == "ConsentRevoked":
        actor = a["by"]
        detail = f"revoked the {codes.label(codes.Access(a['access']))} consent of {a['grantee']}"
    elif name == "DelegateAppointed":
        actor = a["patient"]
        detail = f"appointed delegate {a['delegate']} for {_cats(a['categories'])} until {utc(a['expiry'])}"
    elif name == "DelegateRemoved":
        actor = a["patient"]
        detail = f"removed delegate {a['delegate']}"
    elif name == "EmergencyAccessOpened":
        actor, emergency = a["clinician"], True
        detail = f"opened emergency access until {utc(a['expiresAt'])} (reason code 0x{bytes(a['reasonCode']).hex()[:12]}…)"
    elif name == "EmergencyAccessClosed":
        actor = a["by"]
        detail = f"closed the emergency access of {a['clinician']}"
    else:  # EmergencyOptOutChanged
        actor = a["patient"]
        detail = "opted out of emergency access" if a["optedOut"] else "opted back into emergency access"
    return AuditEntry(
        client.block_time(event["blockNumber"]), event["blockNumber"], name, actor, record, purpose, detail, emergency
    )


def trail(client: Client, patient: str, events: Iterable[str] = _EVENTS) -> list[AuditEntry]:
    """The patient's complete history, oldest first, from events alone."""
    patient = as_address(patient)
    raw = []
    for name in events:
        raw.extend(client.logs(name, patient=patient))
    raw.sort(key=lambda e: (e["blockNumber"], e["logIndex"]))
    return [_entry(client, e) for e in raw]


def accesses(client: Client, patient: str) -> list[AuditEntry]:
    """Only who read what: record accesses and emergency openings."""
    return trail(client, patient, ("RecordAccessed", "EmergencyAccessOpened"))


def to_csv(entries: Iterable[AuditEntry]) -> str:
    buf = io.StringIO()
    fields = ["time_utc", "block", "event", "actor", "record", "purpose", "emergency", "detail"]
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    for e in entries:
        writer.writerow(e.to_json())
    return buf.getvalue()


def to_json(entries: Iterable[AuditEntry]) -> str:
    return json.dumps([e.to_json() for e in entries], indent=2)
