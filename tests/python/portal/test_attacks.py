"""The portal attacked by a stranger or a relayer: requests in another patient's name, replayed and
held-back signatures, races, malformed bodies and paths. Each is refused with a reason, sends no
transaction and changes nothing: not the consent, not the patient's allowance at the relayer."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from medledger import codes, consent
from tests.python.conftest import advance_time

from .test_api import relay, resign, signed

W, R = codes.Access.WRITE, codes.Access.READ
OBS, IMAGING = codes.Category.OBSERVATIONS, codes.Category.IMAGING
RESEARCH = codes.Purpose.RESEARCH


def sent_by(client, who) -> int:
    """How many transactions ``who`` has sent (its nonce): the relayer's must not move on a refusal."""
    return client.chain.nonce(who.address)


def terms(client, patient, grantee, access=W):
    held = consent.consent_of(client, patient.address, grantee.address, access)
    return held.categories, held.purposes


def test_requests_in_another_patients_name_are_refused(
    portal, client, patient, delegate, researcher, stranger, relayer
):
    before = sent_by(client, relayer), terms(client, patient, researcher)
    # the stranger, and even her delegate, signing a request that names her as the patient
    for signer in (stranger, delegate):
        response = relay(portal, resign(client, signer, signed(client, patient, researcher)))
        assert response.status_code == 403, response.text
        assert f"is not patient {patient.address}'s signature" in response.json()["error"]
    # her genuine request with another grantee written in: the signature no longer recovers to her
    altered = signed(client, patient, researcher)
    altered["message"]["grantee"] = stranger.address
    response = relay(portal, altered)
    assert response.status_code == 403 and "is not patient" in response.json()["error"]
    # a stranger who is no patient signing for himself: the contract's reason, before any gas
    response = relay(portal, signed(client, stranger, researcher))
    assert response.status_code in (403, 422) and response.json().get("contract_error"), response.text
    # her real signature over an access code that does not exist: named, before any gas
    response = relay(portal, resign(client, patient, signed(client, patient, researcher, access=9)))
    assert response.status_code == 400 and "access 9 is not an access code" in response.json()["error"]
    assert (sent_by(client, relayer), terms(client, patient, researcher)) == before


def test_a_replayed_request_neither_applies_again_nor_uses_up_her_allowance(
    portal, client, patient, researcher, stranger, relayer
):
    request = signed(client, patient, researcher)
    assert relay(portal, request).status_code == 200
    sent = sent_by(client, relayer)
    advance_time(client, 1)
    consent.revoke(client, patient, researcher.address, W)  # she changes her mind from her wallet
    # a stranger who saw the request (it is in the transaction's call data) replays it, many times
    for _ in range(8):
        response = relay(portal, request)
        assert response.status_code == 403 and response.json()["contract_error"] == "ConsentRequestSuperseded"
    assert sent_by(client, relayer) == sent
    assert terms(client, patient, researcher) == (set(), set())
    advance_time(client, 1)
    assert relay(portal, signed(client, patient, researcher)).status_code == 200  # her allowance is intact


def test_a_held_back_grant_cannot_override_a_later_revocation(portal, client, patient, researcher, relayer):
    held = signed(client, patient, researcher)  # the relayer keeps it instead of submitting it
    advance_time(client, 1)
    consent.grant(client, patient, researcher.address, W, [IMAGING], [RESEARCH])
    advance_time(client, 1)
    consent.revoke(client, patient, researcher.address, W)
    sent = sent_by(client, relayer)
    response = relay(portal, held)
    assert response.status_code == 403 and response.json()["contract_error"] == "ConsentRequestSuperseded"
    assert "an older request never undoes a newer decision" in response.json()["error"]
    assert terms(client, patient, researcher) == (set(), set())
    assert sent_by(client, relayer) == sent


def test_a_held_back_revocation_cannot_undo_a_later_grant(portal, client, patient, researcher, relayer):
    consent.grant(client, patient, researcher.address, W, [OBS], [RESEARCH])
    advance_time(client, 1)
    held = consent.sign_revoke(client, patient, researcher.address, W)
    advance_time(client, 1)
    consent.grant(client, patient, researcher.address, W, [OBS, IMAGING], [RESEARCH])  # she widens it later
    sent = sent_by(client, relayer)
    response = relay(portal, held)
    assert response.status_code == 403 and response.json()["contract_error"] == "ConsentRequestSuperseded"
    assert terms(client, patient, researcher) == ({OBS, IMAGING}, {RESEARCH})
    assert sent_by(client, relayer) == sent


def test_the_same_request_sent_at_once_from_many_sides_is_submitted_once(portal, client, patient, researcher, relayer):
    request = signed(client, patient, researcher)
    sent = sent_by(client, relayer)
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: relay(portal, request), range(6)))
    assert sorted(a.status_code for a in answers) == [200] + [403] * 5, [a.text for a in answers]
    assert {a.json().get("contract_error") for a in answers if a.status_code == 403} == {"ConsentRequestSuperseded"}
    assert sent_by(client, relayer) == sent + 1  # one transaction: no gas paid for a losing duplicate


MALFORMED = [
    pytest.param([], "A signed consent request is a JSON object", id="a list"),
    pytest.param(7, "A signed consent request is a JSON object", id="a number"),
    pytest.param(None, "A signed consent request is a JSON object", id="null"),
    pytest.param({}, "primaryType must be Grant or Revoke", id="an empty object"),
    pytest.param("grant", "A signed consent request is a JSON object", id="a string"),
    pytest.param(
        {"primaryType": "Grant", "message": "x", "domain": {}, "signature": "0x"}, "types must be", id="no types"
    ),
]


