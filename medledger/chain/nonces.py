"""One nonce at a time per account: two writers on one account never pick the same nonce.

A transaction's nonce is taken from the node (``pending`` count) and the transaction sent while
holding a lock on (chain, account): a file lock under the home's cache (so every process of the
home waits its turn; a thread lock where there is no home). A clash with a writer outside the home
(another machine, another tool) still shows up as the node refusing the nonce ("nonce too low",
"replacement transaction underpriced"): :func:`is_nonce_clash` tells the sender to take a new
nonce and try again.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

from medledger.fsutil import file_lock

_CLASHES = ("nonce too low", "replacement transaction underpriced", "replacement fee too low", "nonce has already")
_THREAD_LOCKS: dict[tuple[int, str], threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()
#: How often a send takes a new nonce after a clash before giving up.
ATTEMPTS = 5


def is_nonce_clash(message: str) -> bool:
    text = message.lower()
    return any(clash in text for clash in _CLASHES)


class NonceLocks:
    """The nonce locks of one chain (``directory`` None: this process only)."""

    def __init__(self, directory: Path | None, chain_id: int) -> None:
        self.directory = directory
        self.chain_id = chain_id

    @contextlib.contextmanager
    def hold(self, account: str) -> Iterator[None]:
        key = (self.chain_id, account.lower())
        with _THREAD_LOCKS_GUARD:
            thread_lock = _THREAD_LOCKS.setdefault(key, threading.Lock())
        with thread_lock:
            if self.directory is None:
                yield
                return
            self.directory.mkdir(parents=True, exist_ok=True)
            with file_lock(self.directory / f"nonce-{self.chain_id}-{account.lower()}.lock"):
                yield
