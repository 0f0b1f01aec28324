"""Consent from patient wallets: grants, revocations, signed requests, delegates, emergency access,
and the off-chain index of grants (rebuilt from events, confirmed against current chain state)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data

from . import codes
from .client import Client, as_address
from .errors import AccessDenied, ConfigError, KeyNotFound
from .keyring import Keyring
from .keystore import Identity

FOREVER = 2**64 - 1
REQUEST_FORMAT = "medledger-signed-consent/1"

GRANT_TYPES = {
    "Grant": [
        {"name": "patient", "type": "address"},
        {"name": "grantee", "type": "address"},
        {"name": "access", "type": "uint8"},
        {"name": "categories", "type": "uint16"},
        {"name": "purposes", "type": "uint16"},
        {"name": "start", "type": "uint64"},
        {"name": "expiry", "type": "uint64"},
        {"name": "keyEnvelope", "type": "bytes32"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ]
}
REVOKE_TYPES = {
    "Revoke": [
        {"name": "patient", "type": "address"},
        {"name": "grantee", "type": "address"},
        {"name": "access", "type": "uint8"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ]
}


@dataclass(frozen=True)
class Grant:
    """A consent as it stands on chain now."""

    patient: str
    grantee: str
    access: codes.Access
    categories: frozenset[codes.Category]
    purposes: frozenset[codes.Purpose]
    start: int
    expiry: int

    def live(self, now: int) -> bool:
        return self.start <= now < self.expiry

    def to_json(self) -> dict[str, Any]:
        return {
            "patient": self.patient,
            "grantee": self.grantee,
            "access": codes.slug(self.access),
            "categories": sorted(codes.slug(c) for c in self.categories),
            "purposes": sorted(codes.slug(p) for p in self.purposes),
            "start": self.start,
            "expiry": self.expiry,
        }


def _masks(categories: Iterable[int], purposes: Iterable[int]) -> tuple[int, int]:
    return codes.categories_to_mask(categories), codes.purposes_to_mask(purposes)


def _envelope(
    client: Client, granter: Identity, patient: str, grantee: str, access: codes.Access, categories: Iterable[int]
) -> bytes:
    if access != codes.Access.READ:
        return b"\0" * 32
    keyring = Keyring(client)
    return keyring.envelope_for(granter, patient, keyring.recipient_key(grantee), categories)


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
    Narrowing a read consent rotates the keys of the categories it no longer covers (unless
    ``rotate`` is False), as revoking does. Returns whether anything changed."""
    patient = as_address(patient or manager.address)
    grantee = as_address(grantee)
    categories = sorted({int(c) for c in categories})
    cat_mask, purpose_mask = _masks(categories, purposes)
    terms = (cat_mask, purpose_mask, start, expiry)
    try:
        envelope = _envelope(client, manager, patient, grantee, codes.Access(access), categories)
    except KeyNotFound:
        # A manager without the keys (a delegate outside its bounds, a stranger) is one the chain
        # refuses anyway: let it say why, rather than reporting the missing keys.
        client.call(client.contract.functions.grant(patient, grantee, int(access), terms, b"\0" * 32), manager.address)
        raise
    fn = client.contract.functions.grant(patient, grantee, int(access), terms, envelope)
    previous, *_ = client.call(client.contract.functions.consent(patient, grantee, int(access)))
    receipt = client.transact(fn, manager)
    changed = bool(client.events(receipt, "ConsentGranted"))
    dropped = set(codes.mask_to_categories(previous)) - set(categories)
    if changed and rotate and access == codes.Access.READ and dropped:
        Keyring(client).rotate(manager, patient, dropped)
    return changed


def revoke(
    client: Client,
    manager: Identity,
    grantee: str,
    access: codes.Access = codes.Access.READ,
    *,
    patient: str | None = None,
    rotate: bool = True,
    reencrypt: bool = False,
) -> bool:
    """Revoke a consent with immediate effect. For a read consent, the categories it covered get new
    keys (unless ``rotate`` is False), so records written afterwards are closed to the grantee.
    ``reencrypt`` (patient only) also re-encrypts the existing records of those categories under the
    new keys, as new versions, and unpins the old ciphertext: see :mod:`medledger.reencrypt`."""
    patient = as_address(patient or manager.address)
    grantee = as_address(grantee)
    fns = client.contract.functions
    categories, *_ = client.call(fns.consent(patient, grantee, int(access)))
    receipt = client.transact(fns.revoke(patient, grantee, int(access)), manager)
    changed = bool(client.events(receipt, "ConsentRevoked"))
    if changed and rotate and access == codes.Access.READ and categories:
        Keyring(client).rotate(manager, patient, codes.mask_to_categories(categories))
        if reencrypt:
            from .reencrypt import reencrypt_records  # records imports this module

            if manager.address != patient:
                raise AccessDenied("Only the patient can re-encrypt her records (the consent was revoked)")
            reencrypt_records(client, manager, codes.mask_to_categories(categories))
    return changed


