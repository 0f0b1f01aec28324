"""Where the history listings (``audit``, ``grants``, ``consent list``, ``records list``, ``export``) read
events: ``--source auto`` (default) uses the event index when one follows this deployment and its
checkpoint is still on the chain (the blocks after it come from the logs), otherwise a scan of the
chain's logs; ``--source index`` insists on the index, ``--source logs`` never opens it. Every such
command says on stderr which source it read (``Source: ...``), whatever the output format."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from medledger.errors import ConfigError

from .context import State
from .output import note

if TYPE_CHECKING:
    from medledger.client import Client

F = TypeVar("F", bound=Callable[..., Any])
SOURCES = ("auto", "index", "logs")


def source_option(f: F) -> F:
    return click.option(
        "--source", "source", type=click.Choice(SOURCES), default="auto", show_default=True,
        help="Read history from the event index when it is usable (auto), only from it (index), or from a "
        "scan of the chain's logs (logs). The source used is said on stderr.",
    )(f)  # fmt: skip


def history_client(state: State, source: str) -> Client:
    """The session's client, reading history from ``source``; says which source on stderr."""
    from medledger.chain.history import LogScan

    client = state.client()
    if source == "logs":
        client.use_history(LogScan(client.contract, reason="--source logs"))
    else:
        from medledger.index import open_history

        history = open_history(client)
        if source == "index" and history.source.kind != "index":
            raise ConfigError(f"--source index: {history.source.reason}")
        client.use_history(history)
    note(client.history.source.describe())
    return client
