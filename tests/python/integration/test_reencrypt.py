"""Revocation with full re-encryption: old records move to new keys, out of a revoked grantee's reach."""

from __future__ import annotations

import base64
import io
import json

import pytest

from medledger import codes, consent, crypto, records, workflows
from medledger.errors import AccessDenied, KeyNotFound, ServiceUnavailable
from medledger.keyring import Keyring
from medledger.storage import cid_from_bytes

from .test_rotation_property import everything_held

C, P, A = codes.Category, codes.Purpose, codes.Access


def lab(value: float) -> bytes:
    return json.dumps(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
            "valueQuantity": {"value": value, "unit": "%"},
        }
    ).encode()


def test_revoke_with_reencrypt_closes_old_records_to_the_revoked_grantee(client, patient, researcher, clinician, store):
    consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    consent.grant(client, patient, clinician.address, A.READ, [C.OBSERVATIONS], [P.DIRECT_CARE])
    old = records.write_record(client, patient, patient.address, lab(6.1))
    other = records.write_record(
        client, patient, patient.address, b"%PDF-1.7 scan", category=C.IMAGING, content_type="application/pdf"
    )
    # Before: the researcher's keys open the old ciphertext.
    before = Keyring(client).secrets(researcher, patient.address, [C.OBSERVATIONS])
    assert crypto.open_record_blob(
        io.BytesIO(store.cat(old.cid)),
        before,
        expected_record_id=old.record_id,
        expected_patient=patient.address,
        category=C.OBSERVATIONS,
        expected_fingerprint=old.fingerprint,
    )

    changed, done = workflows.revoke(client, patient, researcher.address, A.READ, reencrypt=True)
    assert changed and [r.previous for r in done] == [old.record_id]

    new_id = client.contract.record(patient.address, old.record_id).superseded_by
    assert new_id is not None, "the old record is superseded by its re-encrypted version"
    assert not store.is_pinned(old.cid)
    # The remaining reader reads the new version; its content is unchanged.
    read = records.read_record(client, clinician, new_id, purpose=P.DIRECT_CARE)
    assert json.loads(read.data)["valueQuantity"]["value"] == 6.1
    # The revoked researcher's keys do not open the new ciphertext, even bypassing the chain.
    new_cid = next(s.cid for s in records.list_records(client, patient.address) if s.record_id == new_id)
    keys = Keyring(client).secrets(researcher, patient.address, [C.OBSERVATIONS])
    with pytest.raises(KeyNotFound):
        crypto.open_record_blob(
            io.BytesIO(store.cat(new_cid)),
            keys,
            expected_record_id=new_id,
            expected_patient=patient.address,
            category=C.OBSERVATIONS,
        )
    # Records of other categories are untouched.
    assert client.contract.record(patient.address, other.record_id).superseded_by is None


def test_delegate_asking_for_reencryption_is_refused_before_anything_is_sent(client, patient, delegate, researcher):
    """Only the patient can re-encrypt (her records are read with her own keys). A delegate who asks
    for it gets the refusal before the revocation is sent or a key rotated: no chain state changes."""
    consent.appoint_delegate(client, patient, delegate.address, [C.OBSERVATIONS], client.now() + 30 * 24 * 3600)
    consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    records.write_record(client, patient, patient.address, lab(6.1))
    blocks = client.chain.block_number()
    nonce = client.chain.nonce(delegate.address)
    keys = [client.contract.category_key(patient.address, c) for c in C]
    before = client.contract.consent(patient.address, researcher.address, A.READ)

    with pytest.raises(AccessDenied, match="Only the patient"):
        workflows.revoke(client, delegate, researcher.address, A.READ, patient=patient.address, reencrypt=True)

    assert client.chain.block_number() == blocks
    assert client.chain.nonce(delegate.address) == nonce
    assert [client.contract.category_key(patient.address, c) for c in C] == keys
    assert client.contract.consent(patient.address, researcher.address, A.READ) == before
    # without re-encryption the same delegate may revoke (within its bounds): the refusal was about that
    assert workflows.revoke(client, delegate, researcher.address, A.READ, patient=patient.address) == (True, [])


