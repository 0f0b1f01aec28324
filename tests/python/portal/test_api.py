"""The portal server over the real chain and IPFS node: the relayer's checks before it pays gas,
its per-patient rate limit, the guards against other sites, the IPFS door and the read API."""

from __future__ import annotations

import dataclasses

import requests

from medledger import audit, codes, consent
from medledger.keyring import Keyring
from medledger.portal.relayer import RateLimited, RateLimiter
from tests.python.conftest import advance_time

R = codes.Access.READ
OBS = codes.Category.OBSERVATIONS
RESEARCH = codes.Purpose.RESEARCH


def signed(client, patient, researcher, **overrides):
    """A read grant signed by ``patient`` in the CLI's request format (no envelope needed to test the
    relayer's checks: the keys are not what it checks)."""
    request = consent.sign_grant(client, patient, researcher.address, codes.Access.WRITE, [OBS], [RESEARCH])
    request["message"].update(overrides)
    return request


def resign(client, who, request):
    """Sign the request's (possibly altered) message again, as ``who``, with the library's types."""
    # (signed as is: the parser would refuse an access code that does not exist before anything else)
    access = int(request["message"]["access"])
    typed = consent.parse_request({**request, "message": {**request["message"], "access": 0}}).request
    typed = dataclasses.replace(typed, access=access)
    request["signature"] = "0x" + typed.sign(who.account, request["domain"]).hex()
    return request


def relay(portal, request, **headers):
    return requests.post(portal.url + "/api/relay", json=request, headers=headers, timeout=30)


def balance(client, who):
    return client.chain.w3.eth.get_balance(who.address)


def test_a_signed_request_from_the_cli_is_relayed(portal, client, patient, researcher, relayer):
    response = relay(portal, signed(client, patient, researcher))
    assert response.status_code == 200, response.text
    assert response.json() == {"changed": True, "relayer": relayer.address}
    held = consent.consent_of(client, patient.address, researcher.address, codes.Access.WRITE)
    assert held.categories == {OBS} and held.purposes == {RESEARCH}


def test_forged_wrong_domain_expired_replayed_and_voided_requests_cost_no_gas(
    portal, client, patient, delegate, researcher, stranger, relayer
):
    before = balance(client, relayer)
    forged = resign(client, stranger, signed(client, patient, researcher))
    response = relay(portal, forged)
    assert response.status_code == 403 and "is not patient" in response.json()["error"]

    other_chain = signed(client, patient, researcher)
    other_chain["domain"]["chainId"] = 1
    response = relay(portal, other_chain)
    assert (
        response.status_code == 403
        and "a signature counts on one chain and one contract only" in response.json()["error"]
    )

    expired = resign(client, patient, signed(client, patient, researcher, deadline=client.now() - 1))
    response = relay(portal, expired)
    assert response.status_code == 403 and response.json()["contract_error"] == "ConsentSignatureExpired"
    assert "it has expired, and the patient must sign a new one" in response.json()["error"]

    request = signed(client, patient, researcher)
    assert relay(portal, request).status_code == 200
    spent = before - balance(client, relayer)
    response = relay(portal, request)  # the same request again: not newer than the decision it made
    assert response.status_code == 403 and response.json()["contract_error"] == "ConsentRequestSuperseded"
    assert "was already used" in response.json()["error"]
    voided = signed(client, delegate, researcher)
    consent.invalidate_signed_requests(client, delegate)  # the patient voided her outstanding requests
    response = relay(portal, voided)
    assert response.status_code == 403 and response.json()["contract_error"] == "InvalidAccountNonce"
    assert before - balance(client, relayer) == spent  # only the one good request cost gas


def test_a_request_the_contract_would_refuse_is_refused_with_its_reason_before_sending(
    portal, client, patient, relayer
):
    before = balance(client, relayer)
    to_herself = signed(client, patient, patient)  # the contract refuses self-grants
    to_herself["message"]["grantee"] = patient.address
    response = relay(portal, resign(client, patient, to_herself))
    assert response.status_code in (403, 422)
    assert response.json()["contract_error"] == "ConsentSelfGrant"
    assert balance(client, relayer) == before


