"""Registering patients and (by registrars) organisations and professionals."""

from __future__ import annotations

from dataclasses import dataclass

from . import codes
from .client import Client, as_address
from .keyring import Keyring
from .keystore import Identity


@dataclass(frozen=True)
class ParticipantInfo:
    address: str
    kind: codes.ParticipantKind
    suspended: bool
    registered_at: int
    credential_ref: bytes
    encryption_key: bytes


def register_patient(client: Client, patient: Identity) -> None:
    """Register ``patient`` with its encryption key and publish its category keys (idempotent)."""
    fns = client.contract.functions
    if not client.call(fns.isPatient(patient.address)):
        client.transact(fns.registerPatient(patient.encryption.public), patient)
    if bytes(client.call(fns.keyDirectory(patient.address))) == b"\0" * 32:
        Keyring(client).initialise(patient)


def register_participant(
    client: Client,
    registrar: Identity,
    account: str,
    kind: codes.ParticipantKind,
    credential_ref: bytes,
    encryption_key: bytes,
) -> None:
    """A registrar registers an organisation or professional."""
    client.transact(
        client.contract.functions.registerParticipant(as_address(account), int(kind), credential_ref, encryption_key),
        registrar,
    )


def suspend(client: Client, registrar: Identity, account: str, reason_code: bytes = b"\0" * 32) -> bool:
    fn = client.contract.functions.suspendParticipant(as_address(account), reason_code)
    receipt = client.transact(fn, registrar)
    return bool(client.events(receipt, "ParticipantSuspended"))


def reinstate(client: Client, registrar: Identity, account: str) -> bool:
    receipt = client.transact(client.contract.functions.reinstateParticipant(as_address(account)), registrar)
    return bool(client.events(receipt, "ParticipantReinstated"))


def participant(client: Client, account: str) -> ParticipantInfo:
    kind, suspended, registered_at, credential, key = client.call(
        client.contract.functions.participant(as_address(account))
    )
    return ParticipantInfo(
        as_address(account), codes.ParticipantKind(kind), suspended, registered_at, bytes(credential), bytes(key)
    )


def is_patient(client: Client, account: str) -> bool:
    return bool(client.call(client.contract.functions.isPatient(as_address(account))))
