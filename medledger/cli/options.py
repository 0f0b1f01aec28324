"""The options every command shares.

``--config``, ``--home``, ``--rpc-url``, ``--chain-id``, ``--ipfs-api``, ``--json``, ``-v`` and
``--as`` are accepted both before the command (``medledger --as lisa consent list``) and after it
(``medledger consent list --as lisa``); the later one wins. ``--as`` also reads
``MEDLEDGER_IDENTITY``. Listings take ``--format table|csv|json`` (``--json`` is ``--format json``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .context import State

F = TypeVar("F", bound=Callable[..., Any])


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    state = ctx.ensure_object(State)
    if value is not None and value is not False and value != ():
        assert param.name is not None
        setattr(state, param.name, value)
        state.forget()
        if param.name == "identity_name":
            state._identity = None
    return value


def connection_options(f: F, hidden: bool = False) -> F:
    """``--config``, ``--home``, ``--rpc-url``, ``--chain-id``, ``--ipfs-api`` (``hidden`` on leaf
    commands: they are documented once, in ``medledger --help``)."""
    options = [
        click.option(
            "--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
            expose_value=False, callback=_remember, is_eager=True,
            help="Config file (default $MEDLEDGER_CONFIG, else <home>/config.toml).",
        ),
        click.option(
            "--home", type=click.Path(file_okay=False, path_type=Path), default=None, expose_value=False,
            callback=_remember, is_eager=True,
            help="medledger home: keys, deployments, node data, caches (default $MEDLEDGER_HOME or ~/.medledger).",
        ),
        click.option(
            "--rpc-url", default=None, expose_value=False, callback=_remember, is_eager=True,
            help="Ethereum JSON-RPC endpoint (default $MEDLEDGER_RPC_URL, config, http://127.0.0.1:8645).",
        ),
        click.option(
            "--chain-id", type=click.IntRange(min=1), default=None, expose_value=False, callback=_remember,
            is_eager=True, help="Refuse to talk to any other chain (default $MEDLEDGER_CHAIN_ID or config).",
        ),
        click.option(
            "--ipfs-api", default=None, expose_value=False, callback=_remember, is_eager=True,
            help="IPFS RPC API, multiaddr or URL (default $MEDLEDGER_IPFS_API, config, /ip4/127.0.0.1/tcp/5101/http).",
        ),
    ]  # fmt: skip
    for option in reversed(options):
        f = option(f)
    if hidden:
        for param in getattr(f, "__click_params__", [])[-len(options) :]:
            param.hidden = True
    return f


def json_option(f: F) -> F:
    return click.option(
        "--json", "json", is_flag=True, default=False, expose_value=False, callback=_remember, is_eager=True,
        help="Print one JSON document on stdout (messages go to stderr); the same as --format json.",
    )(f)  # fmt: skip


def _count(ctx: click.Context, _param: click.Parameter, value: int) -> int:
    state = ctx.ensure_object(State)
    if value > state.verbose >= 0:
        state.verbose = value
        if value >= 2:
            import logging

            logging.basicConfig(stream=sys.stderr, level=logging.DEBUG, format="%(name)s: %(message)s")
    return value


def verbose_option(f: F) -> F:
    return click.option(
        "-v", "--verbose", count=True, expose_value=False, callback=_count, is_eager=True,
        help="Say more when something fails: -v a traceback and the causes of an error, -vv also the "
        "HTTP requests to the chain and IPFS node (on stderr).",
    )(f)  # fmt: skip


def _format(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    state = ctx.ensure_object(State)
    if value is None:
        return None
    if state.json and value != "json":
        raise click.BadParameter(f"--json is --format json; it cannot be combined with --format {value}.")
    state.format = value
    state.json = value == "json"
    return value


def format_option(f: F) -> F:
    """``--format table|csv|json`` of a listing (default table; ``--json`` is ``--format json``)."""
    return click.option(
        "--format", "format", type=click.Choice(["table", "csv", "json"]), default=None, expose_value=False,
        callback=_format, help="table (default), csv (a header line, one row per line) or json.",
    )(f)  # fmt: skip


def identity_option(envvar: str | None = None) -> Callable[[F], F]:
    def decorate(f: F) -> F:
        return click.option(
            "--as", "identity_name", metavar="NAME", default=None, envvar=envvar, expose_value=False,
            callback=_remember, is_eager=True,
            help="Act as this keystore identity" + (f" (default ${envvar})." if envvar else "."),
        )(f)  # fmt: skip

    return decorate


def common_options(*, identity: bool = True, json_output: bool = True) -> Callable[[F], F]:
    """The shared options for a leaf command."""

    def decorate(f: F) -> F:
        f = verbose_option(f)
        f = connection_options(f, hidden=True)
        if identity:
            f = identity_option()(f)
        if json_output:
            f = json_option(f)
        return f

    return decorate


def access_option(f: F) -> F:
    """``--read`` / ``--write`` (kept as two flags so both can be given where that makes sense)."""
    f = click.option("--write", "write", is_flag=True, help="Write access (adding records).")(f)
    return click.option("--read", "read", is_flag=True, help="Read access.")(f)


def progress_option(f: F) -> F:
    return click.option(
        "--progress/--no-progress", "progress", default=None,
        help="Show a progress bar on stderr (default: only when stderr is a terminal).",
    )(f)  # fmt: skip
