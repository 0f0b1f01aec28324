"""The oversight report for commissioners and auditors: counts from the index with statistical
disclosure control applied (on by default), as JSON and CSV (the chart is :mod:`.chart`).

Tables:
  ``accesses``            record reads by month x purpose x category (and two roll-ups, by month x
                          purpose and by category, each protected from its own exact counts)
  ``emergency_openings``  emergency access openings by organisation
  ``consent_uptake``      patients holding a live consent, by purpose (of all registered patients)
  ``refused_attempts``    refused attempts by event and month, where the deployment records them
                          (the current contract does not: a refused call reverts and leaves no event)

No patient address ever appears: no query returns one, and an organisation account that is also a
registered patient is never shown by address (it is counted under :data:`PATIENT_ACCOUNTS` unless
the organisation map names it).
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from eth_utils import to_checksum_address
from sqlalchemy import Engine

from medledger import codes
from medledger.errors import AccessDenied
from medledger.index import IndexReader

from . import counts
from .counts import Period
from .sdc import REDACTED, DisclosureControl

#: Participant kinds allowed to request a report.
OVERSEER_KINDS = frozenset({codes.ParticipantKind.COMMISSIONER, codes.ParticipantKind.AUDITOR})
#: The label under which organisation accounts that are also registered patients are counted.
PATIENT_ACCOUNTS = "(accounts that are also registered patients)"


def require_overseer(address: str, kind: codes.ParticipantKind, suspended: bool) -> None:
    """Raise :class:`AccessDenied` unless the participant (as the chain says) may see reports."""
    if kind not in OVERSEER_KINDS:
        raise AccessDenied(
            f"{address} is registered as {codes.label(kind) if kind else 'nothing'}; only commissioners and "
            "auditors may produce oversight reports"
        )
    if suspended:
        raise AccessDenied(f"{address} is suspended by a registrar; it cannot produce oversight reports")


def disclosure_control(kind: codes.ParticipantKind, exact: bool = False) -> DisclosureControl:
    """Disclosure control is on for everyone; only an auditor may ask for exact counts."""
    if exact and kind != codes.ParticipantKind.AUDITOR:
        raise AccessDenied("Only auditors may see exact counts; commissioners get the protected report")
    return DisclosureControl(applied=not exact)


@dataclass(frozen=True)
class Table:
    """One table of the report: ``rows`` hold protected counts (None = suppressed)."""

    name: str
    columns: tuple[str, ...]
    rows: list[dict[str, Any]]
    notes: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"columns": list(self.columns), "rows": self.rows, **self.notes}


@dataclass(frozen=True)
class Report:
    requested_by: str
    requester_kind: codes.ParticipantKind
    chain_id: int
    contract: str
    indexed_to: int
    as_of: int
    period: Period
    control: DisclosureControl
    tables: dict[str, Table]
    generated_at: str = field(default_factory=lambda: _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))

    def to_json(self) -> dict[str, Any]:
        return {
            "report": "medledger oversight report",
            "generated_at": self.generated_at,
            "requested_by": {"address": self.requested_by, "kind": codes.slug(self.requester_kind)},
            "chain_id": self.chain_id,
            "contract": self.contract,
            "indexed_to_block": self.indexed_to,
            "as_of": _dt.datetime.fromtimestamp(self.as_of, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "period": self.period.to_json(),
            "disclosure_control": self.control.to_json(),
            "tables": {name: t.to_json() for name, t in self.tables.items()},
        }

    def to_csv(self) -> str:
        """One long table: ``table, month, purpose, category, organisation, event, count``."""
        columns = ["table", "month", "purpose", "category", "organisation", "event", "count"]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for name, t in self.tables.items():
            value_column = t.columns[-1]
            for row in t.rows:
                value = row[value_column]
                writer.writerow({**row, "table": name, "count": REDACTED if value is None else value})
            for key in ("total", "registered_patients"):
                if key in t.notes:
                    value = t.notes[key]
                    writer.writerow({"table": f"{name}.{key}", "count": REDACTED if value is None else value})
        return buf.getvalue()


def _organisation(
    account: str, names: Mapping[str, str], kinds: Mapping[str, codes.ParticipantKind], patients: set[str]
) -> str:
    if account in names:
        return names[account]
    if account in patients:
        return PATIENT_ACCOUNTS
    kind = kinds.get(account)
    prefix = f"{codes.label(kind)} " if kind else ""
    return f"{prefix}{to_checksum_address(account)}"


def _access_table(rows: list[tuple[str, int, int | None, int]], dc: DisclosureControl) -> Table:
    out = [
        {
            "month": month,
            "purpose": codes.slug(codes.Purpose(purpose)),
            "category": codes.slug(codes.Category(category)) if category is not None else "unknown",
            "accesses": dc.protect(n),
        }
        for month, purpose, category, n in rows
    ]
    total = dc.protect(sum(n for *_, n in rows))
    return Table("accesses", ("month", "purpose", "category", "accesses"), out, {"total": total})


def _rollups(rows: list[tuple[str, int, int | None, int]], dc: DisclosureControl) -> tuple[Table, Table]:
    """Accesses by month x purpose and by category, each protected from its own exact totals
    (never summed from protected cells): what the chart draws."""
    by_month: dict[tuple[str, int], int] = {}
    by_category: dict[int | None, int] = {}
    for month, purpose, category, n in rows:
        by_month[(month, purpose)] = by_month.get((month, purpose), 0) + n
        by_category[category] = by_category.get(category, 0) + n
    monthly = [
        {"month": m, "purpose": codes.slug(codes.Purpose(p)), "accesses": dc.protect(n)}
        for (m, p), n in sorted(by_month.items())
    ]
    categories = [
        {"category": codes.slug(codes.Category(c)) if c is not None else "unknown", "accesses": dc.protect(n)}
        for c, n in sorted(by_category.items(), key=lambda kv: -1 if kv[0] is None else kv[0])
    ]
    return (
        Table("accesses_by_month", ("month", "purpose", "accesses"), monthly),
        Table("accesses_by_category", ("category", "accesses"), categories),
    )


def _emergency_table(
    rows: list[tuple[str, int]],
    names: Mapping[str, str],
    kinds: Mapping[str, codes.ParticipantKind],
    patients: set[str],
    dc: DisclosureControl,
) -> Table:
    grouped: dict[str, int] = {}
    for account, n in rows:
        label = _organisation(account, names, kinds, patients)
        grouped[label] = grouped.get(label, 0) + n
    out = [
        {"organisation": label, "openings": dc.protect(n)}
        for label, n in sorted(grouped.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    return Table("emergency_openings", ("organisation", "openings"), out, {"total": dc.protect(sum(grouped.values()))})


_ALL_TIME = Period()
_PROTECTED = DisclosureControl()


def _refused_table(refused: list[tuple[str, str, int]], refusal_names: Any, control: DisclosureControl) -> Table:
    note = (
        {}
        if refusal_names
        else {"note": "this deployment records no refused attempts: a refused call reverts and leaves no event"}
    )
    return Table(
        "refused_attempts",
        ("event", "month", "attempts"),
        [{"event": name, "month": month, "attempts": control.protect(n)} for name, month, n in refused],
        {"recorded": bool(refusal_names), **note},
    )


def build_report(
    engine: Engine,
    *,
    requested_by: str,
    requester_kind: codes.ParticipantKind,
    now: int,
    period: Period = _ALL_TIME,
    control: DisclosureControl = _PROTECTED,
    organisations: Mapping[str, str] | None = None,
) -> Report:
    """Count from the index at ``engine`` (consent uptake as of chain time ``now``)."""
    status = IndexReader(engine).status()
    names = {k.lower(): v for k, v in (organisations or {}).items()}
    with engine.connect() as conn:
        kinds = counts.participant_kinds(conn)
        patients = counts.patients(conn)
        access_rows = counts.accesses(conn, period)
        emergency_rows = counts.emergency_openings(conn, period)
        uptake = counts.consent_uptake(conn, now)
        refusal_names = counts.refusal_events(counts.abi_of(conn))
        refused = counts.refused_attempts(conn, refusal_names, period)
    by_month, by_category = _rollups(access_rows, control)
    tables = {
        "accesses": _access_table(access_rows, control),
        "accesses_by_month": by_month,
        "accesses_by_category": by_category,
        "emergency_openings": _emergency_table(emergency_rows, names, kinds, patients, control),
        "consent_uptake": Table(
            "consent_uptake",
            ("purpose", "patients"),
            [{"purpose": codes.slug(p), "patients": control.protect(n)} for p, n in uptake],
            {"registered_patients": control.protect(len(patients))},
        ),
        "refused_attempts": _refused_table(refused, refusal_names, control),
    }
    shown_requester = PATIENT_ACCOUNTS if requested_by.lower() in patients else requested_by
    return Report(
        shown_requester,
        requester_kind,
        status.chain_id,
        status.address,
        status.indexed_to,
        now,
        period,
        control,
        tables,
    )


def report_json(report: Report) -> str:
    return json.dumps(report.to_json(), indent=2)
