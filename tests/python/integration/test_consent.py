"""Consent against the real chain: direct grants and revocations, widening and narrowing, the
off-chain index of grants, and EIP-712 signed requests submitted by a relayer."""

from __future__ import annotations

import json

import pytest

from medledger import consent, participants, records
from medledger.chain import events as ev
from medledger.errors import AccessDenied, InvalidRequest

from .helpers import DAY, A, C, P, advance_time, eth_balance, observation


def permitted(client, patient, who, access, category, purpose) -> bool:
    return client.contract.is_permitted(patient, who, access, category, purpose)


def test_grant_and_revoke_directly(client, patient, researcher, lab):
    assert consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    assert permitted(client, patient.address, researcher.address, A.READ, C.OBSERVATIONS, P.RESEARCH)
    assert json.loads(records.read_record(client, researcher, lab.record_id, purpose=P.RESEARCH).data) == observation()
    granted = client.contract.logs(ev.ConsentGranted, patient=patient.address, grantee=researcher.address)
    assert granted[-1].by == patient.address and granted[-1].delegation == 0
    assert granted[-1].key_envelope != b"\0" * 32
    held = consent.consent_of(client, patient.address, researcher.address, A.READ)
    assert held.keys_released and held.delegation == 0 and held.updated_at == client.now()

    assert consent.revoke(client, patient, researcher.address, A.READ)
    assert not permitted(client, patient.address, researcher.address, A.READ, C.OBSERVATIONS, P.RESEARCH)
    tombstone = consent.consent_of(client, patient.address, researcher.address, A.READ)
    assert tombstone.expiry == 0 and not tombstone.exists and not tombstone.categories
    assert tombstone.updated_at >= held.updated_at and not tombstone.keys_released
    revoked = client.contract.logs(ev.ConsentRevoked, patient=patient.address, grantee=researcher.address)
    assert len(revoked) == 1 and revoked[0].by == patient.address
    with pytest.raises(AccessDenied, match="holds no read consent"):
        records.read_record(client, researcher, lab.record_id, purpose=P.RESEARCH)
    # revoking again changes nothing
    assert consent.revoke(client, patient, researcher.address, A.READ) is False


def test_write_grant_carries_no_key_envelope(client, patient, clinician):
    consent.grant(client, patient, clinician.address, A.WRITE, [C.OBSERVATIONS], [P.DIRECT_CARE])
    event = client.contract.logs(ev.ConsentGranted, patient=patient.address, grantee=clinician.address)[-1]
    assert event.key_envelope == b"\0" * 32
    assert event.access == A.WRITE


def test_widen_and_narrow(client, patient, researcher):
    consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    assert consent.grant(
        client, patient, researcher.address, A.READ, [C.OBSERVATIONS, C.GENOMICS], [P.RESEARCH, P.COMMERCIAL]
    )
    g = consent.consent_of(client, patient.address, researcher.address, A.READ)
    assert g.categories == {C.OBSERVATIONS, C.GENOMICS}
    assert g.purposes == {P.RESEARCH, P.COMMERCIAL}
    assert permitted(client, patient.address, researcher.address, A.READ, C.GENOMICS, P.COMMERCIAL)

    assert consent.grant(client, patient, researcher.address, A.READ, [C.GENOMICS], [P.RESEARCH])
    g = consent.consent_of(client, patient.address, researcher.address, A.READ)
    assert g.categories == {C.GENOMICS} and g.purposes == {P.RESEARCH}
    assert not permitted(client, patient.address, researcher.address, A.READ, C.OBSERVATIONS, P.RESEARCH)
    assert not permitted(client, patient.address, researcher.address, A.READ, C.GENOMICS, P.COMMERCIAL)
    # unchanged terms: nothing happens
    assert consent.grant(client, patient, researcher.address, A.READ, [C.GENOMICS], [P.RESEARCH]) is False


