"""Emergency ("break-glass") access: time-limited, always flagged in the audit trail.

A clinician opens a window (at most ``MAX_EMERGENCY_WINDOW``); openings in a row may not make the
access last past ``MAX_EMERGENCY_RUN`` from the run's start unless the patient or a delegate
confirms it (:func:`confirm_emergency`, which starts the run again). Opting out closes open windows.

The chain holds no keys: the clinician reads once the patient or a delegate releases the keys of
chosen categories to it (:func:`release_emergency_keys`). The chain limits those keys to the
window's end; from then on (or from an earlier close or opt-out) they are stale, and the next key
sync of the patient's tools rotates them away from the clinician.
"""

from __future__ import annotations

from collections.abc import Iterable

from medledger import crypto
from medledger.chain import EmergencyAccess
from medledger.chain.events import (
    EmergencyAccessClosed,
    EmergencyAccessConfirmed,
    EmergencyAccessOpened,
    EmergencyOptOutChanged,
)
from medledger.client import Client, as_address
from medledger.keyring import Keyring
from medledger.keystore import Identity

#: The domain of emergency reason tags (:func:`reason_code`).
REASON_DOMAIN = b"medledger/emergency-reason/v1"


def reason_code(secret: bytes, code: str) -> bytes:
    """The opaque 32-byte tag of an emergency reason (a coded reason such as a SNOMED CT concept id)
    that goes on chain: keyed with the consortium's ``secret``
    (:func:`medledger.config.consortium_secret`) and salted, so only the consortium's members
    (auditors) can tell the reason, by checking codes against it (:func:`reason_of`)."""
    return crypto.code_tag(secret, REASON_DOMAIN, code)


def reason_of(secret: bytes, tag: bytes, candidates: Iterable[str]) -> str | None:
    """Which of ``candidates`` (reason codes) ``tag`` was made from, for a holder of the consortium's
    ``secret``; None if none."""
    return next((c for c in candidates if crypto.tag_matches(secret, REASON_DOMAIN, tag, c.encode())), None)


def open_emergency(client: Client, clinician: Identity, patient: str, window: int, reason_code: bytes) -> int:
    """Open emergency read access; returns when it ends. The clinician reads once someone holding the
    patient's keys (the patient, a delegate) releases them to it (:func:`release_emergency_keys`)."""
    receipt = client.contract.open_emergency_access(as_address(patient), window, reason_code, sender=clinician)
    opened = receipt.first(EmergencyAccessOpened)
    if opened is not None:
        return opened.expires_at
    return client.contract.emergency_access(patient, clinician.address).expires_at


def release_emergency_keys(
    client: Client, manager: Identity, clinician: str, categories: Iterable[int], *, patient: str | None = None
) -> int:
    """The patient (or a delegate covering ``categories``) sends a clinician with an open emergency
    window the keys of ``categories``. Returns until when those keys may be sealed to: the chain
    clamps them to the window's end (the earliest end of any reader they were released to)."""
    patient = as_address(patient or manager.address)
    clinician = as_address(clinician)
    wanted = sorted({int(c) for c in categories})
    contract = client.contract
    # The chain's refusal first (no window, a suspended clinician, a delegate outside its bounds).
    contract.publish_key_envelope(patient, clinician, b"\1" * 32, categories=wanted, sender=manager, simulate=True)
    keyring = Keyring(client)
    with keyring.envelope_for(manager, patient, clinician, wanted) as pointer:
        contract.publish_key_envelope(patient, clinician, pointer, categories=wanted, sender=manager)
    keys = contract.category_keys(patient)
    return min(keys[c].valid_until for c in keys if int(c) in wanted)


def emergency_access(client: Client, patient: str, clinician: str) -> EmergencyAccess:
    """A clinician's emergency access to a patient as it stands (open or not, until when, its run)."""
    return client.contract.emergency_access(as_address(patient), as_address(clinician))


def confirm_emergency(client: Client, confirmer: Identity, patient: str, clinician: str) -> bool:
    """The patient (or a live delegate) confirms a clinician's emergency access: its run starts again,
    so openings may continue for up to ``MAX_EMERGENCY_RUN`` from now. Returns whether it changed."""
    receipt = client.contract.confirm_emergency_access(as_address(patient), as_address(clinician), sender=confirmer)
    return receipt.emitted(EmergencyAccessConfirmed)


def close_emergency(client: Client, closer: Identity, patient: str, clinician: str, *, rotate: bool = True) -> bool:
    """Close a clinician's emergency access (as the clinician, the patient or a delegate). Closed by
    the patient or a delegate, a key sync follows (unless ``rotate`` is False): the keys released to
    the clinician are stale from now and are rotated. (A clinician closing its own window cannot
    rotate: the patient's next sync does.)"""
    patient, clinician = as_address(patient), as_address(clinician)
    receipt = client.contract.close_emergency_access(patient, clinician, sender=closer)
    keyring = Keyring(client)
    if rotate and keyring.manageable(closer, patient):
        keyring.sync(closer, patient)
    return receipt.emitted(EmergencyAccessClosed)


def set_emergency_opt_out(client: Client, patient: Identity, opted_out: bool, *, rotate: bool = True) -> bool:
    """Opt out of (or back into) emergency access. Opting out closes every open window and ends with a
    key sync (unless ``rotate`` is False): keys released under emergency access are rotated."""
    receipt = client.contract.set_emergency_opt_out(opted_out, sender=patient)
    if rotate and opted_out:
        Keyring(client).sync(patient, patient.address)
    return receipt.emitted(EmergencyOptOutChanged)
