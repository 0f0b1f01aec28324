"""What "written" means on a chain, and making it so before anyone is told.

Every transaction medledger sends ends in :meth:`Durability.settle` before its caller returns:

- **This home's local node** (the RPC URL is the port of the anvil recorded as serving the home's
  node directory, see :mod:`medledger.localchain`): written = mined *and* the node's state holding
  that block saved to disk. The writer asks anvil for its state (``anvil_dumpState``) and saves it
  atomically and durably under a lock shared by every process of the home; a state already saved
  by someone else that holds the block is enough (many writers, one save). anvil's own periodic
  save only backs this up.
- **Any other chain**: written = mined with ``confirmations`` blocks on top, the receipt still in
  the canonical chain (``[chain] confirmations`` / ``MEDLEDGER_CONFIRMATIONS``; default 0 on a
  development node — anvil, Hardhat, Ganache — and :data:`DEFAULT_CONFIRMATIONS` elsewhere).

It also holds what the home keeps per chain for its writes: the journal of transactions in flight
(:mod:`~medledger.chain.outbox`) and the per-account nonce locks (:mod:`~medledger.chain.nonces`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from web3 import Web3

from medledger.config import Settings, local_rpc_port
from medledger.errors import ChainError, MedledgerError, ServiceUnavailable, TransactionPending
from medledger.localchain import LocalChainFiles

from .endpoint import SERVICE
from .nonces import NonceLocks
from .outbox import Journal, journal_directory

T = TypeVar("T")

#: Confirmations on a chain that is not a development node, unless configured.
DEFAULT_CONFIRMATIONS = 2
DEV_CLIENTS = ("anvil", "hardhat", "ganache")
POLL_SECONDS = 0.5


class Node(Protocol):
    """What writing durably needs of a connection (:class:`~medledger.chain.rpc.Chain` is one)."""

    rpc_url: str
    timeout: float
    durability: Durability | None
    w3: Web3

    @property
    def chain_id(self) -> int: ...

    def rpc(self, method: str, params: list[Any], *, timeout: float | None = None) -> Any: ...

    def guarded(self, call: Callable[[], T]) -> T: ...

    def nonce(self, address: str) -> int: ...

    def has_code(self, address: str) -> bool: ...

    def block_number(self) -> int: ...


@dataclass(frozen=True)
class Mined:
    """A mined transaction: where it landed."""

    tx_hash: str
    block_number: int
    block_hash: str


@dataclass
class Durability:
    """The home's view of one chain: what "written" means there, the journal, the nonce locks."""

    node_dir: Path | None = None
    cache_dir: Path | None = None
    confirmations: int | None = None
    _policy: str | None = field(default=None, init=False, repr=False)

    @classmethod
    def for_settings(cls, settings: Settings) -> Durability:
        return cls(settings.node_dir, settings.cache_dir, settings.confirmations)

    # --- what the home keeps ----------------------------------------------------------------------
    def journal(self, chain: Node) -> Journal | None:
        if self.cache_dir is None:
            return None
        return Journal(journal_directory(self.cache_dir, chain.chain_id))

    def nonce_locks(self, chain: Node) -> NonceLocks:
        return NonceLocks(None if self.cache_dir is None else self.cache_dir / "locks", chain.chain_id)

    # --- the policy ---------------------------------------------------------------------------------
    def local_files(self, chain: Node) -> LocalChainFiles | None:
        """The saved-state files if ``chain`` is this home's running local node, else None."""
        if self.node_dir is None:
            return None
        port = local_rpc_port(chain.rpc_url)
        files = LocalChainFiles(self.node_dir)
        serving = files.serving() if port is not None else None
        if serving is None or serving.port != port or serving.chain_id != chain.chain_id:
            return None
        return files

    def policy(self, chain: Node) -> str:
        """``local`` (mined and saved) or ``confirmations:N``; decided once per connection."""
        if self._policy is None:
            if self.local_files(chain) is not None:
                self._policy = "local"
            else:
                self._policy = f"confirmations:{self._confirmations(chain)}"
        return self._policy

    def batches(self, chain: Node) -> bool:
        """Whether making writes written costs something worth sharing (a save, a wait for blocks)."""
        return self.policy(chain) != "confirmations:0"

    def describe(self, chain: Node) -> str:
        """What "written" means here, in words."""
        policy = self.policy(chain)
        if policy == "local":
            return f"mined and saved to disk with the local node's state ({self.node_dir})"
        n = int(policy.split(":")[1])
        return "mined" if n == 0 else f"mined with {n} confirmation{'s' if n != 1 else ''}"

    def _confirmations(self, chain: Node) -> int:
        if self.confirmations is not None:
            return self.confirmations
        try:
            client = str(chain.rpc("web3_clientVersion", [])).lower()
        except MedledgerError:
            client = ""
        return 0 if client.startswith(DEV_CLIENTS) else DEFAULT_CONFIRMATIONS

    # --- making it so -------------------------------------------------------------------------------
    def settle(self, chain: Node, mined: Sequence[Mined]) -> None:
        """Return once every transaction in ``mined`` is written (see the module's docstring)."""
        if not mined:
            return
        policy = self.policy(chain)
        if policy == "local":
            files = self.local_files(chain)
            if files is None:  # the node stopped (or another took its port) since the connection was made
                raise ServiceUnavailable(
                    SERVICE, chain.rpc_url, f"it no longer serves {self.node_dir}: its state could not be saved"
                )
            newest = max(mined, key=lambda m: m.block_number)
            save_state(chain, files, newest.block_number, newest.block_hash)
            return
        confirmations = int(policy.split(":")[1])
        if confirmations:
            wait_confirmations(chain, mined, confirmations)


