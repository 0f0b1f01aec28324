"""The index as commands and views use it: the database of one deployment (a SQLite file under the
medledger home unless a URL is given) and a catch-up before reading."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.exc import SQLAlchemyError

from . import schema
from .query import IndexReader
from .source import RpcSource
from .store import IndexStore, Target, create_index_engine, database_url, default_database, expected_meta
from .sync import Indexer, SyncResult

#: Environment variable naming the index database (a PostgreSQL URL or a SQLite path).
INDEX_URL_ENV = "MEDLEDGER_INDEX_URL"


def index_location(home: Path, deployment: Any, url: str | None = None) -> str:
    """``url``, else ``$MEDLEDGER_INDEX_URL``, else ``<home>/index/<chain>-<address>.sqlite``."""
    chosen = url or os.environ.get(INDEX_URL_ENV) or None
    if chosen:
        return chosen
    return str(default_database(home, int(deployment.chain_id), str(deployment.address)))


@dataclass
class LocalIndex:
    """An open index of one deployment, with the node it follows."""

    store: IndexStore
    source: RpcSource
    location: str

    @classmethod
    def open(cls, home: Path, deployment: Any, rpc_url: str, *, url: str | None = None,
             reset: bool = False, rpc_timeout: float = 60.0) -> "LocalIndex":
        location = index_location(home, deployment, url)
        store = IndexStore.open(location, Target.of(deployment), reset=reset)
        return cls(store, RpcSource(rpc_url, rpc_timeout), location)

    def indexer(self, confirmations: int = 0) -> Indexer:
        return Indexer(self.store, self.source, confirmations=confirmations)

    def sync(self, confirmations: int = 0) -> SyncResult:
        return self.indexer(confirmations).sync()

    def reader(self) -> IndexReader:
        return IndexReader(self.store.engine)

    @property
    def shown_location(self) -> str:
        """The location without a password."""
        return self.store.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.store.close()


def current_index(home: Path, deployment: Any, head: int, *, url: str | None = None,
                  max_lag: int = 0) -> IndexReader | None:
    """A reader of this deployment's index if one exists and is at most ``max_lag`` blocks behind
    ``head``; otherwise None, and the caller falls back to a log scan (and says which it used).
    Creates nothing: a missing SQLite file or an empty database is simply no index."""
    location = index_location(home, deployment, url)
    sa_url = database_url(location)
    if sa_url.startswith("sqlite:///") and not Path(sa_url[len("sqlite:///"):]).exists():
        return None
    engine = create_index_engine(location)
    try:
        if not inspect(engine).has_table(schema.meta.name):
            engine.dispose()
            return None
        with engine.connect() as conn:
            meta = {str(k): str(v) for k, v in conn.execute(select(schema.meta.c.key, schema.meta.c.value))}
        same = all(meta.get(k) == v for k, v in expected_meta(Target.of(deployment)).items())
        reader = IndexReader(engine) if same else None
        if reader is None or not reader.status().is_current(head, max_lag):
            engine.dispose()
            return None
        return reader
    except SQLAlchemyError:
        engine.dispose()
        return None
