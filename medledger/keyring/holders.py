"""What a holder's key envelopes give it, and what they are not allowed to give it.

A holder's secrets are the envelopes delivered to it: ``ConsentGranted.keyEnvelope`` (to the grantee)
and ``KeyEnvelopePublished`` (to the recipient), each fetched by the digest the chain points with
(a node serving other bytes raises). A secret is used only if all of these hold, else it is ignored
and reported (:class:`RejectedKey`, warned as :class:`~medledger.errors.RejectedKeyWarning`):

* the envelope opens with the holder's key and names the patient (a malformed one is reported);
* its publication names the secret's category;
* it was published by the patient, or by a delegate whose delegation covered those categories when
  it was published (the chain enforces this; the tooling checks it again from the events, so a node
  that forged an event gets nowhere);
* the secret matches the public key the chain recorded for its category and epoch;
* no earlier envelope gave another secret for the same category and epoch (two secrets that differ
  only in bits X25519 ignores both match the public key: the first is kept, the other flagged).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from medledger import codes, crypto
from medledger.chain import ZERO32
from medledger.chain.events import (
    CategoryKeyRotated,
    ChainEvent,
    ConsentGranted,
    DelegateAppointed,
    DelegateRemoved,
    KeyEnvelopePublished,
)
from medledger.client import Client, as_address
from medledger.errors import DecryptionError, RejectedKeyWarning, TamperingDetected
from medledger.keystore import Identity

ALL_CATEGORIES = tuple(int(c) for c in codes.Category)

SecretKeys = dict[int, dict[int, bytes]]  # category -> epoch -> X25519 secret


@dataclass(frozen=True)
class RejectedKey:
    """A delivered secret that was not used (``category``/``epoch`` None: the whole envelope)."""

    patient: str
    envelope: bytes  # the on-chain pointer of the envelope
    published_by: str
    category: int | None
    epoch: int | None
    reason: str

    def describe(self) -> str:
        what = "a key envelope" if self.category is None else (
            f"the {codes.label(codes.Category(self.category))} key of epoch {self.epoch} in a key envelope"
        )  # fmt: skip
        return (
            f"Ignored {what} of patient {self.patient} published by {self.published_by} "
            f"(0x{self.envelope.hex()[:16]}…): {self.reason}"
        )


@dataclass(frozen=True)
class _Source:
    """An envelope delivered to someone: its pointer, the categories its publication names, who sent
    it, and where in the chain's history."""

    pointer: bytes
    categories: frozenset[int]
    by: str
    at: tuple[int, int]


def _at(event: ChainEvent) -> tuple[int, int]:
    return (event.log.block_number, event.log.log_index)