def test_grants_held_and_given_follow_chain_state(client, patient, delegate, researcher, app, clinician):
    now = client.now()
    consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    consent.grant(client, delegate, researcher.address, A.READ, [C.GENOMICS], [P.RESEARCH], expiry=now + 30 * DAY)
    consent.grant(client, patient, app.address, A.READ, [C.DEVICE_DATA], [P.COMMERCIAL], expiry=now + 2 * DAY)
    consent.grant(client, patient, clinician.address, A.WRITE, [C.OBSERVATIONS], [P.DIRECT_CARE])
    consent.grant(client, patient, clinician.address, A.READ, [C.OBSERVATIONS], [P.DIRECT_CARE])

    held = consent.grants_held(client, researcher.address)
    assert {(g.patient, g.access) for g in held} == {(patient.address, A.READ), (delegate.address, A.READ)}
    for g in held:
        assert g == consent.consent_of(client, g.patient, g.grantee, g.access)  # confirmed against chain
    given = consent.grants_given(client, patient.address)
    assert {(g.grantee, g.access) for g in given} == {
        (researcher.address, A.READ),
        (app.address, A.READ),
        (clinician.address, A.WRITE),
        (clinician.address, A.READ),
    }
    assert [g.to_json() for g in given]

    # narrowing is reflected (current terms, not the first event)
    consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH, P.DIRECT_CARE])
    mine = [g for g in consent.grants_held(client, researcher.address) if g.patient == patient.address]
    assert mine[0].purposes == {P.RESEARCH, P.DIRECT_CARE}

    # revoked and expired grants drop out
    consent.revoke(client, patient, clinician.address, A.READ)
    advance_time(client, 3 * DAY)
    given = consent.grants_given(client, patient.address)
    assert {(g.grantee, g.access) for g in given} == {(researcher.address, A.READ), (clinician.address, A.WRITE)}
    everything = consent.grants_given(client, patient.address, live_only=False)
    assert (app.address, A.READ) in {(g.grantee, g.access) for g in everything}  # expired but still on record
    assert (clinician.address, A.READ) not in {(g.grantee, g.access) for g in everything}  # revoked: gone
    assert all(g.live(client.now()) for g in given)


def test_signed_grant_submitted_by_relayer(client, patient, researcher, relayer, lab):
    request = consent.sign_grant(
        client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH], expiry=client.now() + 90 * DAY
    )
    assert consent.recover_signer(request) == patient.address
    patient_balance = eth_balance(client, patient.address)
    relayer_balance = eth_balance(client, relayer.address)
    nonce = client.contract.nonces(patient.address)
    assert request["message"]["nonce"] == str(nonce) and request["message"]["issuedAt"] == str(client.now())

    assert consent.submit(client, relayer, request)
    assert eth_balance(client, patient.address) == patient_balance
    assert eth_balance(client, relayer.address) < relayer_balance
    assert client.contract.nonces(patient.address) == nonce  # a request's nonce is not consumed by its use
    state = consent.consent_of(client, patient.address, researcher.address, A.READ)
    assert state.updated_at == int(request["message"]["issuedAt"]) and state.keys_released
    event = client.contract.logs(ev.ConsentGranted, patient=patient.address, grantee=researcher.address)[-1]
    assert event.by == patient.address
    held = consent.grants_held(client, researcher.address)
    assert len(held) == 1 and held[0].purposes == {P.RESEARCH}
    read = records.read_record(client, researcher, lab.record_id, purpose=P.RESEARCH)
    assert json.loads(read.data) == observation()


def test_signed_request_through_a_file(client, patient, researcher, relayer, tmp_path):
    request = consent.sign_grant(client, patient, researcher.address, A.READ, [C.GENOMICS], [P.RESEARCH])
    path = tmp_path / "grant.json"
    consent.write_request(request, path)
    assert consent.submit(client, relayer, consent.read_request(path))
    assert consent.consent_of(client, patient.address, researcher.address, A.READ).categories == {C.GENOMICS}


def test_replayed_signed_request_is_refused_as_superseded(client, patient, researcher, relayer):
    request = consent.sign_grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    consent.submit(client, relayer, request)
    blocks = client.chain.block_number()
    with pytest.raises(AccessDenied, match="not newer than the last decision") as err:
        consent.submit(client, relayer, request)
    assert "already used" in str(err.value)
    assert err.value.error_name == "ConsentRequestSuperseded"
    assert client.chain.block_number() == blocks  # refused before sending


def test_an_older_signed_request_never_undoes_a_newer_direct_decision(client, patient, researcher, relayer):
    consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    advance_time(client, 1)
    held_back = consent.sign_revoke(client, patient, researcher.address, A.READ)  # a relayer keeps it
    advance_time(client, 1)
    consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS, C.GENOMICS], [P.RESEARCH])
    with pytest.raises(AccessDenied) as err:
        consent.submit(client, relayer, held_back)
    assert err.value.error_name == "ConsentRequestSuperseded"
    assert consent.consent_of(client, patient.address, researcher.address, A.READ).categories == {
        C.OBSERVATIONS,
        C.GENOMICS,
    }