def consent_of(client: Client, patient: str, grantee: str, access: codes.Access) -> Grant:
    cats, purposes, start, expiry = client.call(
        client.contract.functions.consent(as_address(patient), as_address(grantee), int(access))
    )
    return Grant(
        as_address(patient),
        as_address(grantee),
        codes.Access(access),
        codes.mask_to_categories(cats),
        codes.mask_to_purposes(purposes),
        start,
        expiry,
    )


def check_access(
    client: Client, patient: str, accessor: str, access: codes.Access, category: int, purpose: int
) -> bool:
    """Raise :class:`AccessDenied` (with the chain's reason, in words) unless the access is allowed
    now; return whether it rests on an emergency opening."""
    return bool(
        client.call(
            client.contract.functions.checkAccess(
                as_address(patient), as_address(accessor), int(access), int(category), int(purpose)
            ),
            category=int(category),
            purpose=int(purpose),
        )
    )


# --- signed consent (EIP-712) --------------------------------------------------------------------
def _domain(client: Client) -> dict[str, Any]:
    return {
        "name": "medledger",
        "version": "1",
        "chainId": client.chain.chain_id,
        "verifyingContract": client.deployment.address,
    }


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
    categories = sorted({int(c) for c in categories})
    cat_mask, purpose_mask = _masks(categories, purposes)
    nonce = int(client.call(client.contract.functions.nonces(patient.address)))
    message = {
        "patient": patient.address,
        "grantee": grantee,
        "access": int(access),
        "categories": cat_mask,
        "purposes": purpose_mask,
        "start": start,
        "expiry": expiry,
        "keyEnvelope": _envelope(client, patient, patient.address, grantee, codes.Access(access), categories),
        "nonce": nonce,
        "deadline": deadline if deadline is not None else client.now() + 7 * 24 * 3600,
    }
    return _signed(client, patient, "Grant", GRANT_TYPES, message)


def sign_revoke(
    client: Client, patient: Identity, grantee: str, access: codes.Access, *, deadline: int | None = None
) -> dict[str, Any]:
    message = {
        "patient": patient.address,
        "grantee": as_address(grantee),
        "access": int(access),
        "nonce": int(client.call(client.contract.functions.nonces(patient.address))),
        "deadline": deadline if deadline is not None else client.now() + 7 * 24 * 3600,
    }
    return _signed(client, patient, "Revoke", REVOKE_TYPES, message)


def _signed(client: Client, patient: Identity, kind: str, types: dict, message: dict[str, Any]) -> dict[str, Any]:
    signable = encode_typed_data(domain_data=_domain(client), message_types=types, message_data=message)
    signature = patient.account.sign_message(signable).signature
    printable = {k: ("0x" + v.hex() if isinstance(v, bytes) else v) for k, v in message.items()}
    return {
        "format": REQUEST_FORMAT,
        "kind": kind,
        "domain": _domain(client),
        "message": printable,
        "signature": "0x" + bytes(signature).hex(),
    }


def write_request(request: dict[str, Any], path: Path) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(request, indent=2) + "\n")
    os.replace(tmp, path)


def read_request(path: Path) -> dict[str, Any]:
    try:
        request = json.loads(Path(path).read_text())
        if request.get("format") != REQUEST_FORMAT or request.get("kind") not in ("Grant", "Revoke"):
            raise ValueError(f"not a {REQUEST_FORMAT} file")
        request["message"], request["signature"]  # noqa: B018 - presence check
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{path} is not a signed consent request ({exc})") from None
    return request


def recover_signer(request: dict[str, Any]) -> str:
    """The address that signed ``request`` (to check before paying gas for it)."""
    types = GRANT_TYPES if request["kind"] == "Grant" else REVOKE_TYPES
    message = _message_values(request)
    signable = encode_typed_data(domain_data=request["domain"], message_types=types, message_data=message)
    return Account.recover_message(signable, signature=request["signature"])


def _message_values(request: dict[str, Any]) -> dict[str, Any]:
    m = dict(request["message"])
    if "keyEnvelope" in m:
        m["keyEnvelope"] = bytes.fromhex(m["keyEnvelope"][2:])
    return m


