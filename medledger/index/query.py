"""Reading the index: the queries the audit, grants and records views need, as frozen dataclasses.

Shaped for the views that use the index when it is current (:mod:`medledger.index.history` feeds them);
over 400 lines on purpose, one query per view side by side, so they stay consistent:

- :meth:`IndexReader.trail` gives a patient's events oldest first; each
  :meth:`IndexedEvent.as_event_data` has the shape of a web3 ``EventData`` (``event``, ``args`` with
  checksummed addresses and ``bytes``, ``blockNumber``, ``logIndex``, ``transactionHash``), so
  ``audit._entry`` takes it unchanged; ``timestamp`` saves its block-time lookups and ``sender``
  its ``get_transaction`` for ``RecordAmended``.
- :meth:`IndexReader.grants_held` / :meth:`grants_given` give the current consent decisions (and
  with ``history=True`` every decision with when, how and by whom it ended); ``GrantEntry.to_json``
  has the keys of ``consent.Grant.to_json`` plus the history fields.
- :meth:`IndexReader.records` / :meth:`record` give a record's header as registered (author,
  category, purpose, fingerprint, CID, key epoch, versions, erasure): what the commitment design of
  the new contracts needs to rebuild a header from an id.
- :meth:`IndexReader.status` says how far the index is and, given the chain head, whether it is
  current.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils import is_address
from sqlalchemy import Engine, func, select

from medledger import codes
from medledger.chain.rawlogs import EventDecoder, checksum, python_value
from medledger.consent import Grant
from medledger.errors import ConfigError

from . import schema
from .errors import IndexNotBuilt


def _addr(value: str, what: str = "address") -> str:
    if not isinstance(value, str) or not is_address(value):
        raise ConfigError(f"{what} {value!r} is not an address (0x + 40 hex digits)")
    return value.lower()


def _hex(value: bytes | str) -> str:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    text = value.lower()
    return text if text.startswith("0x") else "0x" + text


def _checksum(value: str | None) -> str | None:
    return checksum(value) if value else None


_categories = functools.lru_cache(maxsize=None)(codes.mask_to_categories)
_purposes = functools.lru_cache(maxsize=None)(codes.mask_to_purposes)


def _bytes(value: str | None) -> bytes | None:
    return bytes.fromhex(value[2:]) if value else None


@dataclass(frozen=True)
class IndexedEvent:
    """One indexed log; ``args`` as web3 decodes them (checksummed addresses, ``bytes``)."""

    name: str
    block_number: int
    log_index: int
    block_hash: str
    tx_hash: str
    timestamp: int
    args: Mapping[str, Any]
    sender: str | None

    def as_event_data(self) -> dict[str, Any]:
        """The shape of a web3 ``EventData`` (what ``Client.logs`` returns)."""
        return {
            "event": self.name,
            "args": dict(self.args),
            "blockNumber": self.block_number,
            "logIndex": self.log_index,
            "transactionHash": bytes.fromhex(self.tx_hash[2:]),
            "blockHash": bytes.fromhex(self.block_hash[2:]),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "event": self.name,
            "block": self.block_number,
            "log_index": self.log_index,
            "time": self.timestamp,
            "tx_hash": self.tx_hash,
            "args": {k: ("0x" + v.hex() if isinstance(v, bytes) else v) for k, v in self.args.items()},
            "sender": self.sender,
        }


@dataclass(frozen=True)
class GrantEntry:
    """One consent decision (a ``ConsentGranted``: its terms as :class:`medledger.consent.Grant`,
    what the grants views show) and, if it no longer stands, how it ended: ``revoked``
    (``ConsentRevoked``) or ``replaced`` (a later decision for the same grantee and access)."""

    grant: Grant
    key_envelope: bytes | None
    granted_by: str | None
    granted_at: int
    granted_block: int
    granted_log: int
    granted_tx: str
    delegation_id: int | None
    issued_at: int | None
    ended_at: int | None
    ended_block: int | None
    ended_tx: str | None
    ended_by: str | None
    ended_how: str | None

    @property
    def current(self) -> bool:
        """Still the standing decision (not revoked, not replaced); it may have expired."""
        return self.ended_block is None

    def live(self, now: int) -> bool:
        return self.current and self.grant.start <= now < self.grant.expiry

    def to_json(self) -> dict[str, Any]:
        """``Grant.to_json`` plus when, how and by whom the decision was made and ended."""
        return {
            **self.grant.to_json(),
            "granted_by": self.granted_by,
            "granted_at": self.granted_at,
            "granted_block": self.granted_block,
            "granted_tx": self.granted_tx,
            "delegation_id": self.delegation_id,
            "issued_at": self.issued_at,
            "current": self.current,
            "ended_how": self.ended_how,
            "ended_at": self.ended_at,
            "ended_block": self.ended_block,
            "ended_tx": self.ended_tx,
            "ended_by": self.ended_by,
        }


@dataclass(frozen=True)
class RecordEntry:
    """A record (or batch root) as registered, with its later amendment and erasure."""

    patient: str
    record_id: bytes
    author: str | None
    category: codes.Category
    purpose: codes.Purpose | None
    fingerprint: bytes | None
    cid: bytes | None
    is_batch: bool
    leaf_count: int | None
    key_epoch: int | None
    created_at: int
    block_number: int
    tx_hash: str
    previous_id: bytes | None
    next_id: bytes | None
    erased_at: int | None
    erased_tx: str | None

    @property
    def erased(self) -> bool:
        return self.erased_at is not None

    def contract_header(self) -> dict[str, Any]:
        """The header the new contracts commit to in one slot and take back in calldata
        (``RecordHeader``: erasure and batches have a zero fingerprint). Built from the events; an
        index that is not current gives a stale header, which the contract refuses
        (``RecordHeaderMismatch``) rather than misreads."""
        zero = b"\x00" * 32
        return {
            "author": self.author or "0x" + "00" * 20,
            "category": int(self.category),
            "keyEpoch": self.key_epoch or 0,
            "erased": self.erased,
            "isBatch": self.is_batch,
            "leafCount": self.leaf_count or 0,
            "fingerprint": zero if self.erased or self.is_batch or self.fingerprint is None else self.fingerprint,
            "previous": self.previous_id or zero,
            "next": self.next_id or zero,
        }

    def to_json(self) -> dict[str, Any]:
        def h(value: bytes | None) -> str | None:
            return "0x" + value.hex() if value is not None else None

        return {
            "patient": self.patient,
            "record_id": h(self.record_id),
            "author": self.author,
            "category": codes.slug(self.category),
            "purpose": codes.slug(self.purpose) if self.purpose is not None else None,
            "fingerprint": h(self.fingerprint),
            "cid": h(self.cid),
            "batch": self.is_batch,
            "leaf_count": self.leaf_count,
            "key_epoch": self.key_epoch,
            "created_at": self.created_at,
            "block": self.block_number,
            "tx_hash": self.tx_hash,
            "previous_id": h(self.previous_id),
            "next_id": h(self.next_id),
            "erased": self.erased,
            "erased_at": self.erased_at,
            "erased_tx": self.erased_tx,
        }


@dataclass(frozen=True)
class IndexStatus:
    chain_id: int
    address: str
    start_block: int
    indexed_to: int
    indexed_hash: str | None
    events: int

    def lag(self, head: int) -> int:
        return max(0, head - self.indexed_to)

    def is_current(self, head: int, max_lag: int = 0) -> bool:
        """Whether the index covers the chain up to ``head`` (less ``max_lag`` blocks, e.g. the
        confirmations it was built with)."""
        return self.indexed_to >= head - max_lag

    def to_json(self, head: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "chain_id": self.chain_id,
            "contract": self.address,
            "start_block": self.start_block,
            "indexed_to": self.indexed_to,
            "indexed_hash": self.indexed_hash,
            "events": self.events,
        }
        if head is not None:
            out.update(head=head, lag=self.lag(head))
        return out


class IndexReader:
    """Queries over an index database (any of its connections; read-only)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        with engine.connect() as conn:
            try:
                meta = {k: v for k, v in conn.execute(select(schema.meta.c.key, schema.meta.c.value))}
            except Exception as exc:
                raise IndexNotBuilt("There is no index in this database yet; run `medledger index` first.") from exc
        if "abi" not in meta:
            raise IndexNotBuilt("There is no index in this database yet; run `medledger index` first.")
        self.meta = meta
        self.abi: list[dict[str, Any]] = json.loads(meta["abi"])
        self.decoder = EventDecoder(self.abi)
        self._types = {s.name: {p.name: p.type for p in s.params} for s in self.decoder.specs.values()}

    # --- status --------------------------------------------------------------------------------
    def status(self) -> IndexStatus:
        with self.engine.connect() as conn:
            number, block_hash = conn.execute(
                select(schema.checkpoint.c.block_number, schema.checkpoint.c.block_hash)
            ).one()
            count = conn.execute(select(func.count()).select_from(schema.events)).scalar_one()
        return IndexStatus(
            int(self.meta["chain_id"]),
            checksum(self.meta["address"]),
            int(self.meta["start_block"]),
            int(number),
            block_hash,
            int(count),
        )

    # --- events --------------------------------------------------------------------------------
    def _event(self, row: Any) -> IndexedEvent:
        types = self._types.get(row.name, {})
        args = {k: python_value(types.get(k, ""), v) for k, v in row.args.items()}
        return IndexedEvent(
            row.name,
            int(row.block_number),
            int(row.log_index),
            row.block_hash,
            row.tx_hash,
            int(row.timestamp),
            args,
            _checksum(row.sender),
        )

    def events(
        self,
        *,
        patient: str | None = None,
        party: str | None = None,
        record_id: bytes | str | None = None,
        names: Iterable[str] | None = None,
        from_block: int | None = None,
        limit: int | None = None,
    ) -> list[IndexedEvent]:
        """Indexed events matching every filter given, oldest first."""
        e = schema.events
        where = []
        if patient is not None:
            where.append(e.c.patient == _addr(patient, "patient"))
        if party is not None:
            where.append(e.c.party == _addr(party))
        if record_id is not None:
            where.append(e.c.record_id == _hex(record_id))
        if names is not None:
            where.append(e.c.name.in_(list(names)))
        if from_block is not None:
            where.append(e.c.block_number >= from_block)
        query = select(e).where(*where).order_by(e.c.block_number, e.c.log_index)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [self._event(r) for r in conn.execute(query)]

    def trail(self, patient: str, names: Iterable[str] | None = None) -> list[IndexedEvent]:
        """A patient's history, oldest first (every event naming the patient, or only ``names``)."""
        return self.events(patient=patient, names=names)

    # --- grants --------------------------------------------------------------------------------
    @staticmethod
    def _grant(r: Any) -> GrantEntry:
        grant = Grant(
            checksum(r.patient),
            checksum(r.grantee),
            codes.Access(r.access),
            _categories(r.categories),
            _purposes(r.purposes),
            int(r.start),
            int(r.expiry),
        )
        return GrantEntry(
            grant=grant,
            key_envelope=_bytes(r.key_envelope),
            granted_by=_checksum(r.granted_by),
            granted_at=int(r.granted_at),
            granted_block=int(r.block_number),
            granted_log=int(r.log_index),
            granted_tx=r.tx_hash,
            delegation_id=r.delegation_id,
            issued_at=r.issued_at,
            ended_at=r.ended_at,
            ended_block=r.ended_block,
            ended_tx=r.ended_tx,
            ended_by=_checksum(r.ended_by),
            ended_how=r.ended_how,
        )

    def _grants(self, where: Sequence[Any], history: bool, now: int | None, order: Sequence[Any]) -> list[GrantEntry]:
        g = schema.grants
        conditions = list(where)
        if not history:
            conditions.append(g.c.ended_block.is_(None))
        if now is not None:
            conditions.append(g.c.expiry > now)
        query = select(g).where(*conditions).order_by(*order)
        with self.engine.connect() as conn:
            return [self._grant(r) for r in conn.execute(query)]

    def grants_held(self, grantee: str, *, history: bool = False, now: int | None = None) -> list[GrantEntry]:
        """The consents made to ``grantee``: the standing ones (``history``: every decision, oldest
        first); ``now`` drops those expired at that time."""
        g = schema.grants
        order = (g.c.block_number, g.c.log_index) if history else (g.c.patient, g.c.access)
        return self._grants([g.c.grantee == _addr(grantee, "grantee")], history, now, order)

    def grants_given(self, patient: str, *, history: bool = False, now: int | None = None) -> list[GrantEntry]:
        """The consents ``patient`` made (same options as :meth:`grants_held`)."""
        g = schema.grants
        order = (g.c.block_number, g.c.log_index) if history else (g.c.grantee, g.c.access)
        return self._grants([g.c.patient == _addr(patient, "patient")], history, now, order)

    def grant_history(self, patient: str, grantee: str, access: codes.Access | None = None) -> list[GrantEntry]:
        """Every decision of ``patient`` about ``grantee`` (one access or both), oldest first."""
        g = schema.grants
        where = [g.c.patient == _addr(patient, "patient"), g.c.grantee == _addr(grantee, "grantee")]
        if access is not None:
            where.append(g.c.access == int(access))
        return self._grants(where, True, None, (g.c.block_number, g.c.log_index))

    # --- records -------------------------------------------------------------------------------
    @staticmethod
    def _record(r: Any) -> RecordEntry:
        return RecordEntry(
            patient=checksum(r.patient),
            record_id=bytes.fromhex(r.record_id[2:]),
            author=_checksum(r.author),
            category=codes.Category(r.category),
            purpose=codes.Purpose(r.purpose) if r.purpose is not None else None,
            fingerprint=_bytes(r.fingerprint),
            cid=_bytes(r.cid),
            is_batch=bool(r.is_batch),
            leaf_count=r.leaf_count,
            key_epoch=r.key_epoch,
            created_at=int(r.created_at),
            block_number=int(r.block_number),
            tx_hash=r.tx_hash,
            previous_id=_bytes(r.previous_id),
            next_id=_bytes(r.next_id),
            erased_at=r.erased_at,
            erased_tx=r.erased_tx,
        )

    def records(self, patient: str, *, include_erased: bool = True) -> list[RecordEntry]:
        """A patient's records and batches, oldest first."""
        r = schema.records
        where = [r.c.patient == _addr(patient, "patient")]
        if not include_erased:
            where.append(r.c.erased_block.is_(None))
        query = select(r).where(*where).order_by(r.c.block_number, r.c.log_index)
        with self.engine.connect() as conn:
            return [self._record(row) for row in conn.execute(query)]

    def record(self, record_id: bytes | str, patient: str | None = None) -> RecordEntry | None:
        """One record's header; with ``patient`` in that patient's namespace (the new contracts key
        records by patient and id), otherwise the first registration of that id."""
        r = schema.records
        where = [r.c.record_id == _hex(record_id)]
        if patient is not None:
            where.append(r.c.patient == _addr(patient, "patient"))
        query = select(r).where(*where).order_by(r.c.block_number, r.c.log_index).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return self._record(row) if row is not None else None