@pytest.mark.parametrize(("body", "says"), MALFORMED)
def test_bodies_that_are_not_requests_are_refused_with_a_reason(portal, client, relayer, body, says):
    sent = sent_by(client, relayer)
    response = requests.post(
        portal.url + "/api/relay", data=json.dumps(body), headers={"Content-Type": "application/json"}, timeout=10
    )
    assert response.status_code == 400 and says in response.json()["error"], response.text
    assert response.json()["kind"] == "MalformedRequest" and sent_by(client, relayer) == sent


FIELDS = [
    pytest.param(
        "issuedAt", 2**64, "message.issuedAt is 18446744073709551616, more than a uint64", id="issuedAt above uint64"
    ),
    pytest.param("deadline", str(2**256), "more than a uint256 holds", id="deadline above uint256"),
    pytest.param("nonce", -1, "nonce", id="negative nonce"),
    pytest.param("issuedAt", True, "issuedAt", id="a boolean"),
    pytest.param("issuedAt", "١٢", "issuedAt", id="non-ASCII digits"),
    pytest.param("categories", 1.5, "categories", id="a fraction"),
    pytest.param("access", 256, "message.access is 256, more than a uint8 holds", id="access above uint8"),
    pytest.param("patient", "0x1234", "message.patient must be an address", id="short address"),
    pytest.param("grantee", None, "message.grantee must be an address", id="no grantee"),
    pytest.param("keyEnvelope", "0xzz", "message.keyEnvelope must be 32 bytes of hex", id="envelope not hex"),
    pytest.param("keyEnvelope", "0x1234", "message.keyEnvelope must be 32 bytes of hex", id="envelope too short"),
]


@pytest.mark.parametrize(("field", "value", "named"), FIELDS)
def test_malformed_fields_are_named_and_change_nothing(
    portal, client, patient, researcher, relayer, field, value, named
):
    before = sent_by(client, relayer), terms(client, patient, researcher)
    request = signed(client, patient, researcher)
    request["message"][field] = value
    response = relay(portal, request)
    assert response.status_code == 400, response.text
    assert named in response.json()["error"], response.text
    assert (sent_by(client, relayer), terms(client, patient, researcher)) == before


def test_a_number_as_a_wallet_writes_it_is_read_as_that_number(portal, client, patient, researcher, relayer):
    """Wallets and dapps write uints as JSON numbers, decimal or 0x-hex strings: all one number."""
    request = signed(client, patient, researcher)
    request["message"]["categories"] = hex(int(request["message"]["categories"]))
    response = relay(portal, request)
    assert response.status_code == 200 and response.json()["changed"], response.text
    assert terms(client, patient, researcher)[0] == {OBS}


def test_malformed_signatures_domains_and_content_types(portal, client, patient, researcher, relayer):
    sent = sent_by(client, relayer)
    for signature in ("0xzz", "", "0x" + "00" * 65, "0x" + "11" * 200):
        response = relay(portal, {**signed(client, patient, researcher), "signature": signature})
        assert response.status_code in (400, 403) and "error" in response.json(), (signature, response.text)
    for domain in ({}, {"chainId": "abc"}, {"name": None, "chainId": [], "verifyingContract": 5}):
        response = relay(portal, {**signed(client, patient, researcher), "domain": domain})
        assert response.status_code in (400, 403) and "error" in response.json(), (domain, response.text)
    plain = requests.post(portal.url + "/api/relay", data=b"{}", headers={"Content-Type": "text/plain"}, timeout=10)
    assert plain.status_code == 400 and "application/json" in plain.json()["error"]
    empty = requests.post(portal.url + "/api/relay", data=b"", headers={"Content-Type": "application/json"}, timeout=10)
    assert empty.status_code == 400 and "not JSON" in empty.json()["error"]
    assert sent_by(client, relayer) == sent
    assert terms(client, patient, researcher) == (set(), set())


@pytest.mark.parametrize(
    ("path", "named"),
    [
        ("/api/patients/{p}/consents/{p}/9", "not an access code"),
        ("/api/patients/{p}/consents/{p}/read", "access"),
        ("/api/patients/{p}/records/0xnothex", "record id"),
        ("/api/patients/{p}/records/0x12", "record id"),
        ("/api/patients/0x12/records/0x" + "00" * 32, "not an Ethereum address"),
        ("/api/patients/{p}/envelopes/nobody", "not an Ethereum address"),
        ("/api/ipfs/not-a-cid", "CID"),
        ("/api/grantees/0xZZ/grants", "not an Ethereum address"),
    ],
)
def test_malformed_paths_get_a_reason_not_a_crash(portal, patient, path, named):
    response = requests.get(portal.url + path.format(p=patient.address), timeout=10)
    assert 400 <= response.status_code < 500, response.text
    assert named in response.text, response.text


def test_oversized_bodies_are_refused_before_they_are_read_whole(portal, client, patient, researcher, relayer):
    sent = sent_by(client, relayer)
    octets = {"Content-Type": "application/octet-stream"}
    declared = requests.post(portal.url + "/api/ipfs", data=b"\0" * (8 * 2**20), headers=octets, timeout=30)
    assert declared.status_code == 400 and "at most 65536 bytes, not 8388608" in declared.json()["error"]
    streamed = requests.post(
        portal.url + "/api/ipfs", data=(b"\0" * 2**16 for _ in range(64)), headers=octets, timeout=30
    )
    assert streamed.status_code == 400 and "at most 65536 bytes, not more" in streamed.json()["error"]
    padded = signed(client, patient, researcher)
    padded["padding"] = "x" * 2**17
    response = relay(portal, padded)
    assert response.status_code == 400 and "JSON bodies of at most 65536 bytes" in response.json()["error"]
    assert sent_by(client, relayer) == sent
    assert terms(client, patient, researcher) == (set(), set())
