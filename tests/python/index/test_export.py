"""FHIR R4 exports of a patient's consents (Consent) and audit trail (AuditEvent) from a real index,
validated with the intake's R4B models, and ``medledger export`` on the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fhir.resources.R4B.bundle import Bundle

from medledger import codes
from medledger.export import audit_bundle, consents_bundle
from medledger.fhir import validate_fhir

from .helpers import Chain, story, sync, tx


def resources(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in doc["entry"]]


def ref(chain: Chain, name: str) -> str:
    return f"ethereum:{chain[name]}@{chain.deployment.chain_id}"


def test_consents_as_fhir_consent_resources(chain: Chain, sqlite_url: str) -> None:
    s = story(chain)
    _, reader, _ = sync(sqlite_url, chain)
    doc = consents_bundle(reader.grants_given(chain["patient"], history=True), chain.deployment.chain_id, chain.now())
    summary = validate_fhir(doc)
    assert summary.resource_types == ("Consent",) and summary.resource_count == 3
    assert Bundle.model_validate(doc).type == "collection"
    first, write, narrowed = resources(doc)
    assert [c["status"] for c in (first, write, narrowed)] == ["inactive", "inactive", "active"]
    assert narrowed["identifier"][0]["value"].startswith(tx(s["narrow"]))
    assert narrowed["patient"]["identifier"]["value"] == ref(chain, "patient")
    provision = narrowed["provision"]
    assert provision["type"] == "permit" and "end" not in provision["period"]
    assert provision["actor"][0]["reference"]["identifier"]["value"] == ref(chain, "clinician")
    assert provision["actor"][0]["role"]["coding"][0]["code"] == "IRCP"
    assert provision["action"][0]["coding"][0]["code"] == "access"
    assert [c["coding"][0]["code"] for c in provision["code"]] == ["observations"]
    assert {c["code"] for c in provision["class"]} == {"Observation", "DiagnosticReport"}
    assert {p["code"] for p in provision["purpose"]} == {"TREAT", "HRESCH", "HOPERAT", "HMARKT", "FAMRQT", "ETREAT"}
    assert write["provision"]["actor"][0]["role"]["coding"][0]["code"] == "AUT"
    assert write["provision"]["action"][0]["coding"][0]["code"] == "collect"
    assert first["performer"][0]["identifier"]["value"] == ref(chain, "patient")


def test_audit_trail_as_fhir_audit_events(chain: Chain, sqlite_url: str) -> None:
    s = story(chain)
    _, reader, _ = sync(sqlite_url, chain)
    trail = reader.trail(chain["patient"])
    doc = audit_bundle(trail, chain.deployment.chain_id, chain.deployment.address, chain.now())
    assert validate_fhir(doc).resource_count == len(trail)
    events = {e["subtype"][0]["code"]: e for e in resources(doc)}  # the last of each name
    read = events["RecordAccessed"]  # the emergency read
    assert read["action"] == "R" and read["type"]["code"] == "110110"
    assert read["purposeOfEvent"][0]["coding"][0]["code"] == "ETREAT"
    assert read["agent"][0]["who"]["identifier"]["value"] == ref(chain, "emergency_clinician")
    assert read["entity"][1]["what"]["identifier"]["value"] == "0x" + s["rid"].hex()
    assert read["entity"][0]["detail"][0]["valueString"] == tx(s["emergency_read"])
    first_read = next(e for e in resources(doc) if e["subtype"][0]["code"] == "RecordAccessed")
    assert first_read["purposeOfEvent"][0]["coding"][0]["code"] == "TREAT"
    assert events["EmergencyAccessOpened"]["type"]["code"] == "110113"
    assert events["RecordAmended"]["agent"][0]["who"]["identifier"]["value"] == ref(chain, "patient")
    assert events["RecordErased"]["action"] == "D" and events["ConsentRevoked"]["action"] == "D"
    assert events["ConsentGranted"]["type"]["code"] == "110137"
    assert all(
        e["source"]["observer"]["identifier"]["value"].startswith("ethereum:" + chain.deployment.address)
        for e in resources(doc)
    )


def test_export_commands(chain: Chain, run, tmp_path: Path) -> None:
    story(chain)
    out = tmp_path / "consents.json"
    result = run("export", "consents", "--fhir", "--out", out, as_="patient")
    assert result.exit_code == 0, result.output
    assert "3 Consent in a FHIR R4 Bundle" in result.stderr
    assert validate_fhir(out.read_bytes()).resource_count == 3
    current = json.loads(run("export", "consents", "--fhir", "--current", as_="patient").stdout)
    assert [r["resource"]["status"] for r in current["entry"]] == ["active"]
    audit = run("export", "audit", "--fhir", "--patient", chain["patient2"])
    assert audit.exit_code == 0
    registration = ["PatientRegistered", *["CategoryKeyRotated"] * len(codes.Category)]
    assert [r["resource"]["subtype"][0]["code"] for r in json.loads(audit.stdout)["entry"]] == [
        *registration,
        "ConsentGranted",
    ]
    assert {r["resource"]["action"] for r in json.loads(audit.stdout)["entry"][1:-1]} == {"U"}  # key rotations
    plain = json.loads(run("export", "audit", "--patient", chain["patient2"], "--no-sync").stdout)
    assert [e["event"] for e in plain] == [*registration, "ConsentGranted"]
