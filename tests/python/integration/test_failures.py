"""Failures with clear, specific errors: services down, invalid input, consent that does not hold,
erased records. Each also checks that nothing was lost and nothing was half-written."""

from __future__ import annotations

import json
import re

import pytest

from medledger import consent, participants, records
from medledger.chain import Chain, utc
from medledger.client import Client
from medledger.errors import (
    AccessDenied,
    ContractRevert,
    RecordErased,
    RecordFormatError,
    ServiceUnavailable,
    UnknownRecord,
)
from medledger.node import free_port
from medledger.storage import IpfsStore

from .helpers import DAY, A, C, P, advance_time, journal_entries, obs_bytes, observation, registered_ids

UTC_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC")


# --- services down -------------------------------------------------------------------------------
def test_ipfs_down_write_fails_cleanly(client, settings, patient):
    port = free_port()
    down = Client.connect(settings, store=IpfsStore(f"/ip4/127.0.0.1/tcp/{port}/http", timeout=3))
    before = registered_ids(client)
    with pytest.raises(ServiceUnavailable) as err:
        records.write_record(down, patient, patient.address, obs_bytes())
    message = str(err.value)
    assert f"127.0.0.1:{port}" in message
    assert "medledger node up" in message
    assert registered_ids(client) == before
    assert journal_entries(client) == []


def test_ipfs_down_read_fails_cleanly(client, settings, patient, lab, tmp_path):
    port = free_port()
    down = Client.connect(settings, store=IpfsStore(f"http://127.0.0.1:{port}", timeout=3))
    out = tmp_path / "lab.json"
    with pytest.raises(ServiceUnavailable, match=f"127.0.0.1:{port}"):
        records.read_record(down, patient, lab.record_id, out=out)
    assert not out.exists()
    # the record itself is intact
    assert json.loads(records.read_record(client, patient, lab.record_id).data) == observation()


def test_chain_down_connect_names_the_url(settings):
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServiceUnavailable) as err:
        Client.connect(settings.with_overrides(rpc_url=url, rpc_timeout=3))
    assert url in str(err.value)
    assert "medledger node up" in str(err.value)


def test_chain_stopping_mid_session_fails_before_anything_is_stored(client, settings, patient):
    url = f"http://127.0.0.1:{free_port()}"
    chain = Chain(url, client.chain.chain_id, timeout=3)
    chain._chain_id = client.chain.chain_id  # it answered when the session began
    gone = Client(settings, chain, client.deployment, client.store)
    pins = client.store.pins()
    with pytest.raises(ServiceUnavailable, match=re.escape(url)):
        records.write_record(gone, patient, patient.address, obs_bytes())
    assert client.store.pins() == pins
    assert journal_entries(client) == []


# --- invalid input -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b'{"resourceType": "Observation", "status": "final",', "not valid JSON"),
        (json.dumps({"resourceType": "Observation", "status": "final"}).encode(), "invalid FHIR"),
        (json.dumps({**observation(), "valueQuantity": {"value": "high"}}).encode(), "valueQuantity.value"),
        (json.dumps({**observation(), "bogusField": 1}).encode(), "bogusField"),
        (json.dumps({"resourceType": "NotAThing"}).encode(), "not a FHIR R4B resource type"),
        (json.dumps({"status": "final"}).encode(), "no 'resourceType'"),
        (json.dumps(["not", "a", "resource"]).encode(), "JSON object"),
    ],
    ids=["bad-json", "missing-code", "bad-decimal", "unknown-field", "unknown-type", "no-resource-type", "array"],
)
def test_invalid_fhir_is_refused_before_anything_is_stored(client, patient, raw, says):
    pins = client.store.pins()
    before = registered_ids(client)
    blocks = client.chain.w3.eth.block_number
    with pytest.raises(RecordFormatError, match=says):
        records.write_record(client, patient, patient.address, raw)
    assert client.store.pins() == pins
    assert registered_ids(client) == before
    assert client.chain.w3.eth.block_number == blocks
    assert journal_entries(client) == []


def test_attachment_without_category_is_refused(client, patient):
    pins = client.store.pins()
    with pytest.raises(RecordFormatError, match="explicit category"):
        records.write_record(client, patient, patient.address, b"%PDF-1.7 ...", content_type="application/pdf")
    assert client.store.pins() == pins


def test_amending_an_erased_or_superseded_record_is_refused_and_rolled_back(client, patient, lab, gp_writes):
    amended = records.amend_record(client, gp_writes, lab.record_id, obs_bytes(5.9))
    pins = client.store.pins()
    before = registered_ids(client)
    with pytest.raises(ContractRevert, match="already superseded") as err:
        records.amend_record(client, gp_writes, lab.record_id, obs_bytes(5.8))
    assert amended.record_id.hex() in str(err.value)
    assert client.store.pins() == pins and registered_ids(client) == before
    records.erase_record(client, patient, amended.record_id)
    pins = client.store.pins()
    with pytest.raises(RecordErased):
        records.amend_record(client, patient, amended.record_id, obs_bytes(5.7))
    assert client.store.pins() == pins and registered_ids(client) == before
    assert journal_entries(client) == []


def test_writing_for_an_unregistered_patient(client, clinician, stranger):
    pins = client.store.pins()
    with pytest.raises(ContractRevert, match=f"{stranger.address} is not a registered patient") as refused:
        records.write_record(client, clinician, stranger.address, obs_bytes())
    assert refused.value.error_name == "RegistryPatientNotRegistered"
    assert client.store.pins() == pins


