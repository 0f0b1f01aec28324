"""Revocation as one procedure: revoke the consent, rotate the keys it covered, re-encrypt the
existing records under the new keys.

Every precondition is checked before anything is sent, so a request that cannot be completed
changes nothing: re-encryption needs the rotation and a read consent, and only the patient can
re-encrypt (her records are read with her own keys); the revocation itself is simulated first
(a delegate outside its bounds or a stranger is refused by the chain, in words).

A revocation is not done until its keys are rotated (and, if asked, its records re-encrypted): if
a step after the revocation fails (the IPFS node down), running the same revocation again finishes
it. The consent is gone by then, so the categories it covered are taken from its last grant.
"""

from __future__ import annotations

from medledger import codes, consent
from medledger.chain.events import ConsentGranted
from medledger.client import Client, as_address
from medledger.errors import AccessDenied, InvalidRequest
from medledger.keystore import Identity

from .reencrypt import Reencrypted, reencrypt_records


def check_revoke(
    client: Client,
    manager: Identity,
    grantee: str,
    access: codes.Access,
    *,
    patient: str,
    rotate: bool,
    reencrypt: bool,
) -> None:
    """Raise unless :func:`revoke` can complete every step it was asked for; sends nothing."""
    if reencrypt:
        if not rotate:
            raise InvalidRequest("Re-encryption needs the new keys: it cannot be combined with rotate=False")
        if access != codes.Access.READ:
            raise InvalidRequest("Only a read consent gives keys, so only revoking one can re-encrypt")
        if manager.address != patient:
            raise AccessDenied(
                f"Only the patient {patient} can re-encrypt her records, not {manager.address}; nothing was revoked"
            )
    client.contract.revoke(patient, grantee, access, sender=manager, simulate=True)


def revoke(
    client: Client,
    manager: Identity,
    grantee: str,
    access: codes.Access = codes.Access.READ,
    *,
    patient: str | None = None,
    rotate: bool = True,
    reencrypt: bool = False,
) -> tuple[bool, list[Reencrypted]]:
    """Revoke ``grantee``'s consent, rotate the keys it covered (unless ``rotate`` is False) and, with
    ``reencrypt`` (patient only), re-encrypt every record of those categories still under older keys
    (:func:`~medledger.workflows.reencrypt_records`). Repeating it finishes what a failure left
    undone. Returns whether the consent changed and what was re-encrypted."""
    patient = as_address(patient or manager.address)
    grantee = as_address(grantee)
    check_revoke(client, manager, grantee, access, patient=patient, rotate=rotate, reencrypt=reencrypt)
    covered = _covered(client, patient, grantee, access)
    changed = consent.revoke(client, manager, grantee, access, patient=patient, rotate=rotate)
    done: list[Reencrypted] = []
    if reencrypt and covered:
        done = reencrypt_records(client, manager, covered)  # only what is still under older keys
    return changed, done


def _covered(client: Client, patient: str, grantee: str, access: codes.Access) -> frozenset[codes.Category]:
    """The categories of ``grantee``'s consent: as it stands, or (revoked already: a retry) as its last
    grant gave them."""
    current = consent.consent_of(client, patient, grantee, access).categories
    if current:
        return frozenset(current)
    grants = [g for g in client.contract.logs(ConsentGranted, patient=patient, grantee=grantee) if g.access == access]
    return frozenset(grants[-1].categories) if grants else frozenset()
