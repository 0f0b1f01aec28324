"""The journal of transactions in flight: each signed transaction is on disk before it is sent, and
stays there until it is written.

One JSON file per write in ``<cache>/pending/<chain id>/``. A domain write (a record) opens its own
entry with its own fields (what to undo if the transaction never lands: the ciphertext's CID) and
runs its transaction inside :func:`journaling`; any other transaction medledger sends (a grant, a
revocation, a registration, a deployment) gets an entry ``tx-<hash>.json`` of its own. The chain
layer adds the ``tx`` field (:class:`SignedTx`: the raw signed bytes, hash, sender, nonce, target,
a description) before the transaction leaves, and :mod:`~medledger.chain.recovery` re-sends, waits
for or gives up on it after a crash, from this file alone: no key is needed to re-send it.

Entries are appended to, never rewritten, and not fsynced (:func:`medledger.fsutil.append_line`):
they survive a killed process in the page cache, and a power cut can only take an entry of a write
that was not yet reported written (the chain state after the last durable save is gone with it).
Each entry names its process (pid and start time), so recovery leaves running writes alone.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil
import rlp
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from hexbytes import HexBytes

from medledger.errors import JournalUnwritable
from medledger.fsutil import append_line, file_lock


@dataclass(frozen=True)
class SignedTx:
    """A signed transaction as the journal keeps it: everything needed to send it again."""

    tx_hash: str
    raw: str  # 0x-hex of the signed transaction
    sender: str
    nonce: int
    to: str | None  # None: a contract creation
    what: str  # what it does, in words (function and addresses; never health data)
    signed_at: int  # time.time_ns() when signed: the order to re-apply in

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def input_data(self) -> bytes:
        """The call data it carries (typed or legacy transaction)."""
        raw = HexBytes(self.raw)
        if raw and raw[0] >= 0xC0:  # a legacy transaction: an RLP list, data the sixth item
            return bytes(rlp.decode(bytes(raw))[5])
        return bytes(TypedTransaction.from_bytes(raw).as_dict()["data"])

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SignedTx:
        return cls(
            str(data["tx_hash"]), str(data["raw"]), str(data["sender"]), int(data["nonce"]),
            None if data.get("to") is None else str(data["to"]), str(data.get("what", "")), int(data["signed_at"]),
        )  # fmt: skip


def process_started(pid: int) -> float | None:
    """When process ``pid`` started (None if it does not run): with the pid, it names a process."""
    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.Error, ValueError):
        return None


def journal_directory(cache_dir: Path, chain_id: int) -> Path:
    """Where the journal of ``chain_id``'s writes in flight lives under a home's cache."""
    return Path(cache_dir) / "pending" / str(chain_id)


class JournalEntry:
    """One write in flight: a file of JSON lines, appended to as the write goes (never rewritten).
    The first line holds the writer's fields and its process; a later line ``{"tx": {...}}`` the
    signed transaction (``{"tx": null}``: it can never land), ``{"released": true}`` that the write
    is over though the entry stays for recovery. The fields are the lines merged in order; a last
    line torn by a kill is skipped (it was written before anything depended on it).

    An entry is in progress (hands off, recovery) while its process runs and it is not released: a
    process that keeps running after a failed write (a server) releases its entries, so the next
    recovery settles them."""

    def __init__(self, path: Path, fields: dict[str, Any]) -> None:
        self.path = path
        self.fields = fields

    @classmethod
    def create(cls, path: Path, fields: dict[str, Any]) -> JournalEntry:
        """Write a new entry (:class:`~medledger.errors.JournalUnwritable` if it cannot be written:
        then nothing is left behind)."""
        entry = cls(path, {**fields, **_this_process()})
        entry._append(entry.fields, create=True)
        return entry

    @classmethod
    def load(cls, path: Path) -> JournalEntry | None:
        """The entry at ``path``; None if it is gone or its first line is unreadable (an entry
        whose writer died while writing it: nothing was pinned or sent for it yet)."""
        try:
            lines = path.read_text().splitlines()
        except (OSError, ValueError):
            return None
        fields: dict[str, Any] = {}
        for number, line in enumerate(lines):
            try:
                update = json.loads(line)
            except ValueError:
                if number == 0:
                    return None
                break  # torn by a kill: what follows was never written either
            if isinstance(update, dict):
                fields.update(update)
        return cls(path, fields) if fields else None

    def _append(self, update: dict[str, Any], *, create: bool = False, line: str | None = None) -> None:
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            append_line(self.path, line if line is not None else json.dumps(update), create=create)
        except OSError as exc:
            raise JournalUnwritable(self.path, exc.strerror or str(exc)) from exc

    @property
    def tx(self) -> SignedTx | None:
        data = self.fields.get("tx")
        return SignedTx.from_json(data) if isinstance(data, dict) else None

    def record(self, tx: SignedTx) -> None:
        """Keep ``tx`` (before it is sent: if it cannot be kept, it is not sent)."""
        record_in_all([self], tx)

    def forget_tx(self) -> None:
        """The node refused the transaction, or it reverted: nothing of it can land any more. Said on
        disk when the disk takes it; in any case the writer then removes the entry (see
        :func:`record_in_all`), so a full disk cannot keep a refused transaction alive."""
        if self.fields.get("tx") is not None:
            self.fields["tx"] = None
            with contextlib.suppress(JournalUnwritable):
                self._append({"tx": None})

    def release(self) -> None:
        """This write is over; its entry stays for recovery."""
        if not self.fields.get("released") and self.path.exists():
            self._append({"released": True})
            self.fields["released"] = True

    def remove(self) -> None:
        """The write is settled: drop the entry."""
        self.path.unlink(missing_ok=True)

    def in_progress(self) -> bool:
        """Whether its write may still run (its process does, and it was not released)."""
        if self.fields.get("released"):
            return False
        pid = self.fields.get("pid")
        if not isinstance(pid, int):
            return False
        started = process_started(pid)
        return started is not None and started == self.fields.get("started")


def record_in_all(entries: Sequence[JournalEntry], tx: SignedTx) -> None:
    """Keep ``tx`` in every one of ``entries`` (the writes it carries out), before it is sent: if one
    cannot be written, it is forgotten in those that were, and
    :class:`~medledger.errors.JournalUnwritable` raised (the caller does not send it, and undoes the
    writes). A writer killed in between leaves it in some of them only: recovery settles it once
    for all (a record's entry without it follows the transaction that registers that record)."""
    data = tx.to_json()
    line = json.dumps({"tx": data})
    done: list[JournalEntry] = []
    try:
        for entry in entries:
            entry._append({}, line=line)
            entry.fields["tx"] = data
            done.append(entry)
    except JournalUnwritable:
        for entry in done:
            entry.forget_tx()
        raise


#: Seconds after which an entry with an unreadable first line is garbage.
TORN_ENTRY_AGE = 60.0
_PROCESS: dict[str, Any] = {}


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _this_process() -> dict[str, Any]:
    """This process as entries name it (pid and start time; computed once per process)."""
    pid = os.getpid()
    if _PROCESS.get("pid") != pid:  # (a fork is another process)
        _PROCESS.update(pid=pid, started=process_started(pid))
    return dict(_PROCESS)


class Journal:
    """The directory of one chain's writes in flight."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def ensure(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        return self.directory

    def entries(self) -> list[JournalEntry]:
        """The readable entries; one whose first line was torn by a kill (nothing was pinned or sent
        for it) is removed once it is a minute old (a live writer finishes its line long before)."""
        try:
            paths = sorted(self.directory.glob("*.json"))
        except FileNotFoundError:
            return []
        entries = []
        for path in paths:
            entry = JournalEntry.load(path)
            if entry is not None:
                entries.append(entry)
            elif _age(path) > TORN_ENTRY_AGE:
                path.unlink(missing_ok=True)
        return entries

    def transaction_entry(self, tx: SignedTx) -> JournalEntry:
        """A new entry for a transaction no domain write journals itself."""
        path = self.directory / f"tx-{tx.tx_hash.removeprefix('0x')}.json"
        return JournalEntry.create(path, {"kind": "tx", "tx": tx.to_json()})

    @contextlib.contextmanager
    def recovering(self) -> Iterator[None]:
        """One recovery at a time per journal (across processes)."""
        with file_lock(self.ensure() / ".recovery.lock"):
            yield


_CURRENT: contextvars.ContextVar[JournalEntry | None] = contextvars.ContextVar("medledger_journal", default=None)


@contextlib.contextmanager
def journaling(entry: JournalEntry) -> Iterator[JournalEntry]:
    """Send the transactions of this block (this thread) under ``entry``: their signed bytes go into
    it, not into entries of their own."""
    token = _CURRENT.set(entry)
    try:
        yield entry
    finally:
        _CURRENT.reset(token)


def current_entry() -> JournalEntry | None:
    return _CURRENT.get()


def now_ns() -> int:
    return time.time_ns()
