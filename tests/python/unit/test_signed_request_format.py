"""The signed-request file and what wallets hand back, without a chain: the file is an
eth_signTypedData_v4 payload with every uint a decimal string; the parser reads what wallets and dapps
produce (JSON numbers, hex strings, no EIP712Domain, format 2) and refuses, naming the part, what the
contract would encode differently; signatures in every form wallets return normalise to the one the
contract accepts. (Signing with the real wallet libraries: tests/python/cli/test_wallets.py.)"""

from __future__ import annotations

import copy
import json

import pytest
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from medledger.chain import eip712, signatures
from medledger.errors import MalformedRequest

CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
DOMAIN = eip712.domain(31337, CONTRACT)
PATIENT = Account.from_key(b"\x11" * 32)
GRANTEE = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
FOREVER = 2**64 - 1


def grant(**changes: object) -> eip712.GrantRequest:
    fields = {
        "patient": PATIENT.address,
        "grantee": GRANTEE,
        "access": 0,
        "categories": 1 << 4,
        "purposes": 1 << 1,
        "start": 0,
        "expiry": FOREVER,
        "keyEnvelope": bytes(32),
        "issuedAt": 1_700_000_000,
        "nonce": 0,
        "deadline": 1_700_086_400,
    }
    return eip712.GrantRequest(**{**fields, **changes})  # type: ignore[arg-type]


def signed_document(request: eip712.SignedRequest | None = None) -> dict:
    request = request or grant()
    return eip712.document(request, DOMAIN, request.sign(PATIENT, DOMAIN))


# --- the file ------------------------------------------------------------------------------------
def test_the_file_is_a_v4_payload_with_every_uint_a_decimal_string() -> None:
    doc = signed_document()
    assert set(doc) == {"types", "primaryType", "domain", "message", "signature", "medledger"}
    assert doc["medledger"] == {"format": eip712.REQUEST_FORMAT}
    assert doc["types"]["EIP712Domain"] == eip712.DOMAIN_TYPE and doc["types"]["Grant"] == eip712.GRANT_TYPES["Grant"]
    assert doc["domain"] == {"name": "medledger", "version": "1", "chainId": "31337", "verifyingContract": CONTRACT}
    assert doc["message"]["expiry"] == "18446744073709551615"  # JSON.parse keeps a string exact
    text = json.dumps(doc)
    assert not [v for v in json.loads(text)["message"].values() if not isinstance(v, str)]


def test_an_unsigned_document_has_no_signature_and_parses_as_unsigned() -> None:
    doc = eip712.document(grant(), DOMAIN)
    assert "signature" not in doc
    assert eip712.parse(doc).signature is None


@settings(max_examples=50, deadline=None)
@given(
    access=st.integers(0, 1),
    categories=st.integers(1, 2**13 - 1),
    purposes=st.integers(1, 2**6 - 1),
    expiry=st.integers(1, FOREVER),
    nonce=st.integers(0, 2**256 - 1),
    deadline=st.integers(0, 2**256 - 1),
    envelope=st.binary(min_size=32, max_size=32),
)
def test_document_and_parse_round_trip(access, categories, purposes, expiry, nonce, deadline, envelope) -> None:
    request = grant(
        access=access, categories=categories, purposes=purposes, expiry=expiry, nonce=nonce, deadline=deadline,
        keyEnvelope=envelope,
    )  # fmt: skip
    signature = b"\x01" * 65
    parsed = eip712.parse(json.loads(json.dumps(eip712.document(request, DOMAIN, signature))))
    assert (parsed.request, parsed.domain, parsed.signature, parsed.source) == (
        request, DOMAIN, signature, eip712.REQUEST_FORMAT
    )  # fmt: skip
    assert parsed.digest() == request.digest(DOMAIN)


# --- what wallets and dapps produce ---------------------------------------------------------------
def _numbers(doc: dict, form: str) -> dict:
    doc = copy.deepcopy(doc)
    for name, value in doc["message"].items():
        if name not in ("patient", "grantee", "keyEnvelope"):
            doc["message"][name] = int(value) if form == "number" else hex(int(value))
    doc["domain"]["chainId"] = int(doc["domain"]["chainId"]) if form == "number" else hex(int(doc["domain"]["chainId"]))
    return doc


