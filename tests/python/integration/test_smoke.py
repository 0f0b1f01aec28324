"""The smallest end-to-end path: a clinician writes, a researcher with consent reads."""

import json

from medledger import codes, consent, records

OBS = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
    "valueQuantity": {"value": 6.1, "unit": "%"},
}


def test_granted_researcher_reads_what_clinician_wrote(client, patient, clinician, researcher):
    cat = [codes.Category.OBSERVATIONS]
    consent.grant(client, patient, clinician.address, codes.Access.WRITE, cat, [codes.Purpose.DIRECT_CARE])
    consent.grant(client, patient, researcher.address, codes.Access.READ, cat, [codes.Purpose.RESEARCH])
    written = records.write_record(client, clinician, patient.address, json.dumps(OBS).encode())
    read = records.read_record(client, researcher, written.record_id, purpose=codes.Purpose.RESEARCH)
    assert json.loads(read.data) == OBS
    assert read.author == clinician.address
    assert read.category == codes.Category.OBSERVATIONS
