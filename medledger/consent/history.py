"""Grants with their history, for listings a researcher can load into a table: the terms, when they
were granted (block, time, transaction) and when they were revoked.

Rebuilt from ``ConsentGranted`` / ``ConsentRevoked`` events (indexed by patient and by grantee; read
through ``client.history``: a log scan or the event index) and confirmed against the chain's current
state: a consent that stands shows its terms as the chain holds them now; a revoked one shows the
terms it was last granted with, and when it was revoked.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from medledger import codes
from medledger.access import consent_of
from medledger.chain import Consent
from medledger.chain.events import ConsentGranted, ConsentRevoked
from medledger.client import Client, as_address

Status = Literal["active", "pending", "expired", "revoked"]
Key = tuple[str, str, codes.Access]  # patient, grantee, access
_TERMS = ("patient", "grantee", "access", "categories", "purposes", "start", "expiry")


@dataclass(frozen=True)
class GrantRecord:
    """One consent with its history: ``consent`` holds the terms in force (for a revoked one, the terms
    it last had); ``granted_*`` the last grant; ``revoked``: the chain no longer holds it
    (``revoked_at`` / ``revoked_tx``: the revocation, when an event says so)."""

    consent: Consent
    granted_at: int
    granted_block: int
    tx_hash: str
    revoked: bool = False
    revoked_at: int | None = None
    revoked_tx: str | None = None

    def status(self, now: int) -> Status:
        if self.revoked:
            return "revoked"
        if now >= self.consent.expiry:
            return "expired"
        return "pending" if now < self.consent.start else "active"


def _latest(events: Iterable[ConsentGranted | ConsentRevoked]) -> dict[Key, ConsentGranted | ConsentRevoked]:
    latest: dict[Key, ConsentGranted | ConsentRevoked] = {}
    for event in sorted(events, key=lambda e: (e.log.block_number, e.log.log_index)):
        latest[(event.patient, event.grantee, event.access)] = event
    return latest


def _record(client: Client, granted: ConsentGranted, revoked: ConsentRevoked | None) -> GrantRecord:
    now = consent_of(client, granted.patient, granted.grantee, granted.access)
    last = Consent(*(getattr(granted, f) for f in _TERMS))  # a revoked consent keeps the terms it last had
    ended = revoked if not now.exists and revoked is not None else None
    return GrantRecord(
        consent=now if now.exists else last,
        granted_at=client.history.block_time(granted.log.block_number),
        granted_block=granted.log.block_number,
        tx_hash=granted.log.tx_hash,
        revoked=not now.exists,
        revoked_at=client.history.block_time(ended.log.block_number) if ended else None,
        revoked_tx=ended.log.tx_hash if ended else None,
    )


def grant_history(
    client: Client, *, patient: str | None = None, grantee: str | None = None, include_ended: bool = False
) -> list[GrantRecord]:
    """The consents ``patient`` gave, or those made to ``grantee`` (one of the two), oldest grant first.
    Without ``include_ended`` only those that still stand (active or not yet started); with it also
    the expired and the revoked ones."""
    if (patient is None) == (grantee is None):
        raise ValueError("give exactly one of patient= and grantee=")
    patient, grantee = (as_address(patient) if patient else None), (as_address(grantee) if grantee else None)
    found = client.history.events((ConsentGranted, ConsentRevoked), patient=patient, grantee=grantee)
    grants = _latest(e for e in found if isinstance(e, ConsentGranted))
    revokes = _latest(e for e in found if isinstance(e, ConsentRevoked))
    now = client.now()
    out = []
    for key, granted in grants.items():
        assert isinstance(granted, ConsentGranted)
        revoked = revokes.get(key)
        if revoked is not None and (revoked.log.block_number, revoked.log.log_index) < (
            granted.log.block_number,
            granted.log.log_index,
        ):
            revoked = None  # granted again since
        record = _record(client, granted, revoked if isinstance(revoked, ConsentRevoked) else None)
        if include_ended or record.status(now) in ("active", "pending"):
            out.append(record)
    return sorted(out, key=lambda r: (r.granted_block, r.consent.patient, r.consent.grantee, r.consent.access))
