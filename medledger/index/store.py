"""The index database: opening it (SQLite file or PostgreSQL URL), binding it to one deployment,
the checkpoint, writing one chunk of logs atomically, and rolling back to a common ancestor.

Every chunk is one transaction that also moves the checkpoint, with a compare-and-set on the
checkpoint it started from: a crash leaves the previous checkpoint and no partial rows, and two
indexers on one database never write the same range twice (the loser retries from the new
checkpoint). Inserts also ignore rows that already exist, so a replayed range changes nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Connection, Engine, and_, create_engine, delete, event, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.sql.schema import Table

from medledger.chain.logsource import Header
from medledger.chain.rawlogs import DecodedLog, abi_hash
from medledger.errors import ConfigError, ServiceUnavailable
from medledger.paths import index_dir

from . import mapping, schema
from .errors import CheckpointMoved, IndexMismatch


@dataclass(frozen=True)
class Target:
    """What an index follows: one contract on one chain, decoded with its ABI, from a block on."""

    chain_id: int
    address: str
    abi: list[dict[str, Any]]
    start_block: int

    @classmethod
    def of(cls, deployment: Any) -> Target:
        """From a :class:`medledger.deployments.Deployment`."""
        return cls(
            int(deployment.chain_id), str(deployment.address), list(deployment.abi), int(deployment.block_number)
        )


@dataclass(frozen=True)
class Checkpoint:
    block_number: int
    block_hash: str | None


@dataclass
class Chunk:
    """Logs of blocks ``first``..``last`` read consistently against ``last_hash``."""

    first: int
    last: int
    last_hash: str
    logs: list[tuple[DecodedLog, int]]
    blocks: list[Header]
    senders: dict[str, str]


def database_url(value: str | Path) -> str:
    """A SQLAlchemy URL from a PostgreSQL URL (psycopg 3 driver), a ``sqlite:///`` URL or a path."""
    text = str(value)
    for prefix in ("postgresql://", "postgres://"):
        if text.startswith(prefix):
            return "postgresql+psycopg://" + text[len(prefix) :]
    if text.startswith(("postgresql+psycopg://", "sqlite://")):
        return text
    if "://" in text:
        raise ConfigError(
            f"The index database must be a PostgreSQL URL (postgresql://...), a sqlite:/// URL or a "
            f"file path, not {text.split('://')[0]}://..."
        )
    return f"sqlite:///{Path(text).expanduser().absolute()}"


def default_database(home: Path, chain_id: int, address: str) -> Path:
    """The default SQLite file: one per deployment under ``<home>/index``."""
    return index_dir(Path(home)) / f"{chain_id}-{address.lower()}.sqlite"


def expected_meta(target: Target) -> dict[str, str]:
    """What the ``meta`` table of an index of ``target`` says (besides the ABI itself)."""
    return {
        "schema_version": schema.SCHEMA_VERSION,
        "chain_id": str(target.chain_id),
        "address": target.address.lower(),
        "abi_hash": abi_hash(target.abi),
        "start_block": str(target.start_block),
    }


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA cache_size=-65536")  # 64 MiB: index pages of 100k+ events stay in memory
    cursor.close()


