"""Bulk ingest: many records for one patient and category, pipelined, several per request and per
transaction.

A hospital system or a device gateway writes records in volume. :class:`Ingestor` does the per-batch
work once (settle interrupted writes, check the write consent) and then overlaps the slow stages.
Worker threads take the records queued so far in groups: each group reads the category's current key
(refused if it is stale: a revocation or an ended access since the ingest began), seals its records
and stores them. Small records (up to :data:`SMALL_RECORD` bytes) are sealed in memory, journaled one
by one (their CIDs computed here), then added and pinned in one multipart request per group; larger
ones stream, one add each (:func:`records.write.seal_and_store`). One sender thread registers the
fingerprints on chain in submission order, as many records per ``registerRecords`` transaction as
are sealed behind the first (up to ``max_per_tx``), through the chain layer's fast path
(:class:`~medledger.chain.fastpath.FastRegistrar`: bare JSON-RPC, local nonces); records sealed to
different key epochs never share a transaction. A transaction registers all its records or none: a
refusal fails every record in it. The crash-safety of :func:`records.write_record` holds record by
record: each ciphertext is journaled before it is pinned (a small one before it is even added), the
signed transaction in the entry of every record it carries before it is sent, and the ciphertext is
unpinned if the transaction can never land. A future resolves only once its record is written; the
mined ones are made written in batches (on the local node: one saved state for all the records mined
meanwhile, not one per transaction).

    with Ingestor(client, author, patient, category=Category.IMAGING) as ingest:
        futures = [ingest.submit(path) for path in paths]
    results = [f.result() for f in futures]   # WriteResult, or the record's own error
"""

from __future__ import annotations

import os
import queue
import secrets
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import codes, crypto
from .access import check_access
from .chain import CategoryKey, RecordEntry
from .chain.durability import Mined
from .chain.fastpath import FastRegistrar
from .client import Client, as_address
from .errors import MedledgerError
from .keyring import check_writable
from .keystore import Identity
from .records import WriteResult, prepare, recover_pending
from .records.journal import journal_write
from .records.payload import Concat, Source, open_source, payload_header
from .records.write import Stored, discard, seal_and_store
from .storage import cid_to_bytes

#: The most records one ``registerRecords`` transaction carries (~28.4k gas each at 100).
MAX_PER_TX = 100
#: Records up to this many bytes are sealed in memory and added several per request.
SMALL_RECORD = 256 * 1024
#: The most records a worker seals and adds as one group (one key read, one multipart add).
GROUP = 32
#: Worker threads sealing and adding (the node's add requests overlap; sealing holds the GIL little).
WORKERS = 3
#: At most this many mined records are made written (on the local node: saved) at once, and a mined
#: record waits at most ACK_DELAY seconds for others to share the save with.
ACK_BATCH = 256
ACK_DELAY = 0.2

_STOP = object()


@dataclass(frozen=True)
class _Sealed:
    """A record encrypted, added, journaled and pinned, with the key epoch it was sealed to."""

    stored: Stored
    result: WriteResult
    epoch: int


@dataclass(frozen=True)
class _Job:
    """A submitted record on its way to a worker."""

    source: Source
    content_type: str
    small: bool
    sealed: Future[_Sealed]


_Item = tuple["Future[_Sealed]", "Future[WriteResult]"]
_Batch = list[tuple[_Sealed, "Future[WriteResult]"]]


