"""``medledger node``: the local anvil chain and IPFS node (127.0.0.1 only).

The data directory is ``<home>/node`` (``--data-dir`` to choose another). The ports follow the
settings: when the RPC URL or IPFS API point at 127.0.0.1/localhost, their ports are the ones the
services listen on, so ``node up`` starts exactly what the other commands will talk to.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any

import click

from medledger import node as services
from medledger.config import Settings

from .common import MedledgerGroup, State, common_options, emit, note, with_state

_LOCAL = {"127.0.0.1", "localhost"}


def _rpc_port(url: str) -> int | None:
    parts = urllib.parse.urlsplit(url if "://" in url else "http://" + url)
    if parts.hostname in _LOCAL and parts.scheme == "http":
        return parts.port or 80
    return None


def _ipfs_port(api: str) -> int | None:
    api = api.strip()
    if api.startswith("/"):
        parts = api.strip("/").split("/")
        fields = dict(zip(parts[::2], parts[1::2]))
        host = fields.get("ip4") or fields.get("dns") or fields.get("dns4")
        if host in _LOCAL and fields.get("tcp", "").isdigit() and "https" not in parts:
            return int(fields["tcp"])
        return None
    return _rpc_port(api)


def node_config(settings: Settings, data_dir: Path | None = None) -> services.NodeConfig:
    """The :class:`~medledger.node.NodeConfig` matching ``settings``."""
    overrides: dict[str, Any] = {}
    rpc = _rpc_port(settings.rpc_url)
    if rpc is not None:
        overrides["anvil_port"] = rpc
    ipfs = _ipfs_port(settings.ipfs_api)
    if ipfs is not None:
        overrides["ipfs_api_port"] = ipfs
    if settings.chain_id is not None:
        overrides["chain_id"] = settings.chain_id
    return services.NodeConfig(data_dir=data_dir or settings.node_dir, **overrides)


def _remote_notes(settings: Settings) -> None:
    if _rpc_port(settings.rpc_url) is None:
        note(f"Note: the configured RPC URL {settings.rpc_url} is not this local node.")
    if _ipfs_port(settings.ipfs_api) is None:
        note(f"Note: the configured IPFS API {settings.ipfs_api} is not this local node.")


def _show(st: services.NodeStatus) -> None:
    emit(st.as_dict() | {"running": st.running}, str(st))


def data_dir_option(f: Any) -> Any:
    return click.option(
        "--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
        help="Data directory of the services (default <home>/node).",
    )(f)


@click.group(cls=MedledgerGroup)
def node() -> None:
    """Start, stop and inspect the local chain (anvil) and IPFS node."""


@node.command("up")
@data_dir_option
@common_options(identity=False)
@with_state
def up(state: State, data_dir: Path | None) -> None:
    """Start the services that are not running and wait until they answer."""
    settings = state.settings()
    config = node_config(settings, data_dir)
    note(f"Starting the local services in {config.data_dir} (first start can take a minute)…")
    st = services.start(config)
    _remote_notes(settings)
    _show(st)


@node.command("down")
@data_dir_option
@common_options(identity=False)
@with_state
def down(state: State, data_dir: Path | None) -> None:
    """Stop the services (anvil saves the chain state first)."""
    config = node_config(state.settings(), data_dir)
    _show(services.stop(config))


@node.command("status")
@data_dir_option
@common_options(identity=False)
@with_state
def status(state: State, data_dir: Path | None) -> None:
    """Show whether each service runs and answers, its pid, address and data path."""
    config = node_config(state.settings(), data_dir)
    _show(services.status(config))


COMMANDS = [node]