def test_a_request_is_signed_only_after_the_last_decision(client, patient, researcher):
    """issuedAt is the latest block's time and must be newer than the consent's last decision: in the
    second of a direct grant there is no valid time to sign at (the chain would refuse it either way)."""
    consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    with pytest.raises(InvalidRequest, match="must be newer than that decision"):
        consent.sign_revoke(client, patient, researcher.address, A.READ)
    advance_time(client, 1)
    assert consent.sign_revoke(client, patient, researcher.address, A.READ)["message"]["issuedAt"] == str(client.now())


def test_invalidating_signed_requests_voids_every_outstanding_one(client, patient, researcher, app, relayer):
    first = consent.sign_grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    second = consent.sign_grant(client, patient, app.address, A.READ, [C.DEVICE_DATA], [P.COMMERCIAL])
    nonce = client.contract.nonces(patient.address)
    assert consent.invalidate_signed_requests(client, patient) == nonce + 1
    assert consent.invalidate_signed_requests(client, patient) == nonce + 2  # a cancellation, every time
    events = client.contract.logs(ev.SignedRequestsInvalidated, patient=patient.address)
    assert [(e.new_nonce, e.by) for e in events] == [(nonce + 1, patient.address), (nonce + 2, patient.address)]
    for request in (first, second):
        with pytest.raises(AccessDenied, match="invalidated its outstanding signed requests") as err:
            consent.submit(client, relayer, request)
        assert err.value.error_name == "InvalidAccountNonce"
    assert not consent.consent_of(client, patient.address, researcher.address, A.READ).exists
    # a request signed afterwards carries the new nonce and works
    again = consent.sign_grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    assert consent.submit(client, relayer, again)


def test_only_the_patient_or_a_delegate_invalidates(client, patient, delegate, stranger):
    with pytest.raises(AccessDenied, match="may not manage the consents"):
        consent.invalidate_signed_requests(client, stranger, patient=patient.address)
    consent.appoint_delegate(client, patient, delegate.address, [C.OBSERVATIONS], client.now() + DAY)
    nonce = client.contract.nonces(patient.address)
    assert consent.invalidate_signed_requests(client, delegate, patient=patient.address) == nonce + 1


@pytest.mark.parametrize("field", ["chainId", "verifyingContract"])
def test_request_for_another_chain_or_contract_is_refused_before_sending(client, patient, researcher, relayer, field):
    request = consent.sign_grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    if field == "chainId":
        request["domain"]["chainId"] = 1
    else:
        request["domain"]["verifyingContract"] = "0x" + "11" * 20
    balance = eth_balance(client, relayer.address)
    blocks = client.chain.block_number()
    with pytest.raises(AccessDenied, match="was signed for chain"):
        consent.submit(client, relayer, request)
    assert client.chain.block_number() == blocks
    assert eth_balance(client, relayer.address) == balance
    assert consent.consent_of(client, patient.address, researcher.address, A.READ).expiry == 0


def test_altered_signed_request_is_refused(client, patient, researcher, relayer):
    request = consent.sign_grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    request["message"]["purposes"] = str(int(request["message"]["purposes"]) | 1 << P.COMMERCIAL)
    with pytest.raises(AccessDenied, match=r"not patient .* signature"):
        consent.submit(client, relayer, request)


def test_signed_revoke_submitted_by_relayer(client, patient, researcher, relayer):
    consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    advance_time(client, 1)
    request = consent.sign_revoke(client, patient, researcher.address, A.READ)
    assert consent.recover_signer(request) == patient.address
    balance = eth_balance(client, patient.address)
    assert consent.submit(client, relayer, request)
    assert eth_balance(client, patient.address) == balance
    assert consent.consent_of(client, patient.address, researcher.address, A.READ).expiry == 0
    assert consent.grants_held(client, researcher.address) == []
    assert client.contract.logs(ev.ConsentRevoked, grantee=researcher.address)[-1].by == patient.address


def test_a_refused_read_grant_leaves_no_key_envelope_pinned(client, patient, researcher, registrar, store):
    """A read grant the chain refuses (here: the grantee is suspended) sends nothing, and the key
    envelope sealed for it is not left pinned on the IPFS node either."""
    participants.suspend(client, registrar, researcher.address)
    pins = set(store.pins())
    with pytest.raises(AccessDenied):
        consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    assert set(store.pins()) == pins
    assert not consent.consent_of(client, patient.address, researcher.address, A.READ).exists
