"""Bulk ingest: many records for one patient and category, pipelined, several per transaction.

A hospital system or a device gateway writes records in volume. :class:`Ingestor` does the per-batch
work once (settle interrupted writes, check the write consent) and then overlaps the two slow stages:
worker threads validate, encrypt and add ciphertext to IPFS while one sender thread registers the
fingerprints on chain in order, as many records per ``registerRecords`` transaction as have been
submitted behind the first (up to ``max_per_tx``), through the chain layer's fast path
(:class:`~medledger.chain.fastpath.FastRegistrar`: bare JSON-RPC, local nonces). Each record reads
the category's current key before it is sealed and is refused if the key is stale (a revocation or
an ended access since the ingest began); records sealed to different epochs never share a
transaction. A transaction registers all its records or none: a refusal fails every record in it.
The crash-safety of :func:`records.write_record` holds record by record: each ciphertext is
journaled before it is pinned, the signed transaction in the entry of every record it carries before
it is sent, and the ciphertext is unpinned if the transaction can never land. A future resolves only
once its record is written; the mined ones are made written in batches (on the local node: one saved
state for all the records mined meanwhile, not one per transaction).

    with Ingestor(client, author, patient, category=Category.IMAGING) as ingest:
        futures = [ingest.submit(path) for path in paths]
    results = [f.result() for f in futures]   # WriteResult, or the record's own error
"""

from __future__ import annotations

import queue
import secrets
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from . import codes
from .access import check_access
from .chain import RecordEntry
from .chain.durability import Mined
from .chain.fastpath import FastRegistrar
from .client import Client, as_address
from .errors import MedledgerError
from .keyring import check_writable
from .keystore import Identity
from .records import WriteResult, prepare, recover_pending
from .records.payload import Source
from .records.write import Stored, discard, seal_and_store
from .storage import cid_to_bytes

#: The most records one ``registerRecords`` transaction carries.
MAX_PER_TX = 50
#: At most this many mined records are made written (on the local node: saved) at once, and a mined
#: record waits at most ACK_DELAY seconds for others to share the save with.
ACK_BATCH = 256
ACK_DELAY = 0.2

_STOP = object()


@dataclass(frozen=True)
class _Sealed:
    """A record encrypted, added and journaled, with the key epoch it was sealed to."""

    stored: Stored
    result: WriteResult
    epoch: int


_Item = tuple["Future[_Sealed]", "Future[WriteResult]"]
_Batch = list[tuple[_Sealed, "Future[WriteResult]"]]


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
        workers: int = 2,
        content_type: str | None = None,
        max_per_tx: int = MAX_PER_TX,
    ) -> None:
        self.client = client
        self.author = author
        self.patient = as_address(patient)
        self.category = codes.Category(int(category))
        self.purpose = codes.Purpose(int(purpose))
        self.content_type = content_type
        self.max_per_tx = max(1, int(max_per_tx))
        recover_pending(client)
        check_access(client, self.patient, author.address, codes.Access.WRITE, self.category, self.purpose)
        self._registrar = FastRegistrar(client.contract, author, self.patient, self.category, self.purpose)
        check_writable(*self._registrar.category_key())  # refuse at once if the key is stale already
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="medledger-encrypt")
        # Bounded: what waits here is what one transaction can carry (and what sits in memory).
        self._chain_queue: queue.Queue[Any] = queue.Queue(maxsize=max(workers * 4, 2))
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
        sealed = self._pool.submit(self._store, source, content_type)
        self._chain_queue.put((sealed, done))  # order of registration = order of submission
        return done

    def close(self) -> None:
        self._chain_queue.put(_STOP)
        self._sender.join()
        self._pool.shutdown(wait=True)

    # --- stage 1: encrypt and add (worker threads) --------------------------------------------------
    def _store(self, source: Source, content_type: str) -> _Sealed:
        key = check_writable(*self._registrar.category_key())  # per record: never seal to a stale key
        stored = seal_and_store(
            self.client,
            source,
            record_id=secrets.token_bytes(32),
            author=self.author.address,
            key=key,
            content_type=content_type,
        )
        result = WriteResult(stored.record_id, stored.cid, stored.fingerprint, self.category, content_type, stored.size)
        return _Sealed(stored, result, key.epoch)

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
        """Add the records submitted behind the first (waiting for their encryption: the workers are the
        slow stage, so this costs no throughput) while they are sealed to the same epoch; the first
        that is not goes to the next transaction."""
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
