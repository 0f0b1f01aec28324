"""``medledger portal``: the patient's web page, served on this machine."""

from __future__ import annotations

import click

from ..context import State, unlock, with_state
from ..options import common_options


@click.command("portal")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Loopback address to bind (127.x.y.z): the portal serves this machine only.",
)
@click.option(
    "--port", default=8700, show_default=True, type=click.IntRange(0, 65535), help="Port to bind (0: any free port)."
)
@click.option(
    "--relayer",
    "relayer_name",
    default=None,
    metavar="NAME",
    help="Keystore identity that pays gas for patients' signed requests (default: no relayer).",
)
@click.option(
    "--rate-limit",
    default=5,
    show_default=True,
    type=click.IntRange(1, 10_000),
    help="Signed requests the relayer accepts per patient per minute.",
)
@common_options(identity=False, json_output=False)
@with_state
def portal(state: State, host: str, port: int, relayer_name: str | None, rate_limit: int) -> None:
    """Serve the patient's portal: her wallet manages consent and delegates, reads her audit trail and
    opens her records (decrypted in the browser); researchers list the grants made to them.

    The server never receives a private key, passphrase or plaintext; it reads the chain and IPFS
    of the configured network and relays signed consent requests."""
    from medledger.portal.app import create_app
    from medledger.portal.backend import Backend
    from medledger.portal.relayer import Relayer
    from medledger.portal.server import loopback, serve

    loopback(host)  # refused before anything is unlocked or started
    backend = Backend(state.client())
    relayer = Relayer(backend, unlock(state.keystore(), relayer_name), limit=rate_limit) if relayer_name else None
    hosts = {"127.0.0.1", "localhost", host}
    app = create_app(backend, relayer, allowed_hosts=hosts)
    who = f"relayer {relayer.address}" if relayer else "no relayer"

    def announce(url: str) -> None:
        click.echo(
            f"medledger portal on {url}/ (chain {backend.info()['chain_id']}, contract "
            f"{backend.client.deployment.address}, {who}); Ctrl-C stops it",
            err=True,
        )

    serve(app, host, port, announce)


COMMANDS = [portal]
