"""``medledger node``: the local anvil chain and IPFS node (127.0.0.1 only).

The data directory is ``<home>/node`` (``--data-dir`` to choose another). The ports follow the
settings (``[node]`` in the config file, ``MEDLEDGER_*_PORT``, or a local RPC URL / IPFS API); ports
not set are chosen at ``node up`` and recorded in the node directory, where the other commands of
the same home find them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from medledger.errors import ServiceError

from ..context import State, with_state
from ..errors import EXIT_CODES, MedledgerGroup
from ..lazy import lazy
from ..options import common_options
from ..output import emit, note

if TYPE_CHECKING:
    from medledger import node as services
    from medledger.config import Settings
else:
    services = lazy("medledger.node")


def node_config(settings: Settings, data_dir: Path | None = None) -> services.NodeConfig:
    """The :class:`~medledger.node.NodeConfig` matching ``settings``: the ports set by the config,
    the environment or a local RPC URL / IPFS API; the others are chosen at start."""
    overrides: dict[str, Any] = dict(settings.node_ports)
    if settings.chain_id is not None:
        overrides["chain_id"] = settings.chain_id
    return services.NodeConfig(data_dir=data_dir or settings.node_dir, **overrides)


def _remote_notes(settings: Settings) -> None:
    from medledger.config import local_ipfs_port, local_rpc_port

    if local_rpc_port(settings.rpc_url) is None:
        note(f"Note: the configured RPC URL {settings.rpc_url} is not this local node.")
    if local_ipfs_port(settings.ipfs_api) is None:
        note(f"Note: the configured IPFS API {settings.ipfs_api} is not this local node.")


def _show(st: services.NodeStatus) -> None:
    emit(st.as_dict() | {"running": st.running}, str(st))


def data_dir_option(f: Any) -> Any:
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
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
    """Start the services that are not running and wait until they answer. After an unclean stop it
    says what it found of the chain's saved state, and it re-applies this home's journaled writes
    that the restored chain does not hold."""
    settings = state.settings()
    config = node_config(settings, data_dir)
    note(f"Starting the local services in {config.data_dir} (first start can take a minute)…")
    st = services.start(config)
    _remote_notes(settings)
    report = st.restored.lines() if st.restored is not None else []
    repaired = _repair(settings, config) if st.restored is not None else []
    report += [f"Journal: {what}  {outcome}" for what, outcome in repaired]
    emit(
        st.as_dict() | {"running": st.running, "repaired": [{"what": w, "outcome": o} for w, o in repaired]},
        "\n".join([str(st), *report]),
    )


def _repair(settings: Settings, config: services.NodeConfig) -> list[tuple[str, str]]:
    """Settle the home's journal on the node just started (when it is the home's chain)."""
    from medledger import workflows
    from medledger.config import local_rpc_port
    from medledger.errors import DeploymentGone, DeploymentNotFound, MedledgerError

    if config.data_dir != settings.node_dir or local_rpc_port(settings.rpc_url) != config.port("anvil_port"):
        return []
    try:
        return workflows.recover(settings, wait=10.0)
    except DeploymentGone as exc:
        return [("deployment", f"NOT ON THIS CHAIN: {exc}")]
    except DeploymentNotFound:
        return []  # nothing deployed from this home yet: nothing journaled to settle
    except MedledgerError as exc:
        return [("journal", f"not settled: {exc}")]


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
        raise click.exceptions.Exit(EXIT_CODES[ServiceError][0])


COMMANDS = [node]
