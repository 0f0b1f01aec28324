"""Deploying the Medledger contract and recording where it lives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from web3.types import TxReceipt

from medledger.errors import DeploymentNotFound

from .artifacts import Artifact
from .deployments import Deployment, read_deployment, write_deployment
from .rpc import Chain
from .shipped import deployable_artifact


def deploy_artifact(chain: Chain, artifact: Artifact, account: LocalAccount, *args: Any) -> tuple[str, TxReceipt]:
    """Deploy ``artifact`` with constructor ``args``; return its address and the receipt."""
    chain.check()
    factory = chain.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    ctor = factory.constructor(*args)
    gas = chain.guarded(lambda: ctor.estimate_gas({"from": account.address}))
    tx = ctor.build_transaction(
        {
            "from": account.address,
            "chainId": chain.chain_id,
            "gas": int(gas * 1.2) + 50_000,
            "nonce": chain.nonce(account.address),
        }
    )
    receipt = chain.send(tx, account)
    contract_address = receipt["contractAddress"]
    assert contract_address is not None, "a mined deployment receipt has a contract address"
    return to_checksum_address(contract_address), receipt


def live_deployment(chain: Chain, deployments_dir: Path) -> Deployment | None:
    """The deployment recorded for this chain, if its address has code (None: none, or not live)."""
    try:
        existing = read_deployment(deployments_dir, chain.check())
    except DeploymentNotFound:
        return None
    return existing if chain.has_code(existing.address) else None


def deploy_medledger(
    chain: Chain,
    account: LocalAccount,
    deployments_dir: Path,
    admin: str | None = None,
    force: bool = False,
) -> tuple[Deployment, bool]:
    """Deploy the Medledger contract unless this chain already has a live deployment.

    Returns the deployment and whether it was deployed now. ``force`` deploys a new one anyway; the
    one it replaces stays in the file's history.
    """
    chain_id = chain.check()
    if not force:
        existing = live_deployment(chain, deployments_dir)
        if existing is not None:
            return existing, False
    artifact = deployable_artifact()
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
    return deployment, True
