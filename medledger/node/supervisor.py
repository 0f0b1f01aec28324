"""Start and stop the local node: idempotent, serialised per data directory, and never leaving a
half-started service behind."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Iterator

import psutil

from medledger.errors import ServiceError

from . import anvil, chainstate, ipfs, ports
from .config import NodeConfig
from .probes import probe
from .process import (
    EXECUTABLES,
    find_binary,
    kill_group,
    launch,
    locked,
    log_tail,
    service_proc,
    wait_gone,
)
from .status import NodeStatus, status


def start(config: NodeConfig | None = None, *, tie_to_parent: bool = False) -> NodeStatus:
    """Start the services that are not running (those running are left as they are) and wait
    until each answers. ServiceError with the last log lines if one fails to come up within
    ``config.start_timeout``; the services this call launched are then stopped again.

    ``tie_to_parent``: the services get SIGTERM when the calling process dies (tests, demo).
    """
    return _start(config or NodeConfig(), tie_to_parent=tie_to_parent)[0]


def _launch(config: NodeConfig, name: str, deadline: float, tie_to_parent: bool) -> subprocess.Popen[bytes]:
    if name == "anvil":
        return launch(config, name, anvil.command(config), anvil.env(), tie_to_parent)
    ipfs.clear_lock(config)
    ipfs.init_repo(config, deadline)
    return launch(config, name, ipfs.daemon_command(config), ipfs.daemon_env(config), tie_to_parent)


def _start(config: NodeConfig, *, tie_to_parent: bool) -> tuple[NodeStatus, list[str]]:
    deadline = time.monotonic() + config.start_timeout
    launched: dict[str, subprocess.Popen[bytes]] = {}
    with locked(config):
        todo, unclean = [], False
        for name in config.services:
            proc, stale = service_proc(config, name)
            if proc is not None:
                continue
            if stale:
                config.pid_file(name).unlink(missing_ok=True)
                unclean = unclean or name == "anvil"
            todo.append(name)
        for name in todo:  # fail early, before any slow step
            find_binary(EXECUTABLES[name], config)
        # One start on this machine at a time from choosing its ports until it listens on them: two
        # homes started together would both find the default ports free, and one would then fail.
        with ports.choosing(bool(todo)):
            config = ports.assign(config, todo)
            restore = chainstate.prepare(config, unclean=unclean) if "anvil" in todo else None
            try:
                for name in todo:
                    launched[name] = _launch(config, name, deadline, tie_to_parent)
                _wait_ready(config, launched, deadline)
                if "anvil" in launched:
                    chainstate.started(config, launched["anvil"].pid, restore)
            except BaseException:
                if launched:
                    _stop_services(config, list(launched), quiet=True)
                raise
    st = status(config)
    st.restored = restore
    return st, list(launched)


def _wait_ready(config: NodeConfig, launched: dict[str, subprocess.Popen[bytes]], deadline: float) -> None:
    pending = dict(launched)
    while pending:
        for name, proc in list(pending.items()):
            if proc.poll() is not None:
                raise ServiceError(
                    f"{name} exited during start (exit code {proc.returncode}); last lines of "
                    f"{config.log_file(name)}:\n{log_tail(config.log_file(name))}"
                )
            if probe(config, name, timeout=1.0):
                del pending[name]
        if not pending:
            return
        if time.monotonic() > deadline:
            names = ", ".join(pending)
            details = "\n".join(f"{n} ({config.log_file(n)}):\n{log_tail(config.log_file(n))}" for n in pending)
            raise ServiceError(f"{names} did not answer within {config.start_timeout:g} s; last log lines:\n{details}")
        time.sleep(0.1)


# --- stopping ------------------------------------------------------------------------------------
def stop(config: NodeConfig | None = None) -> NodeStatus:
    """Stop the services (idempotent): SIGTERM, then SIGKILL after ``config.stop_timeout``.

    anvil's state is saved first (:func:`.chainstate.save_before_stop`); if that failed and anvil
    also had to be killed or wrote no state on SIGTERM, this raises ServiceError after everything is
    stopped.
    """
    config = config or NodeConfig()
    if not config.run_dir.exists():
        return status(config)  # never started here: nothing to stop, nothing to create
    with locked(config):
        _stop_services(config, list(config.services))
    return status(config)


def _stop_services(config: NodeConfig, names: list[str], quiet: bool = False) -> None:
    procs: dict[str, psutil.Process] = {}
    for name in names:
        proc, stale = service_proc(config, name)
        if proc is not None:
            procs[name] = proc
        elif stale:
            config.pid_file(name).unlink(missing_ok=True)
            if name == "ipfs":
                ipfs.clear_lock(config)
    save_problem = chainstate.save_before_stop(config) if "anvil" in procs and not quiet else None
    signalled = time.time()
    for proc in procs.values():
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + config.stop_timeout
    killed: list[str] = []
    for name, proc in procs.items():
        if not wait_gone(proc, deadline):
            killed.append(name)
            kill_group(proc)
            wait_gone(proc, time.monotonic() + 5)
        config.pid_file(name).unlink(missing_ok=True)
        if name == "ipfs":
            ipfs.clear_lock(config)
    if "anvil" in procs:
        chainstate.stopped(config)
    if not quiet and "anvil" in procs and save_problem is not None:
        _check_anvil_saved(config, save_problem, killed="anvil" in killed, signalled=signalled)


def _check_anvil_saved(config: NodeConfig, problem: str, *, killed: bool, signalled: float) -> None:
    """The state was not saved before the stop: did anvil's own exit dump make up for it?"""
    autosave = chainstate.files(config).autosave
    if killed:
        raise ServiceError(
            f"anvil did not exit within {config.stop_timeout:g} s and was killed, and {problem}; the chain "
            "after its last saved state is lost, except the writes this home's journal re-applies at the next start"
        )
    try:
        fresh = autosave.stat().st_mtime >= signalled - 1.0
    except FileNotFoundError:
        fresh = False
    if not fresh:
        raise ServiceError(
            f"anvil exited, but {problem} and it did not write its state to {autosave} either; see "
            f"{config.log_file('anvil')}:\n{log_tail(config.log_file('anvil'))}"
        )


# --- context manager -----------------------------------------------------------------------------
@contextlib.contextmanager
def running_services(config: NodeConfig | None = None, *, tie_to_parent: bool = True) -> Iterator[NodeStatus]:
    """Start the services, yield their status, and on exit stop those this call started
    (services that were already running are left running).

    With ``tie_to_parent`` (the default) the kernel also sends the services SIGTERM if this
    process dies without running the exit code (killed test run); enter it from the main thread,
    as the signal follows the thread that started them."""
    config = config or NodeConfig()
    st, launched = _start(config, tie_to_parent=tie_to_parent)
    try:
        yield st
    finally:
        if launched:
            with locked(config):
                _stop_services(config, launched)
