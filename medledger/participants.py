"""Registering patients and (by registrars) organisations and professionals."""

from __future__ import annotations

from . import codes
from .chain import ZERO32, Participant, PatientState
from .chain.events import ParticipantReinstated, ParticipantSuspended
from .client import Client, as_address
from .keyring import Keyring
from .keystore import Identity

#: The registry entry of an organisation or professional (kept under its earlier name).
ParticipantInfo = Participant


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
