"""Full re-encryption of old records, the strongest form of revocation.

Key rotation closes records written *after* a revocation to the revoked grantee, but it still holds
the old category keys. Re-encryption reads every live record of the rotated categories (as the
patient), writes it again under a fresh record key sealed to the new category key as a new version
that supersedes the old one, and unpins the old ciphertext. A revoked grantee then needs a copy of
an old ciphertext made before this ran. Batches are left as they are (their Merkle roots are the
commitment; re-anchoring would change them).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from medledger import records
from medledger.client import Client
from medledger.errors import MedledgerError, StorageError
from medledger.keystore import Identity


@dataclass(frozen=True)
class Reencrypted:
    previous: bytes
    current: bytes
    old_cid: str
    new_cid: str


def reencrypt_records(client: Client, patient: Identity, categories: Iterable[int]) -> list[Reencrypted]:
    """Re-encrypt the patient's live, latest-version records of ``categories`` under current keys."""
    wanted = {int(c) for c in categories}
    done: list[Reencrypted] = []
    for summary in records.list_records(client, patient.address, include_erased=False):
        if summary.is_batch or summary.superseded_by or int(summary.category) not in wanted:
            continue
        read = records.read_record(client, patient, summary.record_id, patient=patient.address)
        if read.data is None:  # pragma: no cover - read_record returns data without `out`
            raise MedledgerError(f"Could not read record 0x{summary.record_id.hex()} for re-encryption")
        written = records.amend_record(
            client, patient, summary.record_id, read.data, patient=patient.address, content_type=read.content_type
        )
        try:
            client.store.unpin(summary.cid)
        except StorageError:
            pass  # superseded either way; the next gc run removes it
        done.append(Reencrypted(summary.record_id, written.record_id, summary.cid, written.cid))
    return done
