"""Emergency ("break-glass") access: time-limited, always flagged in the audit trail.

A clinician opens a window (at most ``MAX_EMERGENCY_WINDOW``); openings in a row may not make the
access last past ``MAX_EMERGENCY_RUN`` from the run's start unless the patient or a delegate
confirms it (:func:`confirm_emergency`, which starts the run again). Opting out closes open windows.
"""

from __future__ import annotations

from medledger.chain import EmergencyAccess
from medledger.chain.events import (
    EmergencyAccessClosed,
    EmergencyAccessConfirmed,
    EmergencyAccessOpened,
    EmergencyOptOutChanged,
)
from medledger.client import Client, as_address
from medledger.keystore import Identity


def open_emergency(client: Client, clinician: Identity, patient: str, window: int, reason_code: bytes) -> int:
    """Open emergency read access; returns when it ends. The clinician reads once someone holding the
    patient's keys (a delegate, the patient's care provider) publishes an envelope to it."""
    receipt = client.contract.open_emergency_access(as_address(patient), window, reason_code, sender=clinician)
    opened = receipt.first(EmergencyAccessOpened)
    if opened is not None:
        return opened.expires_at
    return client.contract.emergency_access(patient, clinician.address).expires_at


def emergency_access(client: Client, patient: str, clinician: str) -> EmergencyAccess:
    """A clinician's emergency access to a patient as it stands (open or not, until when, its run)."""
    return client.contract.emergency_access(as_address(patient), as_address(clinician))


def confirm_emergency(client: Client, confirmer: Identity, patient: str, clinician: str) -> bool:
    """The patient (or a live delegate) confirms a clinician's emergency access: its run starts again,
    so openings may continue for up to ``MAX_EMERGENCY_RUN`` from now. Returns whether it changed."""
    receipt = client.contract.confirm_emergency_access(as_address(patient), as_address(clinician), sender=confirmer)
    return receipt.emitted(EmergencyAccessConfirmed)


def close_emergency(client: Client, closer: Identity, patient: str, clinician: str) -> bool:
    receipt = client.contract.close_emergency_access(as_address(patient), as_address(clinician), sender=closer)
    return receipt.emitted(EmergencyAccessClosed)


def set_emergency_opt_out(client: Client, patient: Identity, opted_out: bool) -> bool:
    receipt = client.contract.set_emergency_opt_out(opted_out, sender=patient)
    return receipt.emitted(EmergencyOptOutChanged)
