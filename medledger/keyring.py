"""Category keys: how a patient's records are opened to exactly the people she consented to.

* Each patient has an X25519 key pair per category (13 of them) and key *epoch*. Every record key is
  sealed to the current public key of its category, so anyone allowed to write can add a record
  without being able to read the others.
* The patient's **key directory** (JSON on IPFS; its digest on chain via ``setKeyDirectory``) lists
  each category's current epoch and public key, and, per category, the secret keys of every epoch
  sealed to the patient's own encryption key (so a delegate can rotate one category without
  holding the others).
* A read grant carries a **key envelope**: the secret keys (all epochs) of the granted categories
  sealed to the grantee, referenced from the ``ConsentGranted`` event. Later envelopes (after a
  rotation, or for a delegate) are referenced by ``KeyEnvelopePublished`` events.
* **Revoking** rotates the affected categories: new key pairs (epoch + 1), a new directory, and new
  envelopes for the readers who remain. Records written afterwards are closed to the revoked
  grantee. What it already decrypted, or the old keys it already holds, cannot be taken back.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from . import codes, crypto
from .chain import ZERO32
from .chain.events import ConsentGranted, DelegateAppointed, KeyEnvelopePublished
from .client import Client, as_address
from .errors import DecryptionError, KeyNotFound, KeysNotPublished, TamperingDetected
from .keystore import Identity

DIRECTORY_FORMAT = 1
ALL_CATEGORIES = tuple(int(c) for c in codes.Category)

SecretKeys = dict[int, dict[int, bytes]]  # category -> epoch -> X25519 secret


@dataclass(frozen=True)
class CategoryEntry:
    epoch: int
    public: bytes
    owner_sealed: bytes  # {"epoch": secret hex, ...} sealed to the patient's encryption key


@dataclass(frozen=True)
class KeyDirectory:
    """A patient's published category keys."""

    patient: str
    categories: dict[int, CategoryEntry]

    def encode(self) -> bytes:
        body = {
            "format": DIRECTORY_FORMAT,
            "patient": self.patient,
            "categories": {
                str(c): {
                    "epoch": e.epoch,
                    "public": e.public.hex(),
                    "owner": base64.b64encode(e.owner_sealed).decode(),
                }
                for c, e in sorted(self.categories.items())
            },
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes, patient: str) -> KeyDirectory:
        try:
            body = json.loads(raw)
            if body["format"] != DIRECTORY_FORMAT or as_address(body["patient"]) != as_address(patient):
                raise ValueError("format or patient mismatch")
            categories = {
                int(c): CategoryEntry(int(e["epoch"]), bytes.fromhex(e["public"]), base64.b64decode(e["owner"]))
                for c, e in body["categories"].items()
            }
        except (ValueError, KeyError, TypeError) as exc:
            raise TamperingDetected(
                f"The key directory of patient {patient} is malformed ({exc}); it was not written by medledger"
            ) from None
        return cls(as_address(patient), categories)

    def public_key(self, category: int) -> tuple[int, bytes]:
        entry = self.categories.get(int(category))
        if entry is None:
            raise KeyNotFound(
                f"Patient {self.patient} has no key for {codes.label(codes.Category(category))} yet; "
                "the patient (or a delegate) must initialise it."
            )
        return entry.epoch, entry.public


