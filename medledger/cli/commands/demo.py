"""``medledger demo``: the whole story on throw-away local services."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..lazy import lazy

if TYPE_CHECKING:
    from medledger import demo as demo_lib
else:
    demo_lib = lazy("medledger.demo")


@click.command("demo")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the demo's chain and IPFS data here (default: a temporary directory).",
)
def demo(data_dir: Path | None) -> None:
    """Run Lisa's story end to end on a fresh local chain and IPFS node (exit 0 if every step held)."""
    code = demo_lib.run(sys.stdout, data_dir)
    raise click.exceptions.Exit(code)


COMMANDS = [demo]
