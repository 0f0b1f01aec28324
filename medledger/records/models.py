"""What the record operations return."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medledger import codes

BATCH_CONTENT_TYPE = "application/vnd.medledger.batch+json"
FHIR_CONTENT_TYPE = "application/fhir+json"

#: Called with the number of plaintext bytes just consumed (progress bars).
Progress = Callable[[int], None]


@dataclass(frozen=True)
class WriteResult:
    record_id: bytes
    cid: str
    fingerprint: bytes
    category: codes.Category
    content_type: str
    size: int

    @property
    def record_hex(self) -> str:
        return "0x" + self.record_id.hex()


@dataclass(frozen=True)
class ReadResult:
    record_id: bytes
    patient: str
    author: str
    category: codes.Category
    content_type: str
    size: int
    emergency: bool
    data: bytes | None = None  # when no destination file was given
    path: Path | None = None


@dataclass(frozen=True)
class BatchResult:
    root: bytes
    cid: str
    reading_ids: list[bytes]
    fingerprints: list[bytes]
    proofs: list[list[bytes]] = field(repr=False)


@dataclass(frozen=True)
class RecordSummary:
    record_id: bytes
    patient: str
    author: str
    category: codes.Category
    purpose: codes.Purpose
    cid: str
    created_at: int
    erased: bool
    is_batch: bool
    leaf_count: int
    previous: bytes | None
    superseded_by: bytes | None

    def to_json(self) -> dict[str, Any]:
        return {
            "record_id": "0x" + self.record_id.hex(),
            "patient": self.patient,
            "author": self.author,
            "category": codes.slug(self.category),
            "purpose": codes.slug(self.purpose),
            "cid": self.cid,
            "created_at": self.created_at,
            "erased": self.erased,
            "batch": self.is_batch,
            "leaf_count": self.leaf_count,
            "previous": "0x" + self.previous.hex() if self.previous else None,
            "superseded_by": "0x" + self.superseded_by.hex() if self.superseded_by else None,
        }
