"""Local services medledger needs: an anvil chain and a js-ipfs node, both on 127.0.0.1 only.

Used by ``medledger node up | down | status``, the demo and the tests::

    cfg = NodeConfig()                 # data in $MEDLEDGER_HOME/node (default ~/.medledger/node)
    start(cfg)                         # idempotent; returns NodeStatus once both answer
    status(cfg)                        # per service: running?, pid, address, data path
    stop(cfg)                          # idempotent; SIGTERM, then SIGKILL after a grace period

    with running_services(NodeConfig.ephemeral(tmp_dir)) as st:   # free ports, own data dir
        ...

Layout of the data directory::

    anvil/state.json        chain state (anvil --state: loaded on start, dumped on exit and
                            every ``anvil_state_interval`` seconds); state.json.bak = last good copy
    ipfs/                   the js-ipfs repository (IPFS_PATH)
    logs/anvil.log, logs/ipfs.log, logs/ipfs-init.log
    run/anvil.pid, run/ipfs.pid   JSON: pid and process start time (detects stale pid files)

The processes run detached (own session) so ``node up`` can return and ``node down`` in a later
process stops them. Nothing listens on anything but 127.0.0.1 and nothing dials out: anvil has no
fork URL; js-ipfs runs with the ``test`` profile, an empty bootstrap list, no MDNS, no
webRTC-star, no delegates, no DHT, no NAT port mapping, no gRPC endpoint and preload disabled
(``--enable-preload=false`` and ``NODE_ENV=test``, which is js-ipfs's own switch for the default).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import psutil

from medledger.errors import ServiceError

__all__ = [
    "DEFAULT_MNEMONIC",
    "HOST",
    "NodeConfig",
    "NodeStatus",
    "ServiceStatus",
    "default_data_dir",
    "find_binary",
    "free_port",
    "running_services",
    "start",
    "status",
    "stop",
]

#: The only address any service binds to.
HOST = "127.0.0.1"
#: Hardhat/anvil's well-known development mnemonic (its keys are public: never use on a real chain).
DEFAULT_MNEMONIC = "test test test test test test test test test test test junk"
SERVICES = ("anvil", "ipfs")

#: Repository root: the parent of the ``medledger`` package directory.
REPO_ROOT = Path(__file__).resolve().parent.parent

_LOG_MAX_BYTES = 5 * 1024 * 1024


def default_data_dir() -> Path:
    """``$MEDLEDGER_HOME/node``, with MEDLEDGER_HOME defaulting to ``~/.medledger``."""
    home = os.environ.get("MEDLEDGER_HOME") or "~/.medledger"
    return Path(home).expanduser() / "node"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class NodeConfig:
    """Where the local services keep their data and which ports they use (all on 127.0.0.1)."""

    data_dir: Path = field(default_factory=default_data_dir)
    #: anvil JSON-RPC port (not 8545: brownie's own tests use that one)
    anvil_port: int = 8645
    chain_id: int = 1337
    mnemonic: str = DEFAULT_MNEMONIC
    anvil_accounts: int = 10
    #: initial balance of each dev account, in ether
    anvil_balance: int = 10000
    #: seconds between periodic state dumps (besides the dump on exit); None: only on exit
    anvil_state_interval: int | None = 30
    ipfs_api_port: int = 5101
    ipfs_gateway_port: int = 8180
    ipfs_swarm_port: int = 4101
    #: seconds to wait for all services to answer after launching them (includes a first init)
    start_timeout: float = 90.0
    #: seconds between SIGTERM and SIGKILL when stopping
    stop_timeout: float = 15.0
    #: look for anvil/jsipfs only here (default: <repo>/node_modules/.bin, then PATH)
    bin_dir: Path | None = None
    #: which services to manage
    services: tuple[str, ...] = SERVICES

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser())
        if self.bin_dir is not None:
            object.__setattr__(self, "bin_dir", Path(self.bin_dir).expanduser())
        unknown = set(self.services) - set(SERVICES)
        if unknown:
            raise ServiceError(f"unknown service(s) {sorted(unknown)}; known: {list(SERVICES)}")
        ports = {k: getattr(self, k) for k in self.port_keys()}
        for key, port in ports.items():
            if not isinstance(port, int) or not 0 < port < 65536:
                raise ServiceError(f"config key {key} must be a TCP port number, got {port!r}")
        if len(set(ports.values())) != len(ports):
            raise ServiceError(f"the service ports must all differ: {ports}")

    @classmethod
    def ephemeral(cls, data_dir: Path | str, **overrides: Any) -> NodeConfig:
        """A config in ``data_dir`` with free ports (tests, demos)."""
        ports: dict[str, Any] = {k: free_port() for k in cls.port_keys()}
        while len(set(ports.values())) != len(ports):  # pragma: no cover - the kernel rarely repeats
            ports = {k: free_port() for k in cls.port_keys()}
        ports.update(overrides)
        return cls(data_dir=Path(data_dir), **ports)

    @staticmethod
    def port_keys() -> tuple[str, ...]:
        return ("anvil_port", "ipfs_api_port", "ipfs_gateway_port", "ipfs_swarm_port")

    def replace(self, **changes: Any) -> NodeConfig:
        return replace(self, **changes)

    # --- derived addresses and paths -------------------------------------------------------------
    @property
    def rpc_url(self) -> str:
        return f"http://{HOST}:{self.anvil_port}"

    @property
    def ipfs_api(self) -> str:
        """The IPFS API as a multiaddr (what :class:`medledger.storage.IpfsStore` takes)."""
        return f"/ip4/{HOST}/tcp/{self.ipfs_api_port}/http"

    @property
    def ipfs_api_url(self) -> str:
        return f"http://{HOST}:{self.ipfs_api_port}"

    @property
    def ipfs_gateway_url(self) -> str:
        return f"http://{HOST}:{self.ipfs_gateway_port}"

    @property
    def anvil_dir(self) -> Path:
        return self.data_dir / "anvil"

    @property
    def anvil_state(self) -> Path:
        return self.anvil_dir / "state.json"

    @property
    def ipfs_path(self) -> Path:
        return self.data_dir / "ipfs"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    def log_file(self, service: str) -> Path:
        return self.log_dir / f"{service}.log"

    def pid_file(self, service: str) -> Path:
        return self.run_dir / f"{service}.pid"

    def ports_of(self, service: str) -> dict[str, int]:
        if service == "anvil":
            return {"anvil_port": self.anvil_port}
        return {"ipfs_api_port": self.ipfs_api_port, "ipfs_gateway_port": self.ipfs_gateway_port,
                "ipfs_swarm_port": self.ipfs_swarm_port}

    def address_of(self, service: str) -> str:
        return self.rpc_url if service == "anvil" else self.ipfs_api_url

    def data_of(self, service: str) -> Path:
        return self.anvil_state if service == "anvil" else self.ipfs_path


@dataclass
class ServiceStatus:
    name: str
    running: bool
    pid: int | None
    address: str
    data_path: Path
    log_path: Path
    #: the service answered a request just now (eth_chainId / /api/v0/id)
    responding: bool = False
    #: a pid file was found whose process is gone (or is another program)
    stale_pid_file: bool = False

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["data_path"] = str(self.data_path)
        d["log_path"] = str(self.log_path)
        return d


@dataclass
class NodeStatus:
    data_dir: Path
    services: dict[str, ServiceStatus]

    @property
    def anvil(self) -> ServiceStatus:
        return self.services["anvil"]

    @property
    def ipfs(self) -> ServiceStatus:
        return self.services["ipfs"]

    @property
    def running(self) -> bool:
        """All managed services are running."""
        return all(s.running for s in self.services.values())

    def as_dict(self) -> dict[str, Any]:
        return {"data_dir": str(self.data_dir),
                "services": {k: v.as_dict() for k, v in self.services.items()}}

    def __str__(self) -> str:
        lines = [f"data directory: {self.data_dir}"]
        for s in self.services.values():
            state = "running" if s.running else "stopped"
            if s.running and not s.responding:
                state += " (not answering)"
            pid = f"pid {s.pid}" if s.pid else "-"
            lines.append(f"{s.name:6} {state:26} {pid:11} {s.address:24} {s.data_path}")
        return "\n".join(lines)


# --- binaries ------------------------------------------------------------------------------------
_EXECUTABLES = {"anvil": "anvil", "ipfs": "jsipfs"}


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
#: processes this Python process launched, so they can be reaped (no zombies) when they exit
_CHILDREN: dict[int, subprocess.Popen] = {}
_CHILDREN_LOCK = threading.Lock()


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


def _write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


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


def _service_proc(config: NodeConfig, name: str) -> tuple[psutil.Process | None, bool]:
    """(live process, stale pid file?) for a service."""
    info = _read_pid_file(config.pid_file(name))
    if info is None:
        return None, False
    pid = info.get("pid")
    if not isinstance(pid, int):
        return None, True
    proc = _alive(pid, info.get("create_time"))
    return proc, proc is None


# --- probes --------------------------------------------------------------------------------------
def _http_post(port: int, path: str, body: bytes, timeout: float,
               content_type: str = "application/json") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": content_type})
        resp = conn.getresponse()
        return resp.status, resp.read(65536)
    finally:
        conn.close()


def _probe(config: NodeConfig, name: str, timeout: float = 1.0) -> bool:
    try:
        if name == "anvil":
            status_code, body = _http_post(
                config.anvil_port, "/",
                b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}', timeout)
            return status_code == 200 and b'"result"' in body
        status_code, body = _http_post(config.ipfs_api_port, "/api/v0/id", b"", timeout)
        return status_code == 200 and b'"ID"' in body
    except (OSError, http.client.HTTPException):
        return False


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # same option the servers use, so sockets in TIME_WAIT do not count as "in use"
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError as error:
            if error.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


# --- status --------------------------------------------------------------------------------------
def _one_status(config: NodeConfig, name: str, probe: bool = True) -> ServiceStatus:
    proc, stale = _service_proc(config, name)
    running = proc is not None
    return ServiceStatus(
        name=name, running=running, pid=proc.pid if proc else None,
        address=config.address_of(name), data_path=config.data_of(name),
        log_path=config.log_file(name),
        responding=bool(running and probe and _probe(config, name, timeout=1.0)),
        stale_pid_file=stale)


def status(config: NodeConfig | None = None) -> NodeStatus:
    """Per service: running (our process is alive), pid, address, data path, answering."""
    config = config or NodeConfig()
    return NodeStatus(config.data_dir, {n: _one_status(config, n) for n in config.services})


# --- locking -------------------------------------------------------------------------------------
@contextlib.contextmanager
def _locked(config: NodeConfig) -> Iterator[None]:
    """Serialise start/stop on one data directory (across processes)."""
    _ensure_dirs(config)
    with open(config.run_dir / "lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _ensure_dirs(config: NodeConfig) -> None:
    for d in (config.data_dir, config.anvil_dir, config.log_dir, config.run_dir):
        d.mkdir(parents=True, exist_ok=True, mode=0o700)


def _log_tail(path: Path, lines: int = 20) -> str:
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


def _open_log(path: Path):
    if path.exists() and path.stat().st_size > _LOG_MAX_BYTES:
        os.replace(path, path.with_name(path.name + ".1"))
    fh = open(path, "ab", buffering=0)  # noqa: SIM115 - handed to the child, closed after spawn
    fh.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting ===\n".encode())
    return fh


# --- anvil ---------------------------------------------------------------------------------------
def _anvil_cmd(config: NodeConfig) -> list[str]:
    cmd = [str(find_binary("anvil", config)),
           "--host", HOST, "--port", str(config.anvil_port),
           "--chain-id", str(config.chain_id),
           "--accounts", str(config.anvil_accounts),
           "--balance", str(config.anvil_balance),
           "--mnemonic", config.mnemonic,
           "--state", str(config.anvil_state),
           # no banner: it lists the dev accounts' private keys, which must not land in logs
           "--quiet"]
    if config.anvil_state_interval:
        cmd += ["--state-interval", str(int(config.anvil_state_interval))]
    return cmd


def _valid_json_file(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            json.load(fh)
        return True
    except (OSError, ValueError):
        return False


def _prepare_anvil(config: NodeConfig) -> None:
    """Keep a last good copy of the chain state; restore it if the state file is damaged."""
    state, backup = config.anvil_state, config.anvil_state.with_name("state.json.bak")
    if not state.exists():
        return
    if _valid_json_file(state):
        shutil.copy2(state, backup)
    elif backup.exists() and _valid_json_file(backup):
        os.replace(state, state.with_name("state.json.damaged"))
        shutil.copy2(backup, state)
        with open(config.log_file("anvil"), "ab") as fh:
            fh.write(f"medledger: {state} was damaged; restored {backup.name}\n".encode())
    else:
        raise ServiceError(
            f"anvil state file {state} is damaged (not valid JSON) and there is no good backup; "
            f"move it away to start a fresh chain")


# --- js-ipfs -------------------------------------------------------------------------------------
def _ipfs_env(config: NodeConfig) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DEBUG", "IPFS_MONITORING", "NODE_OPTIONS")}
    env["IPFS_PATH"] = str(config.ipfs_path)
    env["NODE_ENV"] = "test"  # js-ipfs: preload off by default
    # node (for the jsipfs script) is normally on PATH; also look next to the binary
    return env


#: Preloaded into the js-ipfs daemon (``node --require``). js-ipfs 0.66 leaves a promise rejection
#: unhandled when a read of a partly missing DAG is aborted (the client gave up, or a timeout), and
#: its CLI exits on any unhandled rejection: one ``cat`` of damaged content would take the node
#: down. This lets the CLI's handler see every other rejection but only logs the aborted wants.
_JSIPFS_PRELOAD = r"""'use strict'
// written by medledger.services: keep the daemon alive when an aborted block want is not handled
const once = process.once
process.once = function (event, listener) {
  if (event === 'unhandledRejection') {
    return process.on(event, (reason) => {
      const msg = reason && reason.message ? String(reason.message) : String(reason)
      if (/Want for \S+ aborted|request timed out|The operation was aborted/.test(msg)) {
        console.error('medledger: ignored unhandled rejection: ' + msg)
        return
      }
      listener(reason)
    })
  }
  return once.apply(this, arguments)
}
"""


def _daemon_env(config: NodeConfig) -> dict[str, str]:
    env = _ipfs_env(config)
    preload = config.run_dir / "jsipfs-preload.cjs"
    if not preload.exists() or preload.read_text() != _JSIPFS_PRELOAD:
        preload.write_text(_JSIPFS_PRELOAD)
    env["NODE_OPTIONS"] = f'--require "{preload}"'
    return env


def _ipfs_settings(config: NodeConfig) -> dict[str, Any]:
    return {
        "Addresses": {
            "API": f"/ip4/{HOST}/tcp/{config.ipfs_api_port}",
            "Gateway": f"/ip4/{HOST}/tcp/{config.ipfs_gateway_port}",
            "Swarm": [f"/ip4/{HOST}/tcp/{config.ipfs_swarm_port}"],
            "RPC": "",  # no gRPC-over-websocket endpoint
            "Announce": [], "NoAnnounce": [], "Delegates": [],
        },
        "Bootstrap": [],
        "Discovery": {"MDNS": {"Enabled": False, "Interval": 10},
                      "webRTCStar": {"Enabled": False}},
        "Routing": {"Type": "none"},
        "Pubsub": {"Enabled": False, "Router": "gossipsub"},
    }


def _deep_update(dst: dict[str, Any], src: dict[str, Any]) -> None:
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _deep_update(dst[k], v)
        else:
            dst[k] = v


def _repo_has_blocks(repo: Path) -> bool:
    blocks = repo / "blocks"
    if not blocks.is_dir():
        return False
    for _root, _dirs, files in os.walk(blocks):
        if any(f.endswith(".data") for f in files):
            return True
    return False


def _init_ipfs(config: NodeConfig, deadline: float) -> None:
    """Initialise the js-ipfs repo if it has no config yet, then (re)write its settings."""
    repo = config.ipfs_path
    cfg_file = repo / "config"
    if not cfg_file.exists():
        if repo.exists():
            if _repo_has_blocks(repo):
                raise ServiceError(f"IPFS repo {repo} has blocks but no config file; move it away "
                                   f"or restore its config")
            shutil.rmtree(repo)  # an interrupted init: nothing of value
        repo.parent.mkdir(parents=True, exist_ok=True)
        seed = config.run_dir / "ipfs-init-config.json"
        _write_json_atomic(seed, _ipfs_settings(config))
        log_path = config.log_dir / "ipfs-init.log"
        with _open_log(log_path) as log:
            try:
                proc = subprocess.run(
                    [str(find_binary("jsipfs", config)), "init", "--profile", "test",
                     "--emptyRepo", str(seed)],
                    env=_ipfs_env(config), stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, cwd=config.data_dir,
                    timeout=max(5.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired as error:
                shutil.rmtree(repo, ignore_errors=True)
                raise ServiceError(f"`jsipfs init` did not finish in time; log {log_path}:\n"
                                   f"{_log_tail(log_path)}") from error
        seed.unlink(missing_ok=True)
        if proc.returncode != 0 or not cfg_file.exists():
            shutil.rmtree(repo, ignore_errors=True)
            raise ServiceError(f"`jsipfs init` failed (exit {proc.returncode}); log {log_path}:\n"
                               f"{_log_tail(log_path)}")
    try:
        current = json.loads(cfg_file.read_text())
    except (OSError, ValueError) as error:
        raise ServiceError(f"cannot read the IPFS repo config {cfg_file}: {error}") from error
    _deep_update(current, _ipfs_settings(config))
    current.setdefault("Swarm", {})["DisableNatPortMap"] = True
    _write_json_atomic(cfg_file, current)
    os.chmod(cfg_file, 0o600)  # holds the node's private key


def _clear_ipfs_lock(config: NodeConfig) -> None:
    """Remove the lock and api files a killed js-ipfs daemon leaves behind (it is not running)."""
    lock = config.ipfs_path / "repo.lock"
    if lock.is_dir():
        shutil.rmtree(lock, ignore_errors=True)
    elif lock.exists():
        lock.unlink(missing_ok=True)
    (config.ipfs_path / "api").unlink(missing_ok=True)


# --- launching -----------------------------------------------------------------------------------
def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """preexec_fn: ask the kernel to SIGTERM the child when its parent dies (Linux)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _launch(config: NodeConfig, name: str, tie_to_parent: bool) -> subprocess.Popen:
    if name == "anvil":
        cmd, env = _anvil_cmd(config), {k: v for k, v in os.environ.items()
                                       if k not in ("RUST_LOG", "ANVIL_IP_ADDR")}
    else:
        cmd = [str(find_binary("jsipfs", config)), "daemon", "--offline", "--enable-preload=false"]
        env = _daemon_env(config)
    with _open_log(config.log_file(name)) as log:
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
    _write_json_atomic(config.pid_file(name), {
        "pid": proc.pid, "create_time": create_time, "service": name,
        "ports": config.ports_of(name), "started": time.time()})
    return proc


