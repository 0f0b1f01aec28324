"""The home's local chain on disk: anvil's saved states, the newest one wins, none is ever torn.

anvil keeps its chain in memory. These files, under ``<node dir>/anvil/``, are how the home's local
chain outlives a crash; the writers (:mod:`medledger.chain.durability`) and the node supervisor
(:mod:`medledger.node`) share them through this module:

- ``saved/<block>.json.gz``: a state taken with ``anvil_dumpState`` (gzip'd JSON, as anvil answers
  it), written whole and fsynced before it becomes visible (:func:`medledger.fsutil.atomic_write`),
  under ``saved/lock``. A state is saved only if its block is above the newest saved one, so an
  older state never replaces a newer one. The newest :data:`KEEP` are kept.
- ``autosave.json``: anvil's own periodic dump (``--dump-state``, rewritten in place by anvil, so a
  kill can tear it): a candidate at the next start only if it parses and is newer than every save.
- ``state.json``: what anvil loads at start (``--load-state``), chosen by :func:`choose`. A home
  from before saved states used it as anvil's ``--state`` file: it stays a candidate.
- ``acknowledged.json``: the newest block a writer reported "written" (number, hash, time).
- ``serving.json``: which anvil serves this node directory right now (port, pid, start time, chain
  id), written by the supervisor once anvil answers and removed when it stops; a writer uses it to
  tell that its RPC URL is this home's local node.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from .fsutil import atomic_write, file_lock

#: How many saved states are kept (the newest; an older one is a fallback if the newest is damaged).
KEEP = 2
_SUFFIX = ".json.gz"


@dataclass(frozen=True)
class Serving:
    """The anvil that serves a node directory now (see ``serving.json``)."""

    port: int
    pid: int
    create_time: float
    chain_id: int

    def alive(self) -> bool:
        try:
            return bool(abs(psutil.Process(self.pid).create_time() - self.create_time) < 0.5)
        except (psutil.Error, ValueError):
            return False


@dataclass(frozen=True)
class Chosen:
    """The state a start loads: its JSON, its block, where it came from; what was skipped and why."""

    data: bytes | None
    block: int | None
    source: str  # "saved state", "anvil's periodic save", "state file", or "nothing saved"
    path: Path | None
    skipped: list[tuple[Path, str]] = field(default_factory=list)


class LocalChainFiles:
    """The files of one node directory's local chain."""

    def __init__(self, node_dir: Path) -> None:
        self.anvil_dir = Path(node_dir) / "anvil"
        self.saved_dir = self.anvil_dir / "saved"
        self.autosave = self.anvil_dir / "autosave.json"
        self.load_file = self.anvil_dir / "state.json"
        self.acknowledged_file = self.anvil_dir / "acknowledged.json"
        self.serving_file = self.anvil_dir / "serving.json"

    # --- the lock ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Serialise saving (and choosing) across processes."""
        self.saved_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with file_lock(self.saved_dir / "lock"):
            yield

    # --- saved states ------------------------------------------------------------------------------
    def saved(self) -> list[tuple[int, Path]]:
        """The saved states, newest first (block numbers from their names; nothing is read)."""
        try:
            names = os.listdir(self.saved_dir)
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            stem = name.removesuffix(_SUFFIX)
            if name.endswith(_SUFFIX) and stem.isdigit():
                found.append((int(stem), self.saved_dir / name))
        return sorted(found, reverse=True)

    def newest_saved(self) -> int | None:
        saved = self.saved()
        return saved[0][0] if saved else None

    def save(self, compressed: bytes, block: int) -> bool:
        """Save a state (gzip'd JSON) holding blocks up to ``block``, unless one at least as new is
        saved; prune the older ones. Call it holding :meth:`lock`. Returns whether it was saved."""
        newest = self.newest_saved()
        if newest is not None and newest >= block:
            return False
        atomic_write(self.saved_dir / f"{block:012d}{_SUFFIX}", compressed, mode=0o600)
        for _, old in self.saved()[KEEP:]:
            old.unlink(missing_ok=True)
        return True

    # --- acknowledgements --------------------------------------------------------------------------
    def acknowledge(self, block: int, block_hash: str) -> None:
        """Record that a writer reported block ``block`` written (if it is the newest so far). Call
        it holding :meth:`lock`."""
        known = self.acknowledged()
        if known is not None and int(known["block"]) >= block:
            return
        record = {"block": block, "hash": block_hash, "time": time.time()}
        # not fsynced: it is written after the (fsynced) state that holds the block, so it never claims
        # more than is on disk; a power cut can only make the next start's comparison less precise
        atomic_write(self.acknowledged_file, json.dumps(record), mode=0o600, durable=False)

    def acknowledged(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.acknowledged_file.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and isinstance(data.get("block"), int) else None

    # --- which anvil serves ------------------------------------------------------------------------
    def serving(self) -> Serving | None:
        """The anvil recorded as serving this directory, if its process still runs."""
        try:
            data = json.loads(self.serving_file.read_text())
            serving = Serving(int(data["port"]), int(data["pid"]), float(data["create_time"]), int(data["chain_id"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return serving if serving.alive() else None

    def record_serving(self, serving: Serving) -> None:
        self.anvil_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(self.serving_file, json.dumps(serving.__dict__), mode=0o600)

    def clear_serving(self) -> None:
        self.serving_file.unlink(missing_ok=True)

    # --- choosing the state to start from --------------------------------------------------------------
    def choose(self) -> Chosen:
        """The newest readable state among the saved ones, anvil's periodic save and the state file
        (ties go to a saved state, which is never torn). ``data`` None: nothing was ever saved."""
        candidates: list[tuple[Path, str]] = [(p, "saved state") for _, p in self.saved()]
        candidates += [(self.autosave, "anvil's periodic save"), (self.load_file, "state file")]
        candidates += [(self.load_file.with_name("state.json.bak"), "state file's backup")]
        best: Chosen | None = None
        skipped: list[tuple[Path, str]] = []
        for path, source in candidates:
            if not path.exists():
                continue
            try:
                data, block = read_state(path)
            except (OSError, ValueError, EOFError) as exc:
                skipped.append((path, f"unreadable: {type(exc).__name__}: {str(exc)[:120]}"))
                continue
            if best is None or block > (best.block or -1):
                best = Chosen(data, block, source, path)
        if best is None:
            return Chosen(None, None, "nothing saved", None, skipped)
        return Chosen(best.data, best.block, best.source, best.path, skipped)


def read_state(path: Path) -> tuple[bytes, int]:
    """A state file's JSON (gunzipped if need be) and its newest block; ValueError if it is not one."""
    raw = path.read_bytes()
    data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    state = json.loads(data)
    if not isinstance(state, dict) or "best_block_number" not in state or "accounts" not in state:
        raise ValueError("not an anvil state (no best_block_number/accounts)")
    block = state["best_block_number"]
    return data, int(block, 16) if isinstance(block, str) else int(block)
