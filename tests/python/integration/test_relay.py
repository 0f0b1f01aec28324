"""The relayer's library API (medledger.consent.relay), as the portal calls it: parse, verify the
signature (normalised once, the same bytes checked here and sent on chain), check the chain's state,
submit; every refusal before a transaction, with the contract's error name. (Real wallet libraries and
the CLI: tests/python/cli/test_wallets.py.)"""

from __future__ import annotations

import pytest

from medledger import consent
from medledger.chain import ZERO32, eip712
from medledger.errors import AccessDenied, MalformedRequest
from medledger.keyring import Keyring

from .helpers import DAY, A, C, P, advance_time, eth_balance


def _compact(signature: bytes) -> bytes:
    """The EIP-2098 form of a 65-byte signature (what ethers' compactSerialized gives)."""
    v = signature[64] - 27
    return signature[:32] + ((v << 255) | int.from_bytes(signature[32:64], "big")).to_bytes(32, "big")


def _prepared(client, patient, researcher) -> dict:
    return consent.prepare_grant(client, patient.address, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])


def _sign(doc: dict, who) -> bytes:
    parsed = eip712.parse(doc)
    return parsed.request.sign(who.account, parsed.domain)


def test_the_portal_path_parse_verify_check_submit(client, patient, researcher, relayer):
    doc = _prepared(client, patient, researcher)
    assert doc["message"]["keyEnvelope"] == "0x" + ZERO32.hex()  # a wallet without keys signs it as it is
    compact = _compact(_sign(doc, patient))
    parsed = consent.parse_request(doc, "0x" + compact.hex())
    assert parsed.signature == compact and parsed.keys_follow

    verified = consent.verify_signature(client, parsed)
    assert verified.patient == patient.address and not verified.wallet and verified.normalised
    assert len(verified.signature) == 65 and verified.signature[64] in (27, 28)
    consent.check_request(client, verified)
    assert consent.recover_signer(parsed) == patient.address

    balance = eth_balance(client, patient.address)
    assert consent.submit(client, relayer, verified)
    assert eth_balance(client, patient.address) == balance
    state = consent.consent_of(client, patient.address, researcher.address, A.READ)
    assert state.exists and not state.keys_released
    with pytest.raises(AccessDenied, match="already used") as err:  # the same request again
        consent.precheck(client, doc, "0x" + compact.hex())
    assert err.value.error_name == "ConsentRequestSuperseded"


def test_send_keys_releases_the_keys_of_the_consent(client, patient, researcher, relayer):
    doc = _prepared(client, patient, researcher)
    consent.submit(client, relayer, {**doc, "signature": "0x" + _sign(doc, patient).hex()})
    assert consent.send_keys(client, patient, researcher.address) == {C.OBSERVATIONS}
    assert consent.consent_of(client, patient.address, researcher.address, A.READ).keys_released
    assert set(Keyring(client).secrets(researcher, patient.address)) == {C.OBSERVATIONS}


def test_an_unsigned_request_is_malformed(client, patient, researcher):
    with pytest.raises(MalformedRequest, match="not signed") as err:
        consent.verify_signature(client, _prepared(client, patient, researcher))
    assert err.value.part == "signature"


def test_a_wallet_s_claims_about_time_and_nonce_are_checked(client, patient, researcher, relayer):
    """A request dated in the future, or with a nonce the patient never had, is the wallet's word:
    refused before gas, with the contract's error name."""
    doc = _prepared(client, patient, researcher)
    future = {**doc, "message": {**doc["message"], "issuedAt": str(client.now() + DAY)}}
    with pytest.raises(AccessDenied) as err:
        consent.precheck(client, future, _sign(future, patient))
    assert err.value.error_name == "ConsentInvalidIssuedAt"
    ahead = {**doc, "message": {**doc["message"], "nonce": "7"}}
    with pytest.raises(AccessDenied, match="it was never higher") as err:
        consent.precheck(client, ahead, _sign(ahead, patient))
    assert err.value.error_name == "InvalidAccountNonce"
    advance_time(client, 2 * DAY)
    with pytest.raises(AccessDenied, match="later: it has expired") as err:
        consent.precheck(client, doc, _sign(doc, patient))
    assert err.value.error_name == "ConsentSignatureExpired"


def test_a_signed_revocation_prepared_for_a_wallet(client, patient, researcher, relayer):
    consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    advance_time(client, 1)
    doc = consent.prepare_revoke(client, patient.address, researcher.address, A.READ, valid_for=3600)
    assert int(doc["message"]["deadline"]) - int(doc["message"]["issuedAt"]) == 3600
    signature = _sign(doc, patient)
    v01 = signature[:64] + bytes([signature[64] - 27])
    assert consent.submit(client, relayer, consent.parse_request(doc, v01))
    assert not consent.consent_of(client, patient.address, researcher.address, A.READ).exists
