"""What a relayer does with a signed consent request: read it, check it, submit it and pay the gas.

Every caller that accepts a request from a wallet (the CLI's ``consent submit``, the portal's
relayer) goes through these functions, so each refuses the same requests with the same sentence,
before any gas is paid:

1. :func:`parse_request`: the shape (a medledger request file, a bare ``eth_signTypedData_v4``
   payload or an earlier version's file; numbers as JSON numbers, decimal or hex strings; the
   signature inside or given apart) → :class:`~medledger.chain.eip712.ParsedRequest`, or
   :class:`~medledger.errors.MalformedRequest` naming the part;
2. :func:`verify_signature`: signed for this chain and this contract, by the request's patient: an
   account without code by a signature normalised to what the contract accepts (v 0/1, EIP-2098
   compact and high-s forms become 65 bytes, v 27/28, low s), a contract wallet by asking it
   (ERC-1271) → :class:`VerifiedRequest` holding the bytes that will go on chain, or
   :class:`~medledger.errors.AccessDenied`;
3. :func:`check_request`: the chain's state: not past its deadline, not dated in the future, the
   patient's current nonce (not invalidated), newer than the consent's last decision (not already
   used, not overridden) → AccessDenied with the contract's error name;
4. :func:`submit`: 2 and 3 again if needed, then the transaction (simulated first by the chain
   layer, so the contract's remaining refusals, e.g. a grantee that is not a participant, also cost
   nothing).

:func:`precheck` is 2 + 3. A relayer that rate-limits patients counts a request after step 2, so
nobody can use up a patient's allowance with requests she did not sign.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from medledger import codes
from medledger.chain import describe_revert, signatures, utc, wallets
from medledger.chain.eip712 import GrantRequest, ParsedRequest, SignedRequest, parse
from medledger.chain.events import ConsentGranted, ConsentRevoked
from medledger.client import Client
from medledger.errors import AccessDenied, MalformedRequest
from medledger.keystore import Identity

from .signed import request_domain

__all__ = [
    "VerifiedRequest",
    "check_request",
    "parse_request",
    "precheck",
    "recover_signer",
    "submit",
    "verify_signature",
]

Request = Mapping[str, Any] | ParsedRequest


@dataclass(frozen=True)
class VerifiedRequest:
    """A request whose signature is its patient's for this deployment: ``signature`` is what goes on
    chain (normalised for an account without code; for a contract wallet, the form it accepted),
    ``wallet`` whether the patient is a contract wallet (ERC-1271)."""

    parsed: ParsedRequest
    signature: bytes
    wallet: bool

    @property
    def request(self) -> SignedRequest:
        return self.parsed.request

    @property
    def patient(self) -> str:
        return self.parsed.request.patient

    @property
    def normalised(self) -> bool:
        """Whether the signature on chain differs from the bytes the wallet gave."""
        return self.signature != self.parsed.signature


def parse_request(request: Request, signature: Any = None) -> ParsedRequest:
    """The request in a file's content or a wallet's payload (see
    :func:`medledger.chain.eip712.parse`), with a ``signature`` given apart."""
    if isinstance(request, ParsedRequest):
        return parse(request.document(), signature) if signature is not None else request
    return parse(request, signature)


def _signed(parsed: ParsedRequest) -> bytes:
    if parsed.signature is None:
        raise MalformedRequest(
            'The request is not signed: give the wallet\'s signature with it (inside the file as "signature", or '
            "apart)",
            "signature",
        )
    return parsed.signature


def recover_signer(request: Request) -> str | None:
    """The address whose key signed ``request`` (for an account without code; no chain needed)."""
    parsed = parse_request(request)
    return parsed.request.signer(parsed.domain, _signed(parsed))


def _check_domain(client: Client, parsed: ParsedRequest) -> None:
    here = request_domain(client)
    signed_for = parsed.domain
    if (signed_for["chainId"], signed_for["verifyingContract"]) != (here["chainId"], here["verifyingContract"]):
        raise AccessDenied(
            f"The request was signed for chain {signed_for['chainId']} and contract {signed_for['verifyingContract']}, "
            f"not this deployment (chain {here['chainId']}, contract {here['verifyingContract']}): a signature counts "
            "on one chain and one contract only",
            "ConsentInvalidSignature",
            {"patient": parsed.request.patient},
        )


def verify_signature(client: Client, request: Request, signature: Any = None) -> VerifiedRequest:
    """Check that the request is signed for this deployment by its patient, as the contract will;
    return it with the signature bytes to submit. Raises :class:`MalformedRequest` (no signature, or
    not a signature at all) or :class:`AccessDenied` (another chain or contract, another signer, or
    altered after signing)."""
    parsed = parse_request(request, signature)
    given = _signed(parsed)
    _check_domain(client, parsed)
    patient = parsed.request.patient
    if wallets.is_contract(client.chain, patient):
        return _verify_wallet(client, parsed, given)
    normal = signatures.normalize(given)
    signer = signatures.recover(parsed.digest(), normal)
    if signer != patient:
        raise AccessDenied(
            f"The signature is not patient {patient}'s signature of this request: it recovers to {signer}, so "
            "another key signed it or the request was changed after it was signed",
            "ConsentInvalidSignature",
            {"patient": patient, "recovered": signer},
        )
    return VerifiedRequest(parsed, normal, wallet=False)


def _verify_wallet(client: Client, parsed: ParsedRequest, given: bytes) -> VerifiedRequest:
    """A contract wallet judges its own signatures: as given first, then normalised (a wallet built on
    OpenZeppelin's ECDSA, like most, wants v 27/28 too)."""
    candidates = [given]
    if signatures.is_ecdsa(given) and signatures.normalize(given) != given:
        candidates.append(signatures.normalize(given))
    digest = parsed.digest()
    for candidate in candidates:
        if wallets.accepts(client.chain, parsed.request.patient, digest, candidate):
            return VerifiedRequest(parsed, candidate, wallet=True)
    raise AccessDenied(
        f"Patient {parsed.request.patient} is a contract wallet and does not accept this signature of the request "
        "(ERC-1271): it was made by a key the wallet does not answer for, or the request was changed after signing",
        "ConsentInvalidSignature",
        {"patient": parsed.request.patient},
    )


def _span(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} days"


def _refused(name: str, args: dict[str, Any], message: str | None = None) -> AccessDenied:
    return AccessDenied(message or describe_revert(name, args), name, args)


def _typed(request: SignedRequest | VerifiedRequest | ParsedRequest) -> SignedRequest:
    return request.request if isinstance(request, (VerifiedRequest, ParsedRequest)) else request


def check_request(client: Client, request: SignedRequest | VerifiedRequest | ParsedRequest) -> None:
    """Raise what the chain would refuse the request for, before anyone pays gas, in the contract's
    order: past its deadline, dated in the future, invalidated (another nonce), then superseded (not
    newer than the consent's last decision: already used, or overridden by a later one)."""
    typed = _typed(request)
    now = client.now()
    if typed.deadline < now:
        raise _refused(
            "ConsentSignatureExpired",
            {"deadline": typed.deadline},
            f"The signed request could be submitted until {utc(typed.deadline)}; the chain's time is "
            f"{utc(now)}, {_span(now - typed.deadline)} later: it has expired, and the patient must sign a new one",
        )
    if typed.issuedAt > now:
        raise _refused("ConsentInvalidIssuedAt", {"issuedAt": typed.issuedAt, "nowTime": now})
    current = client.contract.nonces(typed.patient)
    if typed.nonce != current:
        args = {"account": typed.patient, "currentNonce": current}
        raise _refused("InvalidAccountNonce", args, None if typed.nonce < current else _future_nonce(typed, current))
    state = client.contract.consent(typed.patient, typed.grantee, codes.Access(typed.access))
    if typed.issuedAt <= state.updated_at:
        args = {"patient": typed.patient, "grantee": typed.grantee, "issuedAt": typed.issuedAt}
        message = _superseded(typed, state.updated_at, "changed" if state.exists else "revoked")
        raise _refused("ConsentRequestSuperseded", {**args, "updatedAt": state.updated_at}, message)


def _future_nonce(typed: SignedRequest, current: int) -> str:
    return (
        f"The signed request carries nonce {typed.nonce}, but patient {typed.patient}'s current nonce is {current} "
        "(it was never higher): the request was not made against this deployment's state"
    )


def _superseded(typed: SignedRequest, updated: int, how: str) -> str:
    whose = f"the consent of patient {typed.patient} to {typed.grantee}"
    if updated == typed.issuedAt:
        return (
            f"The signed request (issued {utc(typed.issuedAt)}) was already used: the last decision on {whose} was "
            "taken at its own issue time, so it is not newer than the last decision"
        )
    return (
        f"The signed request (issued {utc(typed.issuedAt)}) is not newer than the last decision on {whose}: that was "
        f"{how} {_span(updated - typed.issuedAt)} later ({utc(updated)}), and an older request never undoes a newer "
        "decision"
    )


def precheck(client: Client, request: Request, signature: Any = None) -> VerifiedRequest:
    """:func:`verify_signature` and :func:`check_request`: everything but the transaction."""
    verified = verify_signature(client, request, signature)
    check_request(client, verified)
    return verified


def submit(client: Client, relayer: Identity, request: Request | VerifiedRequest) -> bool:
    """Submit a signed request (checked first, unless it is a :class:`VerifiedRequest` already, whose
    chain state is checked again); the relayer pays the gas. Returns whether the consent changed."""
    if isinstance(request, VerifiedRequest):
        check_request(client, request)
        verified = request
    else:
        verified = precheck(client, request)
    typed = verified.request
    if isinstance(typed, GrantRequest):
        return client.contract.grant_by_sig(typed, verified.signature, sender=relayer).emitted(ConsentGranted)
    return client.contract.revoke_by_sig(typed, verified.signature, sender=relayer).emitted(ConsentRevoked)
