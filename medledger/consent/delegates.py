"""Delegates (family, friends) who manage a patient's consents within bounds, and read for family care."""

from __future__ import annotations

from collections.abc import Iterable

from medledger.chain.events import DelegateAppointed, DelegateRemoved
from medledger.client import Client, as_address
from medledger.keyring import Keyring
from medledger.keystore import Identity


def appoint_delegate(
    client: Client, patient: Identity, delegate: str, categories: Iterable[int], expiry: int, *, rotate: bool = True
) -> bool:
    """Appoint a delegate (another registered patient) and deliver the keys of its categories to it.
    Narrowing a live delegation rotates the keys of the categories it drops (unless ``rotate`` is
    False), as revoking does: the chain makes them stale at once."""
    delegate = as_address(delegate)
    wanted = sorted({int(c) for c in categories})
    before = client.contract.delegation(patient.address, delegate)
    receipt = client.contract.appoint_delegate(delegate, wanted, expiry, sender=patient)
    changed = receipt.emitted(DelegateAppointed)
    if changed:
        keyring = Keyring(client)
        pointer = keyring.envelope_for(patient, patient.address, keyring.recipient_key(delegate), wanted)
        client.contract.publish_key_envelope(patient.address, delegate, pointer, sender=patient, categories=wanted)
        dropped = {int(c) for c in before.categories} - set(wanted) if before.live(client.now()) else set()
        if rotate and dropped:
            keyring.rotate(patient, patient.address, dropped)
    return changed


def remove_delegate(client: Client, patient: Identity, delegate: str, *, rotate: bool = True) -> bool:
    """Remove a delegate; the category keys it held are rotated (unless ``rotate`` is False)."""
    covered = client.contract.delegation(patient.address, as_address(delegate)).categories
    receipt = client.contract.remove_delegate(as_address(delegate), sender=patient)
    changed = receipt.emitted(DelegateRemoved)
    if changed and rotate and covered:
        Keyring(client).rotate(patient, patient.address, covered)
    return changed
