"""Settings: which chain, which IPFS node, where keys and deployments live.

Sources, strongest first: explicit arguments (CLI options), environment variables, the config file
(``$MEDLEDGER_CONFIG`` or ``$MEDLEDGER_HOME/config.toml``), defaults. The defaults point at the
local services that ``medledger node up`` starts; any EVM JSON-RPC endpoint and any Kubo RPC
endpoint (a real Kubo, an IPFS Cluster proxy) can be chosen instead::

    [chain]
    rpc_url = "https://rpc.example-consortium.org"
    chain_id = 4242            # refuse to talk to any other chain
    [ipfs]
    api = "/dns/ipfs.example.org/tcp/5001/https"
    timeout = 60
    [paths]
    deployments = "/srv/medledger/deployments"
    [node]                     # the local node (`medledger node up`); each port: a number or "auto"
    anvil_port = 8645
    ipfs_gateway_port = "auto"

Ports of the local node (``anvil_port``, ``ipfs_api_port``, ``ipfs_gateway_port``,
``ipfs_swarm_port``) come from ``[node]`` or ``MEDLEDGER_ANVIL_PORT``, ``MEDLEDGER_IPFS_API_PORT``,
``MEDLEDGER_IPFS_GATEWAY_PORT``, ``MEDLEDGER_IPFS_SWARM_PORT``; an RPC URL or IPFS API that is set
and points at 127.0.0.1/localhost also fixes its port. Ports not set are chosen at ``node up``
(the default if free, else any free port) and recorded in ``<home>/node/ports.json``; without an
RPC URL or IPFS API of their own, clients of the home connect to the ports recorded there, so two
homes side by side each talk to their own node.
"""

from __future__ import annotations

import json
import os
import tomllib
import urllib.parse
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import paths
from .errors import ConfigError

#: The local node's ports, and their defaults (used when free and nothing else is set).
PORT_KEYS = ("anvil_port", "ipfs_api_port", "ipfs_gateway_port", "ipfs_swarm_port")
DEFAULT_PORTS = {"anvil_port": 8645, "ipfs_api_port": 5101, "ipfs_gateway_port": 8180, "ipfs_swarm_port": 4101}
#: The ports the last ``node up`` of a node directory used (JSON, written by :mod:`medledger.node`).
PORTS_FILE = "ports.json"
_LOCAL_HOSTS = ("127.0.0.1", "localhost")

DEFAULT_RPC_URL = f"http://127.0.0.1:{DEFAULT_PORTS['anvil_port']}"
DEFAULT_IPFS_API = f"/ip4/127.0.0.1/tcp/{DEFAULT_PORTS['ipfs_api_port']}/http"


