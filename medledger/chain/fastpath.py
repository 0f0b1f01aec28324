"""The fast path for bulk registration: bare JSON-RPC, locally tracked nonces, direct ABI encoding.

web3's contract-function path costs ~10 ms of Python per transaction, which under the GIL would slow
the encrypt/add stage a bulk ingest runs beside it. :class:`FastRegistrar` simulates and prices the
first registration once (so a refusal still comes back as the decoded, readable error), then signs
each further one from a template and sends it raw. :meth:`FastRegistrar.send` is called from one
thread in order; :meth:`FastRegistrar.wait` may run in another. As every transaction medledger sends,
each takes its nonce under the account's nonce lock and is journaled before it is sent (in the
record's journal entry); :meth:`FastRegistrar.wait` returns where it was mined, and the caller makes
a batch of them written at once (:meth:`~medledger.chain.durability.Durability.settle`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import keccak

from medledger.errors import ChainError, TransactionPending

from .contract import MedledgerContract, Sender, Tx
from .durability import Mined, mined_of
from .nonces import ATTEMPTS, NonceLocks, is_nonce_clash
from .outbox import JournalEntry, SignedTx, now_ns

GAS_MARGIN = 1.25
POLL_SECONDS = 0.01
_REGISTER_TYPES = ["bytes32", "address", "uint8", "uint8", "bytes32", "bytes"]
_REGISTER_SELECTOR = keccak(text=f"registerRecord({','.join(_REGISTER_TYPES)})")[:4]


@dataclass(frozen=True)
class PendingRegistration:
    """A registration sent but not yet known to be mined."""

    tx_hash: str
    record_id: bytes
    tx: Tx
    journal: JournalEntry | None = None


class FastRegistrar:
    """Registers records of one patient, category and purpose from one sender, pipelined."""

    def __init__(
        self, contract: MedledgerContract, sender: Sender, patient: str, category: int, purpose: int,
        *, key_epoch: int | None = None,
    ) -> None:  # fmt: skip
        """``key_epoch``: the category-key epoch the records' keys are sealed to (the contract's next ABI
        checks it; bulk registration batches records then)."""
        self.contract = contract
        self.key_epoch = key_epoch
        self.chain = contract.chain
        self.sender = sender
        self.patient = patient
        self.category = int(category)
        self.purpose = int(purpose)
        self._template: dict[str, Any] | None = None
        self._lock = threading.Lock()
        durability = self.chain.durability
        self._nonces = durability.nonce_locks(self.chain) if durability else NonceLocks(None, self.chain.chain_id)

    @property
    def _context(self) -> dict[str, int]:
        return {"category": self.category, "purpose": self.purpose}

    def _tx(self, record_id: bytes, fingerprint: bytes, cid: bytes) -> Tx:
        args = (record_id, self.patient, self.category, self.purpose, fingerprint, cid)
        return Tx("registerRecord", args, self._context)

    def _prepare(self, tx: Tx) -> dict[str, Any]:
        """One simulation per registrar (it also turns a refusal into the decoded error), the gas of
        one registration, and the fee parameters."""
        contract, chain = self.contract, self.chain
        contract.simulate(tx, self.sender)
        fn = contract.bound(tx)
        gas = int(chain.guarded(lambda: fn.estimate_gas({"from": self.sender.address})) * GAS_MARGIN) + 10_000
        priority = int(chain.guarded(lambda: chain.w3.eth.max_priority_fee))
        base = int(chain.guarded(lambda: chain.w3.eth.get_block("latest")).get("baseFeePerGas", 0))
        return {
            "to": contract.address,
            "value": 0,
            "gas": gas,
            "chainId": chain.chain_id,
            "maxPriorityFeePerGas": priority,
            "maxFeePerGas": 2 * base + priority,
            "type": 2,
        }

    def send(
        self, record_id: bytes, fingerprint: bytes, cid: bytes, *, journal: JournalEntry | None = None
    ) -> PendingRegistration:
        """Sign and send one registration, journaled in ``journal`` first; a refusal of the first
        raises its decoded error."""
        tx = self._tx(record_id, fingerprint, cid)
        with self._lock:
            if self._template is None:
                self._template = self._prepare(tx)
            data = _REGISTER_SELECTOR + abi_encode(_REGISTER_TYPES, tx.args)
            what = f"registerRecord(0x{record_id.hex()}, {self.patient})"
            for attempt in range(ATTEMPTS):
                with self._nonces.hold(self.sender.address):
                    nonce = self.chain.nonce(self.sender.address)
                    signed = self.sender.account.sign_transaction({**self._template, "nonce": nonce, "data": data})
                    kept = SignedTx(
                        "0x" + bytes(signed.hash).hex(), "0x" + bytes(signed.raw_transaction).hex(),
                        self.sender.address, nonce, self.contract.address, what, now_ns(),
                    )  # fmt: skip
                    if journal is not None:
                        journal.record(kept)
                    try:
                        self.chain.rpc("eth_sendRawTransaction", [kept.raw])
                    except ChainError as exc:
                        if "already known" in str(exc).lower():  # the node holds this very transaction
                            return PendingRegistration(kept.tx_hash, record_id, tx, journal)
                        if journal is not None:
                            journal.forget_tx()
                        if not is_nonce_clash(str(exc)) or attempt == ATTEMPTS - 1:
                            raise
                        continue
                    return PendingRegistration(kept.tx_hash, record_id, tx, journal)
        raise AssertionError("unreachable")  # pragma: no cover

    def wait(self, pending: PendingRegistration) -> Mined:
        """Wait until ``pending`` is mined and return where; raise its decoded refusal if it reverted
        (it is then dropped from its journal entry: it can never land)."""
        deadline_s = self.chain.timeout * 4
        receipt = None
        waited = 0.0
        while receipt is None:
            receipt = self.chain.rpc("eth_getTransactionReceipt", [pending.tx_hash])
            if receipt is None:
                if waited > deadline_s:
                    what = f"registering record 0x{pending.record_id.hex()}"
                    raise TransactionPending(pending.tx_hash, deadline_s, what)
                time.sleep(POLL_SECONDS)
                waited += POLL_SECONDS
        if int(receipt["status"], 16) != 1:
            if pending.journal is not None:
                pending.journal.forget_tx()
            # Replay it on the state it ran against to learn why (raises the decoded error).
            block = int(receipt["blockNumber"], 16) - 1
            fn = self.contract.bound(pending.tx)
            self.chain.call(fn, self.contract.decoder, self.sender.address, pending.tx.context, block=block)
            raise ChainError(f"Registering record 0x{pending.record_id.hex()} reverted")
        return mined_of(receipt)
