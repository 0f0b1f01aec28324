"""Full re-encryption of old records, the strongest form of revocation.

Key rotation closes records written *after* a revocation to the revoked reader, but it still holds
the old category keys, and the ciphertext of every older record is public to whoever knows its CID.
Re-encryption takes every record of the rotated categories still sealed to an older epoch than the
category's current one and puts its content under the current keys, then deletes the old ciphertext
from our IPFS node (unpinned, its blocks removed):

* the **latest version** of a record is read (as the patient) and written again as a new version
  that supersedes it (a fresh record key sealed to the current category key);
* **earlier versions** of an amended record (superseded ones cannot be amended on chain) go into a
  *version archive*: one batch per category and run, anchored for the patient, whose readings are
  the old versions (reading id = the old version's record id, the record they became, content
  type, content), readable and provable like any batch;
* a **batch** is anchored again under the current keys with the same reading ids (a new root: its
  fingerprints are keyed by the new record key); proofs issued for the old root still verify on
  chain, since the old root stays anchored.

What is already current is left alone, so a run that stopped halfway (a node down) is finished by
running it again. A revoked reader then needs a copy of old ciphertext made before this ran.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass

from medledger import codes, records
from medledger.chain import RecordInfo
from medledger.client import Client
from medledger.errors import MedledgerError, StorageError
from medledger.keystore import Identity
from medledger.storage import cid_from_bytes

#: The content type of a version archive's readings (in each reading's JSON).
ARCHIVE_KIND = "medledger/version-archive/v1"


@dataclass(frozen=True)
class Reencrypted:
    """One record, version or batch whose content now lives under current keys (``current``: the new
    version, batch root or version archive), and whose old ciphertext (``old_cid``) was deleted."""

    previous: bytes
    current: bytes
    old_cid: str
    new_cid: str
    kind: str = "version"  # "version", "batch" or "archived"


def reencrypt_records(client: Client, patient: Identity, categories: Iterable[int]) -> list[Reencrypted]:
    """Put every record of ``categories`` sealed to an older key epoch (latest versions, earlier
    versions, batches) under the current keys; the patient's own records, as the patient."""
    wanted = {int(c) for c in categories}
    epochs = {int(c): key.epoch for c, key in client.contract.category_keys(patient.address).items()}
    infos = {i.record_id: i for i in client.contract.records_of(patient.address)}
    old = [
        i for i in infos.values()
        if int(i.category) in wanted and not i.erased and i.key_epoch < epochs[int(i.category)]
        and client.store.is_pinned(cid_from_bytes(i.cid))  # else done by an earlier run: gone from the node
    ]  # fmt: skip
    done: list[Reencrypted] = []
    for info in old:
        if info.is_batch:
            done.append(_rebatch(client, patient, info))
        elif info.superseded_by is None:
            done.append(_amend(client, patient, info))
    if done:  # the versions amended just now: an archived version names the latest one
        infos = {i.record_id: i for i in client.contract.records_of(patient.address)}
    for category in sorted({int(i.category) for i in old}):
        superseded = [i for i in old if int(i.category) == category and not i.is_batch and i.superseded_by is not None]
        if superseded:
            done.extend(_archive(client, patient, category, superseded, infos))
    return done


def _amend(client: Client, patient: Identity, info: RecordInfo) -> Reencrypted:
    read = records.read_record(client, patient, info.record_id, patient=patient.address)
    if read.data is None:  # pragma: no cover - read_record returns data without `out`
        raise MedledgerError(f"Could not read record 0x{info.record_id.hex()} for re-encryption")
    written = records.amend_record(
        client, patient, info.record_id, read.data, patient=patient.address, content_type=read.content_type
    )
    return _replaced(client, info, written.record_id, written.cid, "version")


def _rebatch(client: Client, patient: Identity, info: RecordInfo) -> Reencrypted:
    readings = records.read_batch(client, patient, info.record_id, patient=patient.address)
    anchored = records.anchor_batch(
        client, patient, patient.address, [r["data"] for r in readings], category=info.category,
        purpose=info.purpose, reading_ids=[bytes.fromhex(r["id"][2:]) for r in readings],
    )  # fmt: skip
    return _replaced(client, info, anchored.root, anchored.cid, "batch")


def _archive(
    client: Client, patient: Identity, category: int, versions: list[RecordInfo], infos: dict[bytes, RecordInfo]
) -> list[Reencrypted]:
    """One batch holding the content of the earlier ``versions``, then their old ciphertext deleted."""
    readings = []
    for info in versions:
        read = records.read_record(client, patient, info.record_id, patient=patient.address)
        readings.append({
            "kind": ARCHIVE_KIND,
            "version": "0x" + info.record_id.hex(),
            "latest": "0x" + _latest(info, infos).hex(),
            "content_type": read.content_type,
            "content_base64": base64.b64encode(read.data or b"").decode(),
        })  # fmt: skip
    anchored = records.anchor_batch(
        client, patient, patient.address, readings, category=codes.Category(category),
        reading_ids=[info.record_id for info in versions],
    )  # fmt: skip
    return [_replaced(client, info, anchored.root, anchored.cid, "archived") for info in versions]


def _latest(info: RecordInfo, infos: dict[bytes, RecordInfo]) -> bytes:
    while info.superseded_by is not None and info.superseded_by in infos:
        info = infos[info.superseded_by]
    return info.record_id


def _replaced(client: Client, info: RecordInfo, current: bytes, new_cid: str, kind: str) -> Reencrypted:
    """Delete the old ciphertext from our node, now that its content lives on under current keys."""
    old_cid = cid_from_bytes(info.cid)
    try:
        client.store.remove(old_cid)
    except StorageError:
        pass  # superseded either way; a later run (or the node's gc) removes it
    return Reencrypted(info.record_id, current, old_cid, new_cid, kind)
