"""``medledger deploy``: put the Medledger contract on the selected chain."""

from __future__ import annotations

import click

from ..context import State, with_state
from ..options import common_options
from ..output import emit, note


@click.command("deploy")
@click.option("--force", is_flag=True, help="Deploy a new contract even if this chain already has one (asks first).")
@click.option("--yes", "-y", is_flag=True, help="With --force: do not ask.")
@click.option("--admin", metavar="ADDRESS", default=None, help="Admin and first registrar (default: the deployer).")
@common_options()
@with_state
def deploy(state: State, force: bool, yes: bool, admin: str | None) -> None:
    """Deploy Medledger as the --as identity and record it in the deployments file.

    A chain gets one deployment: without --force an existing live one is kept. With --force the new
    one replaces it for every command of this home; the old address stays in the file's history."""
    from medledger.chain import deploy_medledger, deployment_file
    from medledger.chain.deploy import live_deployment
    from medledger.chain.recovery import recover_journal
    from medledger.client import connect_chain

    settings = state.settings()
    identity = state.identity()
    admin_address = state.address(admin, "--admin") if admin else None
    chain = connect_chain(settings)
    for what, outcome in recover_journal(chain):  # a deployment interrupted before: re-applied, not made again
        note(f"Journal: {what}  {outcome}")
    existing = live_deployment(chain, settings.deployments) if force else None
    if existing is not None and not yes:
        click.confirm(
            f"Medledger is already deployed at {existing.address} on chain {existing.chain_id} (block "
            f"{existing.block_number}). Deploy a new one? Every command of this home then uses the new "
            f"contract (with none of the old one's participants, consents or records); the old address "
            f"stays in the history of {deployment_file(settings.deployments, existing.chain_id)}",
            abort=True,
            err=True,
        )
    note(
        f"Deploying Medledger from {identity.address} via {settings.rpc_url}"
        + ("…" if force else " unless this chain already has it…")
    )
    deployment, deployed = deploy_medledger(chain, identity.account, settings.deployments, admin_address, force)
    path = deployment_file(settings.deployments, deployment.chain_id)
    data = {
        "address": deployment.address,
        "chain_id": deployment.chain_id,
        "deployed": deployed,
        "deployer": deployment.deployer,
        "block_number": deployment.block_number,
        "tx_hash": deployment.tx_hash,
        "deployments_file": str(path),
        "replaced": existing.address if existing is not None and deployed else None,
    }
    if deployed:
        text = (
            f"Deployed Medledger at {deployment.address} on chain {deployment.chain_id} "
            f"(block {deployment.block_number}, tx {deployment.tx_hash})\nRecorded in {path}"
        )
        if data["replaced"]:
            text += f" (the previous deployment, {data['replaced']}, is kept in its history)"
    else:
        text = (
            f"Medledger is already deployed at {deployment.address} on chain {deployment.chain_id} "
            f"(recorded in {path}); use --force to deploy a new one."
        )
    emit(data, text)


COMMANDS = [deploy]
