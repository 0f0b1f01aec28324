"""The index's errors (all :class:`~medledger.errors.MedledgerError`; the database ones are configuration
errors, exit 2 at the terminal)."""

from __future__ import annotations

from medledger.errors import ChainError, ConfigError


class IndexDatabaseError(ConfigError):
    """The index database cannot be used as asked: another deployment's, an older schema, a bad URL."""


class IndexMismatch(IndexDatabaseError):
    """The database indexes another chain, contract or ABI than the one asked for."""


class IndexNotBuilt(IndexDatabaseError):
    """There is no index yet (run ``medledger index``)."""


class CheckpointMoved(IndexDatabaseError):
    """Another indexer advanced or rewound the checkpoint meanwhile; the step is retried."""


class ReorgDuringRead(ChainError):
    """The chain changed while a block range was read; the range is read again."""
