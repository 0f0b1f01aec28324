"""Records against the real chain and IPFS node: write, read back, amend, list, fingerprints, audit."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import pytest

from medledger import consent, records
from medledger.chain import MedledgerContract, Tx
from medledger.chain import events as ev
from medledger.errors import AmbiguousRecord, ContractRevert, TamperingDetected, UnknownRecord
from medledger.storage import cid_to_bytes

from .helpers import A, C, P, accessed, block_number, obs_bytes, observation

PDF = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"


def test_patient_writes_fhir_and_reads_it_back(client, patient):
    written = records.write_record(client, patient, patient.address, obs_bytes(5.4))
    assert written.category == C.OBSERVATIONS
    assert written.content_type == "application/fhir+json"
    assert client.store.is_pinned(written.cid)
    read = records.read_record(client, patient, written.record_id)
    assert json.loads(read.data) == observation(5.4)
    assert read.author == patient.address
    assert read.patient == patient.address
    assert read.category == C.OBSERVATIONS
    assert read.content_type == "application/fhir+json"
    assert read.emergency is False
    assert read.size == len(read.data)


def test_clinician_with_write_consent_writes_and_reads(client, patient, lab, clinician):
    read = records.read_record(client, clinician, lab.record_id)
    assert json.loads(read.data) == observation()
    assert read.author == clinician.address
    info = client.contract.record(patient.address, lab.record_id)
    assert info.patient == patient.address and info.category == C.OBSERVATIONS
    assert info.author == clinician.address and info.key_epoch == 1 and info.fingerprint == lab.fingerprint


def test_attachment_round_trip_with_content_type_and_file_output(client, patient, tmp_path):
    written = records.write_record(
        client, patient, patient.address, PDF, category=C.CLINICAL_DOCUMENTS, content_type="application/pdf"
    )
    assert written.category == C.CLINICAL_DOCUMENTS and written.content_type == "application/pdf"
    assert written.size == len(PDF)
    out = tmp_path / "letter.pdf"
    read = records.read_record(client, patient, written.record_id, out=out)
    assert read.path == out and read.data is None
    assert out.read_bytes() == PDF
    assert read.content_type == "application/pdf"
    assert read.category == C.CLINICAL_DOCUMENTS
    assert oct(out.stat().st_mode & 0o777) == oct(0o600)
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".medledger-")]


def test_attachment_from_a_file_path(client, patient, tmp_path):
    src = tmp_path / "scan.pdf"
    src.write_bytes(PDF)
    written = records.write_record(client, patient, patient.address, src, category=C.IMAGING)
    read = records.read_record(client, patient, written.record_id)
    assert read.data == PDF
    assert read.category == C.IMAGING


def test_multi_chunk_record_of_one_megabyte(client, patient, tmp_path):
    blob = os.urandom(1_000_000) + b"tail"
    seen: list[int] = []
    written = records.write_record(
        client,
        patient,
        patient.address,
        blob,
        category=C.IMAGING,
        content_type="application/dicom",
        progress=seen.append,
    )
    assert written.size == len(blob)
    assert sum(seen) == len(blob)
    out = tmp_path / "image.dcm"
    read = records.read_record(client, patient, written.record_id, out=out)
    assert read.size == len(blob)
    assert out.read_bytes() == blob
    # the ciphertext is larger than one IPFS chunk, so it is a multi-block DAG
    assert len(client.store.cat(written.cid)) > 2 * 256 * 1024


def test_amend_links_versions_and_both_stay_readable(client, patient, lab, clinician):
    amended = records.amend_record(client, clinician, lab.record_id, obs_bytes(5.9))
    old = client.contract.record(patient.address, lab.record_id)
    new = client.contract.record(patient.address, amended.record_id)
    assert old.superseded_by == amended.record_id  # nextVersion
    assert new.previous == lab.record_id  # previousVersion
    assert old.previous is None and new.superseded_by is None
    assert amended.category == C.OBSERVATIONS
    assert json.loads(records.read_record(client, clinician, lab.record_id).data)["valueQuantity"]["value"] == 6.1
    assert json.loads(records.read_record(client, patient, amended.record_id).data)["valueQuantity"]["value"] == 5.9
    assert client.contract.logs(ev.RecordAmended, previous_id=lab.record_id)[0].record_id == amended.record_id


def test_list_records_shows_versions_batches_and_erasure(client, patient, lab, clinician):
    amended = records.amend_record(client, clinician, lab.record_id, obs_bytes(5.9))
    other = records.write_record(client, patient, patient.address, PDF, category=C.CLINICAL_DOCUMENTS)
    batch = records.anchor_batch(client, patient, patient.address, [{"hr": 61}, {"hr": 62}])
    records.erase_record(client, patient, other.record_id)
    listed = {r.record_id: r for r in records.list_records(client, patient.address)}
    assert set(listed) == {lab.record_id, amended.record_id, other.record_id, batch.root}
    assert listed[lab.record_id].superseded_by == amended.record_id
    assert listed[lab.record_id].previous is None
    assert listed[amended.record_id].previous == lab.record_id
    assert listed[amended.record_id].superseded_by is None
    assert listed[amended.record_id].author == clinician.address
    assert listed[other.record_id].erased and not listed[lab.record_id].erased
    assert listed[batch.root].is_batch and listed[batch.root].leaf_count == 2
    assert listed[lab.record_id].cid == lab.cid
    kept = {r.record_id for r in records.list_records(client, patient.address, include_erased=False)}
    assert kept == set(listed) - {other.record_id}
    assert json.loads(json.dumps([r.to_json() for r in listed.values()]))


def test_verify_fingerprint(client, patient, delegate, lab):
    assert records.verify_fingerprint(client, lab.record_id, lab.fingerprint)
    assert records.verify_fingerprint(client, lab.record_id, lab.fingerprint, patient=patient.address)
    wrong = bytes([lab.fingerprint[0] ^ 1]) + lab.fingerprint[1:]
    assert not records.verify_fingerprint(client, lab.record_id, wrong)
    with pytest.raises(UnknownRecord):
        records.verify_fingerprint(client, os.urandom(32), lab.fingerprint)
    with pytest.raises(UnknownRecord, match=f"of patient {delegate.address}"):  # ids are per patient
        records.verify_fingerprint(client, lab.record_id, lab.fingerprint, patient=delegate.address)


def test_header_is_rebuilt_from_events_after_amend_and_erase(client, patient, lab, clinician):
    """Every call on a record passes its current header, rebuilt from RecordRegistered, RecordAmended
    and RecordErased; the chain accepts exactly that one, and a header from before a change is refused."""
    before = client.contract.record(patient.address, lab.record_id).current()
    assert client.contract.is_record_header(patient.address, lab.record_id, before)
    amended = records.amend_record(client, clinician, lab.record_id, obs_bytes(5.9))
    after_amend = client.contract.record(patient.address, lab.record_id).current()
    assert after_amend == replace(before, next=amended.record_id)
    assert not client.contract.is_record_header(patient.address, lab.record_id, before)
    new = client.contract.record(patient.address, amended.record_id).current()
    assert (new.previous, new.author, new.fingerprint) == (lab.record_id, clinician.address, amended.fingerprint)

    assert records.erase_record(client, patient, lab.record_id)
    erased = client.contract.record(patient.address, lab.record_id).current()
    assert erased == replace(after_amend, erased=True, fingerprint=b"\0" * 32)
    assert client.contract.is_record_header(patient.address, lab.record_id, erased)
    with pytest.raises(ContractRevert) as err:  # the header from before the erasure is not current
        client.contract.erase_record(patient.address, lab.record_id, after_amend, sender=patient)
    assert err.value.error_name == "RecordHeaderMismatch"
    assert records.erase_record(client, patient, lab.record_id) is False  # erased already: unchanged


def test_a_node_that_leaves_out_an_event_is_caught(client, patient, lab, monkeypatch):
    """The rebuilt header must hash to the chain's commitment: a node that drops the erasure (so
    that an erased record would still look readable) is detected, not believed."""
    records.erase_record(client, patient, lab.record_id)
    real = MedledgerContract.raw_logs

    def without_erasures(self, topics, **kwargs):
        return [e for e in real(self, topics, **kwargs) if not isinstance(e, ev.RecordErased)]

    monkeypatch.setattr(MedledgerContract, "raw_logs", without_erasures)
    with pytest.raises(TamperingDetected, match="do not rebuild its on-chain commitment"):
        records.read_record(client, patient, lab.record_id)


def test_the_same_id_under_another_patient_is_another_record(client, patient, delegate, lab):
    """A stranger copying a record id into its own namespace takes nothing from the patient: the
    patient's record stays hers, and naming the patient reads it; without a name the id is ambiguous."""
    epoch = client.contract.category_key(delegate.address, C.OBSERVATIONS).epoch
    copy = (delegate.address, lab.record_id, C.OBSERVATIONS, P.DIRECT_CARE, epoch, b"\x09" * 32)
    client.contract.register_record(*copy, cid_to_bytes(lab.cid), sender=delegate)
    with pytest.raises(AmbiguousRecord, match="exists under 2 patients"):
        records.read_record(client, patient, lab.record_id)
    read = records.read_record(client, patient, lab.record_id, patient=patient.address)
    assert json.loads(read.data) == observation()
    assert records.verify_fingerprint(client, lab.record_id, lab.fingerprint, patient=patient.address)
    assert not records.verify_fingerprint(client, lab.record_id, lab.fingerprint, patient=delegate.address)


