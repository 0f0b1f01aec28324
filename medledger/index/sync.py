"""Following the chain: read block ranges of the contract's logs into the store, notice forks and
roll back to the common ancestor.

How a range ``lo..hi`` is read so that it is consistent:
  1. header of ``hi``;  2. ``eth_getLogs`` for ``lo..hi``;  3. in one batch, the headers of ``lo``,
  ``hi`` and every block that holds a log.
It is accepted only if ``hi``'s hash did not change between 1 and 3, every log's block hash is the
hash of its block in 3, and ``lo``'s parent is the block the checkpoint holds. Otherwise the chain
moved under the read (:class:`ReorgDuringRead`) and the step starts again.

Fork detection before each step: the checkpoint's block must still have the stored hash. If not,
the newest stored block (every block holding an indexed log is stored with its hash) that the
chain still has is the common ancestor; everything above it is rolled back and read again.
``confirmations`` keeps the index that many blocks behind the head, out of reach of shallow reorgs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import OperationalError

from medledger.chain.logsource import Header, LogRangeTooLarge, RpcSource
from medledger.chain.rawlogs import EventDecoder
from medledger.errors import ServiceUnavailable

from .errors import CheckpointMoved, ReorgDuringRead
from .mapping import SENDER_EVENTS
from .store import Checkpoint, Chunk, IndexStore

#: Blocks per ``eth_getLogs`` request to start with; halved when a node refuses, grown when sparse.
DEFAULT_CHUNK_BLOCKS = 2_000
MAX_CHUNK_BLOCKS = 50_000
#: Aim for chunks of about this many logs (memory, transaction size).
TARGET_LOGS = 20_000
#: Give up after this many consecutive inconsistent reads (the chain is reorganising all the time).
MAX_RETRIES = 20


@dataclass
class SyncResult:
    """What one :meth:`Indexer.sync` did."""

    events: int = 0
    chunks: int = 0
    reorgs: int = 0
    rolled_back_events: int = 0
    retries: int = 0
    indexed_to: int = -1
    head: int = -1

    def to_json(self) -> dict[str, int]:
        return dict(self.__dict__)


class Indexer:
    """Reads one deployment's logs from ``source`` into ``store``."""

    def __init__(
        self,
        store: IndexStore,
        source: RpcSource,
        *,
        confirmations: int = 0,
        chunk_blocks: int = DEFAULT_CHUNK_BLOCKS,
    ) -> None:
        if confirmations < 0:
            raise ValueError("confirmations must be >= 0")
        self.store = store
        self.source = source
        self.confirmations = confirmations
        self.chunk_blocks = max(1, chunk_blocks)
        self.decoder = EventDecoder(store.target.abi)
        self.address = store.target.address.lower()

    # --- one pass ------------------------------------------------------------------------------
    def sync(self, *, until: int | None = None, progress: Callable[[SyncResult], None] | None = None) -> SyncResult:
        """Index up to the head minus ``confirmations`` (or ``until`` if lower), then return."""
        result = SyncResult()
        retries = 0
        while True:
            result.head = self.source.block_number()
            target = result.head - self.confirmations
            if until is not None:
                target = min(target, until)
            cp = self.store.checkpoint()
            try:
                if self._handle_fork(cp, result):
                    continue
                if cp.block_number >= target:
                    result.indexed_to = cp.block_number
                    return result
                lo = cp.block_number + 1
                hi = min(target, lo + self.chunk_blocks - 1)
                chunk = self._read(lo, hi, cp)
                result.events += self.store.write_chunk(chunk, cp)
                result.chunks += 1
                retries = 0
                self._adapt(len(chunk.logs), hi - lo + 1)
                if progress is not None:
                    result.indexed_to = hi
                    progress(result)
            except LogRangeTooLarge:
                if self.chunk_blocks == 1:
                    raise
                self.chunk_blocks = max(1, self.chunk_blocks // 2)
            except (ReorgDuringRead, CheckpointMoved):
                retries += 1
                result.retries += 1
                if retries > MAX_RETRIES:
                    raise

    def follow(
        self,
        stop: threading.Event,
        *,
        interval: float = 2.0,
        on_sync: Callable[[SyncResult], None] | None = None,
        on_outage: Callable[[Exception], None] | None = None,
    ) -> None:
        """Sync, wait ``interval`` seconds, repeat until ``stop`` is set. A node or database that
        stops answering is waited for (``on_outage`` hears of it), not fatal: the checkpoint makes
        the next pass pick up where the last committed chunk ended."""
        while not stop.is_set():
            try:
                result = self.sync()
            except (ServiceUnavailable, OperationalError) as exc:
                if on_outage is not None:
                    on_outage(exc)
            else:
                if on_sync is not None:
                    on_sync(result)
            stop.wait(interval)

    # --- forks ---------------------------------------------------------------------------------
    def _handle_fork(self, cp: Checkpoint, result: SyncResult) -> bool:
        """Roll back if the checkpoint's block is no longer on the chain; True if it did."""
        if cp.block_hash is None:
            return False
        current = self.source.header(cp.block_number)
        if current is not None and current.hash == cp.block_hash:
            return False
        ancestor, ancestor_hash = self._common_ancestor(cp.block_number)
        result.rolled_back_events += self.store.rollback_to(ancestor, ancestor_hash, cp)
        result.reorgs += 1
        return True

    def _common_ancestor(self, below: int) -> tuple[int, str | None]:
        for page in self.store.known_blocks(below):
            canonical = self.source.headers([n for n, _ in page])
            for number, stored_hash in page:
                header = canonical.get(number)
                if header is not None and header.hash == stored_hash:
                    return number, stored_hash
        return self.store.target.start_block - 1, None

    # --- reading a range -----------------------------------------------------------------------
    def _read(self, lo: int, hi: int, cp: Checkpoint) -> Chunk:
        before = self.source.header(hi)
        if before is None:
            raise ReorgDuringRead(f"block {hi} vanished")
        raw = self.source.logs(self.address, lo, hi)
        decoded = [d for d in (self.decoder.decode(log) for log in raw) if d is not None]
        decoded.sort(key=lambda d: (d.block_number, d.log_index))
        numbers = {lo, hi} | {d.block_number for d in decoded}
        headers = self.source.headers(sorted(numbers))
        after = headers.get(hi)
        first = headers.get(lo)
        if after is None or after.hash != before.hash or first is None:
            raise ReorgDuringRead(f"block {hi} changed while {lo}..{hi} was read")
        if cp.block_hash is not None and first.parent_hash != cp.block_hash:
            raise ReorgDuringRead(f"block {lo} no longer follows the indexed block {cp.block_number}")
        for d in decoded:
            header = headers.get(d.block_number)
            if header is None or header.hash != d.block_hash:
                raise ReorgDuringRead(f"block {d.block_number} changed while {lo}..{hi} was read")
        senders = self.source.senders([d.tx_hash for d in decoded if d.name in SENDER_EVENTS])
        blocks: list[Header] = [
            h for n, h in headers.items() if h is not None and n in {d.block_number for d in decoded}
        ]
        logs = [(d, headers[d.block_number].timestamp) for d in decoded]  # type: ignore[union-attr]
        return Chunk(lo, hi, after.hash, logs, blocks, senders)

    def _adapt(self, logs: int, blocks: int) -> None:
        if logs > TARGET_LOGS and self.chunk_blocks > 1:
            self.chunk_blocks = max(1, blocks // 2)
        elif logs < TARGET_LOGS // 4 and blocks == self.chunk_blocks:
            self.chunk_blocks = min(MAX_CHUNK_BLOCKS, self.chunk_blocks * 2)
