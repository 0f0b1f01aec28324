"""The event index as a source of history for the views (audit trail, grants, records).

:func:`open_history` gives the views the index when there is one for this deployment and its
checkpoint is still on the chain (no fork has orphaned it): an :class:`IndexHistory` reads the events
up to the checkpoint from the database and the few blocks after it from the chain's logs, so its rows
are those of a log scan, only cheaper. Otherwise it gives a :class:`~medledger.chain.history.LogScan`
that says why the index was not used. Nothing here writes: building and following the index is
``medledger index``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, inspect, or_, select
from sqlalchemy.exc import SQLAlchemyError

from medledger.chain.events import ChainEvent, LogPosition, snake
from medledger.chain.history import E, EventHistory, HistorySource, LogScan, event_from_stored, topic_text
from medledger.chain.logsource import RpcSource
from medledger.chain.rawlogs import EventSpec, checksum
from medledger.client import Client
from medledger.errors import MedledgerError

from . import schema
from .errors import IndexNotBuilt
from .mapping import PARTY_ARGS, PATIENT_ARGS, RECORD_ARGS
from .query import IndexReader
from .service import index_location
from .store import Target, create_index_engine, database_url, expected_meta


class IndexHistory:
    """Events from the index up to its checkpoint (``indexed_to``), then from the chain's logs."""

    def __init__(self, client: Client, reader: IndexReader, indexed_to: int, location: str) -> None:
        self.reader = reader
        self.indexed_to = indexed_to
        self._tail = LogScan(client.contract, from_block=indexed_to + 1)
        self._source = HistorySource("index", client.deployment.block_number, indexed_to, location)
        self._specs = {s.name: s for s in reader.decoder.specs.values()}
        self._types = {s.name: {p.name: p.type for p in s.params} for s in self._specs.values()}
        self._times: dict[int, int] = {}
        self._senders: dict[str, str] = {}

    @property
    def source(self) -> HistorySource:
        return self._source

    def _conditions(self, kind: type[ChainEvent], filters: dict[str, Any]) -> list[Any]:
        """The WHERE terms of ``kind`` with ``filters`` on the role columns where the index keeps the
        argument there (indexed in the database), else on its topic column."""
        e = schema.events
        spec: EventSpec | None = self._specs.get(kind.__name__)
        if spec is None:
            raise TypeError(f"the contract's ABI has no event {kind.__name__}")
        indexed = spec.indexed
        names = {p.name for p in spec.params}
        party = next((n for n in PARTY_ARGS if n in names), None)  # the one the index keeps as ``party``
        terms: list[Any] = [e.c.name == kind.__name__]
        for key, value in filters.items():
            position = next((i for i, p in enumerate(indexed) if snake(p.name) == key), None)
            if position is None:
                raise TypeError(f"{kind.__name__} has no indexed argument {key!r}")
            name = indexed[position].name
            column = (
                e.c.patient
                if name in PATIENT_ARGS
                else e.c.record_id
                if name in RECORD_ARGS
                else e.c.party
                if name == party
                else e.c[f"t{position + 1}"]
            )
            terms.append(column == topic_text(value))
        return terms

    def events(self, kinds: Sequence[type[E]], **filters: Any) -> list[E]:
        given = {k: v for k, v in filters.items() if v is not None}
        e = schema.events
        query = (
            select(e.c.name, e.c.block_number, e.c.log_index, e.c.tx_hash, e.c.timestamp, e.c.args, e.c.sender)
            .where(or_(*(and_(*self._conditions(k, given)) for k in kinds)), e.c.block_number <= self.indexed_to)
            .order_by(e.c.block_number, e.c.log_index)
        )
        wanted = tuple(kinds)
        found: list[E] = []
        with self.reader.engine.connect() as conn:
            for row in conn.execute(query):
                position = LogPosition(int(row.block_number), int(row.log_index), row.tx_hash)
                event = event_from_stored(row.name, row.args, self._types.get(row.name, {}), position)
                if not isinstance(event, wanted):
                    continue
                self._times[position.block_number] = int(row.timestamp)
                if row.sender:
                    self._senders[row.tx_hash] = checksum(row.sender)
                found.append(event)
        return found + self._tail_events(wanted, given)

    def _tail_events(self, kinds: tuple[type[E], ...], filters: dict[str, Any]) -> list[E]:
        """The events after the checkpoint: one log query for all ``kinds`` (a few blocks), filtered here
        by the indexed arguments (what a log scan's topics would select)."""
        contract = self._tail.contract
        raw = contract.raw_logs([[contract.codec.topic0(k) for k in kinds]], from_block=self.indexed_to + 1)
        return [e for e in raw if isinstance(e, kinds) and all(_same(getattr(e, k), v) for k, v in filters.items())]

    def block_time(self, block_number: int) -> int:
        known = self._times.get(block_number)
        return known if known is not None else self._tail.block_time(block_number)

    def sender(self, event: ChainEvent) -> str:
        known = self._senders.get(event.log.tx_hash)
        return known if known is not None else self._tail.sender(event)