def test_rate_limit_per_patient_counts_only_her_requests_that_were_sent(
    portal, client, patient, delegate, researcher, stranger
):
    for _ in range(10):  # forgeries in her name do not use up her allowance
        assert relay(portal, resign(client, stranger, signed(client, patient, researcher))).status_code == 403
    nonce = client.contract.nonces(patient.address)
    out_of_order = resign(client, patient, signed(client, patient, researcher, nonce=nonce + 7))
    assert [relay(portal, out_of_order).status_code for _ in range(6)] == [403] * 6  # refused: not counted
    codes_seen = []
    for _ in range(5):
        advance_time(client, 1)  # each request newer than the decision the previous one made
        codes_seen.append(relay(portal, signed(client, patient, researcher)).status_code)
    assert codes_seen == [200] * 5
    advance_time(client, 1)
    limited = relay(portal, signed(client, patient, researcher))
    assert limited.status_code == 429 and "at most 5 signed requests per patient" in limited.json()["error"]
    assert int(limited.headers["Retry-After"]) > 0
    # another patient is not affected
    assert relay(portal, signed(client, delegate, researcher)).status_code == 200


def test_rate_limiter_window_slides():
    now = [0.0]
    limiter = RateLimiter(2, 60, clock=lambda: now[0])
    limiter.take("a")
    limiter.take("a")
    try:
        limiter.take("a")
        raise AssertionError("third request within the window was accepted")
    except RateLimited as exc:
        assert round(exc.retry_after) == 60
    now[0] = 60.5
    limiter.take("a")


def test_malformed_requests_are_refused_with_reasons(portal, client, patient, researcher):
    cases = [
        ({"format": "x"}, "A request of format 'x' cannot be read"),
        ({**signed(client, patient, researcher), "primaryType": "Burn"}, "primaryType must be Grant or Revoke"),
        (
            {**signed(client, patient, researcher), "medledger": {"format": "medledger-signed-consent/1"}},
            "The request's medledger format is 'medledger-signed-consent/1'",
        ),
    ]
    for body, reason in cases:
        response = relay(portal, body)
        assert response.status_code == 400 and reason in response.json()["error"], response.text
    short = relay(portal, {**signed(client, patient, researcher), "signature": "0x1234"})
    assert short.status_code == 400 and short.json()["kind"] == "MalformedRequest", short.text
    assert "signature" in short.json()["error"]
    extra = signed(client, patient, researcher)
    extra["message"]["note"] = 1
    assert relay(portal, extra).status_code == 400
    not_json = requests.post(
        portal.url + "/api/relay", data=b"{", headers={"Content-Type": "application/json"}, timeout=10
    )
    assert not_json.status_code == 400 and "not JSON" in not_json.json()["error"]
    missing = signed(client, patient, researcher)
    del missing["message"]["deadline"]
    assert relay(portal, missing).status_code == 400


def test_other_sites_and_foreign_host_names_are_refused(portal, client, patient, researcher):
    page = requests.get(portal.url + "/", timeout=10)
    assert page.status_code == 200 and "script-src 'self'" in page.headers["Content-Security-Policy"]
    rebound = requests.get(portal.url + "/api/info", headers={"Host": "attacker.example"}, timeout=10)
    assert rebound.status_code == 421
    cross = relay(portal, signed(client, patient, researcher), Origin="http://attacker.example")
    assert cross.status_code == 403
    assert relay(portal, signed(client, patient, researcher), Origin=portal.url).status_code == 200


def test_ipfs_door_takes_small_objects_only_and_serves_them_back(portal):
    blob = b"\x01sealed envelope bytes"
    added = requests.post(
        portal.url + "/api/ipfs", data=blob, headers={"Content-Type": "application/octet-stream"}, timeout=10
    )
    assert added.status_code == 200
    import hashlib

    assert added.json()["pointer"] == "0x" + hashlib.sha256(blob).hexdigest()
    assert requests.get(portal.url + "/api/ipfs/" + added.json()["cid"], timeout=10).content == blob
    big = requests.post(
        portal.url + "/api/ipfs",
        data=b"\0" * (64 * 1024 + 1),
        headers={"Content-Type": "application/octet-stream"},
        timeout=10,
    )
    assert big.status_code == 400 and "at most 65536 bytes" in big.json()["error"]
    form = requests.post(portal.url + "/api/ipfs", data={"a": "b"}, timeout=10)
    assert form.status_code == 400


