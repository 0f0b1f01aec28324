"""Batches: many small readings (a wearable's day) encrypted as one blob, with one Merkle root of
their fingerprints anchored on chain; each reading is provable against the root."""

from __future__ import annotations

import json
import secrets
import tempfile
from collections.abc import Iterable, Sequence
from typing import Any

from medledger import codes, crypto
from medledger.access import check_access
from medledger.client import Client, as_address
from medledger.errors import RecordFormatError, TamperingDetected
from medledger.keyring import Keyring
from medledger.keystore import Identity
from medledger.storage import cid_from_bytes, cid_to_bytes

from .journal import recover_pending
from .models import BATCH_CONTENT_TYPE, BatchResult
from .payload import split_payload
from .read import audit, check_readable, fetch_verified, find_record, precheck
from .write import commit, seal_and_store


def anchor_batch(
    client: Client,
    author: Identity,
    patient: str,
    readings: Iterable[Any],
    *,
    category: int = codes.Category.DEVICE_DATA,
    purpose: int = codes.Purpose.DIRECT_CARE,
    reading_ids: Sequence[bytes] | None = None,
) -> BatchResult:
    """Encrypt many readings as one blob and anchor the Merkle root of their fingerprints. Each reading
    gets a random id unless ``reading_ids`` names them (one per reading, distinct)."""
    patient = as_address(patient)
    recover_pending(client)
    items = [json.dumps(r, sort_keys=True, separators=(",", ":")).encode() for r in readings]
    if not items:
        raise RecordFormatError("A batch needs at least one reading")
    check_access(client, patient, author.address, codes.Access.WRITE, category, purpose)
    key = crypto.new_record_key()
    if reading_ids is None:
        reading_ids = [secrets.token_bytes(32) for _ in items]
    elif len(reading_ids) != len(items) or len(set(reading_ids)) != len(items):
        raise RecordFormatError("A batch needs one distinct reading id per reading")
    fingerprints = [crypto.leaf_fingerprint(key, rid, data) for rid, data in zip(reading_ids, items, strict=True)]
    leaves = [crypto.batch_leaf(rid, fp) for rid, fp in zip(reading_ids, fingerprints, strict=True)]
    root = crypto.merkle_root(leaves)
    body = json.dumps(
        {"readings": [{"id": "0x" + rid.hex(), "data": d.decode()} for rid, d in zip(reading_ids, items, strict=True)]}
    ).encode()
    sealed_to = Keyring(client).current_key(patient, category)
    stored = seal_and_store(
        client, body, record_id=root, author=author.address, key=sealed_to, content_type=BATCH_CONTENT_TYPE,
        record_key=key, batch=True,
    )  # fmt: skip
    cid = cid_to_bytes(stored.cid)
    commit(client, stored, lambda: client.contract.anchor_batch(
        patient, root, category, purpose, sealed_to.epoch, len(items), cid, sender=author
    ))  # fmt: skip
    return BatchResult(root, stored.cid, list(reading_ids), fingerprints, crypto.merkle_proofs(leaves))


def read_batch(
    client: Client,
    reader: Identity,
    root: bytes,
    *,
    patient: str | None = None,
    purpose: int = codes.Purpose.DIRECT_CARE,
) -> list[dict[str, Any]]:
    """Read ``patient``'s anchored batch ``root``; every reading is checked against the Merkle root."""
    info = check_readable(client, root, patient)
    if not info.is_batch:
        raise RecordFormatError(f"0x{root.hex()} is a single record; read it with read_record")
    precheck(client, reader, info, purpose)
    with tempfile.TemporaryFile() as spool:
        fetch_verified(client, cid_from_bytes(info.cid), spool)
        keys = Keyring(client).secrets(reader, info.patient, [info.category])
        # The record key is needed both to decrypt and to recompute the leaves; the access is recorded
        # only once it opened (as for a single record).
        decryptor = crypto.open_record_blob(
            spool, keys, expected_record_id=root, expected_patient=info.patient, category=info.category
        )
        audit(client, reader, info, purpose)
        record_key = decryptor.record_key
        _meta, body = split_payload(iter(decryptor))
        content = json.loads(b"".join(body))
    readings = []
    leaves = []
    for item in content["readings"]:
        rid = bytes.fromhex(item["id"][2:])
        data = item["data"].encode()
        fp = crypto.leaf_fingerprint(record_key, rid, data)
        leaves.append(crypto.batch_leaf(rid, fp))
        readings.append({"id": item["id"], "data": json.loads(data), "fingerprint": "0x" + fp.hex()})
    if len(leaves) != info.leaf_count or crypto.merkle_root(leaves) != root:
        raise TamperingDetected(f"The readings of batch 0x{root.hex()} do not hash to its anchored Merkle root")
    return readings


def verify_reading_on_chain(
    client: Client,
    root: bytes,
    reading_id: bytes,
    fingerprint: bytes,
    proof: Sequence[bytes],
    *,
    patient: str | None = None,
) -> bool:
    """Whether the reading is in ``patient``'s batch ``root`` (False once the batch was erased)."""
    info = find_record(client, root, patient)
    return client.contract.verify_batch_inclusion(info.patient, root, info.current(), reading_id, fingerprint, proof)
