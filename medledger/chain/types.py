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
from medledger.errors import InvalidRequest

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
    """What the chain holds about a patient: registration, encryption key, emergency choice. (Her
    category keys: :class:`CategoryKey`, one per category.)"""

    address: str
    registered: bool
    encryption_key: bytes
    emergency_opted_out: bool


@dataclass(frozen=True)
class CategoryKey:
    """The public key a category's records are sealed to now (``epoch`` 0: the patient is not
    registered). The key is *stale* from ``valid_until`` on: a reader it was released to lost (or
    will have lost) its access by then, so no record may be sealed to it any more."""

    patient: str
    category: codes.Category
    public_key: bytes
    epoch: int
    valid_until: int

    @property
    def exists(self) -> bool:
        return self.epoch != 0

    def stale(self, now: int) -> bool:
        return now >= self.valid_until


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
class ConsentState:
    """A consent as it stands on chain now (``expiry`` 0: none, or revoked: a revocation leaves a
    tombstone with zero terms and ``updated_at`` set).

    ``updated_at``: the time of the decision that set it (a direct one's block time, a signed one's
    ``issuedAt``; 0 = never), which a signed request must be newer than; ``delegation``: the id of
    the delegation that made it (0: the patient); ``keys_released``: category keys were sent to the
    grantee under it (losing it makes them stale)."""

    patient: str
    grantee: str
    access: codes.Access
    categories: frozenset[codes.Category]
    purposes: frozenset[codes.Purpose]
    start: int
    expiry: int
    updated_at: int = 0
    delegation: int = 0
    keys_released: bool = False

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
            "updated_at": self.updated_at,
            "delegation": self.delegation,
            "keys_released": self.keys_released,
        }


#: The earlier name of :class:`ConsentState`.
Consent = ConsentState


@dataclass(frozen=True)
class Delegation:
    """A patient's delegate and its bounds (``id`` 0 and ``expiry`` 0: no delegation). Ids count per
    patient from 1; a delegate appointed again after removal or expiry gets a new one."""

    patient: str
    delegate: str
    id: int
    categories: frozenset[codes.Category]
    expiry: int

    def live(self, now: int) -> bool:
        return now < self.expiry


@dataclass(frozen=True)
class EmergencyAccess:
    """A clinician's emergency access to a patient: open until ``expires_at``, within a run started
    at ``run_start`` (bounded by ``MAX_EMERGENCY_RUN`` unless the patient or a delegate confirms)."""

    patient: str
    clinician: str
    expires_at: int
    run_start: int
    open: bool


@dataclass(frozen=True)
class RecordHeader:
    """The on-chain header of a record or batch, as the contract commits to it (its keccak is the
    record's only storage slot). Rebuilt from events; every write, read, amendment and erasure
    passes the current one."""

    author: str
    category: codes.Category
    key_epoch: int
    erased: bool = False
    is_batch: bool = False
    leaf_count: int = 0
    fingerprint: bytes = ZERO32
    previous: bytes = ZERO32
    next: bytes = ZERO32

    def as_abi(self) -> tuple[Any, ...]:
        return (
            self.author, int(self.category), int(self.key_epoch), bool(self.erased), bool(self.is_batch),
            int(self.leaf_count), self.fingerprint, self.previous, self.next,
        )  # fmt: skip


@dataclass(frozen=True)
class RecordEntry:
    """One record of a bulk registration (``registerRecords``): its id, fingerprint and CID."""

    record_id: bytes
    fingerprint: bytes
    cid: bytes  # binary CIDv1 (sha2-256): only its codec and digest go on chain

    def as_abi(self) -> tuple[Any, ...]:
        codec, digest = cid_parts(self.cid)
        return (self.record_id, self.fingerprint, codec, digest)


@dataclass(frozen=True)
class RecordInfo:
    """A record or batch of a patient, rebuilt from its events and checked against the on-chain
    commitment (``exists`` False: the patient has no record with this id)."""

    record_id: bytes
    patient: str
    header: RecordHeader | None
    purpose: codes.Purpose = codes.Purpose.DIRECT_CARE
    cid: bytes = b""  # binary CIDv1 rebuilt from the event's codec and digest
    created_at: int = 0
    created_block: int = 0

    @property
    def exists(self) -> bool:
        return self.header is not None

    def current(self) -> RecordHeader:
        """The current header (what calls on the record pass); ValueError if there is no such record."""
        if self.header is None:
            raise ValueError(f"patient {self.patient} has no record 0x{self.record_id.hex()}")
        return self.header

    @property
    def author(self) -> str:
        return self.current().author

    @property
    def category(self) -> codes.Category:
        return self.current().category

    @property
    def key_epoch(self) -> int:
        return self.current().key_epoch

    @property
    def erased(self) -> bool:
        return self.current().erased

    @property
    def is_batch(self) -> bool:
        return self.current().is_batch

    @property
    def leaf_count(self) -> int:
        return self.current().leaf_count

    @property
    def fingerprint(self) -> bytes:
        return self.current().fingerprint

    @property
    def previous(self) -> bytes | None:
        """The version this one amends."""
        return None if self.current().previous == ZERO32 else self.current().previous

    @property
    def superseded_by(self) -> bytes | None:
        """The version that amends this one."""
        return None if self.current().next == ZERO32 else self.current().next


# --- CIDs on chain ------------------------------------------------------------------------------------
#: The codecs the contract accepts: raw blocks and dag-pb (UnixFS) roots.
CID_CODECS = (0x55, 0x70)
_CID_PREFIX_SHA256 = b"\x12\x20"


def cid_parts(cid: bytes) -> tuple[int, bytes]:
    """``(codec, digest)`` of a binary CIDv1 with a sha2-256 multihash: all the chain takes of it.
    Anything else raises :class:`~medledger.errors.InvalidRequest` (nothing else may go on chain)."""
    cid = bytes(cid)
    if len(cid) != 36 or cid[0] != 1 or cid[1] not in CID_CODECS or cid[2:4] != _CID_PREFIX_SHA256:
        raise InvalidRequest(
            f"Only a CIDv1 of a raw or dag-pb block with a sha2-256 hash goes on chain, not 0x{cid.hex()[:80]}"
        )
    return cid[1], cid[4:]


def cid_from_parts(codec: int, digest: bytes) -> bytes:
    """The binary CIDv1 the chain's ``(cidCodec, cidDigest)`` stand for."""
    return bytes([1, int(codec)]) + _CID_PREFIX_SHA256 + bytes(digest)
