"""Behaviour of medledger.fhir: FHIR R4B validation, category inference, content types."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from medledger.codes import Category
from medledger.errors import RecordFormatError
from medledger.fhir import (
    FHIR_VERSION,
    category_for_resource_type,
    detect_content_type,
    validate_fhir,
)

SUBJECT = {"reference": "Patient/p1"}
CODE = {"text": "code"}

# Minimal valid R4B resources of every type medledger categorises.
MINIMAL: dict[str, tuple[dict[str, Any], Category]] = {
    "Patient": ({}, Category.DEMOGRAPHICS),
    "AllergyIntolerance": ({"patient": SUBJECT}, Category.ALLERGIES),
    "MedicationStatement": (
        {"status": "active", "medicationCodeableConcept": CODE, "subject": SUBJECT},
        Category.MEDICATIONS,
    ),
    "MedicationRequest": (
        {"status": "active", "intent": "order", "medicationCodeableConcept": CODE, "subject": SUBJECT},
        Category.MEDICATIONS,
    ),
    "Medication": ({}, Category.MEDICATIONS),
    "Condition": ({"subject": SUBJECT}, Category.CONDITIONS),
    "Observation": ({"status": "final", "code": CODE}, Category.OBSERVATIONS),
    "DiagnosticReport": ({"status": "final", "code": CODE}, Category.OBSERVATIONS),
    "ImagingStudy": ({"status": "available", "subject": SUBJECT}, Category.IMAGING),
    "MolecularSequence": ({"coordinateSystem": 0}, Category.GENOMICS),
    "Device": ({}, Category.DEVICE_DATA),
    "DeviceMetric": ({"type": CODE, "category": "measurement"}, Category.DEVICE_DATA),
    "Procedure": ({"status": "completed", "subject": SUBJECT}, Category.PROCEDURES),
    "Immunization": (
        {"status": "completed", "vaccineCode": CODE, "patient": SUBJECT, "occurrenceDateTime": "2024-01-01"},
        Category.IMMUNIZATIONS,
    ),
    "DocumentReference": (
        {"status": "current", "content": [{"attachment": {"contentType": "text/plain"}}]},
        Category.CLINICAL_DOCUMENTS,
    ),
    "Composition": (
        {"status": "final", "type": CODE, "date": "2024-01-01", "author": [SUBJECT], "title": "Discharge summary"},
        Category.CLINICAL_DOCUMENTS,
    ),
}


def resource(resource_type: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": resource_type, **MINIMAL[resource_type][0], **extra}


def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


@pytest.mark.parametrize("resource_type", sorted(MINIMAL))
def test_each_known_resource_type_maps_to_its_category(resource_type: str) -> None:
    summary = validate_fhir(resource(resource_type))
    assert summary.resource_type == resource_type
    assert summary.category == MINIMAL[resource_type][1]
    assert summary.resource_count == 1
    assert summary.resource_types == (resource_type,)
    assert category_for_resource_type(resource_type) == MINIMAL[resource_type][1]


def test_summary_reports_id_and_fhir_version() -> None:
    summary = validate_fhir(resource("Observation", id="obs-1"))
    assert summary.id == "obs-1"
    assert summary.fhir_version == FHIR_VERSION == "4.3.0"


def test_bytes_text_and_dict_inputs_give_the_same_summary() -> None:
    document = resource("Condition", id="c1")
    text = json.dumps(document)
    assert validate_fhir(text) == validate_fhir(text.encode()) == validate_fhir(document)


def test_resource_type_without_mapping_has_no_category() -> None:
    summary = validate_fhir({"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"}})
    assert summary.category is None and summary.resource_count == 1


def test_uniform_bundle_takes_the_category_of_its_entries() -> None:
    summary = validate_fhir(bundle(resource("Observation"), resource("DiagnosticReport"), resource("Observation")))
    assert summary.resource_type == "Bundle"
    assert summary.category == Category.OBSERVATIONS
    assert summary.resource_count == 3
    assert summary.resource_types == ("DiagnosticReport", "Observation")


def test_mixed_bundle_has_no_category() -> None:
    summary = validate_fhir(bundle(resource("Observation"), resource("Condition")))
    assert summary.category is None and summary.resource_count == 2


def test_empty_bundle_has_no_category_and_no_resources() -> None:
    summary = validate_fhir({"resourceType": "Bundle", "type": "collection"})
    assert summary.category is None and summary.resource_count == 0 and summary.resource_types == ()


def test_nested_bundles_are_flattened() -> None:
    inner = bundle(resource("Immunization"), resource("Immunization"))
    summary = validate_fhir(bundle(inner, resource("Immunization")))
    assert summary.resource_count == 3 and summary.category == Category.IMMUNIZATIONS


def test_bundle_with_one_unmapped_type_has_no_category() -> None:
    encounter = {"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"}}
    assert validate_fhir(bundle(resource("Observation"), encounter)).category is None


@pytest.mark.parametrize(
    "data,match",
    [
        (b"{", "not valid JSON: .* line 1 column 2"),
        (b"\xff\xfe{}", "not UTF-8|not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"id": "x"}', "no 'resourceType'"),
        (b'{"resourceType": "NotAThing"}', "not a FHIR R4B resource type"),
    ],
)
def test_non_fhir_input_raises_record_format_error(data: bytes, match: str) -> None:
    with pytest.raises(RecordFormatError, match=match):
        validate_fhir(data)


def test_invalid_field_error_quotes_the_path_but_not_the_value() -> None:
    secret = "SECRET-DOB-1970"
    with pytest.raises(RecordFormatError, match="invalid FHIR R4B Patient: birthDate") as caught:
        validate_fhir({"resourceType": "Patient", "birthDate": secret})
    assert secret not in str(caught.value)


def test_missing_required_field_in_bundle_entry_names_its_path() -> None:
    broken = {"resourceType": "Observation", "status": "final", "valueString": "SECRET-RESULT"}
    with pytest.raises(RecordFormatError, match=r"entry\.0\.resource\.code: Field required") as caught:
        validate_fhir(bundle(broken))
    assert "SECRET-RESULT" not in str(caught.value)


def test_unknown_field_is_rejected_without_quoting_its_value() -> None:
    with pytest.raises(RecordFormatError, match="nickname") as caught:
        validate_fhir({"resourceType": "Patient", "nickname": "SECRET-NAME"})
    assert "SECRET-NAME" not in str(caught.value)


def test_many_errors_are_summarised_and_truncated() -> None:
    fields = {f"field{i}": "SECRET" for i in range(40)}
    with pytest.raises(RecordFormatError, match=r"and 35 more") as caught:
        validate_fhir({"resourceType": "Patient", **fields})
    assert len(str(caught.value)) < 800
    assert "SECRET" not in str(caught.value)


# --- content types -------------------------------------------------------------------------------
def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "name,data,expected",
    [
        ("report.bin", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "application/pdf"),
        ("scan", b"\x89PNG\r\n\x1a\n" + bytes(40), "image/png"),
        ("photo.dat", b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(40), "image/jpeg"),
        ("ct-slice", bytes(128) + b"DICM" + b"\x02\x00\x00\x00UL", "application/dicom"),
        ("labs", b"date,test,value\n2024-01-01,hba1c,48\n2024-02-01,hba1c,46\n", "text/csv"),
        ("labs.txt", b"date;test;value\n2024-01-01;hba1c;48\n", "text/csv"),
        ("export.csv", b"single column\nvalue\n", "text/csv"),
        ("obs", json.dumps({"resourceType": "Observation"}).encode(), "application/fhir+json"),
        ("data.json", b'{"steps": [1, 2, 3]}', "application/json"),
        ("list.json", b"[1, 2, 3]", "application/json"),
        ("notes", "Patient seen today, feeling better.\nNo changes — follow up in 2 weeks.\n".encode(), "text/plain"),
        ("broken.json", b'{"resourceType": ', "application/json"),  # the validator says where it broke
        ("broken", b'{"resourceType": "Observation", ', "application/json"),
        ("notes.json", b"not json at all", "application/json"),
        ("blob", bytes(range(256)) * 4, "application/octet-stream"),
        ("latin1", "caf\xe9 \xe9t\xe9".encode("latin-1"), "application/octet-stream"),
    ],
)
def test_detect_content_type_by_content(tmp_path: Path, name: str, data: bytes, expected: str) -> None:
    assert detect_content_type(write(tmp_path, name, data)) == expected


def test_detect_content_type_tolerates_a_character_cut_at_the_sample_end(tmp_path: Path) -> None:
    text = ("a" * 8191 + "é" * 100).encode()  # the sample ends inside a two-byte character
    assert detect_content_type(write(tmp_path, "long", text)) == "text/plain"


def test_detect_content_type_recognises_large_fhir_json_by_its_start(tmp_path: Path) -> None:
    document = bundle(*[resource("Observation", id=f"o{i}") for i in range(2000)])
    assert detect_content_type(write(tmp_path, "big", json.dumps(document).encode())) == "application/fhir+json"


@pytest.mark.parametrize(
    "override,expected",
    [
        ("pdf", "application/pdf"),
        ("DICOM", "application/dicom"),
        ("fhir", "application/fhir+json"),
        ("application/vnd.ms-excel", "application/vnd.ms-excel"),
        ("Text/Plain", "text/plain"),
    ],
)
def test_explicit_override_wins_over_content(tmp_path: Path, override: str, expected: str) -> None:
    path = write(tmp_path, "x.pdf", b"%PDF-1.4")
    assert detect_content_type(path, override=override) == expected


@pytest.mark.parametrize("override", ["", "pdf please", "a/b/c", "/json"])
def test_invalid_override_raises_record_format_error(tmp_path: Path, override: str) -> None:
    with pytest.raises(RecordFormatError, match="not a content type"):
        detect_content_type(write(tmp_path, "x", b"x"), override=override)


def test_missing_attachment_raises_record_format_error_naming_the_path(tmp_path: Path) -> None:
    with pytest.raises(RecordFormatError, match=r"cannot read attachment .*missing\.pdf"):
        detect_content_type(tmp_path / "missing.pdf")


# --- intake holes (issue 9 item 12) ----------------------------------------------------------------
def test_an_unknown_resource_type_in_a_bundle_entry_is_named_with_its_place() -> None:
    document = bundle(resource("Patient"), {"resourceType": "Observaton", "status": "final", "code": {"text": "x"}})
    with pytest.raises(
        RecordFormatError, match=r"'Observaton' at entry\[1\]\.resource is not a FHIR R4B resource type"
    ):
        validate_fhir(document)
    nested = bundle(bundle({"resourceType": "Nope"}))
    with pytest.raises(RecordFormatError, match=r"'Nope' at entry\[0\]\.resource\.entry\[0\]\.resource"):
        validate_fhir(nested)
    contained = {**resource("Observation"), "contained": [{"resourceType": "Medicaton"}]}
    with pytest.raises(RecordFormatError, match=r"'Medicaton' at contained\[0\]"):
        validate_fhir(contained)
    with pytest.raises(RecordFormatError, match=r"entry\[0\]\.resource has no valid 'resourceType'"):
        validate_fhir(bundle({"resourceType": 7}))


@pytest.mark.parametrize(
    "text,where",
    [
        ('{"resourceType": "Obs', "line 1 column 18"),
        ('{\n  "resourceType": "Observation",\n  "status": "final"', "line 3 column 20"),
        ('{"resourceType": "Observation",}', "line 1 column 32"),
    ],
)
def test_broken_json_says_where_it_broke(text: str, where: str) -> None:
    with pytest.raises(RecordFormatError, match=f"not valid JSON: .* at {where}") as caught:
        validate_fhir(text.encode())
    assert ("cut short" in str(caught.value)) == (not text.endswith("}"))


@pytest.mark.parametrize("data", [b"", b"   ", b"\n\t \r\n", "\ufeff  ".encode()])
def test_empty_and_blank_documents_are_refused_as_such(data: bytes) -> None:
    with pytest.raises(RecordFormatError, match="empty"):
        validate_fhir(data)


@pytest.mark.parametrize("depth,reason", [(100_000, "nested too deeply"), (900, "invalid FHIR R4B Basic")])
def test_deeply_nested_json_is_refused_not_crashed_on(depth: int, reason: str) -> None:
    with pytest.raises(RecordFormatError, match=reason):
        validate_fhir(b'{"resourceType": "Basic", "extension": ' + b"[" * depth + b"]" * depth + b"}")
