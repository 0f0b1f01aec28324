"""Records: encrypt, store on IPFS, fingerprint on chain; read with consent, audit and verification.

- :mod:`.write`: validate, check the write consent, encrypt as a stream, add to IPFS, register;
- :mod:`.journal`: the journal that makes a crash between IPFS and chain safe (:func:`recover_pending`);
- :mod:`.read`: consent check, audit entry, fetch, CID check, decrypt, fingerprint check; erase, list;
- :mod:`.batches`: many readings under one anchored Merkle root;
- :mod:`.payload`, :mod:`.models`: the plaintext format and the results.
"""

from .batches import anchor_batch, read_batch, verify_reading_on_chain
from .journal import recover_pending
from .models import (
    BATCH_CONTENT_TYPE,
    FHIR_CONTENT_TYPE,
    BatchResult,
    Progress,
    ReadResult,
    RecordSummary,
    WriteResult,
)
from .payload import prepare
from .read import erase_record, find_record, list_records, read_record, verify_fingerprint
from .write import amend_record, write_record

__all__ = [
    "BATCH_CONTENT_TYPE",
    "FHIR_CONTENT_TYPE",
    "BatchResult",
    "Progress",
    "ReadResult",
    "RecordSummary",
    "WriteResult",
    "amend_record",
    "anchor_batch",
    "erase_record",
    "find_record",
    "list_records",
    "prepare",
    "read_batch",
    "read_record",
    "recover_pending",
    "verify_fingerprint",
    "verify_reading_on_chain",
    "write_record",
]