def test_read_api_matches_the_library(portal, client, patient, researcher):
    consent.grant(client, patient, researcher.address, R, [OBS], [RESEARCH])
    info = requests.get(portal.url + "/api/info", timeout=10).json()
    assert info["contract"] == client.deployment.address and info["relayer"] == portal.relayer.address
    assert [c["label"] for c in info["codes"]["categories"]][4] == "observations & labs"
    view = requests.get(f"{portal.url}/api/patients/{patient.address.lower()}", timeout=10).json()
    assert view["registered"] and view["address"] == patient.address
    assert view["encryption_key"] == "0x" + patient.encryption.public.hex()
    keys = requests.get(f"{portal.url}/api/patients/{patient.address}/keys", timeout=10).json()
    assert [(k["category"], k["epoch"], k["stale"]) for k in keys["current"]] == [(c, 1, False) for c in range(13)]
    assert {(h["category"], h["epoch"]): h["public_key"] for h in keys["history"]} == {
        k: "0x" + v.hex() for k, v in Keyring(client).public_keys(patient.address).items()
    }
    mine = requests.get(f"{portal.url}/api/patients/{patient.address}/envelopes/{patient.address}", timeout=10).json()
    assert [e["categories"] for e in mine] == [list(range(13))] and mine[0]["by"] == patient.address
    theirs = requests.get(f"{portal.url}/api/patients/{patient.address}/envelopes/{researcher.address}", timeout=10)
    assert [e["categories"] for e in theirs.json()] == [[4]]
    readers = requests.get(f"{portal.url}/api/patients/{patient.address}/readers", timeout=10).json()
    assert readers == [
        {"reader": researcher.address, "categories": [4], "encryption_key": "0x" + researcher.encryption.public.hex()}
    ]
    consents = requests.get(f"{portal.url}/api/patients/{patient.address}/consents", timeout=10).json()
    assert [(g["grantee"], g["categories"], g["live"]) for g in consents["current"]] == [
        (researcher.address, [4], True)
    ]
    csv_text = requests.get(f"{portal.url}/api/patients/{patient.address}/trail?format=csv", timeout=10).text
    assert csv_text == audit.to_csv(audit.trail(client, patient.address))
    held = requests.get(f"{portal.url}/api/grantees/{researcher.address}/grants?format=csv", timeout=10).text
    assert patient.address in held and "observations & labs" in held
    bad = requests.get(f"{portal.url}/api/patients/0x1234", timeout=10)
    assert bad.status_code == 400 and "not an Ethereum address" in bad.json()["error"]


def test_explain_gives_the_clis_sentence(portal, client, patient):
    from .test_browser import _error_data

    data = _error_data(client, "EmergencyOptedOut", [patient.address])
    answer = requests.post(portal.url + "/api/explain", json={"data": data}, timeout=10).json()
    expected = str(client.contract.decoder.to_exception(data))
    assert answer["message"] == expected == f"Patient {patient.address} has opted out of emergency access"
    assert answer["error"] == "EmergencyOptedOut"
    garbage = requests.post(portal.url + "/api/explain", json={"data": "0xzz"}, timeout=10)
    assert garbage.status_code == 400


def test_the_command_and_a_missing_bundle(tmp_path, portal):
    from click.testing import CliRunner

    from medledger.cli import cli
    from medledger.errors import ConfigError
    from medledger.portal.app import create_app
    from medledger.portal.server import running

    help_text = CliRunner().invoke(cli, ["portal", "--help"]).output
    assert "--relayer NAME" in help_text and "127.0.0.1" in help_text
    for host in ("0.0.0.0", "192.168.1.5", "::", "example.org"):
        refused = CliRunner().invoke(cli, ["portal", "--host", host, "--port", "0"])
        assert refused.exit_code == 2 and "binds only to this machine" in refused.output, refused.output
        try:
            with running(portal.backend, host):
                raise AssertionError(f"the portal started on {host}")
        except ConfigError as exc:
            assert repr(host) in str(exc)
    try:
        create_app(portal.backend, static_dir=tmp_path)
        raise AssertionError("the portal started without its script")
    except ConfigError as exc:
        assert "make portal-assets" in str(exc)
