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
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import paths
from .errors import ConfigError

DEFAULT_RPC_URL = "http://127.0.0.1:8645"
DEFAULT_IPFS_API = "/ip4/127.0.0.1/tcp/5101/http"


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


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Read the config file and environment, then apply ``overrides`` (None values are ignored)."""
    home = Path(overrides.pop("home", None) or default_home()).expanduser()
    env_config = _env("MEDLEDGER_CONFIG")
    path = config_file or (Path(env_config) if env_config else paths.config_file(home))
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"Cannot read the config file {path}: {exc}") from exc
    elif config_file is not None:
        raise ConfigError(f"The config file {path} does not exist.")
    chain = data.get("chain", {})
    ipfs = data.get("ipfs", {})
    path_section = data.get("paths", {})
    unknown = set(data) - {"chain", "ipfs", "paths"}
    if unknown:
        raise ConfigError(f"Unknown section(s) {sorted(unknown)} in {path}; expected chain, ipfs, paths.")

    chain_id = _env("MEDLEDGER_CHAIN_ID") or chain.get("chain_id")
    deployments = _env("MEDLEDGER_DEPLOYMENTS") or path_section.get("deployments")
    keys = _env("MEDLEDGER_KEYSTORE") or path_section.get("keys")
    settings = Settings(
        home=home,
        rpc_url=_env("MEDLEDGER_RPC_URL") or chain.get("rpc_url", DEFAULT_RPC_URL),
        chain_id=_number(chain_id, "chain_id", int) if chain_id is not None else None,
        rpc_timeout=_number(_env("MEDLEDGER_RPC_TIMEOUT") or chain.get("timeout", 30.0), "chain timeout", float),
        ipfs_api=_env("MEDLEDGER_IPFS_API") or ipfs.get("api", DEFAULT_IPFS_API),
        ipfs_timeout=_number(_env("MEDLEDGER_IPFS_TIMEOUT") or ipfs.get("timeout", 30.0), "ipfs timeout", float),
        deployments_dir=Path(deployments).expanduser() if deployments else None,
        keystore_dir=Path(keys).expanduser() if keys else None,
    )
    return settings.with_overrides(**overrides)
