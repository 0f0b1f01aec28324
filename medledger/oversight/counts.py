"""Exact counts from the index for the oversight report (disclosure control is applied later, in
:mod:`.report`). No query here returns a patient address: only codes, months, counts and the
accounts of registered organisations and professionals.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, and_, func, select
from sqlalchemy.sql.elements import ColumnElement

from medledger import codes
from medledger.index import schema
from medledger.index.mapping import REFUSAL_SUFFIXES, month_of


@dataclass(frozen=True)
class Period:
    """Whole months ``since``..``until`` (``YYYY-MM``, both inclusive; None: open)."""

    since: str | None = None
    until: str | None = None

    def __post_init__(self) -> None:
        for value in (self.since, self.until):
            if value is not None:
                _dt.datetime.strptime(value, "%Y-%m")  # raises ValueError on anything else
        if self.since and self.until and self.since > self.until:
            raise ValueError(f"the period starts ({self.since}) after it ends ({self.until})")

    def months(self, column: ColumnElement[str]) -> list[ColumnElement[bool]]:
        out = []
        if self.since:
            out.append(column >= self.since)
        if self.until:
            out.append(column <= self.until)
        return out

    def times(self, column: ColumnElement[int]) -> list[ColumnElement[bool]]:
        out = []
        if self.since:
            out.append(column >= _month_start(self.since))
        if self.until:
            year, month = map(int, self.until.split("-"))
            following = f"{year + month // 12}-{month % 12 + 1:02d}"
            out.append(column < _month_start(following))
        return out

    def to_json(self) -> dict[str, str | None]:
        return {"from": self.since, "to": self.until}


def _month_start(month: str) -> int:
    return int(_dt.datetime.strptime(month, "%Y-%m").replace(tzinfo=_dt.UTC).timestamp())


def accesses(conn: Connection, period: Period) -> list[tuple[str, int, int | None, int]]:
    """(month, purpose, category, accesses): record reads by month, purpose and the record's
    category (None if the record is not in the index)."""
    a, r = schema.accesses, schema.records
    joined = a.outerjoin(r, and_(r.c.patient == a.c.patient, r.c.record_id == a.c.record_id))
    query = (
        select(a.c.month, a.c.purpose, r.c.category, func.count())
        .select_from(joined)
        .where(*period.months(a.c.month))
        .group_by(a.c.month, a.c.purpose, r.c.category)
        .order_by(a.c.month, a.c.purpose, r.c.category)
    )
    return [(m, int(p), None if c is None else int(c), int(n)) for m, p, c, n in conn.execute(query)]


def emergency_openings(conn: Connection, period: Period) -> list[tuple[str, int]]:
    """(opening account, openings) of emergency access in the period."""
    e = schema.events
    query = (
        select(e.c.party, func.count())
        .where(and_(e.c.name == "EmergencyAccessOpened", *period.times(e.c.timestamp)))
        .group_by(e.c.party)
    )
    return [(str(account), int(n)) for account, n in conn.execute(query)]


def participant_kinds(conn: Connection) -> dict[str, codes.ParticipantKind]:
    """Registered organisations and professionals by (lower-case) address."""
    e = schema.events
    rows = conn.execute(select(e.c.party, e.c.t2).where(e.c.name == "ParticipantRegistered"))
    return {str(account): codes.ParticipantKind(int(kind)) for account, kind in rows}


def patients(conn: Connection) -> set[str]:
    """Every registered patient's (lower-case) address: kept out of every report."""
    e = schema.events
    return {str(p) for (p,) in conn.execute(select(e.c.patient).where(e.c.name == "PatientRegistered"))}


def consent_uptake(conn: Connection, now: int) -> list[tuple[codes.Purpose, int]]:
    """(purpose, patients): how many patients hold at least one live consent covering the purpose
    at time ``now`` (any grantee, read or write)."""
    g = schema.grants
    out = []
    for purpose in codes.Purpose:
        query = select(func.count(func.distinct(g.c.patient))).where(
            and_(
                g.c.ended_block.is_(None),
                g.c.start <= now,
                g.c.expiry > now,
                g.c.purposes.op("&")(1 << int(purpose)) != 0,
            )
        )
        out.append((purpose, int(conn.execute(query).scalar_one())))
    return out


def refusal_events(abi: Iterable[dict[str, object]]) -> list[str]:
    """The ABI's events that record a refused attempt (by name; none in the current contract)."""
    return sorted(
        {str(e["name"]) for e in abi if e.get("type") == "event" and str(e.get("name", "")).endswith(REFUSAL_SUFFIXES)}
    )


def refused_attempts(conn: Connection, names: list[str], period: Period) -> list[tuple[str, str, int]]:
    """(event, month, attempts) for the refusal events the deployment records."""
    if not names:
        return []
    e = schema.events
    stamps = conn.execute(
        select(e.c.name, e.c.timestamp).where(and_(e.c.name.in_(names), *period.times(e.c.timestamp)))
    )
    counted = Counter((name, month_of(int(ts))) for name, ts in stamps)
    return [(name, month, n) for (name, month), n in sorted(counted.items())]


def abi_of(conn: Connection) -> list[dict[str, object]]:
    value = conn.execute(select(schema.meta.c.value).where(schema.meta.c.key == "abi")).scalar_one()
    return list(json.loads(value))
