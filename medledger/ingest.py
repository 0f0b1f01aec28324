"""Bulk ingest: many records for one patient and category, pipelined.

A hospital system or a device gateway writes records in volume. :class:`Ingestor` does the per-batch
work once (settle interrupted writes, check the write consent, fetch the category key) and then
overlaps the two slow stages: worker threads validate, encrypt and add ciphertext to IPFS while one
sender thread registers the fingerprints on chain in order, through the chain layer's fast path
(:class:`~medledger.chain.fastpath.FastRegistrar`: bare JSON-RPC, local nonces). The crash-safety of
:func:`records.write_record` holds record by record: each ciphertext is journaled before its
transaction and unpinned if the transaction fails.

    with Ingestor(client, author, patient, category=Category.IMAGING) as ingest:
        futures = [ingest.submit(path) for path in paths]
    results = [f.result() for f in futures]   # WriteResult, or the record's own error
"""

from __future__ import annotations

import queue
import secrets
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from . import codes
from .access import check_access
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
                    sent = self._registrar.send(result.record_id, result.fingerprint, cid_to_bytes(result.cid))
                except BaseException as exc:  # noqa: BLE001 - goes to the record's future
                    self._fail(stored, done, exc)
                    continue
                receipts.put((sent, done, stored, result))
        finally:
            receipts.put(_STOP)
            collector.join()

    def _receipt_loop(self, receipts: queue.Queue[Any]) -> None:
        while True:
            item = receipts.get()
            if item is _STOP:
                return
            sent, done, stored, result = item
            try:
                self._registrar.wait(sent)
            except BaseException as exc:  # noqa: BLE001 - goes to the record's future
                self._fail(stored, done, exc)
                continue
            stored.journal.unlink(missing_ok=True)
            done.set_result(result)

    def _fail(self, stored: Stored, done: Future[WriteResult], exc: BaseException) -> None:
        discard(self.client, stored)
        done.set_exception(exc)
