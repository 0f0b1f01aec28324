"""The index as ``medledger index`` and the oversight report use it: the database of one deployment (a
SQLite file under the medledger home unless a URL is given), the node it follows, a catch-up. The
history views open it read-only through :func:`medledger.index.history.open_history`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medledger.chain.logsource import RpcSource
from medledger.paths import INDEX_URL_ENV

from .query import IndexReader
from .store import IndexStore, Target, default_database
from .sync import Indexer, SyncResult


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
    def open(
        cls,
        home: Path,
        deployment: Any,
        rpc_url: str,
        *,
        url: str | None = None,
        reset: bool = False,
        rpc_timeout: float = 60.0,
    ) -> LocalIndex:
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
