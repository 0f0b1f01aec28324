"""Run the portal: in the foreground (``medledger portal``) or in a thread (tests, benchmarks)."""

from __future__ import annotations

import ipaddress
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from medledger.errors import ConfigError, ServiceError

#: The address the portal binds to unless told another loopback address.
HOST = "127.0.0.1"
DEFAULT_PORT = 8700


def _config(app: Any, host: str, port: int) -> uvicorn.Config:
    # no access log: request lines carry addresses, and logs must stay free of anything personal
    return uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, server_header=False)


def serve(app: Any, host: str = HOST, port: int = DEFAULT_PORT, announce: Callable[[str], None] | None = None) -> None:
    """Serve ``app`` until interrupted (Ctrl-C or SIGTERM); ``announce`` is told the base URL once the
    server listens (port 0: a free port, named in the URL)."""
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with running(app, host, port) as url:
            if announce is not None:
                announce(url)
            try:
                while not stop.wait(0.5):
                    pass
            except KeyboardInterrupt:
                pass
    finally:
        signal.signal(signal.SIGTERM, previous)


def loopback(host: str) -> str:
    """``host`` if it is an IPv4 loopback address (127.0.0.0/8), else ConfigError: the portal serves this
    machine only (its relayer pays gas, and its page trusts its own origin)."""
    try:
        ok = ipaddress.IPv4Address(host).is_loopback
    except ValueError:
        ok = False
    if not ok:
        raise ConfigError(
            f"The portal binds only to this machine (127.0.0.1 or another 127.x.y.z address), not {host!r}; "
            "to reach it from elsewhere, tunnel to it (ssh -L) rather than expose it"
        )
    return host


@contextmanager
def running(app: Any, host: str = HOST, port: int = 0, timeout: float = 15.0) -> Iterator[str]:
    """Serve ``app`` in a background thread; yield its base URL; stop it on exit."""
    server = uvicorn.Server(_config(app, loopback(host), port))
    thread = threading.Thread(target=server.run, name="medledger-portal", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise ServiceError(f"The portal did not start on {host}:{port}")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout)
