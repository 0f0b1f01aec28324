"""Rotating the patient's own encryption key (``rotatePatientKey``, issue 12 item 6).

The patient's category secrets reach her only in envelopes sealed to her encryption key, so whoever
holds a copy of that key (a stolen laptop, an old backup) can open them. Rotating it gives her a new
key pair *and* rotates all 13 category keys in the same transaction (the contract does both), so the
old key's holder opens nothing written afterwards. The steps are ordered so that no interruption
locks her out:

1. every category secret she holds (every epoch) and the 13 new ones go into one envelope sealed to
   the **new** key, published to herself before anything else changes (the old key still opens
   every earlier envelope);
2. the new key pair replaces the old one in her keystore (``save``): from here on she opens only
   the envelope of step 1 and later ones, which hold everything;
3. ``rotatePatientKey(new key, 13 new public keys)``;
4. every reader with live access gets an envelope with the new epochs of its categories.

If it stops after step 2 (the keystore holds a key the chain does not know yet), running it again
finishes it with the key the keystore holds and the category keys of step 1; :meth:`Keyring.sync`
refuses to run meanwhile (its envelopes to her would be sealed to the key on chain).

If the account is also a registered participant under the same encryption key, that key is
rotated too (``rotateParticipantKey``); envelopes other patients sent it to the old key are then
sent again by their next key sync (they count as delivered only after the recipient's last key
change).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

from medledger import crypto
from medledger.chain.events import CategoryKeyRotated
from medledger.crypto import KeyPair
from medledger.errors import RejectedKeyWarning
from medledger.keystore import Identity

from .published import publishing
from .ring import ALL_CATEGORIES, Keyring, SecretKeys


@dataclass(frozen=True)
class PatientKeyRotation:
    """What :func:`rotate_patient_key` did."""

    identity: Identity  # the patient with her new encryption key
    epochs: dict[int, int]  # the new epoch of every category
    readers: dict[str, frozenset[int]]  # the categories whose new keys each reader was sent
    participant_key_rotated: bool


def rotate_patient_key(keyring: Keyring, patient: Identity, save: Callable[[KeyPair], Identity]) -> PatientKeyRotation:
    """Rotate ``patient``'s encryption key and all her category keys (see the module's description).
    ``save`` stores the new key pair in her keystore and returns the identity holding it."""
    contract = keyring.client.contract
    on_chain = contract.patient_encryption_key(patient.address)
    resuming = patient.encryption.public != on_chain  # a rotation stopped after the keystore took its key
    with warnings.catch_warnings():
        if resuming:  # her envelope of the first attempt names epochs not on chain yet: expected here
            warnings.simplefilter("ignore", RejectedKeyWarning)
        held = keyring.secrets(patient, patient.address)
    epochs = {int(c): key.epoch + 1 for c, key in contract.category_keys(patient.address).items()}
    # Resuming, the new category keys of the first attempt are in her envelope already: use them.
    pending = keyring.envelopes.unrecorded(patient, patient.address) if resuming else {}
    pairs = {
        c: KeyPair.from_secret(pending[c][epochs[c]]) if epochs[c] in pending.get(c, {}) else crypto.generate_keypair()
        for c in ALL_CATEGORIES
    }
    renewed = patient
    if not resuming:
        new_key = crypto.generate_keypair()
        _send_self(keyring, patient, new_key.public, _with(held, pairs, epochs))
        renewed = save(new_key)
    elif any(epochs[c] not in pending.get(c, {}) for c in ALL_CATEGORIES):
        _send_self(keyring, patient, patient.encryption.public, _with(held, pairs, epochs))
    participant = contract.participant(patient.address)
    shared = participant.registered and participant.encryption_key == on_chain
    receipt = contract.rotate_patient_key(
        renewed.encryption.public, [pairs[c].public for c in ALL_CATEGORIES], sender=renewed
    )
    landed = {int(e.category): e.epoch for e in receipt.of(CategoryKeyRotated)}
    keys = _with(held, pairs, landed)
    if landed != epochs:  # a delegate's rotation landed between: her envelope names other epochs
        _send_self(keyring, renewed, renewed.encryption.public, keys)
    if shared:
        contract.rotate_participant_key(renewed.encryption.public, sender=renewed)
    sent = keyring.deliver(renewed, patient.address, keys)
    readers = {reader: frozenset().union(*parts) for reader, parts in sent.items()}
    return PatientKeyRotation(renewed, landed, readers, shared)


def _with(held: SecretKeys, pairs: dict[int, KeyPair], epochs: dict[int, int]) -> SecretKeys:
    return {c: {**held.get(c, {}), epochs[c]: pairs[c].secret} for c in ALL_CATEGORIES}


def _send_self(keyring: Keyring, patient: Identity, public: bytes, keys: SecretKeys) -> None:
    envelope = crypto.make_envelope(public, patient.address, keys)
    with publishing(keyring.client, envelope, patient=patient.address, recipient=patient.address) as pointer:
        keyring.client.contract.publish_key_envelope(
            patient.address, patient.address, pointer, categories=ALL_CATEGORIES, sender=patient
        )
