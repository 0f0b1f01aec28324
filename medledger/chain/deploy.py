"""Deploying the Medledger contract and recording where it lives."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from web3.types import TxReceipt

from medledger.errors import DeploymentNotFound

from .artifacts import Artifact
from .deployments import Deployment, checked_deployment, journal_fields, write_deployment
from .outbox import JournalEntry, journaling, now_ns
from .recovery import recover_journal
from .rpc import Chain
from .sending import describe_call
from .shipped import deployable_artifact


def deploy_artifact(chain: Chain, artifact: Artifact, account: LocalAccount, *args: Any) -> tuple[str, TxReceipt]:
    """Deploy ``artifact`` with constructor ``args``; return its address and the receipt (once written)."""
    chain.check()
    factory = chain.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    ctor = factory.constructor(*args)
    gas = chain.guarded(lambda: ctor.estimate_gas({"from": account.address}))
    # the nonce is a placeholder: send() takes the real one under the account's nonce lock
    tx = ctor.build_transaction(
        {"from": account.address, "chainId": chain.chain_id, "gas": int(gas * 1.2) + 50_000, "nonce": 0}
    )
    receipt = chain.send(tx, account, what=describe_call(f"deploy {artifact.name}", args))
    contract_address = receipt["contractAddress"]
    assert contract_address is not None, "a mined deployment receipt has a contract address"
    return to_checksum_address(contract_address), receipt


def live_deployment(chain: Chain, deployments_dir: Path) -> Deployment | None:
    """The deployment recorded for this chain, if its address has code (None: none, or not live)."""
    try:
        return checked_deployment(chain, deployments_dir)
    except DeploymentNotFound:  # (DeploymentGone is one)
        return None


def deploy_medledger(
    chain: Chain,
    account: LocalAccount,
    deployments_dir: Path,
    admin: str | None = None,
    force: bool = False,
) -> tuple[Deployment, bool]:
    """Deploy the Medledger contract unless this chain already has a live deployment.

    Returns the deployment and whether it was deployed now. ``force`` deploys a new one anyway; the
    one it replaces stays in the file's history. The home's journal is settled first, so a
    deployment interrupted after it was sent is re-applied and recorded rather than made twice; the
    deployment is journaled until it is written and recorded."""
    chain_id = chain.check()
    recover_journal(chain)
    if not force:
        existing = live_deployment(chain, deployments_dir)
        if existing is not None:
            return existing, False
    artifact = deployable_artifact()
    fields = journal_fields(deployments_dir, artifact.name, artifact.abi, account.address, replace=force)
    with _journaled(chain, fields) as entry:
        address, receipt = deploy_artifact(chain, artifact, account, admin or account.address)
        deployment = Deployment(
            chain_id=chain_id,
            name=artifact.name,
            address=address,
            abi=artifact.abi,
            deployer=account.address,
            block_number=int(receipt["blockNumber"]),
            tx_hash="0x" + bytes(receipt["transactionHash"]).hex(),
        )
        write_deployment(deployments_dir, deployment)
        if entry is not None:
            entry.remove()  # written and recorded
    return deployment, True


@contextlib.contextmanager
def _journaled(chain: Chain, fields: dict[str, Any]) -> Iterator[JournalEntry | None]:
    """Run a deployment inside a journal entry of its own (none without a home): if it fails after it
    was sent, the entry stays for recovery, which records the deployment when it lands."""
    journal = chain.durability.journal(chain) if chain.durability is not None else None
    if journal is None:
        yield None
        return
    entry = JournalEntry.create(journal.directory / f"deploy-{now_ns()}.json", fields)
    try:
        with journaling(entry):
            yield entry
    except BaseException:
        if entry.tx is None:
            entry.remove()  # never sent, or it can never land
        else:
            entry.release()
        raise
