"""The index's tables (SQLAlchemy Core; the same schema on SQLite and PostgreSQL).

Generic, for any ABI:
  ``events``      every log of the contract: position, block hash, transaction, block time, event
                  name, the indexed arguments as text (``t1``..``t3``), every argument as JSON
                  (``args``), plus three role columns filled by name (:mod:`.mapping`): ``patient``,
                  ``party`` (the counterparty: grantee, accessor, author, clinician, delegate, ...)
                  and ``record_id``. ``sender`` is the transaction's sender, fetched only for events
                  that carry no actor.
  ``blocks``      hash and time of every block that holds an indexed log (fork detection).
  ``checkpoint``  the last indexed block and its hash (one row).
  ``meta``        which chain, contract, ABI and start block the database indexes.

Derived, for the queries medledger needs (rebuilt from ``events`` by :mod:`.mapping`):
  ``grants``      one row per consent decision, with how and when it ended (history and current).
  ``records``     one row per record or batch, keyed by (patient, record id), with amendment and
                  erasure.
  ``accesses``    one row per record access (purpose, emergency, month) for the oversight counts.

Addresses and hashes are stored as lower-case ``0x`` hex. Block numbers and positions are
integers; unsigned 64-bit times are clamped to the signed 64-bit maximum (``2**63 - 1`` = never).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB

SCHEMA_VERSION = "1"
#: The largest value the integer columns hold (uint64 "never" is clamped to it).
MAX_INT = 2**63 - 1

metadata = MetaData()

_ADDRESS = String(42)
_HASH = String(66)
_ARGS = JSON().with_variant(JSONB(), "postgresql")


def _position() -> tuple[Column[int], Column[int]]:
    """The primary key of a row that stands for one log: its block and its index in the block."""
    return (
        Column("block_number", BigInteger, primary_key=True, autoincrement=False),
        Column("log_index", Integer, primary_key=True, autoincrement=False),
    )


meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

checkpoint = Table(
    "checkpoint",
    metadata,
    Column("id", SmallInteger, primary_key=True),
    Column("block_number", BigInteger, nullable=False),
    Column("block_hash", _HASH, nullable=True),  # None before the first block is indexed
    Column("updated_at", BigInteger, nullable=False),
)

blocks = Table(
    "blocks",
    metadata,
    Column("number", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", _HASH, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
)

events = Table(
    "events",
    metadata,
    *_position(),
    Column("block_hash", _HASH, nullable=False),
    Column("tx_hash", _HASH, nullable=False),
    Column("tx_index", Integer, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("name", String(64), nullable=False),
    Column("patient", _ADDRESS),
    Column("party", _ADDRESS),
    Column("record_id", _HASH),
    Column("t1", String(80)),
    Column("t2", String(80)),
    Column("t3", String(80)),
    Column("args", _ARGS, nullable=False),
    Column("sender", _ADDRESS),
    Index("ix_events_patient", "patient", "block_number", "log_index"),
    Index("ix_events_party", "party", "name"),
    Index("ix_events_name", "name", "block_number"),
    Index("ix_events_record", "record_id"),
)

grants = Table(
    "grants",
    metadata,
    *_position(),
    Column("patient", _ADDRESS, nullable=False),
    Column("grantee", _ADDRESS, nullable=False),
    Column("access", SmallInteger, nullable=False),
    Column("categories", Integer, nullable=False),
    Column("purposes", Integer, nullable=False),
    Column("start", BigInteger, nullable=False),
    Column("expiry", BigInteger, nullable=False),
    Column("key_envelope", _HASH),
    Column("granted_by", _ADDRESS),
    Column("granted_at", BigInteger, nullable=False),
    Column("tx_hash", _HASH, nullable=False),
    # filled when the new contracts' events carry them (see the notes on the ABI change)
    Column("delegation_id", BigInteger),
    Column("issued_at", BigInteger),
    # how the decision ended: 'revoked' (ConsentRevoked) or 'replaced' (a later ConsentGranted)
    Column("ended_block", BigInteger),
    Column("ended_log", Integer),
    Column("ended_at", BigInteger),
    Column("ended_tx", _HASH),
    Column("ended_by", _ADDRESS),
    Column("ended_how", String(16)),
    Index("ix_grants_grantee", "grantee", "ended_block"),
    Index("ix_grants_patient", "patient", "grantee", "access", "ended_block"),
)

records = Table(
    "records",
    metadata,
    Column("patient", _ADDRESS, primary_key=True),
    Column("record_id", _HASH, primary_key=True),
    Column("author", _ADDRESS),
    Column("category", SmallInteger, nullable=False),
    Column("purpose", SmallInteger),
    Column("fingerprint", _HASH),
    Column("cid", Text),
    Column("is_batch", Boolean, nullable=False),
    Column("leaf_count", Integer),
    Column("key_epoch", BigInteger),
    Column("block_number", BigInteger, nullable=False),
    Column("log_index", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("tx_hash", _HASH, nullable=False),
    Column("previous_id", _HASH),
    Column("next_id", _HASH),
    Column("superseded_block", BigInteger),
    Column("erased_block", BigInteger),
    Column("erased_at", BigInteger),
    Column("erased_tx", _HASH),
    Index("ix_records_record", "record_id"),
    Index("ix_records_block", "block_number"),
)

accesses = Table(
    "accesses",
    metadata,
    *_position(),
    Column("patient", _ADDRESS, nullable=False),
    Column("record_id", _HASH, nullable=False),
    Column("accessor", _ADDRESS, nullable=False),
    Column("purpose", SmallInteger, nullable=False),
    Column("emergency", Boolean, nullable=False),
    Column("accessed_at", BigInteger, nullable=False),
    Column("month", String(7), nullable=False),
    Column("tx_hash", _HASH, nullable=False),
    Index("ix_accesses_month", "month", "purpose"),
    Index("ix_accesses_record", "patient", "record_id"),
)

#: Tables whose rows belong to a block (deleted above the common ancestor on a reorg).
BLOCK_TABLES = (events, blocks, grants, records, accesses)
