"""The local chain's state across stops and crashes, as the supervisor sees it.

At start (:func:`prepare`): the newest readable state (:meth:`medledger.localchain.LocalChainFiles.choose`:
the writers' saved states, anvil's periodic save, an older home's state file) becomes the file anvil
loads; a newer periodic save is first kept as a saved state, and the periodic save is then cleared so
that it only ever holds this run's chain. Once anvil answers (:func:`started`), it is recorded as
serving the directory and the restored chain is checked against what the previous run acknowledged
(the newest block a writer reported written, with its hash). Before a stop (:func:`save_before_stop`)
the state is saved the way writers save it, so a clean stop never depends on anvil's own exit dump.
"""

from __future__ import annotations

import gzip
import http.client
import json
import time
from dataclasses import dataclass, field
from typing import Any

import psutil

from medledger.fsutil import atomic_write
from medledger.localchain import LocalChainFiles, Serving

from .config import HOST, NodeConfig

_DUMP_TIMEOUT = 60.0


@dataclass
class Restore:
    """What a start found and restored."""

    unclean: bool  # the previous run was not stopped by `node down` (killed, crashed, power cut)
    source: str  # where the loaded state came from ("nothing saved": a new, empty chain)
    block: int | None  # the newest block of the loaded state
    acknowledged: dict[str, Any] | None = None  # the newest block reported written: number, hash
    skipped: list[str] = field(default_factory=list)  # unreadable state files and why
    check: str = ""  # how the restored chain compares with what was acknowledged

    @property
    def lost(self) -> bool:
        """Whether something acknowledged as written is not on the restored chain."""
        return self.check.startswith("MISSING") or self.check.startswith("DIFFERENT")

    def lines(self) -> list[str]:
        """The report for a person (empty after a clean stop with nothing to say)."""
        if not self.unclean and not self.skipped and not self.lost:
            return []
        out = []
        if self.unclean:
            out.append("The local chain was not stopped cleanly last time (anvil was killed or crashed).")
        if self.block is None:
            out.append("Nothing of its chain had been saved: it starts empty.")
        else:
            out.append(f"Restored the chain from the {self.source} at block {self.block}.")
        out += [f"Skipped {s}." for s in self.skipped]
        if self.check:
            out.append(self.check)
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "unclean": self.unclean,
            "source": self.source,
            "block": self.block,
            "acknowledged": self.acknowledged,
            "skipped": self.skipped,
            "check": self.check,
            "lost": self.lost,
        }


def files(config: NodeConfig) -> LocalChainFiles:
    return LocalChainFiles(config.data_dir)


def prepare(config: NodeConfig, *, unclean: bool) -> Restore:
    """Choose the state anvil starts from and put it where anvil loads it (see the module's docstring)."""
    local = files(config)
    unclean = unclean or local.serving_file.exists()
    local.clear_serving()
    with local.lock():
        chosen = local.choose()
        if chosen.data is not None and chosen.block is not None:
            if chosen.source != "saved state":  # keep it as a saved state, never torn, before using it
                local.save(gzip.compress(chosen.data, 1), chosen.block)
            if chosen.path != local.load_file:
                atomic_write(local.load_file, chosen.data, mode=0o600)
        local.autosave.unlink(missing_ok=True)
    skipped = [f"{path.name} ({reason})" for path, reason in chosen.skipped]
    return Restore(unclean, chosen.source, chosen.block, local.acknowledged(), skipped)


def load_arguments(config: NodeConfig) -> list[str]:
    """anvil's options for its state: load the chosen one; dump periodically to the autosave file."""
    local = files(config)
    args = ["--load-state", str(local.load_file)] if local.load_file.exists() else []
    args += ["--dump-state", str(local.autosave)]
    if config.anvil_state_interval:
        args += ["--state-interval", str(int(config.anvil_state_interval))]
    return args


def started(config: NodeConfig, pid: int, restore: Restore | None) -> None:
    """anvil answers: record it as serving the directory; check the restored chain."""
    try:
        create_time = float(psutil.Process(pid).create_time())
    except psutil.Error:
        return
    files(config).record_serving(Serving(config.port("anvil_port"), pid, create_time, config.chain_id))
    if restore is not None:
        restore.check = _check(config, restore)


def _check(config: NodeConfig, restore: Restore) -> str:
    ack = restore.acknowledged
    if ack is None:
        return ""
    number, expected = int(ack["block"]), str(ack.get("hash", ""))
    try:
        block = _rpc(config, "eth_getBlockByNumber", [hex(number), False], 5.0)
    except (OSError, http.client.HTTPException, ValueError):
        return f"Could not check the restored chain against block {number}, the newest acknowledged."
    if block is None:
        head = restore.block if restore.block is not None else "nothing"
        return (
            f"MISSING: writes were acknowledged up to block {number}, but the restored chain ends at block "
            f"{head}: the saved states were lost or damaged. The journal re-applies the transactions of this "
            "home it still holds."
        )
    if expected and block.get("hash") != expected:
        return (
            f"DIFFERENT: block {number} of the restored chain is not the block that was acknowledged "
            f"({block.get('hash')} instead of {expected}): the state files are not this chain's."
        )
    return f"Writes were acknowledged up to block {number}; the restored chain holds it: nothing acknowledged was lost."


def save_before_stop(config: NodeConfig) -> str | None:
    """Save anvil's state as writers do (newest wins); the problem in words if it could not be."""
    local = files(config)
    try:
        with local.lock():
            head = _rpc(config, "eth_getBlockByNumber", ["latest", False], 5.0)
            dumped = _rpc(config, "anvil_dumpState", [], _DUMP_TIMEOUT)
            local.save(bytes.fromhex(str(dumped).removeprefix("0x")), int(head["number"], 16))
    except (OSError, http.client.HTTPException, ValueError, KeyError, TypeError) as exc:
        return f"its state could not be saved before the stop ({type(exc).__name__}: {exc})"
    return None


def stopped(config: NodeConfig) -> None:
    files(config).clear_serving()


def _rpc(config: NodeConfig, method: str, params: list[Any], timeout: float) -> Any:
    conn = http.client.HTTPConnection(HOST, config.port("anvil_port"), timeout=timeout)
    try:
        body = json.dumps({"jsonrpc": "2.0", "id": int(time.time()), "method": method, "params": params})
        conn.request("POST", "/", body=body, headers={"Content-Type": "application/json"})
        answer = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    if "error" in answer:
        raise ValueError(f"{method}: {answer['error']}")
    return answer["result"]
