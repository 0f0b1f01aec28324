"""The processes of the local node: binaries, pid files, logs, the start/stop lock, launching and
waiting for exit. Nothing here knows what anvil or js-ipfs are."""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import psutil

from medledger.errors import ServiceError
from medledger.fsutil import atomic_write

from .config import REPO_ROOT, NodeConfig

#: The executable of each service.
EXECUTABLES = {"anvil": "anvil", "ipfs": "jsipfs"}

_LOG_MAX_BYTES = 5 * 1024 * 1024

#: processes this Python process launched, so they can be reaped (no zombies) when they exit
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
_CHILDREN_LOCK = threading.Lock()


# --- binaries ------------------------------------------------------------------------------------
def find_binary(name: str, config: NodeConfig | None = None) -> Path:
    """Path of ``anvil`` or ``jsipfs``: ``config.bin_dir`` if set, else the repository's
    ``node_modules/.bin``, else PATH. ServiceError if missing."""
    searched: list[str] = []
    if config is not None and config.bin_dir is not None:
        dirs = [config.bin_dir]
    else:
        dirs = [REPO_ROOT / "node_modules" / ".bin"]
    for d in dirs:
        cand = d / name
        searched.append(str(d))
        if cand.is_file() and os.access(cand, os.X_OK):
            return cand
    if config is None or config.bin_dir is None:
        found = shutil.which(name)
        searched.append("PATH")
        if found:
            return Path(found)
    raise ServiceError(
        f"`{name}` not found (looked in {', '.join(searched)}). Run `npm install` in {REPO_ROOT} "
        f"(or `make setup`) to install the toolchain.")


# --- pid files -----------------------------------------------------------------------------------
def write_json(path: Path, data: Any, *, mode: int = 0o644) -> None:
    """Write ``data`` as JSON to ``path`` atomically (:func:`medledger.fsutil.atomic_write`)."""
    atomic_write(path, json.dumps(data, indent=2), mode=mode)


def _read_pid_file(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
        if isinstance(data, dict) and isinstance(data.get("pid"), int):
            return data
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        pass
    return {"pid": None}


def _alive(pid: int, create_time: float | None) -> psutil.Process | None:
    """The process if ``pid`` is alive, not a zombie, and started at ``create_time``."""
    with _CHILDREN_LOCK:
        child = _CHILDREN.get(pid)
        if child is not None and child.poll() is not None:
            _CHILDREN.pop(pid, None)
            return None
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        if create_time is not None and abs(proc.create_time() - create_time) > 0.5:
            return None  # pid reused by another program
        return proc
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def _of_this_node(proc: psutil.Process, config: NodeConfig) -> bool:
    """The services run in their data directory: a process elsewhere belongs to another home."""
    try:
        return Path(proc.cwd()).resolve() == config.data_dir.resolve()
    except (psutil.Error, OSError):
        return False


def service_proc(config: NodeConfig, name: str) -> tuple[psutil.Process | None, bool]:
    """(live process of this data directory, stale pid file?) for a service."""
    info = _read_pid_file(config.pid_file(name))
    if info is None:
        return None, False
    pid = info.get("pid")
    if not isinstance(pid, int):
        return None, True
    proc = _alive(pid, info.get("create_time"))
    if proc is not None and not _of_this_node(proc, config):
        proc = None  # a pid file copied from (or left over by) another home
    return proc, proc is None


# --- directories, lock and logs ------------------------------------------------------------------
def ensure_dirs(config: NodeConfig) -> None:
    for d in (config.data_dir, config.anvil_dir, config.log_dir, config.run_dir):
        d.mkdir(parents=True, exist_ok=True, mode=0o700)


@contextlib.contextmanager
def locked(config: NodeConfig) -> Iterator[None]:
    """Serialise start/stop on one data directory (across processes)."""
    ensure_dirs(config)
    with open(config.run_dir / "lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 16384))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return f"(no log at {path})"
    tail = [ln for ln in text.splitlines() if ln.strip()][-lines:]
    return "\n".join("    " + ln for ln in tail) or "    (log is empty)"


def open_log(path: Path) -> IO[bytes]:
    """The log file of a service, opened for appending (logs are append-only streams, not files
    that are rewritten, so they do not go through ``atomic_write``); rotated once above 5 MiB."""
    if path.exists() and path.stat().st_size > _LOG_MAX_BYTES:
        os.replace(path, path.with_name(path.name + ".1"))
    fh = open(path, "ab", buffering=0)  # noqa: SIM115 - handed to the child, closed after spawn
    fh.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting ===\n".encode())
    return fh


# --- launching -----------------------------------------------------------------------------------
def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """preexec_fn: ask the kernel to SIGTERM the child when its parent dies (Linux)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def launch(config: NodeConfig, name: str, cmd: list[str], env: dict[str, str],
           tie_to_parent: bool) -> subprocess.Popen[bytes]:
    """Start ``cmd`` detached (own session) in the data directory, log to the service's log, and
    write its pid file (pid, start time, ports)."""
    with open_log(config.log_file(name)) as log:
        proc = subprocess.Popen(
            cmd, env=env, cwd=config.data_dir, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
            preexec_fn=_die_with_parent if tie_to_parent else None)
    with _CHILDREN_LOCK:
        _CHILDREN[proc.pid] = proc
    try:
        create_time = psutil.Process(proc.pid).create_time()
    except psutil.NoSuchProcess:
        create_time = None
    write_json(config.pid_file(name), {
        "pid": proc.pid, "create_time": create_time, "service": name,
        "ports": config.ports_of(name), "started": time.time()})
    return proc


# --- stopping ------------------------------------------------------------------------------------
def wait_gone(proc: psutil.Process, deadline: float) -> bool:
    """Wait until ``proc`` has exited (reaping it if it is our child); False at the deadline."""
    while True:
        with _CHILDREN_LOCK:
            child = _CHILDREN.get(proc.pid)
        if child is not None:
            try:
                child.wait(timeout=max(0.0, min(0.1, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                pass
            else:
                with _CHILDREN_LOCK:
                    _CHILDREN.pop(proc.pid, None)
                return True
        else:
            try:
                if not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE:
                    return True
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                return True
            time.sleep(0.05)
        if time.monotonic() >= deadline:
            return False


def kill_group(proc: psutil.Process) -> None:
    """SIGKILL the process and its session (it runs in its own, so only our process dies)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(psutil.NoSuchProcess):
        proc.kill()