def _same(value: Any, wanted: Any) -> bool:
    """An event's argument equals a filter value as a log topic would compare them."""
    if isinstance(value, str) and isinstance(wanted, str):
        return value.lower() == wanted.lower()  # addresses, in any case
    return bool(value == wanted)


def _usable(client: Client, engine: Engine, location: str) -> tuple[IndexReader | None, int, str]:
    """The reader and its checkpoint if the database indexes this deployment and its checkpoint is
    on the chain; else (None, -1, why not)."""
    if not inspect(engine).has_table(schema.meta.name):
        return None, -1, f"no index at {location}: `medledger index` builds one"
    try:
        reader = IndexReader(engine)
    except IndexNotBuilt:
        return None, -1, f"no index at {location}: `medledger index` builds one"
    expected = expected_meta(Target.of(client.deployment))
    if any(reader.meta.get(k) != v for k, v in expected.items()):
        return None, -1, f"the index at {location} follows another deployment or ABI"
    status = reader.status()
    if status.indexed_hash is None:
        return None, -1, f"the index at {location} is empty: `medledger index` fills it"
    header = RpcSource(client.settings.rpc_url, client.settings.rpc_timeout).header(status.indexed_to)
    if header is None or header.hash != status.indexed_hash:
        return None, -1, f"the chain changed below the index's block {status.indexed_to}: `medledger index` repairs it"
    return reader, status.indexed_to, ""


def open_history(client: Client, *, url: str | None = None, home: Path | None = None) -> EventHistory:
    """The index of ``client``'s deployment as an :class:`IndexHistory` when it can be used, otherwise
    a log scan whose source says why (no index, another deployment's, orphaned by a fork, the database
    does not answer). ``url``: the index database (default ``$MEDLEDGER_INDEX_URL``, else the SQLite
    file under ``home``, default the settings' home). Creates nothing."""
    location = index_location(home or client.settings.home, client.deployment, url)
    sa_url = database_url(location)
    if sa_url.startswith("sqlite:///") and not Path(sa_url[len("sqlite:///") :]).exists():
        return LogScan(client.contract, reason="no event index: `medledger index` builds one")
    try:
        engine = create_index_engine(location)
    except MedledgerError as exc:
        return LogScan(client.contract, reason=f"the index cannot be opened: {exc}")
    shown = engine.url.render_as_string(hide_password=True)
    try:
        reader, indexed_to, why = _usable(client, engine, shown)
    except SQLAlchemyError as exc:
        reader, indexed_to, why = None, -1, f"the index at {shown} does not answer ({type(exc).__name__})"
    if reader is None:
        engine.dispose()
        return LogScan(client.contract, reason=why)
    return IndexHistory(client, reader, indexed_to, shown)
