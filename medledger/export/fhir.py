"""A patient's consents as FHIR R4 **Consent** resources and her audit trail as **AuditEvent**
resources, each set in a ``collection`` Bundle, validated by the same ``fhir.resources`` R4B models
the intake uses (:func:`medledger.fhir.validate_fhir`).

Mapping (what an NHS system or a patient app reads):
- Every account is a Reference by identifier: system ``urn:ietf:rfc:3986``, value an EIP-681 URI
  ``ethereum:<checksummed address>@<chain id>``; record ids and transactions are identifiers under
  ``urn:medledger:*`` systems. Nothing else about anyone is in the export.
- Consent: one resource per consent decision (``history``: every decision, ended ones ``inactive``;
  otherwise only the standing ones). scope ``patient-privacy``, category LOINC 59284-0, policyRule
  OPTIN, provision ``permit`` with the grantee as actor (role IRCP to read, AUT to write), action
  ``access`` / ``collect``, purposes as HL7 v3 ActReason codes, categories as medledger codes and
  the FHIR resource types they file (``provision.class``), the validity window as ``period``.
- AuditEvent: one per event. type DICOM 110110 "Patient Record" for record events, 110113
  "Security Alert" for emergency ("break-glass") openings, 110137 "User Security Attributes
  Changed" for consent, delegation and key changes; subtype the contract event's name; action
  C/R/U/D/E; recorded = block time; the acting account as requesting agent; the patient (and the
  record) as entities; the contract as source; the transaction hash in the entity detail.
"""

from __future__ import annotations

import datetime as _dt
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from eth_utils import to_checksum_address

from medledger import codes
from medledger.errors import MedledgerError, RecordFormatError
from medledger.fhir import RESOURCE_CATEGORIES, validate_fhir
from medledger.index import GrantEntry, IndexedEvent

URI_SYSTEM = "urn:ietf:rfc:3986"
CATEGORY_SYSTEM = "urn:medledger:codesystem:category"
PURPOSE_SYSTEM = "urn:medledger:codesystem:purpose"
EVENT_SYSTEM = "urn:medledger:codesystem:event"
RECORD_SYSTEM = "urn:medledger:record-id"
TX_SYSTEM = "urn:medledger:transaction"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
DICOM = "http://dicom.nema.org/resources/ontology/DCM"

#: medledger purpose -> HL7 v3 ActReason (purpose of use)
PURPOSE_OF_USE: dict[codes.Purpose, tuple[str, str]] = {
    codes.Purpose.DIRECT_CARE: ("TREAT", "treatment"),
    codes.Purpose.RESEARCH: ("HRESCH", "healthcare research"),
    codes.Purpose.COMMISSIONING_AND_AUDIT: ("HOPERAT", "healthcare operations"),
    codes.Purpose.COMMERCIAL: ("HMARKT", "healthcare marketing"),
    codes.Purpose.FAMILY_CARE: ("FAMRQT", "family requested"),
    codes.Purpose.EMERGENCY: ("ETREAT", "emergency treatment"),
}
_RECORD_EVENTS = {"RecordRegistered", "BatchAnchored", "RecordAmended", "RecordErased", "RecordAccessed"}
_ACTIONS = {
    "RecordAccessed": "R",
    "RecordRegistered": "C",
    "BatchAnchored": "C",
    "RecordAmended": "U",
    "RecordErased": "D",
    "ConsentGranted": "C",
    "ConsentRevoked": "D",
    "DelegateAppointed": "C",
    "DelegateRemoved": "D",
    "EmergencyAccessOpened": "C",
    "EmergencyAccessClosed": "D",
    "PatientRegistered": "C",
    "PatientKeyRotated": "U",
    "CategoryKeyRotated": "U",
    "EmergencyAccessConfirmed": "U",
    "SignedRequestsInvalidated": "D",
}  # anything else (a consumed signed request, a key envelope published): E, executed
#: arguments naming who acted, in order of preference (then the transaction sender, then the patient)
ACTOR_ARGS = ("by", "accessor", "author", "clinician", "registrar")


class ExportError(MedledgerError):
    """An export could not be produced (or did not validate: a bug, reported as such)."""