def rpc_url_for(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def ipfs_api_for(port: int) -> str:
    return f"/ip4/127.0.0.1/tcp/{port}/http"


def recorded_ports(node_dir: Path) -> dict[str, int]:
    """The ports recorded by the last start of the local node in ``node_dir`` (empty if none)."""
    try:
        data = json.loads((node_dir / PORTS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if k in PORT_KEYS and isinstance(v, int) and not isinstance(v, bool)}


def local_rpc_port(url: str) -> int | None:
    """The port of an RPC URL on this machine (plain http on 127.0.0.1/localhost), else None."""
    parts = urllib.parse.urlsplit(url if "://" in url else "http://" + url)
    if parts.hostname in _LOCAL_HOSTS and parts.scheme == "http":
        return parts.port or 80
    return None


def local_ipfs_port(api: str) -> int | None:
    """The port of an IPFS API address (multiaddr or URL) on this machine, else None."""
    api = api.strip()
    if not api.startswith("/"):
        return local_rpc_port(api)
    parts = api.strip("/").split("/")
    fields = dict(zip(parts[::2], parts[1::2]))
    host = fields.get("ip4") or fields.get("dns") or fields.get("dns4")
    if host in _LOCAL_HOSTS and fields.get("tcp", "").isdigit() and "https" not in parts:
        return int(fields["tcp"])
    return None


def default_home() -> Path:
    """``$MEDLEDGER_HOME`` (an empty value counts as unset), else ``~/.medledger``."""
    return paths.medledger_home()


@dataclass(frozen=True)
class Settings:
    """Everything medledger needs to know about its surroundings."""

    home: Path = field(default_factory=default_home)
    rpc_url: str = DEFAULT_RPC_URL
    chain_id: int | None = None
    rpc_timeout: float = 30.0
    ipfs_api: str = DEFAULT_IPFS_API
    ipfs_timeout: float = 30.0
    deployments_dir: Path | None = None
    keystore_dir: Path | None = None
    #: ports of the local node set by the config file, the environment or a local RPC URL / IPFS API
    node_ports: dict[str, int] = field(default_factory=dict)

    @property
    def deployments(self) -> Path:
        return self.deployments_dir or paths.deployments_dir(self.home)

    @property
    def keys(self) -> Path:
        return self.keystore_dir or paths.keys_dir(self.home)

    @property
    def node_dir(self) -> Path:
        return paths.node_dir(self.home)

    @property
    def cache_dir(self) -> Path:
        """Per-user working state that is not secret (sync checkpoints, pending writes)."""
        return paths.cache_dir(self.home)

    def with_overrides(self, **overrides: Any) -> "Settings":
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else None


def _number(value: Any, key: str, kind: type) -> Any:
    try:
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{key} must be a {kind.__name__}, not {value!r}") from exc


def _read_file(path: Path, required: bool) -> dict[str, Any]:
    if not path.exists():
        if required:
            raise ConfigError(f"The config file {path} does not exist.")
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"Cannot read the config file {path}: {exc}") from exc
    unknown = set(data) - {"chain", "ipfs", "paths", "node"}
    if unknown:
        raise ConfigError(f"Unknown section(s) {sorted(unknown)} in {path}; expected chain, ipfs, paths, node.")
    return data


def _node_ports(section: dict[str, Any], rpc_url: str | None, ipfs_api: str | None) -> dict[str, int]:
    """The ports of the local node that are set: environment, then ``[node]``, then the port of an
    RPC URL or IPFS API that is set and local. ``"auto"`` (or nothing) leaves a port to ``node up``."""
    unknown = set(section) - set(PORT_KEYS)
    if unknown:
        raise ConfigError(f"Unknown key(s) {sorted(unknown)} in [node]; expected {', '.join(PORT_KEYS)}.")
    ports: dict[str, int] = {}
    for key in PORT_KEYS:
        env_name = "MEDLEDGER_" + key.upper()
        value = _env(env_name) or section.get(key)  # the environment wins, "auto" included
        if value is None or value == "auto":
            continue
        port = _number(value, f"{env_name} / [node] {key}", int)
        if not 0 < port < 65536:
            raise ConfigError(f"{env_name} / [node] {key} must be a TCP port (1-65535) or \"auto\", not {value!r}")
        ports[key] = port
    for key, port in (("anvil_port", local_rpc_port(rpc_url) if rpc_url else None),
                      ("ipfs_api_port", local_ipfs_port(ipfs_api) if ipfs_api else None)):
        if port is not None:
            ports.setdefault(key, port)
    return ports


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Read the config file and environment, then apply ``overrides`` (None values are ignored)."""
    home = Path(overrides.pop("home", None) or default_home()).expanduser()
    env_config = _env("MEDLEDGER_CONFIG")
    path = config_file or (Path(env_config) if env_config else paths.config_file(home))
    data = _read_file(path, required=config_file is not None)
    chain, ipfs, path_section = data.get("chain", {}), data.get("ipfs", {}), data.get("paths", {})
    rpc_url = overrides.get("rpc_url") or _env("MEDLEDGER_RPC_URL") or chain.get("rpc_url")
    ipfs_api = overrides.get("ipfs_api") or _env("MEDLEDGER_IPFS_API") or ipfs.get("api")
    node_ports = _node_ports(data.get("node", {}), rpc_url, ipfs_api)
    recorded = recorded_ports(paths.node_dir(home))

    def local(key: str) -> int:
        return node_ports.get(key) or recorded.get(key) or DEFAULT_PORTS[key]

    chain_id = _env("MEDLEDGER_CHAIN_ID") or chain.get("chain_id")
    deployments = _env("MEDLEDGER_DEPLOYMENTS") or path_section.get("deployments")
    keys = _env("MEDLEDGER_KEYSTORE") or path_section.get("keys")
    settings = Settings(
        home=home,
        rpc_url=rpc_url or rpc_url_for(local("anvil_port")),
        chain_id=_number(chain_id, "chain_id", int) if chain_id is not None else None,
        rpc_timeout=_number(_env("MEDLEDGER_RPC_TIMEOUT") or chain.get("timeout", 30.0), "chain timeout", float),
        ipfs_api=ipfs_api or ipfs_api_for(local("ipfs_api_port")),
        ipfs_timeout=_number(_env("MEDLEDGER_IPFS_TIMEOUT") or ipfs.get("timeout", 30.0), "ipfs timeout", float),
        deployments_dir=Path(deployments).expanduser() if deployments else None,
        keystore_dir=Path(keys).expanduser() if keys else None,
        node_ports=node_ports,
    )
    return settings.with_overrides(**overrides)