def _small(source: Source) -> bool:
    """Whether ``source`` is known to be at most :data:`SMALL_RECORD` bytes (bytes or a file path)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return len(source) <= SMALL_RECORD
    if isinstance(source, (str, os.PathLike)):
        try:
            return Path(source).stat().st_size <= SMALL_RECORD
        except OSError:
            return False
    return False


class Ingestor:
    """Pipelined writes of many records of one category for one patient."""

    def __init__(
        self,
        client: Client,
        author: Identity,
        patient: str,
        *,
        category: int,
        purpose: int = codes.Purpose.DIRECT_CARE,
        workers: int = WORKERS,
        content_type: str | None = None,
        max_per_tx: int = MAX_PER_TX,
        group: int = GROUP,
    ) -> None:
        self.client = client
        self.author = author
        self.patient = as_address(patient)
        self.category = codes.Category(int(category))
        self.purpose = codes.Purpose(int(purpose))
        self.content_type = content_type
        self.max_per_tx = max(1, int(max_per_tx))
        self.group = max(1, int(group))
        recover_pending(client)
        check_access(client, self.patient, author.address, codes.Access.WRITE, self.category, self.purpose)
        self._registrar = FastRegistrar(client.contract, author, self.patient, self.category, self.purpose)
        check_writable(*self._registrar.category_key())  # refuse at once if the key is stale already
        self._jobs: queue.Queue[Any] = queue.Queue()
        # Bounded: what waits here is what the workers have in hand plus what transactions carry (and
        # what sits in memory); a full queue makes submit() wait.
        self._chain_queue: queue.Queue[Any] = queue.Queue(maxsize=max(workers * self.group, self.max_per_tx) * 2)
        self._workers = [
            threading.Thread(target=self._work_loop, name=f"medledger-seal-{i}", daemon=True)
            for i in range(max(1, workers))
        ]
        for worker in self._workers:
            worker.start()
        self._sender = threading.Thread(target=self._send_loop, name="medledger-register", daemon=True)
        self._sender.start()

    def __enter__(self) -> Ingestor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def submit(self, source: Source, content_type: str | None = None) -> Future[WriteResult]:
        """Queue one record; the future resolves once it is registered on chain."""
        content_type, category = prepare(source, content_type or self.content_type, self.category)
        if category != self.category:
            raise MedledgerError(
                f"This ingest writes {codes.label(self.category)}, but the record is {codes.label(category)}"
            )
        done: Future[WriteResult] = Future()
        sealed: Future[_Sealed] = Future()
        self._chain_queue.put((sealed, done))  # order of registration = order of submission
        self._jobs.put(_Job(source, content_type, _small(source), sealed))
        return done

    def close(self) -> None:
        for _ in self._workers:
            self._jobs.put(_STOP)
        for worker in self._workers:
            worker.join()
        self._chain_queue.put(_STOP)
        self._sender.join()

    # --- stage 1: seal and add (worker threads), a group of the records queued so far at a time ------
    def _work_loop(self) -> None:
        while True:
            jobs = [self._jobs.get()]
            while jobs[-1] is not _STOP and len(jobs) < self.group:
                try:
                    jobs.append(self._jobs.get_nowait())
                except queue.Empty:
                    break
            stop = jobs[-1] is _STOP
            real: list[_Job] = [j for j in jobs if j is not _STOP]
            if real:
                self._store_group(real)
            if stop:
                return

    def _store_group(self, jobs: list[_Job]) -> None:
        """Seal and store ``jobs``; every job's future gets its sealed record or its own error."""
        try:
            key = check_writable(*self._registrar.category_key())  # read per group: never seal to a stale key
        except BaseException as exc:  # noqa: BLE001 - every record of the group fails with it
            for job in jobs:
                job.sealed.set_exception(exc)
            return
        small = [j for j in jobs if j.small]
        if small:
            self._store_small(small, key)
        for job in jobs:
            if not job.small:
                self._settle(job, lambda job=job: self._store_large(job, key))

    @staticmethod
    def _settle(job: _Job, work: Any) -> None:
        try:
            job.sealed.set_result(work())
        except BaseException as exc:  # noqa: BLE001 - the record's own failure goes to its future
            job.sealed.set_exception(exc)

    def _store_large(self, job: _Job, key: CategoryKey) -> _Sealed:
        stored = seal_and_store(
            self.client, job.source, record_id=secrets.token_bytes(32), author=self.author.address, key=key,
            content_type=job.content_type,
        )  # fmt: skip
        return self._sealed(stored, job.content_type, key)

    def _sealed(self, stored: Stored, content_type: str, key: CategoryKey) -> _Sealed:
        result = WriteResult(stored.record_id, stored.cid, stored.fingerprint, self.category, content_type, stored.size)
        return _Sealed(stored, result, key.epoch)

    def _seal_in_memory(self, job: _Job, key: CategoryKey) -> tuple[bytes, bytes, bytes, int]:
        """(record id, ciphertext, fingerprint, size of the record's own bytes) of a small record."""
        stream, name, owned = open_source(job.source)
        try:
            header = payload_header(job.content_type, name)
            record_id = secrets.token_bytes(32)
            writer = crypto.write_record_blob(
                Concat(header, stream), record_id, key.patient, int(key.category), key.epoch, key.public_key
            )
            blob = b"".join(writer)
        finally:
            if owned:
                stream.close()
        return record_id, blob, writer.fingerprint, writer.plaintext_size - len(header)

    def _store_small(self, jobs: list[_Job], key: CategoryKey) -> None:
        """Seal the group in memory, journal each record (its CID is computed here), then add them all,
        pinned, in one multipart request: a crash at any point leaves a journal entry for whatever may
        be pinned, and a failed request leaves nothing pinned."""
        kept: list[tuple[_Job, Stored, bytes]] = []
        for job in jobs:
            try:
                record_id, blob, fingerprint, size = self._seal_in_memory(job, key)
                cid = self.client.store.cid_of(blob)
                entry = journal_write(
                    self.client, record_id, cid, self.patient, self.author.address, fingerprint, key.epoch
                )
            except BaseException as exc:  # noqa: BLE001 - the record's own failure goes to its future
                job.sealed.set_exception(exc)
                continue
            kept.append((job, Stored(record_id, cid, fingerprint, size, entry), blob))
        if not kept:
            return
        try:
            self.client.store.add_many([blob for _, _, blob in kept])
        except BaseException as exc:  # noqa: BLE001 - every record of the request fails (nothing pinned)
            for job, stored, _ in kept:
                discard(self.client, stored)
                job.sealed.set_exception(exc)
            return
        for job, stored, _ in kept:
            job.sealed.set_result(self._sealed(stored, job.content_type, key))

    # --- stage 2: register on chain (one thread sends in order; another collects receipts) ----------
    def _send_loop(self) -> None:
        receipts: queue.Queue[Any] = queue.Queue()
        collector = threading.Thread(
            target=self._receipt_loop, args=(receipts,), name="medledger-receipts", daemon=True
        )
        collector.start()
        carry: Any = None
        try:
            while True:
                item, carry = (carry if carry is not None else self._chain_queue.get()), None
                if item is _STOP:
                    return
                first = self._resolve(item)
                if first is None:
                    continue
                batch, carry = self._fill([(first, item[1])])
                self._send(batch, receipts)
        finally:
            receipts.put(_STOP)
            collector.join()

    def _fill(self, batch: list[tuple[_Sealed, Future[WriteResult]]]) -> tuple[list[Any], Any]:
        """Add the records submitted behind the first (waiting for their sealing: the workers are the slow
        stage, so this costs no throughput) while they are sealed to the same epoch; the first that is
        not goes to the next transaction."""
        while len(batch) < self.max_per_tx:
            try:
                item = self._chain_queue.get_nowait()
            except queue.Empty:
                return batch, None
            if item is _STOP:
                return batch, item
            sealed = self._resolve(item)
            if sealed is None:
                continue
            if sealed.epoch != batch[0][0].epoch:
                return batch, item
            batch.append((sealed, item[1]))
        return batch, None

    @staticmethod
    def _resolve(item: _Item) -> _Sealed | None:
        """The sealed record of ``item``, or None after handing its own failure to its future."""
        pending, done = item
        try:
            return pending.result()
        except BaseException as exc:  # noqa: BLE001 - the record's own failure goes to its future
            done.set_exception(exc)
            return None

    def _send(self, batch: list[tuple[_Sealed, Future[WriteResult]]], receipts: queue.Queue[Any]) -> None:
        entries = [RecordEntry(s.result.record_id, s.result.fingerprint, cid_to_bytes(s.result.cid)) for s, _ in batch]
        try:
            sent = self._registrar.send(batch[0][0].epoch, entries, journals=[s.stored.journal for s, _ in batch])
        except BaseException as exc:  # noqa: BLE001 - goes to the records' futures
            self._fail(batch, exc)
            return
        receipts.put((sent, batch))

    def _receipt_loop(self, receipts: queue.Queue[Any]) -> None:
        """Collect receipts in order; make the mined ones written in batches: when ACK_BATCH records
        are mined, when the oldest has waited ACK_DELAY, and at the end (at once where written is mined)."""
        chain = self.client.chain
        delay = ACK_DELAY if chain.durability is not None and chain.durability.batches(chain) else 0.0
        mined: list[tuple[Mined, _Batch]] = []
        count, oldest = 0, 0.0
        while True:
            try:
                item = receipts.get(timeout=max(0.0, oldest + delay - time.monotonic()) if mined else None)
            except queue.Empty:
                item = None
            if item is not None and item is not _STOP:
                sent, batch = item
                try:
                    mined.append((self._registrar.wait(sent), batch))
                    count, oldest = count + len(batch), (oldest if len(mined) > 1 else time.monotonic())
                except BaseException as exc:  # noqa: BLE001 - goes to the records' futures
                    self._fail(batch, exc)
            if mined and (item is None or item is _STOP or count >= ACK_BATCH or delay == 0.0):
                self._acknowledge(mined)
                mined, count = [], 0
            if item is _STOP:
                return

    def _acknowledge(self, mined: list[tuple[Mined, _Batch]]) -> None:
        """Make the mined registrations written at once, then resolve their records' futures."""
        chain = self.client.chain
        try:
            if chain.durability is not None:
                chain.durability.settle(chain, [where for where, _ in mined])
        except BaseException as exc:  # noqa: BLE001 - every record of them: journaled, not written
            for _, batch in mined:
                for sealed, done in batch:
                    sealed.stored.journal.release()  # kept for recovery
                    done.set_exception(exc)
            return
        for _, batch in mined:
            for sealed, done in batch:
                sealed.stored.journal.remove()
                done.set_result(sealed.result)

    def _fail(self, batch: _Batch, exc: BaseException) -> None:
        """A transaction registers all its records or none: each future fails; each ciphertext goes
        unless the transaction may still land (then the journal keeps them all for recovery)."""
        for sealed, done in batch:
            if sealed.stored.journal.tx is None:  # never sent, or it can never land: undo the upload
                discard(self.client, sealed.stored)
            else:
                sealed.stored.journal.release()  # kept for recovery: it may land, or be re-sent
            done.set_exception(exc)
