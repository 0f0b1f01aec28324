"""The event index: the contract's events in a database (SQLite by default, PostgreSQL by URL), so
history views and statistics need no log scan from the deployment block.

::

        from medledger.index import IndexStore, Indexer, IndexReader, Target, open_history
    store = IndexStore.open("sqlite:///index.sqlite", Target.of(deployment))
    Indexer(store, RpcSource(rpc_url), confirmations=2).sync()
    IndexReader(store.engine).trail(patient)
    client.use_history(open_history(client))   # the audit, grants and records views read the index

Modules: :mod:`.schema` (tables), :mod:`.mapping` (what the medledger events mean for the derived
tables: the one place to adapt to a new ABI), :mod:`.store` (database, checkpoint, chunks, rollback),
:mod:`.sync` (following the chain, forks), :mod:`.query` (the query API), :mod:`.history` (the index
as the views' source of events), :mod:`.service` (one deployment's index, as the commands open it).
Decoding raw logs (:mod:`medledger.chain.rawlogs`) and reading them over JSON-RPC
(:mod:`medledger.chain.logsource`) belong to the chain layer.
"""

from __future__ import annotations

from .errors import CheckpointMoved, IndexDatabaseError, IndexMismatch, IndexNotBuilt, ReorgDuringRead
from .history import IndexHistory, open_history
from .query import GrantEntry, IndexedEvent, IndexReader, IndexStatus, RecordEntry
from .store import IndexStore, Target, create_index_engine, database_url, default_database
from .sync import Indexer, SyncResult

__all__ = [
    "CheckpointMoved",
    "GrantEntry",
    "IndexDatabaseError",
    "IndexHistory",
    "IndexMismatch",
    "IndexNotBuilt",
    "IndexReader",
    "IndexStatus",
    "IndexStore",
    "IndexedEvent",
    "Indexer",
    "RecordEntry",
    "ReorgDuringRead",
    "SyncResult",
    "Target",
    "create_index_engine",
    "database_url",
    "default_database",
    "open_history",
]
