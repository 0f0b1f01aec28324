"""Signed consent (EIP-712): the patient signs off chain, a relayer submits and pays the gas.

A signed request travels as a JSON file that is what a wallet signs and a dapp checks: the
``eth_signTypedData_v4`` payload with every uint a decimal string, plus the signature and medledger's
metadata (:func:`medledger.chain.eip712.document`). This module prepares requests (for any wallet to
sign: :func:`prepare_grant`, :func:`prepare_revoke`), signs them with a keystore identity
(:func:`sign_grant`, :func:`sign_revoke`) and reads and writes the files; checking and submitting
what a wallet signed is :mod:`.relay`'s.

A request carries ``issuedAt`` (the chain's latest block time when it is prepared, which must be
newer than the consent's last decision, ``updatedAt``) and the patient's current ``nonce`` (not
consumed by use). It is valid until its deadline (by default :data:`DEFAULT_VALIDITY`, hours, not
weeks), unless a newer decision on the same consent supersedes it or the patient (or a delegate)
voids every outstanding request with :func:`invalidate_signed_requests`: the remedy for a request
a relayer holds back.

A read grant prepared for a wallet that holds no medledger keys carries no key envelope
(``keyEnvelope`` zero): the grantee gets the keys afterwards from the patient's own tools or a
delegate (:func:`medledger.consent.send_keys`, ``publishKeyEnvelope`` on chain).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from medledger import codes
from medledger.chain import FOREVER, ZERO32
from medledger.chain.eip712 import (
    REQUEST_FORMAT,
    GrantRequest,
    ParsedRequest,
    RevokeRequest,
    SignedRequest,
    document,
    domain,
    parse,
)
from medledger.chain.events import SignedRequestsInvalidated
from medledger.client import Client, as_address
from medledger.errors import ConfigError, InvalidRequest, MalformedRequest
from medledger.fsutil import atomic_write
from medledger.keystore import Identity

from .grants import key_envelope, terms

__all__ = [
    "DEFAULT_VALIDITY",
    "REQUEST_FORMAT",
    "invalidate_signed_requests",
    "prepare_grant",
    "prepare_revoke",
    "read_request",
    "sign_grant",
    "sign_revoke",
    "write_request",
]

#: How long a signed request may be submitted by default: hours, not weeks (a request held back by a
#: relayer stays valid until then unless superseded or invalidated).
DEFAULT_VALIDITY = 24 * 3600


def request_domain(client: Client) -> dict[str, Any]:
    """The EIP-712 domain of this client's deployment."""
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


def _validity(valid_for: int) -> int:
    if valid_for <= 0:
        raise InvalidRequest(f"A signed request must stay valid for some time, not {valid_for} s")
    return valid_for


def _grant_request(
    client: Client,
    patient: str,
    grantee: str,
    access: codes.Access,
    categories: Iterable[int],
    purposes: Iterable[int],
    *,
    start: int,
    expiry: int,
    valid_for: int,
    envelope: bytes | Identity,
) -> GrantRequest:
    """The request; ``envelope`` is the key envelope's pointer, or the identity that seals one."""
    patient, grantee = as_address(patient), as_address(grantee)
    wanted = terms(categories, purposes, start, expiry)
    issued_at = _issued_at(client, patient, grantee, codes.Access(access))
    if isinstance(envelope, Identity):
        envelope = key_envelope(client, envelope, patient, grantee, codes.Access(access), wanted.categories)
    return GrantRequest(
        patient=patient,
        grantee=grantee,
        access=int(access),
        categories=wanted.category_mask,
        purposes=wanted.purpose_mask,
        start=start,
        expiry=expiry,
        keyEnvelope=envelope,
        issuedAt=issued_at,
        nonce=client.contract.nonces(patient),
        deadline=issued_at + _validity(valid_for),
    )


