"""``medledger index``: follow the contract's events into a database (SQLite file by default,
PostgreSQL by URL), once or continuously; ``medledger index status``."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from medledger.paths import INDEX_URL_ENV

from ..context import State, get_state, with_state
from ..errors import MedledgerGroup
from ..options import common_options
from ..output import emit, note

if TYPE_CHECKING:
    from medledger.index.service import LocalIndex
    from medledger.index.sync import SyncResult


def db_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--db", "db", default=None, envvar=INDEX_URL_ENV, metavar="URL|PATH",
        help="Index database: postgresql://user@host/db or a SQLite file "
             f"(default ${INDEX_URL_ENV}, else <home>/index/<chain>-<contract>.sqlite).",
    )(f)  # fmt: skip


def open_local_index(state: State, db: str | None, *, reset: bool = False) -> LocalIndex:
    """The index of the deployment the settings point at."""
    from medledger.index.service import LocalIndex

    settings = state.settings()
    client = state.client()
    return LocalIndex.open(
        settings.home, client.deployment, settings.rpc_url, url=db, reset=reset, rpc_timeout=settings.rpc_timeout
    )


def _summary(result: SyncResult) -> str:
    text = f"indexed {result.events} events; index at block {result.indexed_to} (chain head {result.head})"
    if result.reorgs:
        text += f"; {result.reorgs} reorg(s), {result.rolled_back_events} events rolled back and read again"
    return text


def _stop_on_signals(stop: threading.Event) -> dict[int, Any]:
    """SIGTERM and SIGINT end --follow after the current step; returns the previous handlers."""

    def handler(_signum: int, _frame: Any) -> None:
        stop.set()

    return {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}


@click.group("index", cls=MedledgerGroup, invoke_without_command=True)
@db_option
@click.option("--follow", is_flag=True, help="Keep following new blocks until interrupted (SIGINT/SIGTERM).")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.05),
    default=2.0,
    show_default=True,
    help="Seconds between polls with --follow.",
)
@click.option(
    "--confirmations",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Index only blocks with at least this many blocks on top (shallow reorgs never reach it).",
)
@click.option("--reset", is_flag=True, help="Drop the index and build it again from the deployment block.")
@common_options(identity=False)
@click.pass_context
def index(ctx: click.Context, db: str | None, follow: bool, interval: float, confirmations: int, reset: bool) -> None:
    """Index the contract's events into a database (one pass, or --follow).

    Resumable (a checkpoint per chunk), idempotent, and reorg-safe: block hashes are kept, a fork
    is rolled back to the common ancestor and read again."""
    if ctx.invoked_subcommand is not None:
        ctx.meta["index_db"] = db
        return
    state = get_state()
    local = open_local_index(state, db, reset=reset)
    try:
        indexer = local.indexer(confirmations)
        if not follow:
            result = indexer.sync()
            note(f"{local.shown_location}: {_summary(result)}")
            emit({"database": local.shown_location, **result.to_json()})
            return
        stop = threading.Event()
        previous = _stop_on_signals(stop)
        note(f"Following the chain into {local.shown_location} (every {interval:g} s; Ctrl-C stops).")

        def report(result: SyncResult) -> None:
            if result.events or result.reorgs:
                note(_summary(result))

        def outage(exc: Exception) -> None:
            note(f"Waiting: {exc}")

        try:
            indexer.follow(stop, interval=interval, on_sync=report, on_outage=outage)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        note("Stopped.")
    finally:
        local.close()


@index.command("status")
@db_option
@common_options(identity=False)
@with_state
def status(state: State, db: str | None) -> None:
    """How far the index is, and how far behind the chain."""
    local = open_local_index(state, db or click.get_current_context().meta.get("index_db"))
    try:
        st = local.reader().status()
        head = local.source.block_number()
        data = {"database": local.shown_location, **st.to_json(head)}
        emit(
            data,
            f"{local.shown_location}\n  contract {st.address} on chain {st.chain_id}\n"
            f"  indexed to block {st.indexed_to} of {head} (lag {st.lag(head)}), {st.events} events",
        )
    finally:
        local.close()


COMMANDS = [index]
