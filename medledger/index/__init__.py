"""The event index: the contract's events in a database (SQLite by default, PostgreSQL by URL), so
history views and statistics need no log scan from the deployment block.

::

    from medledger.index import IndexStore, Indexer, IndexReader, RpcSource, Target
    store = IndexStore.open("sqlite:///index.sqlite", Target.of(deployment))
    Indexer(store, RpcSource(rpc_url), confirmations=2).sync()
    IndexReader(store.engine).trail(patient)

Modules: :mod:`.abi` (generic log decoding), :mod:`.schema` (tables), :mod:`.mapping` (what the
medledger events mean for the derived tables: the one place to adapt to a new ABI), :mod:`.source`
(JSON-RPC), :mod:`.store` (database, checkpoint, chunks, rollback), :mod:`.sync` (following the
chain, forks), :mod:`.query` (the query API).
"""

from __future__ import annotations

from .errors import CheckpointMoved, IndexDatabaseError, IndexMismatch, IndexNotBuilt, ReorgDuringRead
from .query import GrantEntry, IndexedEvent, IndexReader, IndexStatus, RecordEntry
from .source import RpcSource
from .store import IndexStore, Target, create_index_engine, database_url, default_database
from .sync import Indexer, SyncResult

__all__ = [
    "CheckpointMoved",
    "GrantEntry",
    "IndexDatabaseError",
    "IndexMismatch",
    "IndexNotBuilt",
    "IndexReader",
    "IndexStatus",
    "IndexStore",
    "IndexedEvent",
    "Indexer",
    "RecordEntry",
    "ReorgDuringRead",
    "RpcSource",
    "SyncResult",
    "Target",
    "create_index_engine",
    "database_url",
    "default_database",
]
