"""Bulk ingest: many records for one patient and category, pipelined.

A hospital system or a device gateway writes records in volume. :class:`Ingestor` does the per-batch
work once (settle interrupted writes, check the write consent, fetch the category key) and then
overlaps the two slow stages: worker threads validate, encrypt and add ciphertext to IPFS while one
sender thread registers the fingerprints on chain in order, with locally tracked nonces. The
crash-safety of :func:`records.write_record` holds record by record: each ciphertext is journaled
before its transaction and unpinned if the transaction fails.

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
from pathlib import Path
from typing import Any, BinaryIO

from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address
from web3.exceptions import ContractLogicError

from . import codes
from .client import Client, as_address
from .consent import check_access
from .errors import ChainError, MedledgerError
from .keyring import Keyring
from .keystore import Identity
from .records import WriteResult, _discard, _seal_and_store, _Stored, prepare, recover_pending
from .storage import cid_to_bytes

_STOP = object()
GAS_MARGIN = 1.25


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
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="medledger-encrypt")
        self._chain_queue: queue.Queue[Any] = queue.Queue(maxsize=workers * 2)
        self._nonce = int(client.chain.w3.eth.get_transaction_count(to_checksum_address(author.address), "pending"))
        self._tx_template: dict[str, Any] | None = None
        self._sender = threading.Thread(target=self._send_loop, name="medledger-register", daemon=True)
        self._sender.start()

    def __enter__(self) -> "Ingestor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def submit(self, source: Path | bytes | BinaryIO, content_type: str | None = None) -> Future[WriteResult]:
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
    def _store(self, source: Path | bytes | BinaryIO, content_type: str) -> tuple[_Stored, WriteResult]:
        stored = _seal_and_store(
            self.client, source, record_id=secrets.token_bytes(32), patient=self.patient, category=self.category,
            epoch=self.epoch, public=self.public, content_type=content_type,
        )
        return stored, WriteResult(
            stored.record_id, stored.cid, stored.fingerprint, self.category, content_type, stored.size
        )

    # --- stage 2: register on chain (one thread sends in order; another collects receipts) ----------
    def _send_loop(self) -> None:
        receipts: queue.Queue[Any] = queue.Queue()
        collector = threading.Thread(target=self._receipt_loop, args=(receipts,), name="medledger-receipts", daemon=True)
        collector.start()
        try:
            while True:
                item = self._chain_queue.get()
                if item is _STOP:
                    return
                pending, done = item
                try:
                    stored, result = pending.result()
                except BaseException as exc:  # the record's own failure (validation, IPFS)
                    done.set_exception(exc)
                    continue
                try:
                    tx_hash, args = self._send(result.record_id, result.cid, result.fingerprint)
                except BaseException as exc:
                    self._fail(stored, done, exc)
                    continue
                receipts.put((tx_hash, args, done, stored, result))
        finally:
            receipts.put(_STOP)
            collector.join()

    def _receipt_loop(self, receipts: queue.Queue[Any]) -> None:
        chain = self.client.chain
        deadline_s = chain.timeout * 4
        while True:
            item = receipts.get()
            if item is _STOP:
                return
            tx_hash, args, done, stored, result = item
            try:
                receipt = None
                waited = 0.0
                while receipt is None:
                    receipt = chain.rpc("eth_getTransactionReceipt", [tx_hash])
                    if receipt is None:
                        if waited > deadline_s:
                            raise ChainError(
                                f"Transaction {tx_hash} registering record 0x{result.record_id.hex()} was not "
                                f"mined within {deadline_s:.0f} s; run `medledger records recover` later."
                            )
                        time.sleep(0.01)
                        waited += 0.01
                if int(receipt["status"], 16) != 1:
                    fn = self.client.contract.functions.registerRecord(*args)
                    try:
                        fn.call({"from": self.author.address}, block_identifier=int(receipt["blockNumber"], 16) - 1)
                    except ContractLogicError as exc:
                        data = exc.data.get("data") if isinstance(exc.data, dict) else exc.data
                        raise self.client.decoder.to_exception(data, self._context, str(exc)) from None
                    raise ChainError(f"Registering record 0x{result.record_id.hex()} reverted")
            except BaseException as exc:
                self._fail(stored, done, exc)
                continue
            stored.journal.unlink(missing_ok=True)
            done.set_result(result)

    def _fail(self, stored: _Stored, done: Future[WriteResult], exc: BaseException) -> None:
        _discard(self.client, stored)
        done.set_exception(exc)

    @property
    def _context(self) -> dict[str, int]:
        return {"category": int(self.category), "purpose": int(self.purpose)}

    def _send(self, record_id: bytes, cid: str, fingerprint: bytes) -> tuple[str, tuple[Any, ...]]:
        """Sign and send the registration. The calldata is ABI-encoded directly and the fee
        parameters are fetched once per ingest: web3's contract-function path costs ~10 ms of Python
        per record, which under the GIL would slow the encrypt/add stage running beside it."""
        client = self.client
        chain = client.chain
        args = (record_id, self.patient, int(self.category), int(self.purpose), fingerprint, cid_to_bytes(cid))
        if self._tx_template is None:
            fn = client.contract.functions.registerRecord(*args)
            # One simulation per ingest: it also turns a refusal into the decoded, readable error.
            chain.call(fn, client.decoder, self.author.address, self._context)
            gas = int(fn.estimate_gas({"from": self.author.address}) * GAS_MARGIN) + 10_000
            priority = int(chain.w3.eth.max_priority_fee)
            base = int(chain.w3.eth.get_block("latest").get("baseFeePerGas", 0))
            self._tx_template = {
                "to": client.contract.address,
                "value": 0,
                "gas": gas,
                "chainId": chain.chain_id,
                "maxPriorityFeePerGas": priority,
                "maxFeePerGas": 2 * base + priority,
                "type": 2,
            }
        data = _REGISTER_SELECTOR + abi_encode(_REGISTER_TYPES, args)
        signed = self.author.account.sign_transaction({**self._tx_template, "nonce": self._nonce, "data": data})
        try:
            tx_hash = chain.rpc("eth_sendRawTransaction", ["0x" + bytes(signed.raw_transaction).hex()])
        except BaseException:
            self._nonce = int(chain.w3.eth.get_transaction_count(to_checksum_address(self.author.address), "pending"))
            raise
        self._nonce += 1
        return tx_hash, args


_REGISTER_TYPES = ["bytes32", "address", "uint8", "uint8", "bytes32", "bytes"]
_REGISTER_SELECTOR = keccak(text=f"registerRecord({','.join(_REGISTER_TYPES)})")[:4]
