"""Who may read a patient's categories now, and who lacks the current keys of what it may read.

The chain releases keys (``publishKeyEnvelope``) only to a recipient with *live* read access to every
category of the envelope, through one of three sources: a read consent that has started and not ended
(a delegate-made one only while its delegation is live, unsuspended and covers the categories), its
own live delegation, or an open emergency window; and never to a suspended participant.
:func:`live_access` finds each such source (one entry per source, as the chain takes envelopes).

For an emergency clinician the categories are the ones the patient (or a delegate) chose to release
to it since its current run began (or since the last close or opt-out, which made them stale): an
open window reads everything on chain, but keys are released category by category.

:func:`undelivered` answers which categories' *current* key a reader (or the patient herself) holds
no envelope for, from events alone: an envelope counts if it names the category and was published
after the category's latest rotation and after the recipient's latest encryption-key change. (A
manager cannot open an envelope sealed to someone else; the events are what it can check.)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from medledger import codes
from medledger.chain import ZERO32
from medledger.chain.events import (
    CategoryKeyRotated,
    ChainEvent,
    ConsentGranted,
    DelegateAppointed,
    EmergencyAccessClosed,
    EmergencyAccessOpened,
    EmergencyOptOutChanged,
    KeyEnvelopePublished,
    ParticipantKeyRotated,
    PatientKeyRotated,
)
from medledger.client import Client, as_address

#: Where an event sits in the chain's history (block, log index): later is larger.
Position = tuple[int, int]
_BEGINNING: Position = (-1, -1)


@dataclass(frozen=True)
class ReaderAccess:
    """One source of ``reader``'s live read access to ``categories`` (``source``: consent,
    delegation or emergency)."""

    reader: str
    categories: frozenset[int]
    source: str


def _at(event: ChainEvent) -> Position:
    return (event.log.block_number, event.log.log_index)


def live_access(client: Client, patient: str) -> list[ReaderAccess]:
    """Every source of live read access to ``patient``'s categories held by an unsuspended account
    other than the patient (the recipients the chain releases keys to)."""
    patient = as_address(patient)
    return [*_consents(client, patient), *_delegations(client, patient), *_emergencies(client, patient)]


def _consents(client: Client, patient: str) -> list[ReaderAccess]:
    contract, now = client.contract, client.now()
    found = []
    for grantee in sorted({e.grantee for e in contract.logs(ConsentGranted, patient=patient)}):
        consent = contract.consent(patient, grantee, codes.Access.READ)
        covered = frozenset(int(c) for c in consent.categories)
        if consent.delegation:
            delegation = contract.delegation_by_id(patient, consent.delegation)
            live = delegation.live(now) and not contract.participant(delegation.delegate).suspended
            covered &= frozenset(int(c) for c in delegation.categories) if live else frozenset()
        if covered and consent.live(now) and not contract.participant(grantee).suspended:
            found.append(ReaderAccess(grantee, covered, "consent"))
    return found


def _delegations(client: Client, patient: str) -> list[ReaderAccess]:
    contract, now = client.contract, client.now()
    found = []
    for delegate in sorted({e.delegate for e in contract.logs(DelegateAppointed, patient=patient)}):
        delegation = contract.delegation(patient, delegate)
        if delegation.live(now) and not contract.participant(delegate).suspended:
            found.append(ReaderAccess(delegate, frozenset(int(c) for c in delegation.categories), "delegation"))
    return found


def _emergencies(client: Client, patient: str) -> list[ReaderAccess]:
    contract = client.contract
    openings = contract.logs(EmergencyAccessOpened, patient=patient)
    found = []
    for clinician in sorted({e.clinician for e in openings}):
        if not contract.emergency_access(patient, clinician).open or contract.participant(clinician).suspended:
            continue
        since = released_since(client, patient, clinician, [e for e in openings if e.clinician == clinician])
        released: set[int] = set()
        for e in contract.logs(KeyEnvelopePublished, patient=patient, recipient=clinician):
            if _at(e) > since:
                released.update(int(c) for c in e.categories)
        if released:
            found.append(ReaderAccess(clinician, frozenset(released), "emergency"))
    return found


def released_since(client: Client, patient: str, clinician: str, openings: Iterable[EmergencyAccessOpened]) -> Position:
    """Where the keys released to ``clinician`` now began to count: the opening that started its current
    run, or the last close of its access or opt-out of the patient if later (each made them stale)."""
    since = _BEGINNING
    for opening in sorted(openings, key=_at, reverse=True):
        if client.block_time(opening.log.block_number) == opening.run_start:  # this opening started a run
            since = _at(opening)
            break
    contract = client.contract
    for closed in contract.logs(EmergencyAccessClosed, patient=patient, clinician=clinician):
        since = max(since, _at(closed))
    for change in contract.logs(EmergencyOptOutChanged, patient=patient):
        if change.opted_out:
            since = max(since, _at(change))
    return since


def undelivered(client: Client, patient: str, wanted: dict[str, frozenset[int]]) -> dict[str, frozenset[int]]:
    """Of the categories each recipient in ``wanted`` should hold, those whose current key reached it in
    no envelope (see the module's description); recipients missing nothing are left out."""
    patient = as_address(patient)
    contract = client.contract
    rotated: dict[int, Position] = {}
    for rotation in contract.logs(CategoryKeyRotated, patient=patient):
        rotated[int(rotation.category)] = max(rotated.get(int(rotation.category), _BEGINNING), _at(rotation))
    delivered: dict[str, list[tuple[Position, frozenset[int]]]] = {}
    for e in contract.logs_of((ConsentGranted, KeyEnvelopePublished), patient):
        if isinstance(e, KeyEnvelopePublished):
            delivered.setdefault(e.recipient, []).append((_at(e), frozenset(int(c) for c in e.categories)))
        elif isinstance(e, ConsentGranted) and e.key_envelope != ZERO32:
            delivered.setdefault(e.grantee, []).append((_at(e), frozenset(int(c) for c in e.categories)))
    missing = {}
    for recipient, categories in wanted.items():
        rekeyed = max((_at(e) for e in contract.logs_of((PatientKeyRotated, ParticipantKeyRotated), recipient)),
                      default=_BEGINNING)  # fmt: skip
        envelopes = delivered.get(recipient, [])
        lacking = frozenset(
            c for c in categories
            if not any(at > max(rotated.get(c, _BEGINNING), rekeyed) and c in named for at, named in envelopes)
        )  # fmt: skip
        if lacking:
            missing[recipient] = lacking
    return missing