class Envelopes:
    """The envelopes delivered to holders, opened and checked (one client; caches what it fetched)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._bytes: dict[bytes, bytes] = {}
        self._delegations: dict[tuple[str, str], list[ChainEvent]] = {}
        #: Every delivered secret refused, with why (also warned about).
        self.rejected: list[RejectedKey] = []

    def public_keys(self, patient: str) -> dict[tuple[int, int], bytes]:
        """Every public key the chain recorded for ``patient``: ``(category, epoch) -> key``."""
        return {
            (int(e.category), e.epoch): e.public_key
            for e in self.client.contract.logs(CategoryKeyRotated, patient=as_address(patient))
        }

    def secrets(self, holder: Identity, patient: str, categories: Iterable[int] | None = None) -> SecretKeys:
        """Every category secret (all epochs) that envelopes delivered to ``holder`` carry for
        ``patient``, each passing the checks of the module's description."""
        patient = as_address(patient)
        public = self.public_keys(patient)
        found: SecretKeys = {}
        for source, category, epoch, secret in self._delivered(holder, patient, categories):
            reason = _mismatch(source, category, epoch, secret, public) or self._unentitled(patient, source)
            known = found.get(category, {}).get(epoch)
            if reason is None and known is not None and known != secret:
                reason = "another envelope gave a different key for this category and epoch first; that one is kept"
            if reason:
                self._reject(RejectedKey(patient, source.pointer, source.by, category, epoch, reason))
            else:
                found.setdefault(category, {})[epoch] = secret
        return found

    def unrecorded(self, holder: Identity, patient: str) -> SecretKeys:
        """Secrets the patient sent ``holder`` (herself) for epochs the chain has not recorded yet: the
        new keys of a rotation that stopped before they went on chain."""
        patient = as_address(patient)
        public = self.public_keys(patient)
        found: SecretKeys = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RejectedKeyWarning)
            for source, category, epoch, secret in self._delivered(holder, patient, None):
                if source.by == patient and (category, epoch) not in public:
                    found.setdefault(category, {})[epoch] = secret
        return found

    def _delivered(
        self, holder: Identity, patient: str, categories: Iterable[int] | None
    ) -> Iterator[tuple[_Source, int, int, bytes]]:
        """``(source, category, epoch, secret)`` of every secret in every envelope to ``holder`` that
        opens (oldest envelope first)."""
        wanted = set(ALL_CATEGORIES if categories is None else (int(c) for c in categories))
        for source in self._sources(holder.address, patient):
            blob = self._fetch(source.pointer)  # a node serving other bytes than the chain points at: raised
            try:
                contents = crypto.open_envelope(holder.encryption, blob, expected_patient=patient)
            except DecryptionError:
                continue  # sealed to an older encryption key of the holder
            except TamperingDetected as exc:
                self._reject(RejectedKey(patient, source.pointer, source.by, None, None, str(exc)))
                continue
            for category, epochs in contents["keys"].items():
                if category in wanted:
                    for epoch, secret in epochs.items():
                        yield source, category, epoch, secret

    def _sources(self, recipient: str, patient: str) -> list[_Source]:
        """Every envelope delivered to ``recipient`` for ``patient``: with a read grant, or published."""
        sources = []
        for e in self.client.contract.logs_of((ConsentGranted, KeyEnvelopePublished), patient, recipient):
            if isinstance(e, ConsentGranted) and e.key_envelope != ZERO32:
                sources.append(_Source(e.key_envelope, frozenset(int(c) for c in e.categories), e.by, _at(e)))
            elif isinstance(e, KeyEnvelopePublished):
                sources.append(_Source(e.envelope, frozenset(int(c) for c in e.categories), e.by, _at(e)))
        return sources

    def entitled_sources(self, recipient: str, patient: str) -> list[_Source]:
        """The envelopes delivered to ``recipient`` for ``patient`` whose publisher was entitled to send
        them (the patient, or a delegate covering their categories when it published): the ones whose
        secrets :meth:`secrets` goes on to check against the chain's public keys. For a holder that
        opens envelopes elsewhere (the portal's page), so it trusts exactly what the library trusts."""
        patient, recipient = as_address(patient), as_address(recipient)
        return [s for s in self._sources(recipient, patient) if self._unentitled(patient, s) is None]

    def _unentitled(self, patient: str, source: _Source) -> str | None:
        """Why ``source``'s publisher was not entitled to send those keys (None: it was)."""
        if source.by == patient:
            return None
        key = (patient, source.by)
        if key not in self._delegations:
            self._delegations[key] = self.client.contract.logs_of((DelegateAppointed, DelegateRemoved), *key)
        covered: frozenset[int] = frozenset()
        for e in self._delegations[key]:
            if _at(e) > source.at:
                break
            covered = frozenset(int(c) for c in e.categories) if isinstance(e, DelegateAppointed) else frozenset()
        if source.categories <= covered:
            return None
        return "its publisher was neither the patient nor a delegate covering those categories when it was published"

    def _fetch(self, pointer: bytes) -> bytes:
        """An envelope's bytes, checked against the digest the chain points with (the store checks every
        fetched object against the CID asked for)."""
        if pointer not in self._bytes:
            self._bytes[pointer] = self.client.get_small(pointer)
        return self._bytes[pointer]

    def _reject(self, rejected: RejectedKey) -> None:
        if rejected not in self.rejected:
            self.rejected.append(rejected)
            warnings.warn(RejectedKeyWarning(rejected.describe()), stacklevel=4)


def _mismatch(
    source: _Source, category: int, epoch: int, secret: bytes, public: Mapping[tuple[int, int], bytes]
) -> str | None:
    """Why a delivered secret may not be used (None: it may)."""
    if category not in source.categories:
        return "its publication does not name this category"
    expected = public.get((category, epoch))
    if expected is None:
        return "the chain recorded no key of this category and epoch"
    if crypto.public_from_secret(secret) != expected:
        return "it does not match the public key the chain recorded for this category and epoch"
    return None