def _instant(timestamp: int) -> str:
    return _dt.datetime.fromtimestamp(timestamp, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def account_reference(chain_id: int, address: str, display: str | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {
        "identifier": {"system": URI_SYSTEM, "value": f"ethereum:{to_checksum_address(address)}@{chain_id}"}
    }
    if display:
        ref["display"] = display
    return ref


def purpose_coding(purpose: codes.Purpose) -> dict[str, str]:
    code, display = PURPOSE_OF_USE[purpose]
    return _coding(ACT_REASON, code, display)


def _resource_types(categories: Iterable[codes.Category]) -> list[str]:
    wanted = set(categories)
    return sorted(t for t, c in RESOURCE_CATEGORIES.items() if c in wanted)


def _entry(resource: dict[str, Any], chain_id: int) -> dict[str, Any]:
    name = f"medledger:{chain_id}:{resource['resourceType']}:{resource['id']}"
    return {"fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, name)}", "resource": resource}


def bundle(resources: list[dict[str, Any]], chain_id: int, now: int) -> dict[str, Any]:
    """A ``collection`` Bundle of ``resources``, validated against the R4B models."""
    doc = {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": _instant(now),
        "entry": [_entry(r, chain_id) for r in resources],
    }
    try:
        validate_fhir(doc)
    except RecordFormatError as exc:  # pragma: no cover - would be a bug in the mapping above
        raise ExportError(f"the export does not validate as FHIR R4B (a bug): {exc}") from exc
    return doc


# --- consents ------------------------------------------------------------------------------------
def consent_resource(entry: GrantEntry, chain_id: int, now: int) -> dict[str, Any]:
    g = entry.grant
    live = entry.live(now)
    read = g.access == codes.Access.READ
    period: dict[str, str] = {"start": _instant(g.start or entry.granted_at)}
    if g.expiry < 2**63 - 1:
        period["end"] = _instant(g.expiry)
    provision: dict[str, Any] = {
        "type": "permit",
        "period": period,
        "actor": [
            {
                "role": {
                    "coding": [
                        _coding(
                            "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                            *(("IRCP", "information recipient") if read else ("AUT", "author (originator)")),
                        )
                    ]
                },
                "reference": account_reference(chain_id, g.grantee),
            }
        ],
        "action": [
            {
                "coding": [
                    _coding(
                        "http://terminology.hl7.org/CodeSystem/consentaction",
                        "access" if read else "collect",
                        "Access" if read else "Collect",
                    )
                ]
            }
        ],
        "purpose": [purpose_coding(p) for p in sorted(g.purposes)],
        "code": [{"coding": [_coding(CATEGORY_SYSTEM, codes.slug(c), codes.label(c))]} for c in sorted(g.categories)],
    }
    types = _resource_types(g.categories)
    if types:
        provision["class"] = [_coding("http://hl7.org/fhir/resource-types", t) for t in types]
    resource: dict[str, Any] = {
        "resourceType": "Consent",
        "id": f"consent-{entry.granted_block}-{entry.granted_log}",
        "identifier": [{"system": TX_SYSTEM, "value": f"{entry.granted_tx}:{entry.granted_log}"}],
        "status": "active" if live else "inactive",
        "scope": {
            "coding": [
                _coding("http://terminology.hl7.org/CodeSystem/consentscope", "patient-privacy", "Privacy Consent")
            ]
        },
        "category": [{"coding": [_coding("http://loinc.org", "59284-0", "Patient Consent")]}],
        "patient": account_reference(chain_id, g.patient),
        "dateTime": _instant(entry.granted_at),
        "policyRule": {"coding": [_coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "OPTIN", "opt-in")]},
        "provision": provision,
    }
    if entry.granted_by:
        resource["performer"] = [account_reference(chain_id, entry.granted_by)]
    return resource


def consents_bundle(entries: Iterable[GrantEntry], chain_id: int, now: int) -> dict[str, Any]:
    return bundle([consent_resource(e, chain_id, now) for e in entries], chain_id, now)


# --- audit trail ---------------------------------------------------------------------------------
def _actor(event: IndexedEvent) -> str:
    for name in ACTOR_ARGS:
        if event.args.get(name):
            return str(event.args[name])
    return event.sender or str(event.args["patient"])


def _type(name: str) -> dict[str, str]:
    if name in _RECORD_EVENTS:
        return _coding(DICOM, "110110", "Patient Record")
    if name == "EmergencyAccessOpened":
        return _coding(DICOM, "110113", "Security Alert")
    return _coding(DICOM, "110137", "User Security Attributes Changed")


def _purposes(event: IndexedEvent) -> list[dict[str, Any]]:
    if event.name == "EmergencyAccessOpened" or event.args.get("emergency"):
        return [{"coding": [purpose_coding(codes.Purpose.EMERGENCY)]}]
    if "purpose" in event.args:
        purpose = codes.Purpose(int(event.args["purpose"]))
        return [
            {"coding": [purpose_coding(purpose), _coding(PURPOSE_SYSTEM, codes.slug(purpose), codes.label(purpose))]}
        ]
    return []


def audit_event_resource(event: IndexedEvent, chain_id: int, contract: str) -> dict[str, Any]:
    entities: list[dict[str, Any]] = [
        {
            "what": account_reference(chain_id, str(event.args["patient"])),
            "type": _coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "1", "Person"),
            "role": _coding("http://terminology.hl7.org/CodeSystem/object-role", "1", "Patient"),
            "detail": [{"type": "transaction", "valueString": event.tx_hash}],
        }
    ]
    record = event.args.get("recordId") or event.args.get("root")
    if isinstance(record, bytes):
        entities.append(
            {
                "what": {"identifier": {"system": RECORD_SYSTEM, "value": "0x" + record.hex()}},
                "type": _coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "2", "System Object"),
                "role": _coding("http://terminology.hl7.org/CodeSystem/object-role", "4", "Domain Resource"),
            }
        )
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": f"event-{event.block_number}-{event.log_index}",
        "type": _type(event.name),
        "subtype": [_coding(EVENT_SYSTEM, event.name)],
        "action": _ACTIONS.get(event.name, "E"),
        "recorded": _instant(event.timestamp),
        "outcome": "0",
        "agent": [{"who": account_reference(chain_id, _actor(event)), "requestor": True}],
        "source": {
            "observer": {
                "identifier": {"system": URI_SYSTEM, "value": f"ethereum:{to_checksum_address(contract)}@{chain_id}"},
                "display": "medledger contract",
            },
            "type": [_coding("http://terminology.hl7.org/CodeSystem/security-source-type", "4", "Application Server")],
        },
        "entity": entities,
    }
    purposes = _purposes(event)
    if purposes:
        resource["purposeOfEvent"] = purposes
    return resource


def audit_bundle(events: Iterable[IndexedEvent], chain_id: int, contract: str, now: int) -> dict[str, Any]:
    return bundle([audit_event_resource(e, chain_id, contract) for e in events if "patient" in e.args], chain_id, now)


def summary(doc: Mapping[str, Any]) -> str:
    types = sorted({e["resource"]["resourceType"] for e in doc.get("entry", [])})
    return f"{len(doc.get('entry', []))} {'/'.join(types) or 'resources'} in a FHIR R4 Bundle"
