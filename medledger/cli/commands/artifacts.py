"""``medledger artifacts``: the compiled contract that ships with the package, for dapp front ends and
for the maintainers who regenerate it."""

from __future__ import annotations

from pathlib import Path

import click

from medledger.errors import ChainError

from ..errors import MedledgerGroup
from ..output import note
from ..params import check_out_path


@click.group("artifacts", cls=MedledgerGroup)
def artifacts() -> None:
    """The compiled Medledger contract (ABI, bytecode, metadata) shipped with this package."""


@artifacts.command("export")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    default="-",
    show_default=True,
    help="Where to write the artifact (- for stdout).",
)
def export(out: Path) -> None:
    """Write the contract artifact in Foundry's layout (abi, bytecode.object, deployedBytecode,
    methodIdentifiers, metadata), as dapp front ends and Foundry scripts load it.

    Where the contract is deployed on a chain is in <home>/deployments/<chain id>.json."""
    from medledger.chain import shipped

    check_out_path(out)
    text = shipped.dumps(shipped.foundry_artifact())
    if str(out) == "-":
        click.echo(text, nl=False)
        return
    from medledger.fsutil import atomic_write

    atomic_write(out, text)
    note(f"Wrote the Medledger artifact to {out}")


@artifacts.command("build")
@click.option("--check", is_flag=True, help="Only compare: exit 1 if the shipped file differs from a fresh compile.")
def build(check: bool) -> None:
    """Regenerate the shipped artifact from contracts/ (in a checkout with the npm toolchain;
    `make artifacts` runs this)."""
    from medledger.chain import artifacts as compiled
    from medledger.chain import shipped

    if not (compiled.ROOT / "contracts").is_dir():
        raise ChainError(
            "`medledger artifacts build` compiles contracts/ of a medledger checkout; this installation has none "
            f"(package at {compiled.ROOT / 'medledger'})."
        )
    fresh = shipped.dumps(shipped.build())
    target = compiled.ROOT / "medledger" / "chain" / shipped.DATA_FILE
    current = target.read_text() if target.exists() else None
    if check:
        if current != fresh:
            note(f"{target} differs from a fresh compile of contracts/; run `{shipped.REGENERATE}`.")
            raise click.exceptions.Exit(1)
        click.echo(f"{target} matches a fresh compile of contracts/.")
        return
    from medledger.fsutil import atomic_write

    atomic_write(target, fresh)
    click.echo(f"{target}: {'unchanged' if current == fresh else 'regenerated from contracts/'}")


COMMANDS = [artifacts]
