"""What the Medledger contract answers, as named, frozen values (never tuples read by position).

Each view of :class:`~medledger.chain.contract.MedledgerContract` returns one of these; codes come
back as :mod:`medledger.codes` members and masks as frozensets of them, addresses checksummed and
byte strings as :class:`bytes`. A field the contract adds later is added here with a default, so
callers that do not need it are unaffected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from medledger import codes

from .bounds import uint

#: ``uint64`` max: a consent or delegation without an end.
FOREVER = 2**64 - 1
ZERO32 = b"\0" * 32
ZERO_ADDRESS = "0x" + "00" * 20


@dataclass(frozen=True)
class Participant:
    """An organisation or professional in the participant registry (``kind`` NONE: not registered)."""

    address: str
    kind: codes.ParticipantKind
    suspended: bool
    registered_at: int
    credential_ref: bytes
    encryption_key: bytes

    @property
    def registered(self) -> bool:
        return self.kind != codes.ParticipantKind.NONE

    @property
    def active(self) -> bool:
        return self.registered and not self.suspended


@dataclass(frozen=True)
class PatientState:
    """What the chain holds about a patient: registration, keys, emergency choice."""

    address: str
    registered: bool
    encryption_key: bytes
    key_directory: bytes  # on-chain pointer to the category-key directory (zero: none published)
    emergency_opted_out: bool

    @property
    def keys_published(self) -> bool:
        return self.key_directory != ZERO32


@dataclass(frozen=True)
class ConsentTerms:
    """The terms of a grant: what, why, and when (``start`` 0: at once; ``expiry``: exclusive end)."""

    categories: frozenset[codes.Category]
    purposes: frozenset[codes.Purpose]
    start: int = 0
    expiry: int = FOREVER

    def __post_init__(self) -> None:
        uint("start", self.start, 64)  # checked here, before a key envelope is uploaded for the grant
        uint("expiry", self.expiry, 64)

    @property
    def category_mask(self) -> int:
        return codes.categories_to_mask(self.categories)

    @property
    def purpose_mask(self) -> int:
        return codes.purposes_to_mask(self.purposes)


@dataclass(frozen=True)
class Consent:
    """A consent as it stands on chain now (``expiry`` 0: none, or revoked)."""

    patient: str
    grantee: str
    access: codes.Access
    categories: frozenset[codes.Category]
    purposes: frozenset[codes.Purpose]
    start: int
    expiry: int

    @property
    def exists(self) -> bool:
        return self.expiry != 0

    def live(self, now: int) -> bool:
        return self.start <= now < self.expiry

    def to_json(self) -> dict[str, Any]:
        return {
            "patient": self.patient,
            "grantee": self.grantee,
            "access": codes.slug(self.access),
            "categories": sorted(codes.slug(c) for c in self.categories),
            "purposes": sorted(codes.slug(p) for p in self.purposes),
            "start": self.start,
            "expiry": self.expiry,
        }


@dataclass(frozen=True)
class Delegation:
    """A patient's delegate and its bounds (``expiry`` 0: no delegation)."""

    patient: str
    delegate: str
    categories: frozenset[codes.Category]
    expiry: int

    def live(self, now: int) -> bool:
        return now < self.expiry


@dataclass(frozen=True)
class RecordInfo:
    """The on-chain header of a record or batch (``exists`` False: no such id)."""

    record_id: bytes
    patient: str
    category: codes.Category
    created_at: int
    erased: bool
    is_batch: bool
    leaf_count: int
    fingerprint: bytes
    previous: bytes | None  # the version this one amends
    superseded_by: bytes | None  # the version that amends this one

    @property
    def exists(self) -> bool:
        return self.patient != ZERO_ADDRESS
