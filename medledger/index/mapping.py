"""What the medledger contract's events mean for the derived tables: the one module to adapt when
the contract's ABI changes (the ``events`` table itself follows any ABI unchanged).

Everything here reads arguments **by name** and treats arguments the current ABI lacks as optional
(``delegationId``, ``issuedAt``, ``keyEpoch``, an ``author`` on ``RecordAmended``), so events that
gain fields keep working and fill the extra columns. The derived rows of one chunk of logs are built
in Python first (a grant replaced or revoked within the chunk is ended before it is written); what a
chunk changes in rows written by earlier chunks comes out as a few batched updates.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, or_, update

from medledger.chain.rawlogs import DecodedLog

from . import schema

#: Argument names that say whose data an event concerns.
PATIENT_ARGS = ("patient",)
#: Argument names of the counterparty an event is about (first one present wins).
PARTY_ARGS = ("grantee", "accessor", "author", "clinician", "delegate", "recipient", "account")
#: Argument names of the record (or batch root) an event is about.
RECORD_ARGS = ("recordId", "root")
#: Events that name no actor: the index fetches their transaction's sender.
SENDER_EVENTS = frozenset({"RecordAmended"})
#: Event names of a refused attempt, if a deployment records them (the current one does not).
REFUSAL_SUFFIXES = ("Refused", "Denied", "Rejected")


def clamp(value: Any) -> int:
    """An unsigned chain integer in a signed 64-bit column (``uint64`` max means never)."""
    return min(int(value), schema.MAX_INT)


def month_of(timestamp: int) -> str:
    return _dt.datetime.fromtimestamp(timestamp, _dt.UTC).strftime("%Y-%m")


def _first(args: Mapping[str, Any], names: Sequence[str]) -> Any:
    for name in names:
        if name in args:
            return args[name]
    return None


def event_row(log: DecodedLog, timestamp: int, sender: str | None) -> dict[str, Any]:
    """The ``events`` row of a decoded log."""
    t = (*log.indexed, "", "", "")
    return {
        "block_number": log.block_number,
        "log_index": log.log_index,
        "block_hash": log.block_hash,
        "tx_hash": log.tx_hash,
        "tx_index": log.tx_index,
        "timestamp": timestamp,
        "name": log.name,
        "patient": _first(log.args, PATIENT_ARGS),
        "party": _first(log.args, PARTY_ARGS),
        "record_id": _first(log.args, RECORD_ARGS),
        "t1": t[0] or None,
        "t2": t[1] or None,
        "t3": t[2] or None,
        "args": log.args,
        "sender": sender,
    }


# --- derived rows of one chunk ---------------------------------------------------------------------
@dataclass
class Derived:
    """The derived inserts of a chunk and its updates of rows from earlier chunks."""

    grants: list[dict[str, Any]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    accesses: list[dict[str, Any]] = field(default_factory=list)
    end_grants: list[dict[str, Any]] = field(default_factory=list)
    end_delegated: list[dict[str, Any]] = field(default_factory=list)
    erase_records: list[dict[str, Any]] = field(default_factory=list)
    supersede_records: list[dict[str, Any]] = field(default_factory=list)
    link_previous: list[dict[str, Any]] = field(default_factory=list)


class _Builder:
    def __init__(self, first_block: int) -> None:
        self.first_block = first_block
        self.out = Derived()
        self.open_grants: dict[tuple[str, str, int], dict[str, Any]] = {}
        self.touched: set[tuple[str, str, int]] = set()
        self.new_records: dict[tuple[str, str], dict[str, Any]] = {}

    # consent ------------------------------------------------------------------------------------
    @staticmethod
    def _ended(log: DecodedLog, ts: int, by: Any, how: str) -> dict[str, Any]:
        return {
            "ended_block": log.block_number,
            "ended_log": log.log_index,
            "ended_at": ts,
            "ended_tx": log.tx_hash,
            "ended_by": by,
            "ended_how": how,
        }

    def _end_grant(self, key: tuple[str, str, int], log: DecodedLog, ts: int, by: Any, how: str) -> None:
        ended = self._ended(log, ts, by, how)
        row = self.open_grants.pop(key, None)
        if row is not None:
            row.update(ended)
        elif key not in self.touched:  # the open decision, if any, was written by an earlier chunk
            self.out.end_grants.append(
                {
                    "k_patient": key[0],
                    "k_grantee": key[1],
                    "k_access": key[2],
                    "k_before": self.first_block,
                    **_prefixed(ended),
                }
            )
        self.touched.add(key)

    def consent_granted(self, log: DecodedLog, ts: int) -> None:
        a = log.args
        key = (a["patient"], a["grantee"], int(a["access"]))
        self._end_grant(key, log, ts, a.get("by"), "replaced")
        row = {
            "block_number": log.block_number,
            "log_index": log.log_index,
            "patient": key[0],
            "grantee": key[1],
            "access": key[2],
            "categories": int(a["categories"]),
            "purposes": int(a["purposes"]),
            "start": clamp(a.get("start", 0)),
            "expiry": clamp(a["expiry"]),
            "key_envelope": a.get("keyEnvelope"),
            "granted_by": a.get("by"),
            "granted_at": ts,
            "tx_hash": log.tx_hash,
            "delegation_id": _optional_int(a, "delegationId", "delegation"),
            "issued_at": _optional_int(a, "issuedAt"),
            "ended_block": None,
            "ended_log": None,
            "ended_at": None,
            "ended_tx": None,
            "ended_by": None,
            "ended_how": None,
        }
        self.out.grants.append(row)
        self.open_grants[key] = row

    def consent_revoked(self, log: DecodedLog, ts: int) -> None:
        a = log.args
        self._end_grant((a["patient"], a["grantee"], int(a["access"])), log, ts, a.get("by"), "revoked")

    def delegate_removed(self, log: DecodedLog, ts: int) -> None:
        """The new contracts give each delegation an id and void the consents a delegate made when it
        is removed: those decisions end here ('delegation-ended'). Without an id: nothing to end."""
        a = log.args
        delegation = _optional_int(a, "id", "delegationId", "delegation")
        if not delegation:
            return
        ended = self._ended(log, ts, a["patient"], "delegation-ended")
        for key, row in list(self.open_grants.items()):
            if key[0] == a["patient"] and row["delegation_id"] == delegation:
                row.update(ended)
                del self.open_grants[key]
        self.out.end_delegated.append(
            {"k_patient": a["patient"], "k_delegation": delegation, "k_before": self.first_block, **_prefixed(ended)}
        )

    # records ------------------------------------------------------------------------------------
    def record_registered(self, log: DecodedLog, ts: int, batch: bool) -> None:
        a = log.args
        rid = a["root"] if batch else a["recordId"]
        row = {
            "patient": a["patient"],
            "record_id": rid,
            "author": a.get("author"),
            "category": int(a["category"]),
            "purpose": _optional_int(a, "purpose"),
            "fingerprint": a.get("fingerprint"),
            "cid": cid_of(a),
            "is_batch": batch,
            "leaf_count": _optional_int(a, "leafCount"),
            "key_epoch": _optional_int(a, "keyEpoch"),
            "block_number": log.block_number,
            "log_index": log.log_index,
            "created_at": ts,
            "tx_hash": log.tx_hash,
            "previous_id": None,
            "next_id": None,
            "superseded_block": None,
            "erased_block": None,
            "erased_at": None,
            "erased_tx": None,
        }
        self.out.records.append(row)
        self.new_records[(row["patient"], rid)] = row

    def record_amended(self, log: DecodedLog, _ts: int) -> None:
        a = log.args
        patient, previous, new = a["patient"], a["previousId"], a["recordId"]
        row = self.new_records.get((patient, new))
        if row is not None:
            row["previous_id"] = previous
        else:  # pragma: no cover - the contract emits RecordRegistered first, in the same tx
            self.out.link_previous.append({"k_patient": patient, "k_record": new, "previous_id": previous})
        old = self.new_records.get((patient, previous))
        if old is not None:
            old.update(next_id=new, superseded_block=log.block_number)
        else:
            self.out.supersede_records.append(
                {"k_patient": patient, "k_record": previous, "next_id": new, "superseded_block": log.block_number}
            )

    def record_erased(self, log: DecodedLog, ts: int) -> None:
        a = log.args
        erased = {"erased_block": log.block_number, "erased_at": ts, "erased_tx": log.tx_hash}
        row = self.new_records.get((a["patient"], a["recordId"]))
        if row is not None:
            row.update(erased)
        else:
            self.out.erase_records.append({"k_patient": a["patient"], "k_record": a["recordId"], **erased})

    def record_accessed(self, log: DecodedLog, ts: int) -> None:
        a = log.args
        self.out.accesses.append(
            {
                "block_number": log.block_number,
                "log_index": log.log_index,
                "patient": a["patient"],
                "record_id": a["recordId"],
                "accessor": a["accessor"],
                "purpose": int(a["purpose"]),
                "emergency": bool(a.get("emergency", False)),
                "accessed_at": ts,
                "month": month_of(ts),
                "tx_hash": log.tx_hash,
            }
        )


def cid_of(args: Mapping[str, Any]) -> str | None:
    """The record's binary CID as hex: the ``cid`` argument, or (new contracts) CIDv1 rebuilt from
    ``cidCodec`` (0x55 raw, 0x70 dag-pb) and the sha2-256 ``cidDigest``."""
    if args.get("cid") is not None:
        return str(args["cid"])
    digest, codec = args.get("cidDigest"), args.get("cidCodec")
    if digest is None or codec is None:
        return None
    return f"0x01{int(codec):02x}1220{str(digest)[2:]}"


def _prefixed(values: Mapping[str, Any]) -> dict[str, Any]:
    """Bind names for an UPDATE that sets these columns and also compares them in its WHERE."""
    return {f"v_{k}": v for k, v in values.items()}


def _optional_int(args: Mapping[str, Any], *names: str) -> int | None:
    value = _first(args, names)
    return None if value is None else clamp(value)


def derive(logs: Iterable[tuple[DecodedLog, int]], first_block: int) -> Derived:
    """The derived rows of one chunk: ``logs`` are (decoded log, block time) in chain order."""
    b = _Builder(first_block)
    handlers = {
        "ConsentGranted": b.consent_granted,
        "ConsentRevoked": b.consent_revoked,
        "DelegateRemoved": b.delegate_removed,
        "RecordRegistered": lambda log, ts: b.record_registered(log, ts, batch=False),
        "BatchAnchored": lambda log, ts: b.record_registered(log, ts, batch=True),
        "RecordAmended": b.record_amended,
        "RecordErased": b.record_erased,
        "RecordAccessed": b.record_accessed,
    }
    for log, ts in logs:
        handler = handlers.get(log.name)
        if handler is not None:
            handler(log, ts)
    return b.out


_END_COLUMNS = ("ended_block", "ended_log", "ended_at", "ended_tx", "ended_by", "ended_how")


def apply_updates(conn: Connection, d: Derived) -> None:
    """Write a chunk's updates of rows from earlier chunks (after its inserts).

    A decision ends at its *first* ending event: an end is written over a row that is open or that
    ended later than this event, so the order in which the batches below run does not matter."""
    g, r = schema.grants, schema.records
    not_ended_before = and_(
        g.c.block_number < bindparam("k_before"),
        or_(
            g.c.ended_block.is_(None),
            g.c.ended_block > bindparam("v_ended_block"),
            and_(g.c.ended_block == bindparam("v_ended_block"), g.c.ended_log > bindparam("v_ended_log")),
        ),
    )
    ends: dict[str, Any] = {c: bindparam(f"v_{c}") for c in _END_COLUMNS}
    if d.end_grants:
        key = and_(
            g.c.patient == bindparam("k_patient"),
            g.c.grantee == bindparam("k_grantee"),
            g.c.access == bindparam("k_access"),
        )
        conn.execute(update(g).where(key, not_ended_before).values(ends), d.end_grants)
    if d.end_delegated:
        made_by = and_(g.c.patient == bindparam("k_patient"), g.c.delegation_id == bindparam("k_delegation"))
        conn.execute(update(g).where(made_by, not_ended_before).values(ends), d.end_delegated)
    record_key = and_(r.c.patient == bindparam("k_patient"), r.c.record_id == bindparam("k_record"))
    for rows, columns in (
        (d.erase_records, ("erased_block", "erased_at", "erased_tx")),
        (d.supersede_records, ("next_id", "superseded_block")),
        (d.link_previous, ("previous_id",)),
    ):
        if rows:
            conn.execute(update(r).where(record_key).values({c: bindparam(c) for c in columns}), rows)


def rollback(conn: Connection, ancestor: int) -> None:
    """Undo everything above block ``ancestor`` in the derived tables (the generic tables are
    handled by the store): rows created above it go, ends and links made above it are reopened."""
    g, r = schema.grants, schema.records
    for table in (g, r, schema.accesses):
        conn.execute(delete(table).where(table.c.block_number > ancestor))
    conn.execute(
        update(g)
        .where(g.c.ended_block > ancestor)
        .values(ended_block=None, ended_log=None, ended_at=None, ended_tx=None, ended_by=None, ended_how=None)
    )
    conn.execute(update(r).where(r.c.erased_block > ancestor).values(erased_block=None, erased_at=None, erased_tx=None))
    conn.execute(update(r).where(r.c.superseded_block > ancestor).values(next_id=None, superseded_block=None))
