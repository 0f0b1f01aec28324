"""Sending one transaction so that nothing is lost: nonce, journal, send, mine, written.

The steps, in order: take the account's nonce lock; take the nonce from the node; sign; keep the
signed bytes in the journal (the caller's entry, see :func:`~medledger.chain.outbox.journaling`, or
one of its own); send; release the lock; wait until mined; make it written
(:meth:`~medledger.chain.durability.Durability.settle`); drop an entry of its own.

What a failure leaves:
- refused by the node (a clash on the nonce: retried with a new one; anything else: raised): the
  transaction can never land, so the journal forgets it;
- reverted when mined: the same, and the decoded reason is raised;
- the node stopped answering after the transaction was signed, or it is not mined in time: the
  journal keeps it and :class:`~medledger.errors.WriteInterrupted` (or
  :class:`~medledger.errors.TransactionPending`) says so; recovery settles it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from web3.exceptions import ContractLogicError, TimeExhausted
from web3.types import TxReceipt

from medledger.errors import ChainError, ServiceUnavailable, TransactionPending, WriteInterrupted

from .durability import Node, mined_of
from .nonces import ATTEMPTS, NonceLocks, is_nonce_clash
from .outbox import JournalEntry, SignedTx, current_entry, now_ns, record_in_all
from .reverts import ErrorDecoder, revert_data


def describe_call(name: str, args: Any) -> str:
    """``grant(0xf39F…, 0x7099…, 1, …)``: a call in words for the journal and messages (addresses,
    codes, ids: never health data)."""
    return f"{name}({', '.join(_short(a) for a in args)})"


def _short(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        raw = bytes(value)
        return "0x" + raw.hex() if len(raw) <= 32 else f"<{len(raw)} bytes>"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(_short(v) for v in value) + ")"
    return str(int(value)) if isinstance(value, int) else str(value)


class Sender:
    """Sends one transaction from ``account`` on ``chain`` (see the module's docstring).

    It is journaled in ``entries`` (the writes it carries out: a bulk registration's records), else
    in the entry of :func:`~medledger.chain.outbox.journaling`, else in an entry of its own. ``bare``
    sends it by bare JSON-RPC (the bulk path: no web3 on the hot path)."""

    def __init__(
        self,
        chain: Node,
        account: LocalAccount,
        what: str,
        entries: Sequence[JournalEntry] | None = None,
        *,
        bare: bool = False,
    ) -> None:
        self.chain = chain
        self.account = account
        self.what = what
        self.bare = bare
        durability = chain.durability
        self.journal = durability.journal(chain) if durability is not None else None
        self.locks = durability.nonce_locks(chain) if durability is not None else NonceLocks(None, chain.chain_id)
        current = current_entry()
        self.entries: list[JournalEntry] = list(entries) if entries else ([current] if current is not None else [])
        self.own_entry = False

    @property
    def entry(self) -> JournalEntry | None:
        """The (first) entry that keeps the transaction."""
        return self.entries[0] if self.entries else None

    def sign_and_send(self, tx: Mapping[str, Any]) -> SignedTx:
        """Nonce, sign, journal, send: retried with a new nonce when another writer took it."""
        for attempt in range(ATTEMPTS):
            with self.locks.hold(self.account.address):
                signed = self._sign(tx)
                try:
                    self._send_raw(signed)
                    return signed
                except ServiceUnavailable as exc:
                    raise self.interrupted(exc, signed, "signed and possibly sent") from exc
                except ChainError as exc:
                    if "already known" in str(exc).lower():
                        return signed  # the node holds this very transaction already
                    self.forget()
                    if not is_nonce_clash(str(exc)) or attempt == ATTEMPTS - 1:
                        raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _send_raw(self, signed: SignedTx) -> None:
        if self.bare:
            self.chain.rpc("eth_sendRawTransaction", [signed.raw])
        else:
            self.chain.guarded(lambda: self.chain.w3.eth.send_raw_transaction(HexStr(signed.raw)))

    def _sign(self, tx: Mapping[str, Any]) -> SignedTx:
        nonce = self.chain.nonce(self.account.address)
        raw = self.account.sign_transaction({**tx, "nonce": nonce})
        to = tx.get("to")
        signed = SignedTx(
            "0x" + bytes(raw.hash).hex(), "0x" + bytes(raw.raw_transaction).hex(), self.account.address, nonce,
            str(to) if to else None, self.what, now_ns(),
        )  # fmt: skip
        if not self.entries and self.journal is not None:
            self.entries, self.own_entry = [self.journal.transaction_entry(signed)], True
        elif self.entries:
            record_in_all(self.entries, signed)
        return signed

    def forget(self) -> None:
        """The transaction can never land: drop it from the journal."""
        if self.own_entry:
            for entry in self.entries:
                entry.remove()
            self.entries, self.own_entry = [], False
        else:
            for entry in self.entries:
                entry.forget_tx()

    def interrupted(self, exc: ServiceUnavailable, signed: SignedTx, stage: str) -> ServiceUnavailable:
        if self.entry is None:
            return exc
        return WriteInterrupted(exc.service, exc.url, exc.reason, signed.tx_hash, signed.what, stage)

    def wait_written(self, signed: SignedTx) -> TxReceipt:
        """Wait until mined, then until written; return the (successful) receipt."""
        chain = self.chain
        try:
            receipt = chain.guarded(
                lambda: chain.w3.eth.wait_for_transaction_receipt(signed.tx_hash, timeout=chain.timeout * 4)  # type: ignore[arg-type]
            )
        except TimeExhausted as exc:
            raise TransactionPending(signed.tx_hash, chain.timeout * 4, signed.what) from exc
        except ServiceUnavailable as exc:
            raise self.interrupted(exc, signed, "sent") from exc
        if receipt["status"] != 1:
            self.forget()
            return receipt
        if chain.durability is not None:
            try:
                chain.durability.settle(chain, [mined_of(receipt)])
            except ServiceUnavailable as exc:
                raise self.interrupted(exc, signed, "mined, but not yet saved") from exc
        if self.own_entry and self.entry is not None:
            self.entry.remove()
        return receipt


def send_transaction(
    chain: Node,
    tx: Mapping[str, Any],
    account: LocalAccount,
    decoder: ErrorDecoder | None = None,
    context: Mapping[str, Any] | None = None,
    replay: Callable[[], Any] | None = None,
    what: str | None = None,
) -> TxReceipt:
    """Send ``tx`` (its nonce is chosen here) and return its receipt once it is written; a revert
    raises the decoded reason (replayed with ``replay``)."""
    sender = Sender(chain, account, what or describe_call("transaction", [tx.get("to") or "create"]))
    try:
        signed = sender.sign_and_send(tx)
        receipt = sender.wait_written(signed)
    finally:
        if sender.own_entry and sender.entry is not None:
            sender.entry.release()  # kept for recovery (a written transaction's entry is gone already)
    if receipt["status"] != 1:
        if replay is not None and decoder is not None:
            try:
                replay()
            except ContractLogicError as exc:
                raise decoder.to_exception(revert_data(exc), context, str(exc)) from None
        raise ChainError(f"Transaction {signed.tx_hash} ({signed.what}) reverted")
    return receipt