def save_state(chain: Node, files: LocalChainFiles, block: int, block_hash: str) -> None:
    """Make sure a saved state holds ``block``: one already saved does, else save the node's state
    now; then record ``block`` as acknowledged."""
    with files.lock():
        newest = files.newest_saved()
        if newest is None or newest < block:
            head = chain.rpc("eth_getBlockByNumber", ["latest", False])
            head_number = int(head["number"], 16)
            if head_number < block:
                raise ChainError(
                    f"The local node at {chain.rpc_url} is at block {head_number}, before block {block} "
                    "that was just mined: it was reset meanwhile, so its state was not saved"
                )
            dumped = chain.rpc("anvil_dumpState", [])
            files.save(bytes.fromhex(str(dumped).removeprefix("0x")), head_number)
        files.acknowledge(block, block_hash)


def wait_confirmations(chain: Node, mined: Sequence[Mined], confirmations: int) -> None:
    """Wait until each transaction has ``confirmations`` blocks on top and is still where it was
    mined (a reorganisation moves it: then wait for it again)."""
    deadline = time.monotonic() + chain.timeout * 4 + 30 * confirmations
    pending = {m.tx_hash: m for m in mined}
    while pending:
        head = chain.block_number()
        for tx_hash, where in list(pending.items()):
            if head < where.block_number + confirmations:
                continue
            receipt = chain.rpc("eth_getTransactionReceipt", [tx_hash])
            if receipt is not None and receipt.get("blockHash") == where.block_hash:
                del pending[tx_hash]
            elif receipt is not None:  # re-mined elsewhere by a reorganisation: count from there
                pending[tx_hash] = Mined(tx_hash, int(receipt["blockNumber"], 16), str(receipt["blockHash"]))
        if not pending:
            return
        if time.monotonic() > deadline:
            first = next(iter(pending))
            raise TransactionPending(first, chain.timeout * 4, f"waiting for {confirmations} confirmations")
        time.sleep(POLL_SECONDS)


def mined_of(receipt: Any) -> Mined:
    """A receipt (web3's or a bare JSON-RPC one) as :class:`Mined`."""
    number = receipt["blockNumber"]
    block_hash = receipt["blockHash"]
    tx_hash = receipt["transactionHash"]
    return Mined(
        tx_hash if isinstance(tx_hash, str) else "0x" + bytes(tx_hash).hex(),
        int(number, 16) if isinstance(number, str) else int(number),
        block_hash if isinstance(block_hash, str) else "0x" + bytes(block_hash).hex(),
    )