def _check_ports(config: NodeConfig, names: list[str]) -> None:
    for name in names:
        for key, port in config.ports_of(name).items():
            if _port_in_use(port):
                raise ServiceError(
                    f"port {port} on {HOST} (config key `{key}`, needed by {name}) is already in "
                    f"use by another program, not by the medledger services in {config.data_dir}. "
                    f"Stop that program or set `{key}` to a free port.")


def start(config: NodeConfig | None = None, *, tie_to_parent: bool = False) -> NodeStatus:
    """Start the services that are not running (those running are left as they are) and wait
    until each answers. ServiceError with the last log lines if one fails to come up within
    ``config.start_timeout``; the services this call launched are then stopped again.

    ``tie_to_parent``: the services get SIGTERM when the calling process dies (tests, demo).
    """
    return _start(config or NodeConfig(), tie_to_parent=tie_to_parent)[0]


def _start(config: NodeConfig, *, tie_to_parent: bool) -> tuple[NodeStatus, list[str]]:
    deadline = time.monotonic() + config.start_timeout
    launched: dict[str, subprocess.Popen] = {}
    with _locked(config):
        todo = []
        for name in config.services:
            proc, stale = _service_proc(config, name)
            if proc is not None:
                continue
            if stale:
                config.pid_file(name).unlink(missing_ok=True)
            todo.append(name)
        for name in todo:  # fail early, before any slow step
            find_binary(_EXECUTABLES[name], config)
        _check_ports(config, todo)
        try:
            if "anvil" in todo:
                _prepare_anvil(config)
                launched["anvil"] = _launch(config, "anvil", tie_to_parent)
            if "ipfs" in todo:
                _clear_ipfs_lock(config)
                _init_ipfs(config, deadline)
                launched["ipfs"] = _launch(config, "ipfs", tie_to_parent)
            _wait_ready(config, launched, deadline)
        except BaseException:
            if launched:
                _stop_services(config, list(launched), quiet=True)
            raise
    return status(config), list(launched)


