"""The fast path for bulk registration: bare JSON-RPC, locally tracked nonces, direct ABI encoding.

web3's contract-function path costs ~10 ms of Python per transaction, which under the GIL would slow
the encrypt/add stage a bulk ingest runs beside it. :class:`FastRegistrar` simulates and prices the
first registration once (so a refusal still comes back as the decoded, readable error), then signs
each further one from a template and sends it raw. :meth:`FastRegistrar.send` is called from one
thread in order; :meth:`FastRegistrar.wait` may run in another.
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
        self._nonce = self.chain.nonce(sender.address)
        self._template: dict[str, Any] | None = None
        self._lock = threading.Lock()

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

    def send(self, record_id: bytes, fingerprint: bytes, cid: bytes) -> PendingRegistration:
        """Sign and send one registration; a refusal of the first raises its decoded error."""
        tx = self._tx(record_id, fingerprint, cid)
        with self._lock:
            if self._template is None:
                self._template = self._prepare(tx)
            data = _REGISTER_SELECTOR + abi_encode(_REGISTER_TYPES, tx.args)
            signed = self.sender.account.sign_transaction({**self._template, "nonce": self._nonce, "data": data})
            try:
                tx_hash = self.chain.rpc("eth_sendRawTransaction", ["0x" + bytes(signed.raw_transaction).hex()])
            except BaseException:
                self._nonce = self.chain.nonce(self.sender.address)
                raise
            self._nonce += 1
        return PendingRegistration(str(tx_hash), record_id, tx)

    def wait(self, pending: PendingRegistration) -> None:
        """Wait until ``pending`` is mined; raise its decoded refusal if it reverted."""
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
            # Replay it on the state it ran against to learn why (raises the decoded error).
            block = int(receipt["blockNumber"], 16) - 1
            fn = self.contract.bound(pending.tx)
            self.chain.call(fn, self.contract.decoder, self.sender.address, pending.tx.context, block=block)
            raise ChainError(f"Registering record 0x{pending.record_id.hex()} reverted")