def test_reencrypt_covers_every_version_and_every_batch(client, patient, researcher, clinician, store):
    """Issue 12 item 5: version 1 of an amended record stayed pinned under the old key (only the
    latest version was re-encrypted), and the revoked study decrypted it. Now nothing of the
    patient's that stays on our node opens with any key the study ever held, and nothing is lost:
    the latest version is a new version, earlier ones are in a version archive, a batch is anchored
    again (same reading ids), all readable by the remaining reader."""
    consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS, C.DEVICE_DATA], [P.RESEARCH])
    consent.grant(client, patient, clinician.address, A.READ, [C.OBSERVATIONS, C.DEVICE_DATA], [P.DIRECT_CARE])
    v1 = records.write_record(client, patient, patient.address, lab(6.1))
    v2 = records.amend_record(client, patient, v1.record_id, lab(6.2))
    batch = records.anchor_batch(client, patient, patient.address, [{"hr": 60}, {"hr": 61}])

    changed, done = workflows.revoke(client, patient, researcher.address, A.READ, reencrypt=True)
    assert changed and {(r.previous, r.kind) for r in done} == {
        (v2.record_id, "version"),
        (v1.record_id, "archived"),
        (batch.root, "batch"),
    }
    held = everything_held(client, researcher, patient.address)
    for info in client.contract.records_of(patient.address):
        if store.is_pinned(cid_from_bytes(info.cid)):
            with pytest.raises(KeyNotFound):
                crypto.open_record_blob(
                    io.BytesIO(store.cat(cid_from_bytes(info.cid))), {int(info.category): dict(enumerate(held))},
                    expected_record_id=info.record_id, expected_patient=patient.address, category=info.category,
                )  # fmt: skip
    assert not store.is_pinned(v1.cid) and not store.is_pinned(v2.cid) and not store.is_pinned(batch.cid)

    latest = client.contract.record(patient.address, v2.record_id).superseded_by
    assert json.loads(records.read_record(client, clinician, latest).data)["valueQuantity"]["value"] == 6.2
    archive = next(r.current for r in done if r.kind == "archived")
    [kept] = records.read_batch(client, clinician, archive, purpose=P.DIRECT_CARE)
    assert kept["id"] == "0x" + v1.record_id.hex() and kept["data"]["latest"] == "0x" + latest.hex()
    assert json.loads(base64.b64decode(kept["data"]["content_base64"]))["valueQuantity"]["value"] == 6.1
    rebatched = next(r.current for r in done if r.kind == "batch")
    readings = records.read_batch(client, clinician, rebatched, purpose=P.DIRECT_CARE)
    assert [(r["id"], r["data"]) for r in readings] == [
        ("0x" + rid.hex(), data) for rid, data in zip(batch.reading_ids, [{"hr": 60}, {"hr": 61}], strict=True)
    ]
    # a proof handed out for the old root still verifies on chain (the old root stays anchored)
    assert records.verify_reading_on_chain(client, batch.root, batch.reading_ids[0], batch.fingerprints[0],
                                           batch.proofs[0])  # fmt: skip
    # what is current is left alone: running it again does nothing
    assert workflows.reencrypt_records(client, patient, [C.OBSERVATIONS, C.DEVICE_DATA]) == []


def test_a_reencrypting_revoke_cut_short_is_finished_by_running_it_again(client, patient, researcher, monkeypatch):
    """Issue 8 item 4 with --reencrypt: the revocation and rotation land, re-encryption fails (the node
    answers nothing); the same revocation again re-encrypts what is still under the old key."""
    consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    old = records.write_record(client, patient, patient.address, lab(6.1))
    real = records.amend_record

    def node_dies(*args, **kwargs):
        raise ServiceUnavailable("IPFS node", "http://127.0.0.1:1", "stopped answering (test)")

    monkeypatch.setattr(records, "amend_record", node_dies)
    with pytest.raises(ServiceUnavailable):
        workflows.revoke(client, patient, researcher.address, A.READ, reencrypt=True)
    monkeypatch.setattr(records, "amend_record", real)
    assert client.contract.category_key(patient.address, C.OBSERVATIONS).epoch == 2  # rotated; old one not yet
    changed, done = workflows.revoke(client, patient, researcher.address, A.READ, reencrypt=True)
    assert not changed and [(r.previous, r.kind) for r in done] == [(old.record_id, "version")]
