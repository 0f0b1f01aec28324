"""Bulk ingest (medledger.ingest.Ingestor) against the real anvil and IPFS node."""

from __future__ import annotations

import json

import pytest

from medledger import codes, consent, records
from medledger.chain import events as ev
from medledger.errors import AccessDenied, RecordFormatError
from medledger.ingest import Ingestor

C, P, A = codes.Category, codes.Purpose, codes.Access


def observation(i: int) -> bytes:
    return json.dumps(
        {
            "resourceType": "Observation",
            "id": f"hr-{i}",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "valueQuantity": {"value": 60 + i, "unit": "beats/minute"},
        }
    ).encode()


@pytest.fixture
def writer(client, patient, clinician):
    consent.grant(client, patient, clinician.address, A.WRITE, [C.OBSERVATIONS], [P.DIRECT_CARE])
    return clinician


def registered_ids(client, patient) -> set[bytes]:
    return {bytes(e.record_id) for e in client.contract.logs(ev.RecordRegistered, patient=patient.address)}


def test_ingest_registers_every_record_and_each_reads_back(client, patient, writer):
    with Ingestor(client, writer, patient.address, category=C.OBSERVATIONS) as ingest:
        futures = [ingest.submit(observation(i)) for i in range(12)]
    results = [f.result() for f in futures]
    assert registered_ids(client, patient) == {r.record_id for r in results}
    for i, result in enumerate(results):
        assert records.verify_fingerprint(client, result.record_id, result.fingerprint)
        read = records.read_record(client, patient, result.record_id)
        assert json.loads(read.data)["id"] == f"hr-{i}"
    assert not list((client.settings.cache_dir / "pending").rglob("*.json"))


def test_ingest_refuses_to_start_without_write_consent(client, patient, researcher):
    with pytest.raises(AccessDenied) as refused:
        Ingestor(client, researcher, patient.address, category=C.OBSERVATIONS)
    assert "holds no write consent" in str(refused.value)


def test_ingest_rejects_invalid_fhir_at_submit_and_uploads_nothing_for_it(client, patient, writer, store):
    pins_before = set(store.pins())
    with Ingestor(client, writer, patient.address, category=C.OBSERVATIONS) as ingest:
        with pytest.raises(RecordFormatError):
            ingest.submit(b'{"resourceType": "Observation", "status": 12}')
        good = ingest.submit(observation(1))
    result = good.result()
    assert set(store.pins()) - pins_before == {result.cid}


def test_ingest_rolls_back_records_whose_registration_fails(client, patient, writer, store):
    ingest = Ingestor(client, writer, patient.address, category=C.OBSERVATIONS)
    first = ingest.submit(observation(0))
    assert first.result(timeout=60).record_id in registered_ids(client, patient)
    consent.revoke(client, patient, writer.address, A.WRITE)  # consent ends mid-ingest
    pins_before = set(store.pins())
    later = [ingest.submit(observation(i)) for i in range(1, 4)]
    ingest.close()
    for future in later:
        with pytest.raises(AccessDenied) as refused:
            future.result()
        assert "holds no write consent" in str(refused.value)
    assert registered_ids(client, patient) == {first.result().record_id}
    assert set(store.pins()) == pins_before  # the ciphertexts of the refused records were unpinned
    assert not list((client.settings.cache_dir / "pending").rglob("*.json"))
