"""Output: with ``--json`` a command prints exactly one JSON document on stdout and every human
message goes to stderr; without it results are printed as text on stdout."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from medledger import codes

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


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, empty: str | None = None) -> None:
    if not rows:
        if empty:
            click.echo(empty, err=True)
        return
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(headers[i]), *(len(r[i]) for r in cells)) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        parts = [v.ljust(widths[i]) for i, v in enumerate(values[:-1])] + [values[-1]]
        return "  ".join(parts).rstrip()

    click.echo(line(list(headers)))
    for row in cells:
        click.echo(line(row))


def when(timestamp: int) -> str:
    from medledger.chain import utc

    return utc(int(timestamp))


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
