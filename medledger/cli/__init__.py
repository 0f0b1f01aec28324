"""The ``medledger`` command line.

::

    medledger [--home DIR] [--rpc-url URL] [--ipfs-api ADDR] [--as NAME] [--json] COMMAND ...

Run ``medledger --help`` or ``medledger COMMAND --help`` for the commands; the exit codes are
listed in :data:`medledger.cli.common.EXIT_CODES` and at the end of ``medledger --help``.
"""

from __future__ import annotations

from collections.abc import Sequence

import click

from .common import EXIT_CODES, IDENTITY_ENV, MedledgerGroup, connection_options, identity_option, json_option

def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("medledger")
    except PackageNotFoundError:
        return "0.1.0 (source tree)"


_EPILOG = "Exit codes: 0 ok; " + "; ".join(f"{code} {text.split(' (')[0]}" for code, text in sorted(EXIT_CODES.items()))


@click.group("medledger", cls=MedledgerGroup, epilog=_EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@connection_options
@identity_option(IDENTITY_ENV)
@json_option
@click.version_option(version=_version(), prog_name="medledger")
def cli() -> None:
    """medledger: patient-controlled medical records on Ethereum.

    Consent lives on chain; records are encrypted to IPFS and fingerprinted on chain. Start the
    local services with `medledger node up`, deploy with `medledger deploy --as NAME`, and create
    identities with `medledger keys create NAME`.

    Passphrases are never options: they come from MEDLEDGER_PASSPHRASE_<NAME> (or
    MEDLEDGER_PASSPHRASE) or from a hidden prompt.
    """


def _register() -> None:
    from . import audit, consent, demo, deploy, keys, node, participants, portal, records

    for module in (node, deploy, keys, participants, consent, records, audit, demo, portal):
        for command in module.COMMANDS:
            cli.add_command(command)
    cli.add_command(consent.held, name="grants")


_register()


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point (``medledger = "medledger.cli:main"``)."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="medledger")


__all__ = ["cli", "main"]
