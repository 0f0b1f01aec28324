"""Revocation with full re-encryption: old records move to new keys, out of a revoked grantee's reach."""

from __future__ import annotations

import io
import json

import pytest

from medledger import codes, consent, crypto, records
from medledger.errors import KeyNotFound
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
    other = records.write_record(client, patient, patient.address, b"%PDF-1.7 scan", category=C.IMAGING, content_type="application/pdf")
    # Before: the researcher's keys open the old ciphertext.
    before = Keyring(client).secrets(researcher, patient.address, [C.OBSERVATIONS])
    assert crypto.open_record_blob(
        io.BytesIO(store.cat(old.cid)), before, expected_record_id=old.record_id, expected_patient=patient.address,
        category=C.OBSERVATIONS, expected_fingerprint=old.fingerprint,
    )

    consent.revoke(client, patient, researcher.address, A.READ, reencrypt=True)

    info = client.contract.functions.record(old.record_id).call()
    new_id = bytes(info[8])
    assert new_id != b"\0" * 32, "the old record is superseded by its re-encrypted version"
    assert not store.is_pinned(old.cid)
    # The remaining reader reads the new version; its content is unchanged.
    read = records.read_record(client, clinician, new_id, purpose=P.DIRECT_CARE)
    assert json.loads(read.data)["valueQuantity"]["value"] == 6.1
    # The revoked researcher's keys do not open the new ciphertext, even bypassing the chain.
    new_cid = [s.cid for s in records.list_records(client, patient.address) if s.record_id == new_id][0]
    keys = Keyring(client).secrets(researcher, patient.address, [C.OBSERVATIONS])
    with pytest.raises(KeyNotFound):
        crypto.open_record_blob(
            io.BytesIO(store.cat(new_cid)), keys, expected_record_id=new_id, expected_patient=patient.address,
            category=C.OBSERVATIONS,
        )
    # Records of other categories are untouched.
    assert bytes(client.contract.functions.record(other.record_id).call()[8]) == b"\0" * 32