class Keyring:
    """Reads and maintains patients' category keys for one client."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._envelopes: dict[bytes, bytes] = {}

    # --- directory -----------------------------------------------------------------------------
    def directory(self, patient: str) -> KeyDirectory:
        pointer = self.client.contract.key_directory(patient)
        if pointer == ZERO32:
            raise KeysNotPublished(as_address(patient))
        return KeyDirectory.decode(self.client.get_small(pointer), patient)

    def _publish_directory(self, manager: Identity, directory: KeyDirectory) -> None:
        pointer = self.client.put_small(directory.encode())
        self.client.contract.set_key_directory(directory.patient, pointer, sender=manager)

    def initialise(self, patient: Identity) -> KeyDirectory:
        """Create epoch-0 key pairs for every category and publish the directory (patient only)."""
        entries = {}
        for category in ALL_CATEGORIES:
            pair = crypto.generate_keypair()
            entries[category] = CategoryEntry(
                0, pair.public, crypto.seal(patient.encryption.public, _secrets_json({0: pair.secret}))
            )
        directory = KeyDirectory(patient.address, entries)
        self._publish_directory(patient, directory)
        return directory

    # --- secrets -------------------------------------------------------------------------------
    def secrets(self, holder: Identity, patient: str, categories: Iterable[int] | None = None) -> SecretKeys:
        """Every category secret (all epochs) that ``holder`` can open for ``patient``."""
        patient = as_address(patient)
        wanted = set(ALL_CATEGORIES if categories is None else (int(c) for c in categories))
        found: SecretKeys = {}
        if holder.address == patient:
            directory = self.directory(patient)
            for category, entry in directory.categories.items():
                if category in wanted:
                    found[category] = _open_secrets_json(crypto.unseal(holder.encryption, entry.owner_sealed))
            return found
        for pointer in self._envelope_pointers(holder.address, patient):
            blob = self._envelopes.get(pointer)
            if blob is None:
                blob = self._envelopes[pointer] = self.client.get_small(pointer)
            try:
                contents = crypto.open_envelope(holder.encryption, blob, expected_patient=patient)
            except DecryptionError:
                continue  # sealed to an older encryption key of the holder
            for category, epochs in contents["keys"].items():
                if int(category) in wanted:
                    found.setdefault(int(category), {}).update({int(e): s for e, s in epochs.items()})
        return found

    def _envelope_pointers(self, recipient: str, patient: str) -> list[bytes]:
        pointers = []
        contract = self.client.contract
        for granted in contract.logs(ConsentGranted, patient=patient, grantee=recipient):
            if granted.key_envelope != ZERO32:
                pointers.append(granted.key_envelope)
        for published in contract.logs(KeyEnvelopePublished, patient=patient, recipient=recipient):
            pointers.append(published.envelope)
        return pointers

    def envelope_for(
        self, granter: Identity, patient: str, recipient_public: bytes, categories: Iterable[int]
    ) -> bytes:
        """Seal the secrets of ``categories`` (as far as ``granter`` holds them) to a recipient;
        return the on-chain pointer of the envelope."""
        categories = sorted({int(c) for c in categories})
        secrets = self.secrets(granter, patient, categories)
        missing = [c for c in categories if c not in secrets]
        if missing:
            names = ", ".join(codes.label(codes.Category(c)) for c in missing)
            raise KeyNotFound(
                f"{granter.name} holds no key for {names} of patient {patient}, so it cannot pass them on."
            )
        blob = crypto.make_envelope(bytes(recipient_public), patient, secrets)
        return self.client.put_small(blob)

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

    # --- rotation ------------------------------------------------------------------------------
    def rotate(self, manager: Identity, patient: str, categories: Iterable[int]) -> KeyDirectory:
        """New key pairs for ``categories``, a new directory, and fresh envelopes for every reader
        who still holds a live read consent or delegation covering them."""
        patient = as_address(patient)
        categories = sorted({int(c) for c in categories})
        directory = self.directory(patient)
        held = self.secrets(manager, patient, categories)
        patient_public = self.client.contract.patient_encryption_key(patient)
        entries = dict(directory.categories)
        rotated: SecretKeys = {}
        for category in categories:
            old = entries[category]
            epochs = dict(held.get(category, {}))
            pair = crypto.generate_keypair()
            epochs[old.epoch + 1] = pair.secret
            rotated[category] = epochs
            entries[category] = CategoryEntry(
                old.epoch + 1, pair.public, crypto.seal(patient_public, _secrets_json(epochs))
            )
        new_directory = KeyDirectory(patient, entries)
        self._publish_directory(manager, new_directory)
        # Seal the keys just made (all epochs) of the rotated categories each reader covers: the new
        # secrets are not in any envelope yet, so they cannot be re-read with secrets() (a delegate
        # managing the rotation, itself a reader, gets its own envelope too). Readers keep the
        # envelopes they already hold for their other categories. If this stops halfway (a node went
        # down), reissue() completes it.
        self._deliver(manager, patient, rotated)
        return new_directory

    def reissue(self, manager: Identity, patient: str, categories: Iterable[int] | None = None) -> int:
        """Publish fresh envelopes (every epoch) to each current reader for the categories it covers.

        The repair for a rotation interrupted before every reader got its envelope; safe to repeat.
        ``manager`` (the patient, or a delegate for its categories) must hold the keys. Returns how
        many envelopes were published."""
        patient = as_address(patient)
        # Refuse at once (with the chain's reason) if the caller may not publish for this patient.
        self.client.contract.publish_key_envelope(patient, patient, ZERO32, sender=manager, simulate=True)
        wanted = set(ALL_CATEGORIES if categories is None else (int(c) for c in categories))
        return self._deliver(manager, patient, self.secrets(manager, patient, wanted))

    def _deliver(self, manager: Identity, patient: str, keys: SecretKeys) -> int:
        """One envelope per reader with the ``keys`` of the categories it may read."""
        published = 0
        for reader, covered in sorted(self.readers(patient).items()):
            overlap = covered & set(keys)
            if not overlap:
                continue
            blob = crypto.make_envelope(self.recipient_key(reader), patient, {c: keys[c] for c in sorted(overlap)})
            pointer = self.client.put_small(blob)
            self.client.contract.publish_key_envelope(patient, reader, pointer, sender=manager, categories=overlap)
            published += 1
        return published

    def readers(self, patient: str) -> dict[str, set[int]]:
        """Everyone other than the patient who may now read some category: category sets by address."""
        patient = as_address(patient)
        contract = self.client.contract
        now = self.client.now()
        readers: dict[str, set[int]] = {}
        for grantee in {e.grantee for e in contract.logs(ConsentGranted, patient=patient)}:
            consent = contract.consent(patient, grantee, codes.Access.READ)
            # a suspended grantee still holds its consent (the chain refuses it until reinstated);
            # leaving it out would lock it out of every later record once it is reinstated
            if consent.expiry > now:
                readers[grantee] = {int(c) for c in consent.categories}
        for delegate in {e.delegate for e in contract.logs(DelegateAppointed, patient=patient)}:
            delegation = contract.delegation(patient, delegate)
            if delegation.expiry > now:
                readers.setdefault(delegate, set()).update(int(c) for c in delegation.categories)
        return readers


def _secrets_json(epochs: Mapping[int, bytes]) -> bytes:
    return json.dumps({str(e): s.hex() for e, s in sorted(epochs.items())}, sort_keys=True).encode()


def _open_secrets_json(raw: bytes) -> dict[int, bytes]:
    try:
        return {int(e): bytes.fromhex(s) for e, s in json.loads(raw).items()}
    except (ValueError, AttributeError) as exc:
        raise TamperingDetected(f"A sealed category key entry is malformed ({exc})") from None
