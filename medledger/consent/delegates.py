"""Delegates (family, friends) who manage a patient's consents within bounds, and read for family care."""

from __future__ import annotations

from collections.abc import Iterable

from medledger.chain.events import DelegateAppointed, DelegateRemoved
from medledger.client import Client, as_address
from medledger.keyring import Keyring
from medledger.keystore import Identity


def appoint_delegate(
    client: Client,
    patient: Identity,
    delegate: str,
    categories: Iterable[int],
    expiry: int,
    *,
    rotate: bool = True,
) -> bool:
    """Appoint a delegate (another registered patient) and deliver the keys of its categories to it.
    Changing a live delegation (narrowing it, shortening it) ends with a key sync (unless ``rotate``
    is False), as revoking does: the chain makes the keys of the categories it drops stale at once."""
    delegate = as_address(delegate)
    wanted = sorted({int(c) for c in categories})
    keyring = Keyring(client)
    was_live = client.contract.delegation(patient.address, delegate).live(client.now())
    receipt = client.contract.appoint_delegate(delegate, wanted, expiry, sender=patient)
    changed = receipt.emitted(DelegateAppointed)
    if changed:
        with keyring.envelope_for(patient, patient.address, delegate, wanted) as pointer:
            client.contract.publish_key_envelope(patient.address, delegate, pointer, sender=patient, categories=wanted)
    if rotate and (was_live or not changed):
        keyring.sync(patient, patient.address)
    return changed


def remove_delegate(client: Client, patient: Identity, delegate: str, *, rotate: bool = True) -> bool:
    """Remove a delegate; a key sync follows (unless ``rotate`` is False): the chain made every key of
    its categories stale, and they are rotated away from it (and from consents it made)."""
    receipt = client.contract.remove_delegate(as_address(delegate), sender=patient)
    changed = receipt.emitted(DelegateRemoved)
    if rotate:
        Keyring(client).sync(patient, patient.address)
    return changed
