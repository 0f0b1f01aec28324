"""The journal of writes in flight between the IPFS add and the chain transaction.

A write journals its ciphertext's CID (with the patient, the author and the fingerprint it is
about to register) before it registers the record; :func:`recover_pending` settles what a crash
left: a record that reached the chain is kept, otherwise its ciphertext is unpinned, so no on-chain
record ever points at missing data and no orphan stays pinned. "Reached the chain" means the
patient's record of that id has the journaled author and fingerprint: a record of the same id under
another patient, or written by someone else, is not ours.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import psutil

from medledger.chain import ZERO32
from medledger.client import Client
from medledger.fsutil import atomic_write


def journal_dir(client: Client) -> Path:
    path = client.settings.cache_dir / "pending" / str(client.chain.chain_id)
    path.mkdir(parents=True, exist_ok=True)
    return path


def process_started(pid: int) -> float | None:
    """When process ``pid`` started (None if it does not run): with the pid, it names a process."""
    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.Error, ValueError):
        return None


def _in_progress(entry: dict[str, Any]) -> bool:
    """Whether the process that wrote a journal entry still runs (its write may be in flight):
    such an entry is not settled, or a record about to be registered would lose its ciphertext."""
    pid = entry.get("pid")
    if not isinstance(pid, int):
        return False
    started = process_started(pid)
    return started is not None and started == entry.get("started")


def journal_write(
    client: Client, record_id: bytes, cid: str, patient: str, author: str, fingerprint: bytes = ZERO32
) -> Path:
    """Journal a ciphertext about to be registered by ``author`` as ``patient``'s record ``record_id``
    with ``fingerprint`` (zero for a batch, whose header holds none), with this process's identity."""
    path = journal_dir(client) / f"{record_id.hex()}.json"
    pid = os.getpid()
    entry = {
        "record_id": "0x" + record_id.hex(), "cid": cid, "patient": patient, "author": author,
        "fingerprint": "0x" + fingerprint.hex(), "pid": pid,
    }  # fmt: skip
    # Not fsynced (durable=False): the entry survives the writer's crash (kill -9) in the page cache,
    # and all a power cut can cost is an orphaned pin of ciphertext (the record itself is safe either
    # way); the two fsyncs would cost a fifth of small-record ingest throughput (bench/ingest.py).
    atomic_write(path, json.dumps({**entry, "started": process_started(pid)}), durable=False)
    return path


def registered(
    client: Client, patient: str, record_id: bytes, *, author: str | None = None, fingerprint: bytes | None = None
) -> bool:
    """Whether ``patient`` has a record or batch ``record_id`` on chain (with this ``author`` and
    ``fingerprint``, when given: then it is the one a journaled write registered; an erased one keeps
    its author but no fingerprint)."""
    info = client.contract.record(patient, record_id)
    if not info.exists:
        return False
    if author is not None and info.author != author:
        return False
    return fingerprint is None or info.erased or info.fingerprint == fingerprint


def recover_pending(client: Client) -> list[tuple[str, str]]:
    """Settle writes interrupted between the IPFS add and the chain transaction.

    A record that reached the chain is kept; otherwise its ciphertext is unpinned. Writes still in
    progress (their process, or this one, still runs) are left alone. Returns
    ``(record id, "registered" | "rolled back")`` pairs. Safe to run at any time."""
    settled = []
    for path in sorted(journal_dir(client).glob("*.json")):
        try:
            entry = json.loads(path.read_text())
        except FileNotFoundError:
            continue  # settled meanwhile by its writer
        except ValueError:
            path.unlink(missing_ok=True)
            continue
        if _in_progress(entry):
            continue
        fingerprint = entry.get("fingerprint")
        ours = registered(
            client, entry["patient"], bytes.fromhex(entry["record_id"][2:]), author=entry.get("author"),
            fingerprint=bytes.fromhex(fingerprint[2:]) if fingerprint else None,
        )  # fmt: skip
        if ours:
            settled.append((entry["record_id"], "registered"))
        else:
            client.store.unpin(entry["cid"])
            settled.append((entry["record_id"], "rolled back"))
        path.unlink(missing_ok=True)
    return settled