def test_patient_read_sends_no_audit_transaction(client, patient, lab):
    before = block_number(client)
    records.read_record(client, patient, lab.record_id)
    assert block_number(client) == before
    assert accessed(client, lab.record_id) == []


def test_grantee_read_emits_exactly_one_access_event(client, patient, lab, researcher):
    consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    read = records.read_record(client, researcher, lab.record_id, purpose=P.RESEARCH)
    assert json.loads(read.data) == observation()
    events = accessed(client, lab.record_id)
    assert len(events) == 1
    [event] = events
    assert event.accessor == researcher.address
    assert event.patient == patient.address
    assert event.purpose == P.RESEARCH
    assert event.emergency is False


def test_raw_calldata_from_the_facade_records_an_access_like_the_facade(client, patient, lab, researcher):
    """``calldata`` (for callers that sign raw transactions) encodes the same call the facade sends."""
    consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    header = client.contract.record(patient.address, lab.record_id).current()
    tx = Tx("recordAccess", (patient.address, lab.record_id, header.as_abi(), int(P.RESEARCH)))
    data = client.contract.calldata(tx)
    assert data.startswith("0x" + client.contract.bound(tx).selector[2:])
    fields = {"to": client.contract.address, "data": data, "gas": 300_000, "value": 0, "chainId": client.chain.chain_id,
              "gasPrice": int(client.chain.rpc("eth_gasPrice", []), 16) * 2, "nonce": client.chain.nonce(researcher.address)}  # fmt: skip
    raw = "0x" + bytes(researcher.account.sign_transaction(fields).raw_transaction).hex()
    tx_hash = client.chain.rpc("eth_sendRawTransaction", [raw])
    receipt = client.chain.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)  # automine, but not atomic
    assert receipt["status"] == 1
    [event] = accessed(client, lab.record_id)
    assert (event.accessor, event.patient, event.purpose) == (researcher.address, patient.address, P.RESEARCH)
