"""Batches of readings (Merkle roots on chain) and the audit trail views."""

from __future__ import annotations

import csv
import io
import json

import pytest

from medledger import audit, consent, crypto, records
from medledger.chain import events as ev
from medledger.chain import utc
from medledger.errors import RecordErased
from medledger.keyring import Keyring
from medledger.storage import cid_to_bytes
from medledger.times import iso

from .helpers import DAY, A, C, P, advance_time, obs_bytes


def readings(n: int, start: int = 1_767_000_000) -> list[dict]:
    return [{"t": start + 300 * i, "heart_rate": 60 + (i * 7) % 40} for i in range(n)]


def batch_record_key(client, reader, root: bytes, cid: str, patient: str) -> bytes:
    keys = Keyring(client).secrets(reader, patient, [C.DEVICE_DATA])
    header, _rest = crypto.parse_record_header(io.BytesIO(client.store.cat(cid)), expected_record_id=root)
    return crypto.unseal_record_key(header, keys, category=C.DEVICE_DATA)


@pytest.mark.parametrize("n", [1, 2, 17, 500])
def test_anchor_and_read_batches(client, patient, n):
    data = readings(n)
    batch = records.anchor_batch(client, patient, patient.address, data)
    assert len(batch.reading_ids) == len(batch.fingerprints) == len(batch.proofs) == n
    info = client.contract.record(patient.address, batch.root)
    assert info.patient == patient.address and info.is_batch is True and info.leaf_count == n
    assert info.category == C.DEVICE_DATA and info.key_epoch == 1 and info.author == patient.address
    assert info.fingerprint == b"\0" * 32 and info.cid == cid_to_bytes(batch.cid)
    event = client.contract.logs(ev.BatchAnchored, root=batch.root)[0]
    assert event.leaf_count == n and event.author == patient.address

    back = records.read_batch(client, patient, batch.root)
    assert [r["data"] for r in back] == data
    assert [r["id"] for r in back] == ["0x" + rid.hex() for rid in batch.reading_ids]
    assert [r["fingerprint"] for r in back] == ["0x" + fp.hex() for fp in batch.fingerprints]

    for i in sorted({0, n // 2, n - 1, min(n - 1, 16)}):
        assert records.verify_reading_on_chain(
            client, batch.root, batch.reading_ids[i], batch.fingerprints[i], batch.proofs[i]
        )

    # an altered reading: its fingerprint (under the batch key) no longer proves inclusion
    i = n - 1
    key = batch_record_key(client, patient, batch.root, batch.cid, patient.address)
    altered = dict(data[i], heart_rate=data[i]["heart_rate"] + 1)
    encoded = json.dumps(altered, sort_keys=True, separators=(",", ":")).encode()
    honest = json.dumps(data[i], sort_keys=True, separators=(",", ":")).encode()
    assert crypto.leaf_fingerprint(key, batch.reading_ids[i], honest) == batch.fingerprints[i]
    forged = crypto.leaf_fingerprint(key, batch.reading_ids[i], encoded)
    assert not records.verify_reading_on_chain(client, batch.root, batch.reading_ids[i], forged, batch.proofs[i])
    if n > 1:
        # someone else's proof, or another reading's id, fails as well
        assert not records.verify_reading_on_chain(
            client, batch.root, batch.reading_ids[0], batch.fingerprints[0], batch.proofs[n - 1]
        )
        assert not records.verify_reading_on_chain(
            client, batch.root, batch.reading_ids[1], batch.fingerprints[0], batch.proofs[0]
        )


def test_granted_reader_reads_a_batch_and_is_audited(client, patient, app):
    batch = records.anchor_batch(client, patient, patient.address, readings(5))
    consent.grant(client, patient, app.address, A.READ, [C.DEVICE_DATA], [P.COMMERCIAL])
    back = records.read_batch(client, app, batch.root, purpose=P.COMMERCIAL)
    assert [r["data"] for r in back] == readings(5)
    events = client.contract.logs(ev.RecordAccessed, record_id=batch.root)
    assert len(events) == 1 and events[0].purpose == P.COMMERCIAL


def test_erased_batch_no_longer_verifies(client, patient):
    batch = records.anchor_batch(client, patient, patient.address, readings(3))
    assert records.erase_record(client, patient, batch.root)
    assert not records.verify_reading_on_chain(
        client, batch.root, batch.reading_ids[0], batch.fingerprints[0], batch.proofs[0]
    )
    assert not client.store.is_pinned(batch.cid)
    with pytest.raises(RecordErased):
        records.read_batch(client, patient, batch.root)


# --- audit ---------------------------------------------------------------------------------------
def test_trail_holds_every_change_in_order_and_exports(client, patient, clinician, researcher, emergency_clinician):
    consent.grant(client, patient, clinician.address, A.WRITE, [C.OBSERVATIONS], [P.DIRECT_CARE])
    consent.grant(
        client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH], expiry=client.now() + 30 * DAY
    )
    lab = records.write_record(client, clinician, patient.address, obs_bytes())
    records.read_record(client, researcher, lab.record_id, purpose=P.RESEARCH)
    records.read_record(client, patient, lab.record_id)  # the patient's own read is not audited
    consent.open_emergency(client, emergency_clinician, patient.address, 3600, b"\x07" * 32)
    keyring = Keyring(client)
    with keyring.envelope_for(patient, patient.address, emergency_clinician.address, [C.OBSERVATIONS]) as pointer:
        client.contract.publish_key_envelope(
            patient.address, emergency_clinician.address, pointer, categories=[C.OBSERVATIONS], sender=patient
        )
    records.read_record(client, emergency_clinician, lab.record_id, purpose=P.EMERGENCY)
    consent.revoke(client, patient, researcher.address, A.READ)
    records.erase_record(client, patient, lab.record_id)

    entries = audit.trail(client, patient.address)
    rid = "0x" + lab.record_id.hex()
    core = [
        (e.event, e.actor)
        for e in entries
        if e.event
        in {
            "ConsentGranted",
            "RecordRegistered",
            "RecordAccessed",
            "EmergencyAccessOpened",
            "ConsentRevoked",
            "RecordErased",
        }
    ]
    assert core == [
        ("ConsentGranted", patient.address),
        ("ConsentGranted", patient.address),
        ("RecordRegistered", clinician.address),
        ("RecordAccessed", researcher.address),
        ("EmergencyAccessOpened", emergency_clinician.address),
        ("RecordAccessed", emergency_clinician.address),
        ("ConsentRevoked", patient.address),
        ("RecordErased", patient.address),
    ]
    assert [(e.block, e.time) for e in entries] == sorted((e.block, e.time) for e in entries)
    reads = [e for e in entries if e.event == "RecordAccessed"]
    assert [(e.purpose, e.emergency, e.record) for e in reads] == [("research", False, rid), ("emergency", True, rid)]
    assert researcher.address in next(e.detail for e in entries if e.event == "ConsentRevoked")
    grant_detail = [e.detail for e in entries if e.event == "ConsentGranted"][1]
    assert "research" in grant_detail and "observations & labs" in grant_detail
    assert utc(client.now() + 30 * DAY)[:10] in grant_detail
    assert [e.event for e in entries if e.emergency] == ["EmergencyAccessOpened", "RecordAccessed"]
    assert next(e for e in entries if e.event == "RecordErased").record == rid

    assert [e.event for e in audit.accesses(client, patient.address)] == [
        "RecordAccessed",
        "EmergencyAccessOpened",
        "RecordAccessed",
    ]

    as_json = json.loads(audit.to_json(entries))
    assert as_json == [e.to_json() for e in entries]
    assert [row["event"] for row in as_json] == [e.event for e in entries]
    rows = list(csv.DictReader(io.StringIO(audit.to_csv(entries))))
    assert len(rows) == len(entries)
    for row, e in zip(rows, entries, strict=True):
        assert row["event"] == e.event and row["actor"] == e.actor
        assert row["block"] == str(e.block) and row["time_utc"] == iso(e.time) and row["time"] == str(e.time)
        assert row["tx_hash"] == e.tx_hash and e.tx_hash.startswith("0x") and len(e.tx_hash) == 66
        assert row["emergency"] == str(e.emergency) and row["detail"] == e.detail
        assert row["purpose"] == (e.purpose or "") and row["record"] == (e.record or "")


def test_trail_explains_signed_requests_that_changed_nothing_and_cancellations(client, patient, researcher, relayer):
    """Issue 7 item 5: a signed request used without a change, and a cancellation of outstanding
    requests, each leave an entry."""
    terms = ([C.OBSERVATIONS], [P.RESEARCH])
    consent.submit(client, relayer, consent.sign_grant(client, patient, researcher.address, A.READ, *terms))
    advance_time(client, 1)
    assert not consent.submit(client, relayer, consent.sign_grant(client, patient, researcher.address, A.READ, *terms))
    consent.invalidate_signed_requests(client, patient)
    entries = audit.trail(client, patient.address)
    assert [(e.event, e.actor) for e in entries] == [
        ("ConsentGranted", patient.address),
        ("SignedConsentConsumed", patient.address),
        ("SignedRequestsInvalidated", patient.address),
    ]
    assert "changed nothing" in entries[1].detail and researcher.address in entries[1].detail
    assert "voided every outstanding signed request" in entries[2].detail


def test_trail_of_another_patient_is_separate(client, patient, delegate, clinician):
    consent.grant(client, delegate, clinician.address, A.WRITE, [C.OBSERVATIONS], [P.DIRECT_CARE])
    assert all(e.actor != delegate.address for e in audit.trail(client, patient.address))
    mine = audit.trail(client, delegate.address)
    assert [e.event for e in mine] == ["ConsentGranted"]


def test_python_merkle_check_agrees_with_the_contract(client, patient):
    """Issue 12 item 10: the Python check and verifyBatchInclusion accept and refuse the same
    things, an inner node presented as a reading (the pair of its children) included."""
    from eth_utils import keccak

    batch = records.anchor_batch(client, patient, patient.address, readings(5))
    leaves = [crypto.batch_leaf(rid, fp) for rid, fp in zip(batch.reading_ids, batch.fingerprints, strict=False)]
    left, right = sorted(leaves[:2])
    upper = batch.proofs[0][1:]
    cases = [
        (rid, fp, proof) for rid, fp, proof in zip(batch.reading_ids, batch.fingerprints, batch.proofs, strict=False)
    ]
    cases += [(left, right, upper), (keccak(left + right), keccak(left + right), upper)]
    cases += [(batch.reading_ids[0], batch.fingerprints[1], batch.proofs[0])]
    for rid, fp, proof in cases:
        on_chain = records.verify_reading_on_chain(client, batch.root, rid, fp, proof)
        assert crypto.verify_merkle_proof(batch.root, rid, fp, proof) is on_chain
    assert [records.verify_reading_on_chain(client, batch.root, *c) for c in cases] == [True] * 5 + [False] * 3
