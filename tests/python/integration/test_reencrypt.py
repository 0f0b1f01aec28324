"""Revocation with full re-encryption: old records move to new keys, out of a revoked grantee's reach."""

from __future__ import annotations

import io
import json

import pytest

from medledger import codes, consent, crypto, records, workflows
from medledger.errors import AccessDenied, KeyNotFound
from medledger.keyring import Keyring

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
