"""Direct grants and revocations by the patient or a delegate (who pays the gas).

Keys follow consent: a read grant delivers the category keys in the same transaction (a key
envelope), and losing read access (a revocation, a narrowing) makes the keys released to the former
reader stale on chain; the patient's side then rotates them (:meth:`~medledger.keyring.Keyring.sync`,
run here after every such change) so records written afterwards are closed to it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from medledger import codes
from medledger.chain import FOREVER, ZERO32, ConsentTerms
from medledger.chain.events import ConsentGranted, ConsentRevoked
from medledger.client import Client, as_address
from medledger.errors import AccessDenied
from medledger.keyring import Keyring
from medledger.keystore import Identity

#: A non-zero key-envelope pointer for checking a read grant before its real envelope is made.
_STAND_IN = b"\1" * 32


def terms(categories: Iterable[int], purposes: Iterable[int], start: int = 0, expiry: int = FOREVER) -> ConsentTerms:
    """Consent terms from codes (or their numbers)."""
    return ConsentTerms(
        frozenset(codes.Category(int(c)) for c in categories),
        frozenset(codes.Purpose(int(p)) for p in purposes),
        start,
        expiry,
    )


def key_envelope(
    client: Client, granter: Identity, patient: str, grantee: str, access: codes.Access, categories: Iterable[int]
) -> bytes:
    """The on-chain pointer of the envelope carrying ``categories``' keys to ``grantee`` (zero for a
    write grant: writers need no keys), pinned for a signed request that anyone may submit later
    (a direct grant pins its envelope journaled, with its transaction: :func:`grant`)."""
    if access != codes.Access.READ:
        return ZERO32
    keyring = Keyring(client)
    return client.put_small(keyring.seal_for(granter, patient, keyring.recipient_key(grantee), categories))


def _granting(
    client: Client, granter: Identity, patient: str, grantee: str, access: codes.Access, categories: Iterable[int]
) -> contextlib.AbstractContextManager[bytes]:
    """The key envelope of a direct grant (:meth:`Keyring.envelope_for`; zero for a write grant)."""
    if access != codes.Access.READ:
        return contextlib.nullcontext(ZERO32)
    return Keyring(client).envelope_for(granter, patient, grantee, categories)


def grant(
    client: Client,
    manager: Identity,
    grantee: str,
    access: codes.Access,
    categories: Iterable[int],
    purposes: Iterable[int],
    *,
    patient: str | None = None,
    start: int = 0,
    expiry: int = FOREVER,
    rotate: bool = True,
) -> bool:
    """Grant (or widen or narrow) a consent directly; ``manager`` is the patient or a delegate and
    pays the gas. A read grant delivers the category keys to the grantee in the same transaction.
    Replacing a read consent (narrowing it, shortening it) or repeating one ends with a key sync
    (unless ``rotate`` is False), as revoking does: the keys of what the grantee lost are rotated.
    Returns whether anything changed."""
    patient = as_address(patient or manager.address)
    grantee = as_address(grantee)
    wanted = terms(categories, purposes, start, expiry)
    contract = client.contract
    # The chain's refusals first (a delegate outside its bounds, a suspended grantee ...), with a
    # stand-in pointer, so that a refused grant seals and pins no key envelope.
    stand_in = _STAND_IN if access == codes.Access.READ else ZERO32
    contract.grant(patient, grantee, access, wanted, stand_in, sender=manager, simulate=True)
    previous = contract.consent(patient, grantee, access)
    # Refused, or reverted on chain, or never sent: the envelope is unpinned again (also after a kill).
    with _granting(client, manager, patient, grantee, codes.Access(access), wanted.categories) as envelope:
        receipt = contract.grant(patient, grantee, access, wanted, envelope, sender=manager)
    changed = receipt.emitted(ConsentGranted)
    if rotate and access == codes.Access.READ and (previous.exists or not changed):
        Keyring(client).sync(manager, patient)  # a retry after a failed sync finishes it too
    return changed


def revoke(
    client: Client,
    manager: Identity,
    grantee: str,
    access: codes.Access = codes.Access.READ,
    *,
    patient: str | None = None,
    rotate: bool = True,
) -> bool:
    """Revoke a consent with immediate effect. Revoking read access ends with a key sync (unless
    ``rotate`` is False): the categories whose keys the grantee held are rotated, so records written
    afterwards are closed to it. The sync runs even when there was nothing left to revoke, so
    repeating a revocation whose rotation failed (a node down) finishes it. (Re-encrypting the
    existing records too: :func:`medledger.workflows.revoke`.)"""
    patient = as_address(patient or manager.address)
    grantee = as_address(grantee)
    receipt = client.contract.revoke(patient, grantee, access, sender=manager)
    changed = receipt.emitted(ConsentRevoked)
    if rotate and access == codes.Access.READ:
        Keyring(client).sync(manager, patient)
    return changed


def send_keys(
    client: Client,
    manager: Identity,
    grantee: str,
    *,
    patient: str | None = None,
    categories: Iterable[int] | None = None,
) -> frozenset[codes.Category]:
    """Send ``grantee`` the category keys its live read consent covers (or only ``categories``), in
    one key envelope (``publishKeyEnvelope``): the step after a read grant that carried no keys, such
    as one signed by a wallet that holds no medledger keys. ``manager`` is the patient (her own tools,
    with her keystore) or a delegate, and must hold the keys. Returns the categories sent."""
    patient = as_address(patient or manager.address)
    grantee = as_address(grantee)
    covered = client.contract.consent(patient, grantee, codes.Access.READ).categories
    wanted = sorted({int(c) for c in (covered if categories is None else categories)})
    if not wanted:
        raise AccessDenied(
            f"{grantee} holds no read consent of patient {patient}, so there are no keys to send it",
            "KeyRecipientWithoutAccess",
            {"patient": patient, "recipient": grantee, "categories": 0},
        )
    # The chain's refusals (not the patient or a delegate for them, no live access) before sealing anything.
    client.contract.publish_key_envelope(patient, grantee, b"\1" * 32, categories=wanted, sender=manager, simulate=True)
    keyring = Keyring(client)
    with keyring.envelope_for(manager, patient, grantee, wanted) as pointer:
        client.contract.publish_key_envelope(patient, grantee, pointer, categories=wanted, sender=manager)
    return frozenset(codes.Category(c) for c in wanted)


def rotation_owed(client: Client, patient: str, grantee: str) -> frozenset[codes.Category]:
    """The categories of ``grantee``'s revoked read consent whose keys are still stale: a revocation
    that stopped before its rotation (a node went down). Revoking again rotates them; a retry thus
    finishes the revocation instead of saying that nothing changed. Empty while the consent is live."""
    contract = client.contract
    if contract.consent(patient, grantee, codes.Access.READ).expiry != 0:
        return frozenset()
    read: dict[str, Any] = {"patient": patient, "grantee": grantee, "access": codes.Access.READ}
    revoked = contract.logs(ConsentRevoked, **read)
    if not revoked:
        return frozenset()
    at = revoked[-1].log
    granted = [
        e
        for e in contract.logs(ConsentGranted, **read)
        if (e.log.block_number, e.log.log_index) < (at.block_number, at.log_index)
    ]
    if not granted:
        return frozenset()
    now = client.now()
    return frozenset(c for c in granted[-1].categories if contract.category_key(patient, c).stale(now))
