"""Oversight for commissioners and auditors: counts from the event index with statistical
disclosure control (:mod:`.sdc`), never a patient address, as JSON, CSV (:mod:`.report`) and a chart
(:mod:`.chart`, imported on demand: it loads matplotlib)."""

from __future__ import annotations

from .counts import Period
from .report import OVERSEER_KINDS, Report, build_report, disclosure_control, report_json, require_overseer
from .sdc import REDACTED, DisclosureControl

__all__ = [
    "OVERSEER_KINDS",
    "REDACTED",
    "DisclosureControl",
    "Period",
    "Report",
    "build_report",
    "disclosure_control",
    "report_json",
    "require_overseer",
]