def _revoke_request(client: Client, patient: str, grantee: str, access: codes.Access, valid_for: int) -> RevokeRequest:
    patient, grantee = as_address(patient), as_address(grantee)
    issued_at = _issued_at(client, patient, grantee, codes.Access(access))
    return RevokeRequest(
        patient=patient,
        grantee=grantee,
        access=int(access),
        issuedAt=issued_at,
        nonce=client.contract.nonces(patient),
        deadline=issued_at + _validity(valid_for),
    )


def prepare_grant(
    client: Client,
    patient: str,
    grantee: str,
    access: codes.Access,
    categories: Iterable[int],
    purposes: Iterable[int],
    *,
    start: int = 0,
    expiry: int = FOREVER,
    valid_for: int = DEFAULT_VALIDITY,
) -> dict[str, Any]:
    """An unsigned grant for ``patient``'s wallet to sign (``eth_signTypedData_v4`` of the returned
    file's content). It carries no key envelope: the wallet needs no medledger keys, and the keys
    follow with :func:`medledger.consent.send_keys` once the grant is on chain."""
    request = _grant_request(
        client, patient, grantee, access, categories, purposes, start=start, expiry=expiry, valid_for=valid_for,
        envelope=ZERO32,
    )  # fmt: skip
    return document(request, request_domain(client))


def prepare_revoke(
    client: Client, patient: str, grantee: str, access: codes.Access, *, valid_for: int = DEFAULT_VALIDITY
) -> dict[str, Any]:
    """An unsigned revocation for ``patient``'s wallet to sign."""
    return document(_revoke_request(client, patient, grantee, access, valid_for), request_domain(client))


def _signed(client: Client, patient: Identity, request: SignedRequest) -> dict[str, Any]:
    here = request_domain(client)
    return document(request, here, request.sign(patient.account, here))


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
    valid_for: int = DEFAULT_VALIDITY,
) -> dict[str, Any]:
    """The patient signs a grant off-chain; anyone can submit the result with
    :func:`medledger.consent.submit`. The key envelope is uploaded now, so the relayer needs nothing
    from the patient but this."""
    request = _grant_request(
        client, patient.address, grantee, access, categories, purposes, start=start, expiry=expiry,
        valid_for=valid_for, envelope=patient,
    )  # fmt: skip
    return _signed(client, patient, request)


def sign_revoke(
    client: Client, patient: Identity, grantee: str, access: codes.Access, *, valid_for: int = DEFAULT_VALIDITY
) -> dict[str, Any]:
    return _signed(client, patient, _revoke_request(client, patient.address, grantee, access, valid_for))


def write_request(request: dict[str, Any] | ParsedRequest, path: Path) -> None:
    content = request.document() if isinstance(request, ParsedRequest) else request
    atomic_write(path, json.dumps(content, indent=2) + "\n")


def load_request(text: str, where: str, signature: Any = None) -> ParsedRequest:
    """A request from JSON text (``where`` names it in errors), with a ``signature`` given apart."""
    try:
        content = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedRequest(f"{where} is not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    try:
        return parse(content, signature)
    except MalformedRequest as exc:
        raise MalformedRequest(f"{where} is not a signed consent request this version reads: {exc}", exc.part) from None


def read_request(path: Path, signature: Any = None) -> ParsedRequest:
    """The request in file ``path`` (this version's, a bare ``eth_signTypedData_v4`` payload, or an
    earlier version's file), with its signature or the ``signature`` given apart (hex, or an
    ``{r, s, v}`` object)."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read the signed request {path}: {exc}") from None
    return load_request(text, str(path), signature)


def invalidate_signed_requests(client: Client, manager: Identity, *, patient: str | None = None) -> int:
    """Void every signed request of ``patient`` not yet submitted (as the patient or a delegate): the
    patient's nonce moves on. Returns the new nonce. The remedy for a request a relayer holds back
    (or one a wallet was tricked into signing): requests signed afterwards are valid again."""
    patient = as_address(patient or manager.address)
    receipt = client.contract.invalidate_signed_requests(patient, sender=manager)
    event = receipt.first(SignedRequestsInvalidated)
    return event.new_nonce if event is not None else client.contract.nonces(patient)
