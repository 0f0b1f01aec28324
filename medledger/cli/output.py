"""Output: with ``--json`` a command prints exactly one JSON document on stdout and every human
message goes to stderr; without it results are printed as text on stdout. Every listing goes through
:func:`listing`: a table, CSV or JSON of the same rows (``--format``; ``--json`` is ``--format json``).
Times are ISO-8601 UTC to the second; nothing (no expiry, not revoked) is null in JSON and an empty
cell in CSV."""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from medledger import codes
from medledger.times import LAST_DATE

from .context import get_state

if TYPE_CHECKING:
    from medledger.keystore import KeyInfo


def note(message: str) -> None:
    """A human message: always on stderr."""
    click.echo(message, err=True)


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, IntEnum):
        return codes.slug(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, default=_json_default)


def emit(data: Any, human: str | Callable[[], None] | None = None) -> None:
    """Print a command's result: ``data`` as JSON with ``--json``, otherwise ``human`` (text, or a
    function that prints)."""
    if get_state().json:
        click.echo(dumps(data))
    elif callable(human):
        human()
    elif human is not None:
        click.echo(human)


@dataclass(frozen=True)
class Column:
    """One column of a listing: ``key`` of the row (the JSON field and the CSV header), ``header`` in
    the table, and how a value reads there (``text``; None: the column is left out of the table)."""

    key: str
    header: str
    text: Callable[[Any], str] | None = None
    in_table: bool = True


FORMATS = ("table", "csv", "json")


def output_format() -> str:
    """``table``, ``csv`` or ``json``: ``--format``, where ``--json`` is ``--format json``."""
    state = get_state()
    if state.json and state.format not in (None, "json"):
        raise click.UsageError(f"--json is --format json; it cannot be combined with --format {state.format}.")
    return "json" if state.json else state.format or "table"


def listing(rows: Sequence[dict[str, Any]], columns: Sequence[Column], *, empty: str | None = None) -> None:
    """Print a listing in the chosen format: a table, CSV (one header line of column keys; empty cells
    for nothing, ``true``/``false``, lists joined by ``;``) or a JSON list of the rows."""
    fmt = output_format()
    if fmt == "json":
        click.echo(dumps(list(rows)))
    elif fmt == "csv":
        click.echo(to_csv(rows, [c.key for c in columns]), nl=False)
    else:
        shown = [c for c in columns if c.in_table]
        table(
            [c.header for c in shown],
            [[(c.text or _cell)(row.get(c.key)) for c in shown] for row in rows],
            empty=empty,
        )


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (list, tuple, set, frozenset)):
        return ",".join(str(v) for v in value) or "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, set, frozenset)):
        return ";".join(str(v) for v in value)
    return value


def to_csv(rows: Iterable[dict[str, Any]], keys: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(keys)
    for row in rows:
        writer.writerow([_csv_value(row.get(k)) for k in keys])
    return buf.getvalue()


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, empty: str | None = None) -> None:
    """A table on stdout (rich): fitted to a terminal's width, never wrapped when piped."""
    if not rows:
        if empty:
            click.echo(empty, err=True)
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    terminal = sys.stdout.isatty()
    grid = Table(box=None, pad_edge=False, show_edge=False, header_style="bold" if terminal else "")
    for header in headers:
        grid.add_column(header, overflow="fold", no_wrap=not terminal)
    for row in rows:
        grid.add_row(*(Text(str(cell)) for cell in row))
    console = Console(file=sys.stdout, highlight=False, width=None if terminal else 1_000_000)
    with console.capture() as captured:
        console.print(grid)
    click.echo("\n".join(line.rstrip() for line in captured.get().splitlines()))


def when(timestamp: int) -> str:
    """A Unix time for a human: ``2026-12-01 10:00:00 UTC`` (``no expiry`` past any date)."""
    if timestamp > LAST_DATE:
        return "no expiry"
    return _dt.datetime.fromtimestamp(int(timestamp), _dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def short(address: str, names: dict[str, str]) -> str:
    name = names.get(address)
    return f"{address} ({name})" if name else address


def code_list(members: Iterable[IntEnum]) -> str:
    return ",".join(codes.slug(m) for m in sorted(members)) or "-"


def code_labels(members: Iterable[IntEnum]) -> str:
    return ", ".join(codes.label(m) for m in sorted(members)) or "nothing"


def progress_enabled(flag: bool | None) -> bool:
    """``--progress/--no-progress``; by default only when stderr is a terminal."""
    if flag is not None:
        return flag
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def key_info_json(info: KeyInfo) -> dict[str, Any]:
    from medledger.keystore import passphrase_env_var

    return {
        "name": info.name,
        "address": info.address,
        "encryption_public_key": info.encryption_public_hex,
        "path": str(info.path),
        "passphrase_env": passphrase_env_var(info.name),
    }
