"""Signed consent (EIP-712): the patient signs off chain, a relayer submits and pays the gas.

A signed request travels as a small JSON file (:data:`~medledger.chain.eip712.REQUEST_FORMAT`): the
kind, the EIP-712 domain, the message and the signature. The types, the file's content and signing
are :mod:`medledger.chain.eip712`'s.

A request carries ``issuedAt`` (the chain's latest block time when it is signed, which must be newer
than the consent's last decision, ``updatedAt``) and the patient's current ``nonce`` (not consumed by
use). It is valid until its deadline, unless a newer decision on the same consent supersedes it or
the patient (or a delegate) voids every outstanding request with
:func:`invalidate_signed_requests`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from medledger import codes
from medledger.chain import FOREVER, describe_revert
from medledger.chain.eip712 import (
    REQUEST_FORMAT,
    GrantRequest,
    RevokeRequest,
    SignedRequest,
    document,
    domain,
    from_document,
)
from medledger.chain.events import ConsentGranted, ConsentRevoked, SignedRequestsInvalidated
from medledger.client import Client, as_address
from medledger.errors import AccessDenied, ConfigError, InvalidRequest
from medledger.fsutil import atomic_write
from medledger.keystore import Identity

from .grants import key_envelope, terms

__all__ = [
    "REQUEST_FORMAT",
    "check_request",
    "invalidate_signed_requests",
    "read_request",
    "recover_signer",
    "sign_grant",
    "sign_revoke",
    "submit",
    "write_request",
]

#: How long a signed request may be submitted by default: hours, not weeks (a request held back by a
#: relayer stays valid until then unless superseded or invalidated).
DEFAULT_VALIDITY = 24 * 3600


def _domain(client: Client) -> dict[str, Any]:
    return domain(client.chain.chain_id, client.deployment.address)


def _issued_at(client: Client, patient: str, grantee: str, access: codes.Access) -> int:
    """The chain's latest block time, which must be newer than the consent's last decision."""
    now = client.now()
    updated = client.contract.consent(patient, grantee, access).updated_at
    if now <= updated:
        raise InvalidRequest(
            f"The consent of patient {patient} to {grantee} was last decided at chain time {updated}, and the chain's "
            f"latest block is no later ({now}): a signed request must be newer than that decision; sign it once the "
            "chain's time has moved on"
        )
    return now


def sign_grant(
    client: Client,
    patient: Identity,
    grantee: str,
    access: codes.Access,
    categories: Iterable[int],
    purposes: Iterable[int],
    *,
    start: int = 0,
    expiry: int = FOREVER,
    deadline: int | None = None,
) -> dict[str, Any]:
    """The patient signs a grant off-chain; anyone can submit the result with :func:`submit`.
    The key envelope is uploaded now, so the relayer needs nothing from the patient but this."""
    grantee = as_address(grantee)
    wanted = terms(categories, purposes, start, expiry)
    issued_at = _issued_at(client, patient.address, grantee, codes.Access(access))
    request = GrantRequest(
        patient=patient.address,
        grantee=grantee,
        access=int(access),
        categories=wanted.category_mask,
        purposes=wanted.purpose_mask,
        start=start,
        expiry=expiry,
        keyEnvelope=key_envelope(client, patient, patient.address, grantee, codes.Access(access), wanted.categories),
        issuedAt=issued_at,
        nonce=client.contract.nonces(patient.address),
        deadline=deadline if deadline is not None else issued_at + DEFAULT_VALIDITY,
    )
    return document(request, _domain(client), request.sign(patient.account, _domain(client)))


def sign_revoke(
    client: Client, patient: Identity, grantee: str, access: codes.Access, *, deadline: int | None = None
) -> dict[str, Any]:
    grantee = as_address(grantee)
    issued_at = _issued_at(client, patient.address, grantee, codes.Access(access))
    request = RevokeRequest(
        patient=patient.address,
        grantee=grantee,
        access=int(access),
        issuedAt=issued_at,
        nonce=client.contract.nonces(patient.address),
        deadline=deadline if deadline is not None else issued_at + DEFAULT_VALIDITY,
    )
    return document(request, _domain(client), request.sign(patient.account, _domain(client)))


def write_request(request: dict[str, Any], path: Path) -> None:
    atomic_write(path, json.dumps(request, indent=2) + "\n")


def read_request(path: Path) -> dict[str, Any]:
    try:
        request: dict[str, Any] = json.loads(Path(path).read_text())
        from_document(request)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{path} is not a signed consent request ({exc})") from None
    return request


def parse_request(request: dict[str, Any]) -> SignedRequest:
    """The typed request inside a signed-request document."""
    return from_document(request)[0]


def recover_signer(request: dict[str, Any]) -> str:
    """The address that signed ``request`` (to check before paying gas for it)."""
    typed, signature = from_document(request)
    return typed.signer(request["domain"], signature)


def _refused(name: str, args: dict[str, Any]) -> AccessDenied:
    return AccessDenied(describe_revert(name, args), name, args)


def check_request(client: Client, typed: SignedRequest) -> None:
    """Raise what the chain would refuse a request for, before anyone pays gas: superseded (not newer
    than the consent's last decision), invalidated (an old nonce) or past its deadline."""
    try:
        access = codes.Access(typed.access)
    except ValueError:
        raise InvalidRequest(f"The request's access {typed.access} is not an access code (0 read, 1 write)") from None
    updated = client.contract.consent(typed.patient, typed.grantee, access).updated_at
    if typed.issuedAt <= updated:
        args = {"patient": typed.patient, "grantee": typed.grantee, "issuedAt": typed.issuedAt, "updatedAt": updated}
        raise _refused("ConsentRequestSuperseded", args)
    current = client.contract.nonces(typed.patient)
    if typed.nonce != current:
        raise _refused("InvalidAccountNonce", {"account": typed.patient, "currentNonce": current})
    if typed.deadline < client.now():
        raise _refused("ConsentSignatureExpired", {"deadline": typed.deadline})


def submit(client: Client, relayer: Identity, request: dict[str, Any]) -> bool:
    """Submit a signed request; the relayer pays the gas. Returns whether the consent changed."""
    signed_for = request["domain"]
    here = _domain(client)
    if int(signed_for["chainId"]) != here["chainId"] or as_address(signed_for["verifyingContract"]) != as_address(
        here["verifyingContract"]
    ):
        raise AccessDenied(
            f"The request was signed for chain {signed_for['chainId']} and contract "
            f"{signed_for['verifyingContract']}, not chain {here['chainId']} and contract {here['verifyingContract']}"
        )
    typed, signature = from_document(request)
    check_request(client, typed)
    if isinstance(typed, GrantRequest):
        return client.contract.grant_by_sig(typed, signature, sender=relayer).emitted(ConsentGranted)
    return client.contract.revoke_by_sig(typed, signature, sender=relayer).emitted(ConsentRevoked)


def invalidate_signed_requests(client: Client, manager: Identity, *, patient: str | None = None) -> int:
    """Void every signed request of ``patient`` not yet submitted (as the patient or a delegate): the
    patient's nonce moves on. Returns the new nonce."""
    patient = as_address(patient or manager.address)
    receipt = client.contract.invalidate_signed_requests(patient, sender=manager)
    event = receipt.first(SignedRequestsInvalidated)
    return event.new_nonce if event is not None else client.contract.nonces(patient)