def _wait_ready(config: NodeConfig, launched: dict[str, subprocess.Popen],
                deadline: float) -> None:
    pending = dict(launched)
    while pending:
        for name, proc in list(pending.items()):
            if proc.poll() is not None:
                raise ServiceError(
                    f"{name} exited during start (exit code {proc.returncode}); last lines of "
                    f"{config.log_file(name)}:\n{_log_tail(config.log_file(name))}")
            if _probe(config, name, timeout=1.0):
                del pending[name]
        if not pending:
            return
        if time.monotonic() > deadline:
            names = ", ".join(pending)
            details = "\n".join(f"{n} ({config.log_file(n)}):\n{_log_tail(config.log_file(n))}"
                                for n in pending)
            raise ServiceError(f"{names} did not answer within {config.start_timeout:g} s; "
                               f"last log lines:\n{details}")
        time.sleep(0.1)


# --- stopping ------------------------------------------------------------------------------------
def stop(config: NodeConfig | None = None) -> NodeStatus:
    """Stop the services (idempotent): SIGTERM, then SIGKILL after ``config.stop_timeout``.

    anvil writes its state on SIGTERM; if it had to be killed, or did not write its state file,
    this raises ServiceError after everything is stopped.
    """
    config = config or NodeConfig()
    if not config.run_dir.exists():
        return status(config)  # never started here: nothing to stop, nothing to create
    with _locked(config):
        _stop_services(config, list(config.services))
    return status(config)


