"""Registering patients and (by registrars) organisations and professionals."""

from __future__ import annotations

from . import codes, crypto
from .chain import ZERO32, Participant, PatientState
from .chain.events import ParticipantReinstated, ParticipantSuspended
from .client import Client, as_address
from .keyring import Keyring
from .keystore import Identity

#: The registry entry of an organisation or professional (kept under its earlier name).
ParticipantInfo = Participant

#: The domains of the opaque tags registrars put on chain (keyed with the consortium's secret).
CREDENTIAL_DOMAIN = b"medledger/credential-ref/v1"
SUSPENSION_DOMAIN = b"medledger/suspension-reason/v1"


def credential_ref(secret: bytes, credential: str) -> bytes:
    """The opaque credential reference of a participant (a register and number such as
    ``GMC:1234567``, checked off chain): keyed with the consortium's ``secret`` and salted, so a
    registry number cannot be found from the chain by trying them all, and only the consortium's
    members can check it (:func:`credential_matches`)."""
    return crypto.code_tag(secret, CREDENTIAL_DOMAIN, credential)


def credential_matches(secret: bytes, reference: bytes, credential: str) -> bool:
    return crypto.tag_matches(secret, CREDENTIAL_DOMAIN, reference, credential.encode())


def suspension_reason(secret: bytes, code: str) -> bytes:
    """The opaque tag of a registrar's coded reason for a suspension (as :func:`credential_ref`)."""
    return crypto.code_tag(secret, SUSPENSION_DOMAIN, code)


def register_patient(client: Client, patient: Identity) -> bool:
    """Register ``patient`` with its encryption key and fresh category keys, and send it its own
    category secrets (idempotent; a registration whose envelope never landed is repaired by rotating
    the categories whose secrets the patient does not hold). Returns whether anything was done."""
    keyring = Keyring(client)
    if not client.contract.is_patient(patient.address):
        keyring.register(patient)
        return True
    unheld = keyring.unheld(patient)
    if unheld:
        keyring.rotate(patient, patient.address, unheld)
    return bool(unheld)


def register_participant(
    client: Client,
    registrar: Identity,
    account: str,
    kind: codes.ParticipantKind,
    credential_ref: bytes,
    encryption_key: bytes,
) -> None:
    """A registrar registers an organisation or professional."""
    client.contract.register_participant(as_address(account), kind, credential_ref, encryption_key, sender=registrar)


def suspend(client: Client, registrar: Identity, account: str, reason_code: bytes = ZERO32) -> bool:
    receipt = client.contract.suspend_participant(as_address(account), reason_code, sender=registrar)
    return receipt.emitted(ParticipantSuspended)


def reinstate(client: Client, registrar: Identity, account: str) -> bool:
    receipt = client.contract.reinstate_participant(as_address(account), sender=registrar)
    return receipt.emitted(ParticipantReinstated)


def participant(client: Client, account: str) -> Participant:
    return client.contract.participant(account)


def patient_state(client: Client, account: str) -> PatientState:
    return client.contract.patient_state(account)


def is_patient(client: Client, account: str) -> bool:
    return client.contract.is_patient(account)
