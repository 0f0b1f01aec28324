"""Choosing the local node's ports at start and recording them in the node directory.

A port set in the config is used as is (and a clash is an error naming its setting). A port left
automatic keeps the value recorded by the last start when that is free, else takes its default when
free, else any free port; the result is written to ``ports.json``, which clients of the home read
(:func:`medledger.config.load_settings`). Starts on one machine choose and bind their ports one at a
time (:func:`choosing`), so homes started together never pick the same one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from medledger.config import DEFAULT_PORTS, PORT_KEYS, recorded_ports
from medledger.errors import ServiceError

from .config import HOST, NodeConfig, free_port
from .probes import port_in_use
from .process import write_json

#: The setting behind each port key, as a person writes it.
SETTING = {key: f"[node] {key} or MEDLEDGER_{key.upper()}" for key in PORT_KEYS}


def machine_lock_path() -> Path:
    """The lock that starts on this machine (by this user) take while they choose and bind ports."""
    return Path(tempfile.gettempdir()) / f"medledger-ports-{os.getuid()}.lock"


@contextlib.contextmanager
def choosing(needed: bool = True) -> Iterator[None]:
    """Hold the machine's port lock (when ``needed``) for a start's choice of ports until its services
    listen on them, so that two homes started at once never choose the same free port.

    The lock lives in the shared temporary directory, so it is used only if it is this user's own
    file (opened without following a link): one another user put there could be held forever to
    stall every start. Without it a start goes on as before the lock existed (each home's own lock
    still holds; only two homes started at the same instant could then clash)."""
    handle = _own_lock_file() if needed else None
    if handle is None:
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _own_lock_file() -> IO[bytes] | None:
    try:
        fd = os.open(machine_lock_path(), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError:  # a link, or a file this user may not open
        return None
    if os.fstat(fd).st_uid != os.getuid():
        os.close(fd)
        return None
    return os.fdopen(fd, "r+b")


def _service_of(key: str) -> str:
    return "anvil" if key == "anvil_port" else "ipfs"


def _choose(key: str, recorded: dict[str, int], taken: set[int]) -> int:
    for candidate in (recorded.get(key), DEFAULT_PORTS[key]):
        if candidate is not None and candidate not in taken and not port_in_use(candidate):
            return candidate
    port = free_port()
    while port in taken:  # pragma: no cover - the kernel rarely repeats itself
        port = free_port()
    return port


def assign(config: NodeConfig, starting: Iterable[str]) -> NodeConfig:
    """The config with every port a number; ports of the services in ``starting`` are checked
    (explicit ones) or chosen (automatic ones). Records the result. Call under the start lock."""
    starting = set(starting)
    recorded = recorded_ports(config.data_dir)
    chosen: dict[str, Any] = {}
    for key in PORT_KEYS:
        explicit = getattr(config, key)
        if explicit is not None:
            chosen[key] = explicit
        elif _service_of(key) not in starting:
            chosen[key] = recorded.get(key, DEFAULT_PORTS[key])  # running (or not managed): as it is
    for key in PORT_KEYS:
        if key in chosen:
            continue
        chosen[key] = _choose(key, recorded, set(chosen.values()))
    resolved = config.replace(**chosen)
    _check_explicit(resolved, config, starting)
    record(resolved, automatic=config.automatic())
    return resolved


def _check_explicit(resolved: NodeConfig, config: NodeConfig, starting: set[str]) -> None:
    for key in PORT_KEYS:
        if getattr(config, key) is None or _service_of(key) not in starting:
            continue
        port = resolved.port(key)
        if port_in_use(port):
            raise ServiceError(
                f"port {port} on {HOST} (setting {SETTING[key]}, needed by {_service_of(key)}) is "
                f"already in use by another program, not by the medledger services in "
                f'{config.data_dir}. Stop that program, or set {key} to another port or to "auto".'
            )


def record(config: NodeConfig, automatic: Iterable[str] = ()) -> None:
    """Write the ports of ``config`` (all numbers) to its ``ports.json``."""
    data: dict[str, Any] = {key: config.port(key) for key in PORT_KEYS}
    data["automatic"] = sorted(automatic)
    write_json(config.ports_file, data)
