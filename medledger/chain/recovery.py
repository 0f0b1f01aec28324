"""Settling the journal after a crash: each transaction kept there is found mined, waited for, sent
again, or given up on, in the order it was signed. No key is needed: the journal holds the signed
bytes.

For each journaled transaction (entries of running processes are left alone), oldest first:

- **mined** (the node has its receipt): done;
- **pending** (the node holds it, not mined yet): waited for up to ``wait`` seconds, else left in
  the journal. A transaction that may still be mined is never given up on: what it registers must
  stay available;
- **re-sent** (the node does not know it and the account's nonce is still free: the chain forgot it
  after a restart from an older state, or it never left): the same signed bytes are sent again;
- **dead** (unknown, and the account's nonce has moved past it: another transaction took the nonce,
  so this one can never be mined);
- **blocked** (unknown, and it cannot be sent yet: an earlier nonce of the account is missing, or
  the contract it calls is not on this chain): left in the journal.

Then what was mined is made written (:meth:`~medledger.chain.durability.Durability.settle`), and the
entries of plain transactions (grants, revocations, registrations, deployments) are removed once
final: applied, re-applied, failed (reverted) or lost (dead), each reported in words so a lost
decision is never silent. Entries of domain writes (records) are settled by their owner from the
:class:`Outcome` of their transaction.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from medledger.errors import ChainError

from .deployments import record_journaled
from .durability import Node, mined_of
from .nonces import is_nonce_clash
from .outbox import Journal, JournalEntry, SignedTx

#: Seconds a re-sent transaction is waited for at least (a development node mines at once).
RESENT_WAIT = 5.0
POLL_SECONDS = 0.1


@dataclass(frozen=True)
class Outcome:
    """What became of one journaled transaction."""

    tx: SignedTx
    state: str  # "mined", "re-sent", "pending", "dead", "blocked"
    receipt: dict[str, Any] | None = None
    detail: str = ""

    @property
    def landed(self) -> bool:
        """Mined (or mined after being re-sent) and successful."""
        return self.receipt is not None and int(str(self.receipt.get("status", "0x0")), 16) == 1

    @property
    def final(self) -> bool:
        """Nothing more will happen to it: mined either way, or dead."""
        return self.state in ("mined", "re-sent", "dead")


@dataclass
class Recovery:
    """Outcomes by transaction hash, and one line per plain transaction settled or still open."""

    outcomes: dict[str, Outcome] = field(default_factory=dict)
    reports: list[tuple[str, str]] = field(default_factory=list)


def recover_journal(chain: Node, *, wait: float = 0.0) -> list[tuple[str, str]]:
    """Settle the transactions of the journal of ``chain``'s home (none without a home), one recovery
    at a time: plain transactions and deployments are done with, records' entries stay for their
    owner (:func:`medledger.records.recover_pending`). The reports of the plain ones."""
    journal = chain.durability.journal(chain) if chain.durability is not None else None
    if journal is None or not journal.directory.is_dir():
        return []
    with journal.recovering():
        return recover_transactions(chain, journal, wait=wait).reports


def recover_transactions(chain: Node, journal: Journal, *, wait: float = 0.0) -> Recovery:
    """Settle every journaled transaction of processes no longer running (see the module's
    docstring). Raises if the node stops answering (then nothing is removed)."""
    entries = [entry for entry in journal.entries() if not entry.in_progress() and entry.tx is not None]
    txs: dict[str, SignedTx] = {}
    for entry in entries:
        tx = entry.tx
        assert tx is not None
        txs.setdefault(tx.tx_hash, tx)
    recovery = Recovery()
    for tx in sorted(txs.values(), key=lambda t: (t.signed_at, t.nonce)):
        recovery.outcomes[tx.tx_hash] = settle_transaction(chain, tx, wait=wait)
    landed = [mined_of(o.receipt) for o in recovery.outcomes.values() if o.landed and o.receipt is not None]
    if landed and chain.durability is not None:
        chain.durability.settle(chain, landed)
    for entry in entries:
        if entry.fields.get("kind") in ("tx", "deploy"):
            recovery.reports.append(_settle_plain(chain, entry, recovery.outcomes))
    return recovery


def _settle_plain(chain: Node, entry: JournalEntry, outcomes: dict[str, Outcome]) -> tuple[str, str]:
    tx = entry.tx
    assert tx is not None
    outcome = outcomes[tx.tx_hash]
    label = f"{tx.what} (tx {tx.tx_hash})"
    done = ""
    if outcome.landed and outcome.receipt is not None and entry.fields.get("kind") == "deploy":
        done = f": {record_journaled(chain, entry.fields, outcome.receipt)}"  # before the entry goes
    if outcome.final:
        entry.remove()
    return label, describe_outcome(outcome, done)


def describe_outcome(outcome: Outcome, done: str = "") -> str:
    """What became of a journaled transaction, in the words recovery reports (``done``: what else
    was recorded once it landed)."""
    if outcome.state == "dead":
        return f"LOST, not in effect: {outcome.detail}; do it again"
    if outcome.state in ("mined", "re-sent") and not outcome.landed:
        return "FAILED, not in effect: the chain refused it when it was mined (reverted); do it again"
    if outcome.state == "re-sent":
        return f"re-applied (the chain had forgotten it){done}"
    if outcome.state == "mined":
        return f"applied{done}"
    return f"{outcome.state}: {outcome.detail}; still journaled"


def settle_transaction(chain: Node, tx: SignedTx, *, wait: float) -> Outcome:
    """Find out what became of ``tx``, sending it again if the chain can still take it."""
    receipt = chain.rpc("eth_getTransactionReceipt", [tx.tx_hash])
    if receipt is not None:
        return Outcome(tx, "mined", receipt)
    resent = False
    if chain.rpc("eth_getTransactionByHash", [tx.tx_hash]) is None:
        blocked = _unsendable(chain, tx)
        if blocked is not None:
            return blocked
        try:
            chain.rpc("eth_sendRawTransaction", [tx.raw])
        except ChainError as exc:
            if is_nonce_clash(str(exc)):
                return _dead_or_mined(chain, tx)
            if "already known" not in str(exc).lower():
                return Outcome(tx, "blocked", detail=f"the node refused it when it was sent again: {exc}")
        resent = True
    receipt = _wait_receipt(chain, tx.tx_hash, max(wait, RESENT_WAIT) if resent else wait)
    if receipt is not None:
        return Outcome(tx, "re-sent" if resent else "mined", receipt)
    waited = max(wait, RESENT_WAIT) if resent else wait
    return Outcome(tx, "pending", detail=f"sent but not mined within {waited:g} s; it may still be mined")


def _unsendable(chain: Node, tx: SignedTx) -> Outcome | None:
    """Why ``tx`` (unknown to the node) cannot be sent now, or None if it can."""
    mined_nonce = int(chain.rpc("eth_getTransactionCount", [tx.sender, "latest"]), 16)
    if mined_nonce > tx.nonce:
        return _dead_or_mined(chain, tx)
    pending_nonce = chain.nonce(tx.sender)
    if pending_nonce > tx.nonce:
        return Outcome(tx, "blocked", detail=f"another transaction waiting in the node holds nonce {tx.nonce}")
    if pending_nonce < tx.nonce:
        return Outcome(
            tx, "blocked",
            detail=f"nonces {pending_nonce} to {tx.nonce - 1} of {tx.sender} are missing before it (sent by "
            "something that did not journal them)",
        )  # fmt: skip
    if tx.to is not None and not chain.has_code(tx.to):
        return Outcome(tx, "blocked", detail=f"the contract it calls ({tx.to}) is not on this chain")
    return None


def _dead_or_mined(chain: Node, tx: SignedTx) -> Outcome:
    receipt = chain.rpc("eth_getTransactionReceipt", [tx.tx_hash])  # mined meanwhile?
    if receipt is not None:
        return Outcome(tx, "mined", receipt)
    return Outcome(tx, "dead", detail=f"nonce {tx.nonce} of {tx.sender} was used by another transaction")


def _wait_receipt(chain: Node, tx_hash: str, wait: float) -> dict[str, Any] | None:
    deadline = time.monotonic() + wait
    while True:
        receipt = chain.rpc("eth_getTransactionReceipt", [tx_hash])
        if receipt is not None or time.monotonic() >= deadline:
            return receipt  # type: ignore[no-any-return]
        time.sleep(POLL_SECONDS)
