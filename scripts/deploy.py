"""Deploy medledger with brownie and record it in the deployments file of the chain.

    brownie run scripts/deploy.py                 # deploy unless this chain already has one
    brownie run scripts/deploy.py redeploy        # deploy a new one anyway
    brownie run scripts/deploy.py --network NAME  # any network brownie knows

The file is ``$MEDLEDGER_DEPLOYMENTS/<chain id>.json`` (default ``deployments/`` in this repo), in
the format ``medledger`` reads (its deployments module). On a development network the
deployer is brownie's first account; elsewhere it is the brownie account named in
``$MEDLEDGER_DEPLOYER_ACCOUNT`` (brownie asks for its password) or the key in
``$MEDLEDGER_DEPLOYER_KEY``. Keys never come from the command line.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from brownie import Medledger, accounts, chain, network, web3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

try:  # the package's layered layout (chain/ holds deployments) ...
    from medledger.chain.deployments import Deployment, read_deployment, write_deployment  # noqa: E402
except ImportError:  # ... or the flat one it is moving from
    from medledger.deployments import Deployment, read_deployment, write_deployment  # noqa: E402
from medledger.errors import DeploymentNotFound  # noqa: E402


def _deployments_dir() -> Path:
    return Path(os.environ.get("MEDLEDGER_DEPLOYMENTS", ROOT / "deployments"))


def _deployer():
    if network.show_active().startswith("development") or network.show_active() == "anvil":
        return accounts[0]
    if os.environ.get("MEDLEDGER_DEPLOYER_ACCOUNT"):
        return accounts.load(os.environ["MEDLEDGER_DEPLOYER_ACCOUNT"])
    if os.environ.get("MEDLEDGER_DEPLOYER_KEY"):
        return accounts.add(os.environ["MEDLEDGER_DEPLOYER_KEY"])
    raise SystemExit(
        "No deployer account: set MEDLEDGER_DEPLOYER_ACCOUNT (a brownie account name) or "
        "MEDLEDGER_DEPLOYER_KEY (a private key) in the environment."
    )


def deploy(force: bool = False) -> Deployment:
    directory = _deployments_dir()
    chain_id = chain.id
    if not force:
        try:
            existing = read_deployment(directory, chain_id)
            if len(web3.eth.get_code(existing.address)) > 0:
                print(f"medledger is already deployed on chain {chain_id} at {existing.address} (not redeployed).")
                return existing
        except DeploymentNotFound:
            pass
    deployer = _deployer()
    contract = Medledger.deploy(deployer, {"from": deployer})
    tx = contract.tx
    deployment = Deployment(
        chain_id=chain_id,
        name="Medledger",
        address=contract.address,
        abi=Medledger.abi,
        deployer=deployer.address,
        block_number=tx.block_number,
        tx_hash=tx.txid,
    )
    path = write_deployment(directory, deployment)
    print(f"medledger deployed on chain {chain_id} at {contract.address}; recorded in {path}")
    return deployment


def main() -> Deployment:
    return deploy(force=False)


def redeploy() -> Deployment:
    return deploy(force=True)
