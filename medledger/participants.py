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
    """Register ``patient`` with its encryption key and publish its category keys (idempotent).
    Returns whether anything was done."""
    state = client.contract.patient_state(patient.address)
    if not state.registered:
        client.contract.register_patient(patient.encryption.public, sender=patient)
    if not state.keys_published:
        Keyring(client).initialise(patient)
    return not (state.registered and state.keys_published)


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