def submit(client: Client, relayer: Identity, request: dict[str, Any]) -> bool:
    """Submit a signed request; the relayer pays the gas. Returns whether anything changed."""
    domain = request["domain"]
    if int(domain["chainId"]) != client.chain.chain_id or as_address(domain["verifyingContract"]) != as_address(
        client.deployment.address
    ):
        raise AccessDenied(
            f"The request was signed for chain {domain['chainId']} and contract {domain['verifyingContract']}, "
            f"not chain {client.chain.chain_id} and contract {client.deployment.address}"
        )
    m = _message_values(request)
    fns = client.contract.functions
    signature = bytes.fromhex(request["signature"][2:])
    if request["kind"] == "Grant":
        tuple_: tuple[Any, ...] = (
            m["patient"], m["grantee"], m["access"], m["categories"], m["purposes"],
            m["start"], m["expiry"], m["keyEnvelope"], m["nonce"], m["deadline"],
        )
        receipt = client.transact(fns.grantBySig(tuple_, signature), relayer)
        return bool(client.events(receipt, "ConsentGranted"))
    tuple_ = (m["patient"], m["grantee"], m["access"], m["nonce"], m["deadline"])
    receipt = client.transact(fns.revokeBySig(tuple_, signature), relayer)
    return bool(client.events(receipt, "ConsentRevoked"))


# --- delegates -----------------------------------------------------------------------------------
def appoint_delegate(
    client: Client, patient: Identity, delegate: str, categories: Iterable[int], expiry: int
) -> bool:
    """Appoint a delegate (family, friends) and deliver the keys of its categories to it."""
    delegate = as_address(delegate)
    categories = sorted({int(c) for c in categories})
    fns = client.contract.functions
    receipt = client.transact(fns.appointDelegate(delegate, codes.categories_to_mask(categories), expiry), patient)
    changed = bool(client.events(receipt, "DelegateAppointed"))
    if changed:
        keyring = Keyring(client)
        pointer = keyring.envelope_for(patient, patient.address, keyring.recipient_key(delegate), categories)
        client.transact(fns.publishKeyEnvelope(patient.address, delegate, pointer), patient)
    return changed


def remove_delegate(client: Client, patient: Identity, delegate: str, *, rotate: bool = True) -> bool:
    fns = client.contract.functions
    categories, _expiry = client.call(fns.delegation(patient.address, as_address(delegate)))
    receipt = client.transact(fns.removeDelegate(as_address(delegate)), patient)
    changed = bool(client.events(receipt, "DelegateRemoved"))
    if changed and rotate and categories:
        Keyring(client).rotate(patient, patient.address, codes.mask_to_categories(categories))
    return changed


# --- emergency -----------------------------------------------------------------------------------
def open_emergency(client: Client, clinician: Identity, patient: str, window: int, reason_code: bytes) -> int:
    """Open emergency read access; returns when it ends. The clinician can then read records (the
    key envelope for emergencies is delivered by :func:`emergency_keys`)."""
    fn = client.contract.functions.openEmergencyAccess(as_address(patient), int(window), reason_code)
    receipt = client.transact(fn, clinician)
    events = client.events(receipt, "EmergencyAccessOpened")
    if events:
        return int(events[0]["args"]["expiresAt"])
    return int(client.call(client.contract.functions.emergencyAccessExpiry(as_address(patient), clinician.address)))


def close_emergency(client: Client, closer: Identity, patient: str, clinician: str) -> bool:
    fn = client.contract.functions.closeEmergencyAccess(as_address(patient), as_address(clinician))
    return bool(client.events(client.transact(fn, closer), "EmergencyAccessClosed"))


def set_emergency_opt_out(client: Client, patient: Identity, opted_out: bool) -> bool:
    receipt = client.transact(client.contract.functions.setEmergencyOptOut(opted_out), patient)
    return bool(client.events(receipt, "EmergencyOptOutChanged"))


# --- the off-chain index of grants ---------------------------------------------------------------
def grants_held(client: Client, grantee: str, *, live_only: bool = True) -> list[Grant]:
    """Every consent currently made to ``grantee`` (a study, an app): from ConsentGranted events
    indexed by grantee, each confirmed against the chain's current state."""
    grantee = as_address(grantee)
    pairs = {(e["args"]["patient"], e["args"]["access"]) for e in client.logs("ConsentGranted", grantee=grantee)}
    return _current(client, ((p, grantee, a) for p, a in pairs), live_only)


def grants_given(client: Client, patient: str, *, live_only: bool = True) -> list[Grant]:
    """Every consent ``patient`` has made that still stands."""
    patient = as_address(patient)
    pairs = {(e["args"]["grantee"], e["args"]["access"]) for e in client.logs("ConsentGranted", patient=patient)}
    return _current(client, ((patient, g, a) for g, a in pairs), live_only)


def _current(client: Client, keys: Iterable[tuple[str, str, int]], live_only: bool) -> list[Grant]:
    now = client.now()
    out = []
    for patient, grantee, access in sorted(keys):
        g = consent_of(client, patient, grantee, codes.Access(access))
        if g.expiry == 0 or (live_only and not now < g.expiry):
            continue
        out.append(g)
    return out
