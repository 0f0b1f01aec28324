"""Exports of a patient's data in standard formats: FHIR R4 Consent and AuditEvent Bundles
(:mod:`.fhir`), built from the event index."""

from __future__ import annotations

from .fhir import ExportError, audit_bundle, consents_bundle, summary

__all__ = ["ExportError", "audit_bundle", "consents_bundle", "summary"]
