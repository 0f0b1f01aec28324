"""Emergency ("break-glass") access: time-limited, always flagged in the audit trail."""

from __future__ import annotations

from medledger.chain.events import EmergencyAccessClosed, EmergencyAccessOpened, EmergencyOptOutChanged
from medledger.client import Client, as_address
from medledger.keystore import Identity


def open_emergency(client: Client, clinician: Identity, patient: str, window: int, reason_code: bytes) -> int:
    """Open emergency read access; returns when it ends. The clinician reads once someone holding the
    patient's keys (a delegate, the patient's care provider) publishes an envelope to it."""
    receipt = client.contract.open_emergency_access(as_address(patient), window, reason_code, sender=clinician)
    opened = receipt.first(EmergencyAccessOpened)
    if opened is not None:
        return opened.expires_at
    return client.contract.emergency_access_expiry(patient, clinician.address)


def close_emergency(client: Client, closer: Identity, patient: str, clinician: str) -> bool:
    receipt = client.contract.close_emergency_access(as_address(patient), as_address(clinician), sender=closer)
    return receipt.emitted(EmergencyAccessClosed)


def set_emergency_opt_out(client: Client, patient: Identity, opted_out: bool) -> bool:
    receipt = client.contract.set_emergency_opt_out(opted_out, sender=patient)
    return receipt.emitted(EmergencyOptOutChanged)
