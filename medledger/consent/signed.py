"""Signed consent (EIP-712): the patient signs off chain, a relayer submits and pays the gas.

A signed request travels as a small JSON file (``medledger-signed-consent/1``): the kind, the
EIP-712 domain, the message and the signature. The types and signing are
:mod:`medledger.chain.eip712`'s.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from medledger import codes
from medledger.chain import FOREVER
from medledger.chain.eip712 import GrantRequest, RevokeRequest, SignedRequest, domain, request_from_message
from medledger.chain.events import ConsentGranted, ConsentRevoked
from medledger.client import Client, as_address
from medledger.errors import AccessDenied, ConfigError
from medledger.fsutil import atomic_write
from medledger.keystore import Identity

from .grants import key_envelope, terms

REQUEST_FORMAT = "medledger-signed-consent/1"
DEFAULT_VALIDITY = 7 * 24 * 3600


def _domain(client: Client) -> dict[str, Any]:
    return domain(client.chain.chain_id, client.deployment.address)


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
    request = GrantRequest(
        patient=patient.address,
        grantee=grantee,
        access=int(access),
        categories=wanted.category_mask,
        purposes=wanted.purpose_mask,
        start=start,
        expiry=expiry,
        keyEnvelope=key_envelope(client, patient, patient.address, grantee, codes.Access(access), wanted.categories),
        nonce=client.contract.nonces(patient.address),
        deadline=deadline if deadline is not None else client.now() + DEFAULT_VALIDITY,
    )
    return _signed(client, patient, request)


def sign_revoke(
    client: Client, patient: Identity, grantee: str, access: codes.Access, *, deadline: int | None = None
) -> dict[str, Any]:
    request = RevokeRequest(
        patient=patient.address,
        grantee=as_address(grantee),
        access=int(access),
        nonce=client.contract.nonces(patient.address),
        deadline=deadline if deadline is not None else client.now() + DEFAULT_VALIDITY,
    )
    return _signed(client, patient, request)


def _signed(client: Client, patient: Identity, request: SignedRequest) -> dict[str, Any]:
    domain_data = _domain(client)
    signature = request.sign(patient.account, domain_data)
    printable = {k: ("0x" + v.hex() if isinstance(v, bytes) else v) for k, v in request.message().items()}
    return {
        "format": REQUEST_FORMAT,
        "kind": request.PRIMARY,
        "domain": domain_data,
        "message": printable,
        "signature": "0x" + signature.hex(),
    }


def write_request(request: dict[str, Any], path: Path) -> None:
    atomic_write(path, json.dumps(request, indent=2) + "\n")


def read_request(path: Path) -> dict[str, Any]:
    try:
        request: dict[str, Any] = json.loads(Path(path).read_text())
        if request.get("format") != REQUEST_FORMAT or request.get("kind") not in ("Grant", "Revoke"):
            raise ValueError(f"not a {REQUEST_FORMAT} file")
        parse_request(request)
        bytes.fromhex(request["signature"].removeprefix("0x"))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{path} is not a signed consent request ({exc})") from None
    return request


def parse_request(request: dict[str, Any]) -> SignedRequest:
    """The typed request inside a signed-request document."""
    return request_from_message(request["kind"], request["message"])


def recover_signer(request: dict[str, Any]) -> str:
    """The address that signed ``request`` (to check before paying gas for it)."""
    signature = bytes.fromhex(request["signature"].removeprefix("0x"))
    return parse_request(request).signer(request["domain"], signature)


def submit(client: Client, relayer: Identity, request: dict[str, Any]) -> bool:
    """Submit a signed request; the relayer pays the gas. Returns whether anything changed."""
    signed_for = request["domain"]
    here = _domain(client)
    if int(signed_for["chainId"]) != here["chainId"] or as_address(signed_for["verifyingContract"]) != as_address(
        here["verifyingContract"]
    ):
        raise AccessDenied(
            f"The request was signed for chain {signed_for['chainId']} and contract "
            f"{signed_for['verifyingContract']}, not chain {here['chainId']} and contract {here['verifyingContract']}"
        )
    typed = parse_request(request)
    signature = bytes.fromhex(request["signature"].removeprefix("0x"))
    if isinstance(typed, GrantRequest):
        return client.contract.grant_by_sig(typed, signature, sender=relayer).emitted(ConsentGranted)
    return client.contract.revoke_by_sig(typed, signature, sender=relayer).emitted(ConsentRevoked)
