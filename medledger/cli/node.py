"""``medledger node``: the local anvil chain and IPFS node (127.0.0.1 only).

The data directory is ``<home>/node`` (``--data-dir`` to choose another). The ports follow the
settings (``[node]`` in the config file, ``MEDLEDGER_*_PORT``, or a local RPC URL / IPFS API); ports
not set are chosen at ``node up`` and recorded in the node directory, where the other commands of
the same home find them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from medledger import node as services
from medledger.config import Settings, local_ipfs_port, local_rpc_port
from medledger.errors import ServiceError

from .common import MedledgerGroup, State, common_options, emit, note, with_state


def node_config(settings: Settings, data_dir: Path | None = None) -> services.NodeConfig:
    """The :class:`~medledger.node.NodeConfig` matching ``settings``: the ports set by the config,
    the environment or a local RPC URL / IPFS API; the others are chosen at start."""
    overrides: dict[str, Any] = dict(settings.node_ports)
    if settings.chain_id is not None:
        overrides["chain_id"] = settings.chain_id
    return services.NodeConfig(data_dir=data_dir or settings.node_dir, **overrides)


def _remote_notes(settings: Settings) -> None:
    if local_rpc_port(settings.rpc_url) is None:
        note(f"Note: the configured RPC URL {settings.rpc_url} is not this local node.")
    if local_ipfs_port(settings.ipfs_api) is None:
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
    """Show whether each service runs and answers, its pid, address and data path; exit 3 when one
    is down."""
    config = node_config(state.settings(), data_dir)
    st = services.status(config)
    _show(st)
    for down in st.down:
        note(f"{down.name}: {down.problem}")
    if st.down:
        raise click.exceptions.Exit(ServiceError.exit_code)


COMMANDS = [node]