@pytest.mark.parametrize("form", ["number", "hex"])
def test_numbers_may_be_json_numbers_or_hex_strings(form: str) -> None:
    doc = signed_document(grant(expiry=1_800_000_000))
    parsed = eip712.parse(_numbers(doc, form))
    assert parsed.request == grant(expiry=1_800_000_000) and parsed.domain == DOMAIN


def test_a_bare_payload_as_ethers_writes_it_is_read() -> None:
    """ethers' TypedDataEncoder.getPayload: chainId as hex, lowercase addresses, types in another order,
    no medledger metadata; the signature given apart."""
    doc = signed_document()
    signature = doc.pop("signature")
    del doc["medledger"]
    doc["types"] = {"Grant": doc["types"]["Grant"], "EIP712Domain": doc["types"]["EIP712Domain"]}
    doc["domain"] = {**doc["domain"], "chainId": "0x7a69", "verifyingContract": CONTRACT.lower()}
    doc["message"] = {**doc["message"], "patient": PATIENT.address.lower()}
    parsed = eip712.parse(doc, signature)
    assert parsed.source == eip712.V4_PAYLOAD and parsed.request == grant() and parsed.domain == DOMAIN
    without_domain_type = {**doc, "types": {"Grant": doc["types"]["Grant"]}}  # as ethers' signTypedData takes them
    assert eip712.parse(without_domain_type, signature).request == grant()


def test_format_2_files_of_the_previous_version_are_still_read() -> None:
    request = grant()
    signature = request.sign(PATIENT, DOMAIN)
    legacy = {
        "format": "medledger-signed-consent/2",
        "kind": "Grant",
        "domain": DOMAIN,
        "message": {k: ("0x" + v.hex() if isinstance(v, bytes) else v) for k, v in request.message().items()},
        "signature": "0x" + signature.hex(),
    }
    parsed = eip712.parse(json.loads(json.dumps(legacy)))
    assert (parsed.request, parsed.signature, parsed.source) == (request, signature, eip712.LEGACY_FORMAT)
    assert eip712.parse(parsed.document()).source == eip712.REQUEST_FORMAT  # rewritten as this version's file


def _refused(doc: object, part: str, *fragments: str, signature: object = None) -> None:
    with pytest.raises(MalformedRequest) as err:
        eip712.parse(doc, signature)  # type: ignore[arg-type]
    assert err.value.part == part
    for fragment in fragments:
        assert fragment in str(err.value)


def test_a_number_javascript_rounded_is_refused_with_the_reason() -> None:
    doc = signed_document()
    doc["message"]["expiry"] = json.loads("18446744073709552000")  # what JSON.stringify(Number("2^64-1")) writes
    _refused(doc, "message.expiry", "more than a uint64 holds", "a JavaScript number rounded it")


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("categories", 1.5, "whole number"),
        ("categories", "1e3", "whole number"),
        ("categories", -1, "whole number"),
        ("categories", True, "whole number"),
        ("categories", 2**16, "more than a uint16 holds"),
        ("access", "256", "more than a uint8 holds"),
        ("nonce", "0x" + "1" * 65, "whole number"),
        ("keyEnvelope", "0x1234", "32 bytes of hex"),
        ("grantee", "0x90f79bf6EB2c4f870365E785982E1f101E93b906", "wrong checksum"),
        ("grantee", "0x1234", "must be an address"),
    ],
)
def test_malformed_members_are_named(field: str, value: object, fragment: str) -> None:
    doc = signed_document()
    doc["message"][field] = value
    _refused(doc, f"message.{field}", fragment)