def create_index_engine(url: str | Path) -> Engine:
    sa_url = database_url(url)
    try:
        parsed = make_url(sa_url)
    except ArgumentError as exc:
        raise ConfigError(f"Not a database URL: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(sa_url)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(sa_url, pool_pre_ping=True)


def _insert_ignore(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows``, skipping those whose key exists (a replayed range changes nothing)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        _copy_ignore(conn, table, rows)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        conn.execute(sqlite_insert(table).on_conflict_do_nothing(), list(rows))


def _copy_ignore(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """PostgreSQL: COPY into a temporary table of the same shape, then INSERT ... ON CONFLICT DO
    NOTHING from it, in the chunk's transaction (about five times faster than an executemany)."""
    from psycopg.types.json import Jsonb

    columns = [c.name for c in table.columns]
    json_columns = {c.name for c in table.columns if isinstance(c.type, JSON)}
    stage = f"stage_{table.name}"
    driver: Any = conn.connection.driver_connection
    with driver.cursor() as cur:
        cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {table.name}) ON COMMIT DELETE ROWS")
        with cur.copy(f"COPY {stage} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(
                    [Jsonb(row[c]) if c in json_columns and row.get(c) is not None else row.get(c) for c in columns]
                )
        cur.execute(
            f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT {', '.join(columns)} FROM {stage} "
            "ON CONFLICT DO NOTHING"
        )
        cur.execute(f"DELETE FROM {stage}")


class IndexStore:
    """One index database bound to one :class:`Target`."""

    def __init__(self, engine: Engine, target: Target) -> None:
        self.engine = engine
        self.target = target

    @classmethod
    def open(cls, url: str | Path, target: Target, *, reset: bool = False) -> IndexStore:
        engine = create_index_engine(url)
        store = cls(engine, target)
        try:
            if reset:
                schema.metadata.drop_all(engine)
            schema.metadata.create_all(engine)
            store._bind()
        except OperationalError as exc:
            shown = engine.url.render_as_string(hide_password=True)
            raise ServiceUnavailable("index database", shown, str(exc.orig)) from exc
        return store

    def close(self) -> None:
        self.engine.dispose()

    def _bind(self) -> None:
        expected = expected_meta(self.target)
        with self.engine.begin() as conn:
            stored = {k: v for k, v in conn.execute(select(schema.meta.c.key, schema.meta.c.value))}
            if not stored:
                rows = [{"key": k, "value": v} for k, v in expected.items()]
                rows.append({"key": "abi", "value": json.dumps(self.target.abi)})
                conn.execute(schema.meta.insert(), rows)
                conn.execute(
                    schema.checkpoint.insert().values(
                        id=1, block_number=self.target.start_block - 1, block_hash=None, updated_at=int(time.time())
                    )
                )
                return
        for key in ("schema_version", "chain_id", "address", "abi_hash", "start_block"):
            if stored.get(key) != expected[key]:
                shown = self.engine.url.render_as_string(hide_password=True)
                raise IndexMismatch(
                    f"The index database {shown} was built for another {key.replace('_', ' ')} "
                    f"({stored.get(key)!r}, this deployment has {expected[key]!r}); use another database or "
                    "rebuild it with `medledger index --reset`."
                )

    # --- reading the state ---------------------------------------------------------------------
    def checkpoint(self) -> Checkpoint:
        with self.engine.connect() as conn:
            row = conn.execute(select(schema.checkpoint.c.block_number, schema.checkpoint.c.block_hash)).one()
        return Checkpoint(int(row[0]), row[1])

    def known_blocks(self, below: int, page: int = 200) -> Iterator[list[tuple[int, str]]]:
        """Stored (number, hash) pairs of blocks at or below ``below``, newest first, in pages."""
        b = schema.blocks
        upper = below
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(b.c.number, b.c.hash).where(b.c.number <= upper).order_by(b.c.number.desc()).limit(page)
                ).all()
            if not rows:
                return
            yield [(int(n), str(h)) for n, h in rows]
            upper = int(rows[-1][0]) - 1

    # --- writing -------------------------------------------------------------------------------
    def _move_checkpoint(self, conn: Connection, expect: Checkpoint, number: int, block_hash: str | None) -> None:
        c = schema.checkpoint
        same_hash = c.c.block_hash.is_(None) if expect.block_hash is None else c.c.block_hash == expect.block_hash
        moved = conn.execute(
            update(c)
            .where(and_(c.c.id == 1, c.c.block_number == expect.block_number, same_hash))
            .values(block_number=number, block_hash=block_hash, updated_at=int(time.time()))
        )
        if moved.rowcount != 1:
            raise CheckpointMoved("another indexer moved the checkpoint; reading again from the new one")

    def write_chunk(self, chunk: Chunk, expect: Checkpoint) -> int:
        """Write a chunk and move the checkpoint to its last block, atomically. Returns the number
        of events written."""
        rows = [
            mapping.event_row(log, ts, chunk.senders.get(log.tx_hash) if log.name in mapping.SENDER_EVENTS else None)
            for log, ts in chunk.logs
        ]
        derived = mapping.derive(chunk.logs, chunk.first)
        with self.engine.begin() as conn:
            self._move_checkpoint(conn, expect, chunk.last, chunk.last_hash)
            _insert_ignore(
                conn,
                schema.blocks,
                [{"number": h.number, "hash": h.hash, "timestamp": h.timestamp} for h in chunk.blocks],
            )
            _insert_ignore(conn, schema.events, rows)
            _insert_ignore(conn, schema.grants, derived.grants)
            _insert_ignore(conn, schema.records, derived.records)
            _insert_ignore(conn, schema.accesses, derived.accesses)
            mapping.apply_updates(conn, derived)
        return len(rows)

    def rollback_to(self, ancestor: int, ancestor_hash: str | None, expect: Checkpoint) -> int:
        """Forget everything above block ``ancestor``; returns the number of events removed."""
        with self.engine.begin() as conn:
            self._move_checkpoint(conn, expect, ancestor, ancestor_hash)
            removed = conn.execute(delete(schema.events).where(schema.events.c.block_number > ancestor)).rowcount
            conn.execute(delete(schema.blocks).where(schema.blocks.c.number > ancestor))
            mapping.rollback(conn, ancestor)
        return int(removed or 0)