def test_unknown_record(client, patient):
    with pytest.raises(UnknownRecord):
        records.read_record(client, patient, b"\x42" * 32)


# --- consent that does not hold --------------------------------------------------------------------
def test_expired_consent_names_the_expiry_time(client, patient, researcher, lab):
    expiry = client.now() + DAY
    consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH], expiry=expiry)
    records.read_record(client, researcher, lab.record_id, purpose=P.RESEARCH)
    advance_time(client, 2 * DAY)
    with pytest.raises(AccessDenied) as err:
        records.read_record(client, researcher, lab.record_id, purpose=P.RESEARCH)
    message = str(err.value)
    assert "expired at" in message
    assert utc(expiry) in message
    assert UTC_TIME.search(message)
    assert err.value.error_name == "ConsentExpired"
    assert len(client.logs("RecordAccessed", recordId=lab.record_id)) == 1  # the refused read left no trace


def test_expired_write_consent_refuses_the_write(client, patient, clinician):
    expiry = client.now() + 3600
    consent.grant(client, patient, clinician.address, A.WRITE, [C.OBSERVATIONS], [P.DIRECT_CARE], expiry=expiry)
    advance_time(client, 7200)
    pins = client.store.pins()
    with pytest.raises(AccessDenied, match=re.escape(f"expired at {utc(expiry)}")):
        records.write_record(client, clinician, patient.address, obs_bytes())
    assert client.store.pins() == pins


def test_not_yet_valid_consent_names_the_start_time(client, patient, researcher, lab):
    start = client.now() + 10 * DAY
    consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH], start=start)
    with pytest.raises(AccessDenied) as err:
        records.read_record(client, researcher, lab.record_id, purpose=P.RESEARCH)
    assert "starts only at" in str(err.value)
    assert utc(start) in str(err.value)
    advance_time(client, 11 * DAY)
    assert json.loads(records.read_record(client, researcher, lab.record_id, purpose=P.RESEARCH).data) == observation()


def test_wrong_purpose_and_category_are_named(client, patient, researcher, lab):
    consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    with pytest.raises(AccessDenied, match="does not cover the purpose commercial"):
        records.read_record(client, researcher, lab.record_id, purpose=P.COMMERCIAL)
    consent.grant(client, patient, researcher.address, A.READ, [C.GENOMICS], [P.RESEARCH])
    with pytest.raises(AccessDenied, match="does not cover observations & labs"):
        records.read_record(client, researcher, lab.record_id, purpose=P.RESEARCH)


def test_no_consent_at_all(client, patient, app, lab):
    with pytest.raises(AccessDenied, match="holds no read consent"):
        records.read_record(client, app, lab.record_id, purpose=P.COMMERCIAL)


def test_revoked_grantee_is_refused(client, patient, researcher, lab):
    consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    records.read_record(client, researcher, lab.record_id, purpose=P.RESEARCH)
    consent.revoke(client, patient, researcher.address, A.READ)
    with pytest.raises(AccessDenied) as err:
        records.read_record(client, researcher, lab.record_id, purpose=P.RESEARCH)
    assert researcher.address in str(err.value)


def test_suspended_participant_is_refused_until_reinstated(client, patient, registrar, researcher, lab):
    consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    assert participants.suspend(client, registrar, researcher.address, b"\x01" * 32)
    assert participants.participant(client, researcher.address).suspended
    with pytest.raises(AccessDenied, match="suspended") as err:
        records.read_record(client, researcher, lab.record_id, purpose=P.RESEARCH)
    assert researcher.address in str(err.value)
    assert participants.reinstate(client, registrar, researcher.address)
    read = records.read_record(client, researcher, lab.record_id, purpose=P.RESEARCH)
    assert json.loads(read.data) == observation()


def test_suspended_author_cannot_write(client, patient, registrar, gp_writes):
    participants.suspend(client, registrar, gp_writes.address)
    pins = client.store.pins()
    with pytest.raises(AccessDenied, match="suspended"):
        records.write_record(client, gp_writes, patient.address, obs_bytes())
    assert client.store.pins() == pins


def test_only_registrars_suspend(client, researcher, clinician):
    with pytest.raises(AccessDenied, match="registrars only"):
        participants.suspend(client, clinician, researcher.address)


# --- erasure -------------------------------------------------------------------------------------
def test_erased_record_is_refused_and_unpinned(client, patient, lab, clinician):
    assert client.store.is_pinned(lab.cid)
    assert records.erase_record(client, patient, lab.record_id)
    assert not client.store.is_pinned(lab.cid)
    assert not records.verify_fingerprint(client, lab.record_id, lab.fingerprint)
    for reader in (clinician, patient):
        with pytest.raises(RecordErased, match="erased") as err:
            records.read_record(client, reader, lab.record_id)
        assert lab.record_id.hex() in str(err.value)
    assert client.logs("RecordAccessed", recordId=lab.record_id) == []
    # erasing twice changes nothing
    assert records.erase_record(client, patient, lab.record_id) is False


def test_only_the_patient_erases(client, patient, lab, clinician):
    with pytest.raises(AccessDenied, match="Only patient"):
        records.erase_record(client, clinician, lab.record_id)
    assert client.store.is_pinned(lab.cid)
