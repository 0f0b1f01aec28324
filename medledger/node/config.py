"""Where the local node keeps its data and which ports it uses (all on 127.0.0.1)."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from medledger import paths
from medledger.config import DEFAULT_PORTS, PORT_KEYS, PORTS_FILE, recorded_ports
from medledger.errors import ServiceError

#: The only address any service binds to.
HOST = "127.0.0.1"
#: Hardhat/anvil's well-known development mnemonic (its keys are public: never use on a real chain).
DEFAULT_MNEMONIC = "test test test test test test test test test test test junk"
SERVICES = ("anvil", "ipfs")

#: Repository root: the parent of the ``medledger`` package directory.
REPO_ROOT = Path(__file__).resolve().parents[2]


def default_data_dir() -> Path:
    """``$MEDLEDGER_HOME/node``, with MEDLEDGER_HOME defaulting to ``~/.medledger``."""
    return paths.node_dir()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])



@dataclass(frozen=True)
class NodeConfig:
    """Where the local services keep their data and which ports they use (all on 127.0.0.1)."""

    data_dir: Path = field(default_factory=default_data_dir)
    #: Ports: None (the default) chooses automatically: the port recorded in ``ports.json`` by the
    #: last start of this data directory, else the default (see :data:`DEFAULT_PORTS`) if it is
    #: free, else any free port; the choice is recorded. A number is used as is.
    #: anvil JSON-RPC port (default 8645, not 8545: brownie's own tests use that one)
    anvil_port: int | None = None
    chain_id: int = 1337
    mnemonic: str = DEFAULT_MNEMONIC
    anvil_accounts: int = 10
    #: initial balance of each dev account, in ether
    anvil_balance: int = 10000
    #: seconds between periodic state dumps (besides the dump on exit); None: only on exit
    anvil_state_interval: int | None = 30
    ipfs_api_port: int | None = None
    ipfs_gateway_port: int | None = None
    ipfs_swarm_port: int | None = None
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
        ports = {k: getattr(self, k) for k in self.port_keys() if getattr(self, k) is not None}
        for key, port in ports.items():
            if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
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
        return PORT_KEYS

    def replace(self, **changes: Any) -> NodeConfig:
        return replace(self, **changes)

    # --- ports -----------------------------------------------------------------------------------
    @property
    def ports_file(self) -> Path:
        """Where the ports of the last start are recorded (what clients of this home connect to)."""
        return self.data_dir / PORTS_FILE

    def automatic(self) -> tuple[str, ...]:
        """The port keys chosen automatically (not set in the config)."""
        return tuple(k for k in PORT_KEYS if getattr(self, k) is None)

    def port(self, key: str) -> int:
        """The port ``key`` as set, else as recorded by the last start, else its default."""
        value = getattr(self, key)
        if isinstance(value, int):
            return value
        return recorded_ports(self.data_dir).get(key, DEFAULT_PORTS[key])

    def resolved(self) -> NodeConfig:
        """This config with every port a number (:meth:`port`)."""
        ports: dict[str, Any] = {k: self.port(k) for k in PORT_KEYS}
        return replace(self, **ports)

    # --- derived addresses and paths -------------------------------------------------------------
    @property
    def rpc_url(self) -> str:
        return f"http://{HOST}:{self.port('anvil_port')}"

    @property
    def ipfs_api(self) -> str:
        """The IPFS API as a multiaddr (what :class:`medledger.storage.IpfsStore` takes)."""
        return f"/ip4/{HOST}/tcp/{self.port('ipfs_api_port')}/http"

    @property
    def ipfs_api_url(self) -> str:
        return f"http://{HOST}:{self.port('ipfs_api_port')}"

    @property
    def ipfs_gateway_url(self) -> str:
        return f"http://{HOST}:{self.port('ipfs_gateway_port')}"

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
        keys = ("anvil_port",) if service == "anvil" else ("ipfs_api_port", "ipfs_gateway_port", "ipfs_swarm_port")
        return {k: self.port(k) for k in keys}

    def address_of(self, service: str) -> str:
        return self.rpc_url if service == "anvil" else self.ipfs_api_url

    def data_of(self, service: str) -> Path:
        return self.anvil_state if service == "anvil" else self.ipfs_path