def test_a_different_struct_or_domain_is_refused() -> None:
    doc = signed_document()
    reordered = copy.deepcopy(doc)
    reordered["types"]["Grant"][0], reordered["types"]["Grant"][1] = doc["types"]["Grant"][1], doc["types"]["Grant"][0]
    _refused(reordered, "types.Grant", "must be medledger's Grant(address patient,address grantee")
    extra = copy.deepcopy(doc)
    extra["types"]["Other"] = [{"name": "x", "type": "uint8"}]
    _refused(extra, "types", "must define Grant")
    salted = copy.deepcopy(doc)
    salted["types"]["EIP712Domain"].append({"name": "salt", "type": "bytes32"})
    _refused(salted, "types.EIP712Domain", "in that order")
    other_app = copy.deepcopy(doc)
    other_app["domain"]["name"] = "Permit2"
    _refused(other_app, "domain", "not a medledger consent request")
    missing = copy.deepcopy(doc)
    del missing["message"]["issuedAt"]
    missing["message"]["colour"] = "blue"
    _refused(missing, "message", "missing: issuedAt", "unknown: colour")
    _refused({**doc, "primaryType": "Permit"}, "primaryType", "Grant or Revoke")
    _refused({**doc, "medledger": {"format": "medledger-signed-consent/9"}}, "medledger", "this version reads")
    _refused({"format": "medledger-signed-consent/1", "kind": "Grant"}, "format", "signs it again")
    _refused([doc], "", "JSON object")


def test_a_signature_given_apart_must_agree_with_the_one_inside() -> None:
    doc = signed_document()
    inside = bytes.fromhex(doc["signature"][2:])
    compact = _compact(inside)
    assert eip712.parse(doc, "0x" + compact.hex()).signature == compact  # the same signature, another form
    _refused(doc, "signature", "a different one", signature="0x" + (b"\x02" * 65).hex())
    _refused(doc, "signature", "not hexadecimal", signature="0xzz")


# --- signatures ----------------------------------------------------------------------------------
def _compact(signature: bytes) -> bytes:
    v = signature[64] - 27
    return signature[:32] + ((v << 255) | int.from_bytes(signature[32:64], "big")).to_bytes(32, "big")


def _high_s(signature: bytes) -> bytes:
    s = signatures.SECP256K1_N - int.from_bytes(signature[32:64], "big")
    return signature[:32] + s.to_bytes(32, "big") + bytes([55 - signature[64]])


@settings(max_examples=25, deadline=None)
@given(key=st.binary(min_size=32, max_size=32), nonce=st.integers(0, 2**256 - 1))
def test_every_form_a_wallet_returns_normalises_to_the_contract_s_form(key: bytes, nonce: int) -> None:
    try:
        account = Account.from_key(key)
    except ValueError:
        return  # not a valid secp256k1 key (0 or >= n): no wallet has it
    request = grant(patient=account.address, nonce=nonce)
    canonical = request.sign(account, DOMAIN)
    assert canonical[64] in (27, 28) and int.from_bytes(canonical[32:64], "big") <= signatures.SECP256K1_N // 2
    forms = {
        "rsv": canonical,
        "v 0/1": canonical[:64] + bytes([canonical[64] - 27]),
        "EIP-2098": _compact(canonical),
        "high s": _high_s(canonical),
        "object": signatures.decode(
            {"r": "0x" + canonical[:32].hex(), "s": "0x" + canonical[32:64].hex(), "v": canonical[64]}
        ),
        "object with yParity": signatures.decode(
            {"r": "0x" + canonical[:32].hex(), "s": "0x" + canonical[32:64].hex(), "yParity": canonical[64] - 27}
        ),
    }
    for name, form in forms.items():
        assert signatures.normalize(form) == canonical, name
        assert request.signer(DOMAIN, form) == account.address, name


@pytest.mark.parametrize(
    ("signature", "fragment"),
    [
        (b"\x01" * 63, "63 bytes"),
        (b"\x01" * 66, "66 bytes"),
        (b"\x01" * 64 + bytes([5]), "v is 5"),
        (bytes(32) + b"\x01" * 32 + bytes([27]), "out of range"),
        (b"\xff" * 64 + bytes([27]), "out of range"),
    ],
)
def test_what_is_no_ecdsa_signature_is_refused(signature: bytes, fragment: str) -> None:
    with pytest.raises(MalformedRequest, match=fragment):
        signatures.normalize(signature)
    assert not signatures.is_ecdsa(signature)
