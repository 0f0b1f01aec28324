"""The index's errors (all :class:`~medledger.errors.MedledgerError`)."""

from __future__ import annotations

from medledger.errors import ChainError, MedledgerError


class IndexDatabaseError(MedledgerError):
    """The index database cannot be used as asked: another deployment's, an older schema, a bad URL."""

    exit_code = 2


class IndexMismatch(IndexDatabaseError):
    """The database indexes another chain, contract or ABI than the one asked for."""


class IndexNotBuilt(IndexDatabaseError):
    """There is no index yet (run ``medledger index``)."""


class CheckpointMoved(IndexDatabaseError):
    """Another indexer advanced or rewound the checkpoint meanwhile; the step is retried."""


class ReorgDuringRead(ChainError):
    """The chain changed while a block range was read; the range is read again."""
