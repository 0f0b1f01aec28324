"""Bulk ingest: many records for one patient and category, pipelined.

A hospital system or a device gateway writes records in volume. :class:`Ingestor` does the per-batch
work once (settle interrupted writes, check the write consent, fetch the category key) and then
overlaps the two slow stages: worker threads validate, encrypt and add ciphertext to IPFS while one
sender thread registers the fingerprints on chain in order, through the chain layer's fast path
(:class:`~medledger.chain.fastpath.FastRegistrar`: bare JSON-RPC, template signing). The crash-safety
of :func:`records.write_record` holds record by record: each ciphertext is journaled before it is
pinned, its signed transaction before it is sent, and it is unpinned if the transaction can never
land. A future resolves only once its record is written; the mined ones are made written in batches
(on the local node: one saved state for all the records mined meanwhile, not one per record).

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
from typing import Any

from . import codes
from .access import check_access
from .chain.durability import Mined
from .chain.fastpath import FastRegistrar
from .client import Client, as_address
from .errors import MedledgerError
from .keyring import Keyring
from .keystore import Identity
from .records import WriteResult, prepare, recover_pending
from .records.payload import Source
from .records.write import Stored, discard, seal_and_store
from .storage import cid_to_bytes

_STOP = object()
#: At most this many mined records are made written (on the local node: saved) at once, and a mined
#: record waits at most ACK_DELAY seconds for others to share the save with.
ACK_BATCH = 256
ACK_DELAY = 0.2


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
    ) -> None:
        self.client = client
        self.author = author
        self.patient = as_address(patient)
        self.category = codes.Category(int(category))
        self.purpose = codes.Purpose(int(purpose))
        self.content_type = content_type
        recover_pending(client)
        check_access(client, self.patient, author.address, codes.Access.WRITE, self.category, self.purpose)
        self.epoch, self.public = Keyring(client).directory(self.patient).public_key(self.category)
        self._registrar = FastRegistrar(
            client.contract, author, self.patient, self.category, self.purpose, key_epoch=self.epoch
        )
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="medledger-encrypt")
        self._chain_queue: queue.Queue[Any] = queue.Queue(maxsize=workers * 2)
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
        stored = self._pool.submit(self._store, source, content_type)
        self._chain_queue.put((stored, done))  # order of registration = order of submission
        return done

    def close(self) -> None:
        self._chain_queue.put(_STOP)
        self._sender.join()
        self._pool.shutdown(wait=True)

    # --- stage 1: encrypt and add (worker threads) --------------------------------------------------
    def _store(self, source: Source, content_type: str) -> tuple[Stored, WriteResult]:
        stored = seal_and_store(
            self.client, source, record_id=secrets.token_bytes(32), patient=self.patient, category=self.category,
            epoch=self.epoch, public=self.public, content_type=content_type,
        )  # fmt: skip
        return stored, WriteResult(
            stored.record_id, stored.cid, stored.fingerprint, self.category, content_type, stored.size
        )

    # --- stage 2: register on chain (one thread sends in order; another collects receipts) ----------
    def _send_loop(self) -> None:
        receipts: queue.Queue[Any] = queue.Queue()
        collector = threading.Thread(
            target=self._receipt_loop, args=(receipts,), name="medledger-receipts", daemon=True
        )
        collector.start()
        try:
            while True:
                item = self._chain_queue.get()
                if item is _STOP:
                    return
                pending, done = item
                try:
                    stored, result = pending.result()
                except BaseException as exc:  # noqa: BLE001 - the record's own failure goes to its future
                    done.set_exception(exc)
                    continue
                try:
                    sent = self._registrar.send(
                        result.record_id, result.fingerprint, cid_to_bytes(result.cid), journal=stored.journal
                    )
                except BaseException as exc:  # noqa: BLE001 - goes to the record's future
                    self._fail(stored, done, exc)
                    continue
                receipts.put((sent, done, stored, result))
        finally:
            receipts.put(_STOP)
            collector.join()

    def _receipt_loop(self, receipts: queue.Queue[Any]) -> None:
        """Collect receipts in order; make the mined ones written in batches: when ACK_BATCH are
        mined, when the oldest has waited ACK_DELAY, and at the end (at once where written is mined)."""
        chain = self.client.chain
        delay = ACK_DELAY if chain.durability is not None and chain.durability.batches(chain) else 0.0
        mined: list[tuple[Mined, Future[WriteResult], Stored, WriteResult]] = []
        oldest = 0.0
        while True:
            try:
                item = receipts.get(timeout=max(0.0, oldest + delay - time.monotonic()) if mined else None)
            except queue.Empty:
                item = None
            if item is not None and item is not _STOP:
                sent, done, stored, result = item
                try:
                    mined.append((self._registrar.wait(sent), done, stored, result))
                    oldest = oldest if len(mined) > 1 else time.monotonic()
                except BaseException as exc:  # noqa: BLE001 - goes to the record's future
                    self._fail(stored, done, exc)
            if mined and (item is None or item is _STOP or len(mined) >= ACK_BATCH or delay == 0.0):
                self._acknowledge(mined)
                mined = []
            if item is _STOP:
                return

    def _acknowledge(self, mined: list[tuple[Mined, Future[WriteResult], Stored, WriteResult]]) -> None:
        """Make a batch of mined registrations written at once, then resolve their futures."""
        if not mined:
            return
        chain = self.client.chain
        try:
            if chain.durability is not None:
                chain.durability.settle(chain, [m for m, _, _, _ in mined])
        except BaseException as exc:  # noqa: BLE001 - every record of the batch: journaled, not written
            for _, done, stored, _ in mined:
                stored.journal.release()  # kept for recovery
                done.set_exception(exc)
            return
        for _, done, stored, result in mined:
            stored.journal.remove()
            done.set_result(result)

    def _fail(self, stored: Stored, done: Future[WriteResult], exc: BaseException) -> None:
        if stored.journal.tx is None:  # never sent, or it can never land: undo the upload
            discard(self.client, stored)
        else:
            stored.journal.release()  # kept for recovery: it may land, or be re-sent
        done.set_exception(exc)
