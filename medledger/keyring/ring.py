"""The :class:`Keyring`: registering a patient's category keys, finding what a holder may open,
passing keys on in envelopes, rotating them. (The picture: :mod:`medledger.keyring`.)"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from medledger import codes, crypto
from medledger.chain import FOREVER, ZERO32, CategoryKey, utc
from medledger.chain.events import CategoryKeyRotated
from medledger.client import Client, as_address
from medledger.errors import (
    KeyNotFound,
    KeysNotPublished,
    KeystoreError,
    StaleCategoryKey,
)
from medledger.keystore import Identity

from . import readers
from .holders import ALL_CATEGORIES, Envelopes, RejectedKey, SecretKeys
from .published import publishing

__all__ = ["ALL_CATEGORIES", "Keyring", "RejectedKey", "SecretKeys", "SyncReport", "check_writable"]


def check_writable(key: CategoryKey, now: int) -> CategoryKey:
    """``key`` if a record may be sealed to it at chain time ``now``; else :class:`KeysNotPublished`
    (no key: the patient is not registered) or :class:`StaleCategoryKey`."""
    if not key.exists:
        raise KeysNotPublished(key.patient)
    if key.stale(now):
        raise StaleCategoryKey(
            f"The {codes.label(key.category)} key of patient {key.patient} (epoch {key.epoch}) is stale since "
            f"{utc(key.valid_until)}: a reader it was released to lost its access, so no record may be sealed to "
            "it until the patient (or a delegate) rotates it; nothing was written",
            key.patient, int(key.category), key.epoch, key.valid_until,
        )  # fmt: skip
    return key


class Keyring:
    """Reads and maintains patients' category keys for one client."""

    def __init__(self, client: Client) -> None:
        self.client = client
        #: The envelopes delivered to holders, opened and checked (:mod:`.holders`).
        self.envelopes = Envelopes(client)
        #: What each :meth:`sync` of this keyring did, in order.
        self.reports: list[SyncReport] = []

    @property
    def rejected(self) -> list[RejectedKey]:
        """Every delivered secret this keyring refused to use, with why (also warned about)."""
        return self.envelopes.rejected

    # --- registration -----------------------------------------------------------------------------
    def register(self, patient: Identity) -> None:
        """Register ``patient`` with fresh key pairs for every category and send it its own secrets."""
        pairs = {c: crypto.generate_keypair() for c in ALL_CATEGORIES}
        receipt = self.client.contract.register_patient(
            patient.encryption.public, [pairs[c].public for c in ALL_CATEGORIES], sender=patient
        )
        epochs = {int(e.category): e.epoch for e in receipt.of(CategoryKeyRotated)}
        keys = {c: {epochs[c]: pairs[c].secret} for c in ALL_CATEGORIES}
        self._send(patient, patient.address, patient.address, patient.encryption.public, keys)

    def unheld(self, patient: Identity) -> list[int]:
        """The categories whose current secret ``patient`` holds no (valid) envelope for: lost, e.g.
        by a registration interrupted before the envelope; rotating them is the repair."""
        held = self.secrets(patient, patient.address)
        current: dict[int, int] = {}
        for (category, epoch), _ in self.public_keys(patient.address).items():
            current[category] = max(epoch, current.get(category, 0))
        return [c for c, epoch in sorted(current.items()) if epoch not in held.get(c, {})]

    # --- writers ------------------------------------------------------------------------------------
    def current_key(self, patient: str, category: int) -> CategoryKey:
        """The key a new record of ``category`` is sealed to now (its epoch goes on chain with it);
        refuses a stale one (:func:`check_writable`)."""
        return check_writable(self.client.contract.category_key(patient, category), self.client.now())

    # --- holders ------------------------------------------------------------------------------------
    def public_keys(self, patient: str) -> dict[tuple[int, int], bytes]:
        """Every public key the chain recorded for ``patient``: ``(category, epoch) -> key``."""
        return self.envelopes.public_keys(patient)

    def secrets(self, holder: Identity, patient: str, categories: Iterable[int] | None = None) -> SecretKeys:
        """Every category secret (all epochs) that envelopes delivered to ``holder`` carry for ``patient``
        and that pass every check of :mod:`.holders` (above all: each matches the public key the chain
        recorded for its category and epoch)."""
        return self.envelopes.secrets(holder, patient, categories)

    # --- passing keys on ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def envelope_for(
        self, granter: Identity, patient: str, recipient: str, categories: Iterable[int]
    ) -> Iterator[bytes]:
        """Seal the secrets of ``categories`` (as far as ``granter`` holds them) to ``recipient``'s
        registered key, pin the envelope (journaled) and yield its on-chain pointer: send the one
        transaction that publishes it inside the block (:func:`.published.publishing`: unless it
        lands, the envelope is unpinned again)."""
        sealed = self.seal_for(granter, patient, self.recipient_key(recipient), categories)
        with publishing(self.client, sealed, patient=patient, recipient=recipient) as pointer:
            yield pointer

    def seal_for(self, granter: Identity, patient: str, recipient_public: bytes, categories: Iterable[int]) -> bytes:
        """The envelope sealing the secrets of ``categories`` (as far as ``granter`` holds them) to a
        recipient's public key (not stored anywhere yet)."""
        categories = sorted({int(c) for c in categories})
        secrets = self.secrets(granter, patient, categories)
        missing = [c for c in categories if c not in secrets]
        if missing:
            names = ", ".join(codes.label(codes.Category(c)) for c in missing)
            raise KeyNotFound(
                f"{granter.name} holds no key for {names} of patient {patient}, so it cannot pass them on."
            )
        return crypto.make_envelope(bytes(recipient_public), patient, secrets)

    def recipient_key(self, account: str) -> bytes:
        """The encryption public key registered on chain for a participant or patient."""
        key = self.client.contract.participant(account).encryption_key
        if key == ZERO32:
            key = self.client.contract.patient_encryption_key(account)
        if key == ZERO32:
            raise KeyNotFound(
                f"{account} has no encryption key on chain: it is not a registered participant or patient"
            )
        return key

    def _send(self, manager: Identity, patient: str, recipient: str, public: bytes, keys: SecretKeys) -> None:
        envelope = crypto.make_envelope(public, patient, keys)
        with publishing(self.client, envelope, patient=patient, recipient=recipient) as pointer:
            self.client.contract.publish_key_envelope(patient, recipient, pointer, categories=keys, sender=manager)

    # --- rotation -------------------------------------------------------------------------------------
    def rotate(self, manager: Identity, patient: str, categories: Iterable[int]) -> dict[int, int]:
        """New key pairs for ``categories`` (each a new epoch), sent to the patient first, then to every
        reader that still has live access to them (every epoch the manager holds). Returns the new
        epochs by category."""
        return self._rotate(manager, patient, categories)[0]

    def _rotate(
        self, manager: Identity, patient: str, categories: Iterable[int]
    ) -> tuple[dict[int, int], dict[str, list[frozenset[int]]]]:
        patient = as_address(patient)
        categories = sorted({int(c) for c in categories})
        contract = self.client.contract
        held = self.secrets(manager, patient, categories)
        pairs = {c: crypto.generate_keypair() for c in categories}
        publics = {c: pairs[c].public for c in categories}
        contract.set_category_keys(patient, publics, sender=manager, simulate=True)  # refusals: before anything
        epochs = {c: contract.category_key(patient, c).epoch + 1 for c in categories}
        rotated = {c: {**held.get(c, {}), epochs[c]: pairs[c].secret} for c in categories}
        # The patient's envelope goes first: once the new keys are on chain, writers seal to them, and
        # nobody must be left as the only holder of their secrets.
        self._send(manager, patient, patient, contract.patient_encryption_key(patient), rotated)
        receipt = contract.set_category_keys(patient, publics, sender=manager)
        landed = {int(e.category): e.epoch for e in receipt.of(CategoryKeyRotated)}
        if landed != epochs:  # another rotation landed between: the patient's envelope names wrong epochs
            rotated = {c: {**held.get(c, {}), landed[c]: pairs[c].secret} for c in categories}
            self._send(manager, patient, patient, contract.patient_encryption_key(patient), rotated)
        # If this stops halfway (a node went down), the next sync() sends the readers what they lack.
        return landed, self.deliver(manager, patient, rotated)

    def reissue(self, manager: Identity, patient: str, categories: Iterable[int] | None = None) -> int:
        """Publish fresh envelopes (every epoch) to each current reader for the categories it covers.

        Repeats every reader's envelopes whether it lacks them or not (:meth:`sync` sends only what is
        missing); safe to repeat. ``manager`` (the patient, or a delegate for its categories) must hold
        the keys. Returns how many envelopes were published."""
        patient = as_address(patient)
        wanted = sorted(self.manageable(manager, patient) if categories is None else {int(c) for c in categories})
        # Refuse at once (with the chain's reason) if the caller may not publish for this patient.
        self.client.contract.publish_key_envelope(
            patient, patient, b"\1" * 32, categories=wanted, sender=manager, simulate=True
        )
        sent = self.deliver(manager, patient, self.secrets(manager, patient, wanted))
        return sum(len(sources) for sources in sent.values())

    def manageable(self, manager: Identity, patient: str) -> frozenset[int]:
        """The categories whose keys ``manager`` may rotate and pass on: every one for the patient, its
        delegation's for a live delegate (none for anyone else: the chain refuses them)."""
        if manager.address == as_address(patient):
            return frozenset(ALL_CATEGORIES)
        delegation = self.client.contract.delegation(patient, manager.address)
        return frozenset(int(c) for c in delegation.categories) if delegation.live(self.client.now()) else frozenset()

    def deliver(
        self, manager: Identity, patient: str, keys: SecretKeys, only: Mapping[str, frozenset[int]] | None = None
    ) -> dict[str, list[frozenset[int]]]:
        """One envelope per reader and source of its access, with the ``keys`` of the categories that
        source covers (the chain accepts an envelope only for categories one source covers); with
        ``only``, just those readers and categories. Returns the categories sent, by reader and source."""
        sent: dict[str, list[frozenset[int]]] = {}
        for access in readers.live_access(self.client, patient):
            overlap = access.categories & set(keys)
            if only is not None:
                overlap &= only.get(access.reader, frozenset())
            if overlap:
                chosen = {c: keys[c] for c in sorted(overlap)}
                self._send(manager, patient, access.reader, self.recipient_key(access.reader), chosen)
                sent.setdefault(access.reader, []).append(frozenset(overlap))
        return sent

    def readers(self, patient: str) -> dict[str, set[int]]:
        """Everyone other than the patient who may now read some category: category sets by address."""
        found: dict[str, set[int]] = {}
        for access in readers.live_access(self.client, patient):
            found.setdefault(access.reader, set()).update(access.categories)
        return found

    # --- keeping keys in step with consent -------------------------------------------------------------
    def sync(self, manager: Identity, patient: str) -> SyncReport:
        """Bring ``patient``'s keys in step with who may read now, as the patient or a delegate:

        * rotate every category whose key is **stale** (chain time at or past its ``validUntil``: a
          reader it was released to lost access, by whatever way) or whose current secret the
          manager does not hold, so no record can be sealed to a key a former reader holds;
        * send every reader with live access the current keys it holds no envelope for (a reader
          reinstated after a suspension, a rotation that stopped halfway, a read grant signed by a
          wallet without keys).

        A delegate acts on its delegation's categories only; stale ones beyond them are reported in
        :attr:`SyncReport.beyond`. Safe to repeat; :attr:`SyncReport.next_due` says when a key goes
        stale next (sync again then)."""
        patient = as_address(patient)
        if manager.address == patient and manager.encryption.public != self.client.contract.patient_encryption_key(
            patient
        ):
            raise KeystoreError(
                f"The keystore of {patient} holds another encryption key than the chain has (a patient key "
                "rotation that stopped halfway): run `medledger patient rotate-key` again to finish it first; "
                "nothing was done"
            )
        may = self.manageable(manager, patient)
        if not may:
            self.client.contract.publish_key_envelope(  # the chain's refusal, in its words
                patient, patient, b"\1" * 32, categories=ALL_CATEGORIES, sender=manager, simulate=True
            )
        keys, now = self.client.contract.category_keys(patient), self.client.now()
        stale = {int(c) for c, key in keys.items() if key.stale(now)}
        held = self.secrets(manager, patient, may)
        lost = {int(c) for c, key in keys.items() if int(c) in may and key.epoch not in held.get(int(c), {})}
        rotated: dict[int, int] = {}
        delivered: dict[str, set[int]] = {}
        if (stale | lost) & may:
            rotated, sent = self._rotate(manager, patient, sorted((stale | lost) & may))
            _merge(delivered, sent)
        # (The patient's own keys: a rotation sends hers first, and `lost` above repairs what she lacks.)
        wanted = {a.reader: a.categories & may for a in readers.live_access(self.client, patient)}
        missing = readers.undelivered(self.client, patient, wanted)
        if missing:
            current = self.secrets(manager, patient, set().union(*missing.values()))
            _merge(delivered, self.deliver(manager, patient, current, only=missing))
        if rotated or delivered:
            keys, now = self.client.contract.category_keys(patient), self.client.now()
        ends = [k.valid_until for k in keys.values() if now < k.valid_until < FOREVER]
        report = SyncReport(
            patient,
            rotated,
            {reader: frozenset(cats) for reader, cats in delivered.items()},
            frozenset(stale - may),
            min(ends, default=None),
        )
        self.reports.append(report)
        return report


@dataclass(frozen=True)
class SyncReport:
    """What :meth:`Keyring.sync` did for a patient."""

    patient: str
    #: the new epoch of each category it rotated
    rotated: dict[int, int]
    #: the categories whose keys it sent, by reader (the patient's own envelope aside)
    delivered: dict[str, frozenset[int]]
    #: stale categories it could not rotate: beyond the delegate's bounds (the patient must)
    beyond: frozenset[int]
    #: chain time at which a key goes stale next (None: every key is valid without end)
    next_due: int | None

    @property
    def changed(self) -> bool:
        return bool(self.rotated or self.delivered)


def _merge(into: dict[str, set[int]], sent: Mapping[str, Iterable[frozenset[int]]]) -> None:
    for reader, parts in sent.items():
        for part in parts:
            into.setdefault(reader, set()).update(part)
