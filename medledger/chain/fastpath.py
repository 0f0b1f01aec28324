"""The fast path for bulk registration: bare JSON-RPC, locally tracked nonces, direct ABI encoding,
several records per transaction (``registerRecords``).

web3's contract-function path costs ~10 ms of Python per transaction, which under the GIL would slow
the encrypt/add stage a bulk ingest runs beside it. :class:`FastRegistrar` simulates and prices the
first registration once (so a refusal still comes back as the decoded, readable error), then signs
each further one from a template and sends it raw. :meth:`FastRegistrar.category_key` reads the
category's current key the same way (one batched round trip with the chain time), cheap enough to
check before every record is sealed. :meth:`FastRegistrar.send` is called from one thread in order;
:meth:`FastRegistrar.wait` may run in another. As every transaction medledger sends, each takes its
nonce under the account's nonce lock and is journaled before it is sent: the one signed transaction
in the journal entry of every record it registers (:class:`~medledger.chain.sending.Sender`).
:meth:`FastRegistrar.wait` returns where it was mined, and the caller makes a batch of them written
at once (:meth:`~medledger.chain.durability.Durability.settle`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import keccak

from medledger.errors import ChainError, TransactionPending

from .contract import MedledgerContract, Sender, Tx
from .durability import Mined, mined_of
from .outbox import JournalEntry
from .sending import Sender as Sending
from .types import CategoryKey, RecordEntry

GAS_MARGIN = 1.25
#: An upper bound of the gas one more record adds to a ``registerRecords`` call (~28.4k measured).
GAS_PER_RECORD = 40_000
POLL_SECONDS = 0.01
_REGISTER_TYPES = ["address", "uint8", "uint8", "uint32", "(bytes32,bytes32,uint8,bytes32)[]"]
_REGISTER_SELECTOR = keccak(text=f"registerRecords({','.join(_REGISTER_TYPES)})")[:4]


@dataclass(frozen=True)
class PendingRegistration:
    """A bulk registration sent but not yet known to be mined."""

    tx_hash: str
    record_ids: tuple[bytes, ...]
    tx: Tx
    sending: Sending | None = None


class FastRegistrar:
    """Registers records of one patient, category and purpose from one sender, pipelined, several per
    transaction."""

    def __init__(self, contract: MedledgerContract, sender: Sender, patient: str, category: int, purpose: int) -> None:
        self.contract = contract
        self.chain = contract.chain
        self.sender = sender
        self.patient = patient
        self.category = int(category)
        self.purpose = int(purpose)
        self._template: dict[str, Any] | None = None
        self._gas_first = 0
        self._count_first = 0
        self._lock = threading.Lock()
        self._key_call = contract.category_key_call(patient, self.category)

    def category_key(self) -> tuple[CategoryKey, int]:
        """The category's current key and the chain time (the latest block's), in one round trip."""
        answer, block = self.chain.rpc_batch(
            [("eth_call", [self._key_call, "latest"]), ("eth_getBlockByNumber", ["latest", False])]
        )
        return self.contract.category_key_from(self.patient, self.category, answer), int(block["timestamp"], 16)

    def _tx(self, key_epoch: int, entries: Sequence[RecordEntry]) -> Tx:
        args = (self.patient, self.category, self.purpose, int(key_epoch), [e.as_abi() for e in entries])
        return Tx("registerRecords", args, {"category": self.category, "purpose": self.purpose})

    def _prepare(self, tx: Tx) -> dict[str, Any]:
        """One simulation per registrar (it also turns a refusal into the decoded error), the gas of the
        first call, and the fee parameters."""
        contract, chain = self.contract, self.chain
        contract.simulate(tx, self.sender)
        fn = contract.bound(tx)
        self._gas_first = int(chain.guarded(lambda: fn.estimate_gas({"from": self.sender.address})))
        self._count_first = len(tx.args[4])
        priority = int(chain.guarded(lambda: chain.w3.eth.max_priority_fee))
        base = int(chain.guarded(lambda: chain.w3.eth.get_block("latest")).get("baseFeePerGas", 0))
        return {
            "to": contract.address,
            "value": 0,
            "chainId": chain.chain_id,
            "maxPriorityFeePerGas": priority,
            "maxFeePerGas": 2 * base + priority,
            "type": 2,
        }

    def _gas(self, count: int) -> int:
        extra = max(0, count - self._count_first) * GAS_PER_RECORD
        return int((self._gas_first + extra) * GAS_MARGIN) + 10_000

    def send(
        self, key_epoch: int, entries: Sequence[RecordEntry], *, journals: Sequence[JournalEntry] = ()
    ) -> PendingRegistration:
        """Sign and send one ``registerRecords`` of ``entries`` (sealed to ``key_epoch``), kept first in
        ``journals`` (each record's journal entry); a refusal of the first call raises its decoded error."""
        tx = self._tx(key_epoch, entries)
        with self._lock:
            if self._template is None:
                self._template = self._prepare(tx)
            data = _REGISTER_SELECTOR + abi_encode(_REGISTER_TYPES, list(tx.args))
            fields = {**self._template, "gas": self._gas(len(entries)), "data": data}
            what = f"registerRecords({self.patient}, {len(entries)} record(s) from 0x{entries[0].record_id.hex()})"
            sending = Sending(self.chain, self.sender.account, what, journals, bare=True)
            signed = sending.sign_and_send(fields)
        return PendingRegistration(signed.tx_hash, tuple(e.record_id for e in entries), tx, sending)

    def wait(self, pending: PendingRegistration) -> Mined:
        """Wait until ``pending`` is mined and return where; raise its decoded refusal if it reverted
        (then none of its records is registered, and it is dropped from their journal entries)."""
        deadline_s = self.chain.timeout * 4
        what = f"registering {len(pending.record_ids)} record(s) from 0x{pending.record_ids[0].hex()}"
        receipt = None
        waited = 0.0
        while receipt is None:
            receipt = self.chain.rpc("eth_getTransactionReceipt", [pending.tx_hash])
            if receipt is None:
                if waited > deadline_s:
                    raise TransactionPending(pending.tx_hash, deadline_s, what)
                time.sleep(POLL_SECONDS)
                waited += POLL_SECONDS
        if int(receipt["status"], 16) != 1:
            if pending.sending is not None:
                pending.sending.forget()
            # Replay it on the state it ran against to learn why (raises the decoded error).
            block = int(receipt["blockNumber"], 16) - 1
            fn = self.contract.bound(pending.tx)
            self.chain.call(fn, self.contract.decoder, self.sender.address, pending.tx.context, block=block)
            raise ChainError(f"The transaction {what} reverted")
        return mined_of(receipt)
