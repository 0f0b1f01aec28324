"""A throwaway PostgreSQL server for tests and benchmarks: its own cluster in a temporary
directory, listening on 127.0.0.1 only (and a Unix socket inside that directory), stopped and
deleted on exit, and sent SIGTERM by the kernel if the process that started it dies.

Uses the server binaries of Debian's ``postgresql`` package (``/usr/lib/postgresql/<v>/bin``) or
``initdb``/``postgres`` on PATH. ``initdb`` refuses to run as root: as root the cluster is created
and run as the ``postgres`` user the package creates. The packaged cluster is left alone.

::

    with temporary_postgres() as admin_url:          # postgresql://postgres@127.0.0.1:PORT/postgres
        url = create_database(admin_url, "index_test")
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medledger.errors import ServiceError

_PR_SET_PDEATHSIG = 1
INSTALL_HINT = "install PostgreSQL (Debian: `apt-get install -y postgresql`)"


def server_bin_dir() -> Path:
    """The directory holding ``initdb`` and ``postgres`` (newest Debian version first)."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0,
        reverse=True,
    )
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(on_path).resolve()))
    for initdb in candidates:
        if (Path(initdb).parent / "postgres").exists():
            return Path(initdb).parent
    raise ServiceError(f"No PostgreSQL server binaries (initdb, postgres) found; {INSTALL_HINT}")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _as_owner() -> dict[str, Any]:
    """Popen arguments that run a server binary as the cluster's owner (postgres when root)."""
    if os.geteuid() != 0:
        return {}
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        raise ServiceError(f"initdb refuses to run as root and there is no 'postgres' user; {INSTALL_HINT}") from None
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _wait_ready(proc: subprocess.Popen[bytes], port: int, log: Path, timeout: float) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise ServiceError(f"postgres exited during start (code {proc.returncode}):\n{_tail(log)}")
        try:
            psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres", connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise ServiceError(f"postgres did not answer within {timeout:g} s:\n{_tail(log)}") from None
            time.sleep(0.1)


@contextlib.contextmanager
def temporary_postgres(*, durable: bool = False, timeout: float = 60.0) -> Iterator[str]:
    """Run a private PostgreSQL server; yields the admin URL (user ``postgres``, trust auth on
    127.0.0.1). ``durable=False`` (tests) turns fsync off; benchmarks pass ``durable=True``."""
    bindir = server_bin_dir()
    owner = _as_owner()
    base = Path(tempfile.mkdtemp(prefix="medledger-pg-"))
    data, log = base / "data", base / "postgres.log"
    if owner:
        os.chown(base, owner["user"], owner["group"])
    proc: subprocess.Popen[bytes] | None = None
    try:
        init = subprocess.run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            capture_output=True,
            cwd=base,
            **owner,
        )
        if init.returncode != 0:
            raise ServiceError(f"initdb failed: {init.stderr.decode(errors='replace')[-800:]}")
        port = _free_port()
        settings = ["-c", "listen_addresses=127.0.0.1", "-p", str(port), "-k", str(base)]
        if not durable:
            settings += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        with open(log, "ab") as log_file:
            proc = subprocess.Popen(
                [str(bindir / "postgres"), "-D", str(data), *settings],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=base,
                preexec_fn=_die_with_parent,
                **owner,
            )
        _wait_ready(proc, port, log, timeout)
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # fast shutdown
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(base, ignore_errors=True)


def create_database(admin_url: str, name: str) -> str:
    """Create database ``name`` (dropped first if it exists) and return its URL."""
    import psycopg

    if not name.replace("_", "").isalnum():
        raise ValueError(f"database name {name!r} must be letters, digits and underscores")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + "/" + name
