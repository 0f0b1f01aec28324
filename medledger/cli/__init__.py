"""The ``medledger`` command line.

::

    medledger [--home DIR] [--rpc-url URL] [--ipfs-api ADDR] [--as NAME] [--json] [-v] COMMAND ...

Commands live in :mod:`medledger.cli.commands` (one module per group); what they share is here:
:mod:`.context` (session state, identities), :mod:`.options`, :mod:`.params` (parameter types),
:mod:`.output` (text or JSON) and :mod:`.errors` (exit codes and hints, see ``medledger --help``).
The library is imported only when a command runs, so ``medledger --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Sequence

import click

from .context import IDENTITY_ENV
from .errors import MedledgerGroup, exit_code_summary
from .options import connection_options, identity_option, json_option, verbose_option


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("medledger")
    except PackageNotFoundError:
        return "0.1.0 (source tree)"


@click.group(
    "medledger",
    cls=MedledgerGroup,
    epilog=exit_code_summary(),
    context_settings={"help_option_names": ["-h", "--help"]},
)
@connection_options
@identity_option(IDENTITY_ENV)
@json_option
@verbose_option
@click.version_option(version=_version(), prog_name="medledger")
def cli() -> None:
    """medledger: patient-controlled medical records on Ethereum.

    Consent lives on chain; records are encrypted to IPFS and fingerprinted on chain. Start the
    local services with `medledger node up`, deploy with `medledger deploy --as NAME`, and create
    identities with `medledger keys create NAME`.

    Passphrases are never options: they come from MEDLEDGER_PASSPHRASE_<NAME> (or
    MEDLEDGER_PASSPHRASE) or from a hidden prompt.

    Shell completion: eval "$(medledger completion bash)" (or zsh, fish) in your shell's start file.
    """


def _register() -> None:
    from .commands import (
        artifacts,
        audit,
        batches,
        completion,
        consent,
        delegates,
        demo,
        deploy,
        export,
        index,
        keys,
        node,
        oversight,
        participants,
        portal,
        records,
    )

    modules = (
        node,
        deploy,
        keys,
        participants,
        consent,
        delegates,
        records,
        batches,
        audit,
        index,
        oversight,
        export,
        demo,
        artifacts,
        completion,
        portal,
    )
    for module in modules:
        for command in getattr(module, "COMMANDS", []):
            cli.add_command(command)
    cli.add_command(consent.held, name="grants")


_register()


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point (``medledger = "medledger.cli:main"``)."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="medledger")


__all__ = ["cli", "main"]