def _stop_services(config: NodeConfig, names: list[str], quiet: bool = False) -> None:
    procs: dict[str, psutil.Process] = {}
    for name in names:
        proc, stale = _service_proc(config, name)
        if proc is not None:
            procs[name] = proc
        elif stale:
            config.pid_file(name).unlink(missing_ok=True)
            if name == "ipfs":
                _clear_ipfs_lock(config)
    signalled = time.time()
    for proc in procs.values():
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + config.stop_timeout
    killed: list[str] = []
    for name, proc in procs.items():
        if not _wait_gone(proc, deadline):
            killed.append(name)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # its own session/group: only our process
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
            _wait_gone(proc, time.monotonic() + 5)
        config.pid_file(name).unlink(missing_ok=True)
        if name == "ipfs":
            _clear_ipfs_lock(config)
    if quiet or "anvil" not in procs:
        return
    state = config.anvil_state
    if "anvil" in killed:
        raise ServiceError(f"anvil did not exit within {config.stop_timeout:g} s and was killed; "
                           f"chain state after the last periodic dump to {state} may be lost")
    try:
        fresh = state.stat().st_mtime >= signalled - 1.0
    except FileNotFoundError:
        fresh = False
    if not fresh or not _valid_json_file(state):
        raise ServiceError(f"anvil exited but did not write its state to {state}; see "
                           f"{config.log_file('anvil')}:\n{_log_tail(config.log_file('anvil'))}")


def _wait_gone(proc: psutil.Process, deadline: float) -> bool:
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


# --- context manager -----------------------------------------------------------------------------
@contextlib.contextmanager
def running_services(config: NodeConfig | None = None, *,
                     tie_to_parent: bool = True) -> Iterator[NodeStatus]:
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
            with _locked(config):
                _stop_services(config, launched)


if __name__ == "__main__":  # pragma: no cover - manual use: python -m medledger.services up|down
    action = sys.argv[1] if len(sys.argv) > 1 else "status"
    fn = {"up": start, "down": stop, "status": status}[action]
    print(fn(NodeConfig()))
