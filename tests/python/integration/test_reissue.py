"""A key rotation interrupted before every reader got its envelope is repaired by reissue()."""

from __future__ import annotations

import json

import pytest

from medledger import codes, consent, records
from medledger.errors import KeyNotFound, ServiceUnavailable
from medledger.keyring import Keyring

C, P, A = codes.Category, codes.Purpose, codes.Access
OBS = json.dumps(
    {"resourceType": "Observation", "status": "final", "code": {"text": "HbA1c"}, "valueQuantity": {"value": 6.0}}
).encode()


def test_reissue_completes_a_rotation_that_stopped_halfway(client, patient, researcher, clinician, app, monkeypatch):
    consent.grant(client, patient, researcher.address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    consent.grant(client, patient, clinician.address, A.READ, [C.OBSERVATIONS], [P.DIRECT_CARE])
    consent.grant(client, patient, app.address, A.READ, [C.OBSERVATIONS], [P.COMMERCIAL])

    real_send = client.contract.send

    def node_dies_at_first_readers_envelope(tx, sender):
        # the patient's own envelope and the new keys land; the node dies before any reader's envelope
        if tx.function == "publishKeyEnvelope" and tx.args[1] != patient.address:
            raise ServiceUnavailable("Ethereum node", "http://127.0.0.1:1", "stopped answering (test)")
        return real_send(tx, sender)

    monkeypatch.setattr(client.contract, "send", node_dies_at_first_readers_envelope)
    with pytest.raises(ServiceUnavailable):
        consent.revoke(client, patient, app.address, A.READ)
    monkeypatch.setattr(client.contract, "send", real_send)

    assert client.contract.category_key(patient.address, C.OBSERVATIONS).epoch == 2  # rotated
    later = records.write_record(client, patient, patient.address, OBS)
    with pytest.raises(KeyNotFound):  # the remaining readers have no envelope for the new epoch yet
        records.read_record(client, clinician, later.record_id, purpose=P.DIRECT_CARE)

    assert Keyring(client).reissue(patient, patient.address) == 2  # researcher and clinician
    for reader, purpose in ((clinician, P.DIRECT_CARE), (researcher, P.RESEARCH)):
        assert records.read_record(client, reader, later.record_id, purpose=purpose).data == OBS
    assert Keyring(client).reissue(patient, patient.address) == 2  # safe to repeat
