"""Deploy medledger with brownie and record it where ``medledger`` looks for it.

    brownie run scripts/deploy.py --network anvil           # the local node of `medledger node up`
    brownie run scripts/deploy.py redeploy --network anvil  # a new one; the old address stays in the history
    brownie run scripts/deploy.py --network NAME            # a network you added with `brownie networks add`

In ``brownie console``, ``from scripts import deploy; medledger = deploy.recorded()`` is the recorded
deployment of the active chain (importing this module also fixes brownie's recording of contracts on
live networks, see :func:`_persist_with_sources_as_dict`).

The deployment goes to the same deployments folder as ``medledger deploy`` writes and every
``medledger`` command reads: ``<MEDLEDGER_HOME>/deployments/<chain id>.json`` (or ``[paths]
deployments`` of the config file, or ``$MEDLEDGER_DEPLOYMENTS``), in the format of
``medledger.chain.deployments``; a deployment that is replaced stays in the file's ``history``.

``anvil`` is brownie's development network set, in brownie-config.yaml, to the local node's default
port; when the home's node listens elsewhere (its ports are chosen at ``node up`` and recorded), the
script follows it. A development network's deployer is its first unlocked account (the local node's
funded dev account); elsewhere it is the brownie account named in ``$MEDLEDGER_DEPLOYER_ACCOUNT``
(brownie asks for its password) or the key in ``$MEDLEDGER_DEPLOYER_KEY``. Keys never come from the
command line.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from brownie import Medledger, accounts, chain, network, web3
from brownie._config import CONFIG
from brownie.network import contract as brownie_contract
from brownie.network import rpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from medledger.chain import Chain  # noqa: E402
from medledger.chain.deployments import Deployment, read_deployment, write_deployment  # noqa: E402
from medledger.config import Settings, load_settings, local_rpc_port  # noqa: E402
from medledger.errors import DeploymentNotFound, MedledgerError  # noqa: E402

#: brownie's development network that brownie-config.yaml points at the local node.
LOCAL_NETWORK = "anvil"


def _refuse(message: str) -> SystemExit:
    """An expected failure: one line on stderr, exit 1, no traceback (brownie shows one for errors)."""
    return SystemExit(f"medledger: {message}")


def _follow_home(settings: Settings) -> None:
    """On the local network, make sure brownie talks to this home's node (not to an anvil brownie just
    started itself, nor to another home's node on the default port)."""
    port = local_rpc_port(settings.rpc_url)
    if port is None:
        raise _refuse(
            f"the configured RPC URL {settings.rpc_url} is not a local node; deploy to it with "
            "`--network NAME` of a brownie network for that URL (or with `medledger deploy`)."
        )
    if local_rpc_port(str(web3.provider.endpoint_uri)) == port:
        if rpc.is_child():
            raise _refuse(
                f"no node of this home answers at {settings.rpc_url} (brownie started a throwaway anvil "
                "there); start it with `medledger node up` first. Nothing was deployed."
            )
        return
    try:
        Chain(settings.rpc_url, settings.chain_id).check()
    except MedledgerError as exc:
        raise _refuse(f"{exc} Start it with `medledger node up` first. Nothing was deployed.") from None
    network.disconnect(kill_rpc=True)
    CONFIG.networks[LOCAL_NETWORK]["cmd_settings"]["port"] = port
    network.connect(LOCAL_NETWORK)
    print(f"Following this home's node at {settings.rpc_url}.")


def _deployer() -> Any:
    if CONFIG.network_type == "development":
        return accounts[0]
    if os.environ.get("MEDLEDGER_DEPLOYER_ACCOUNT"):
        return accounts.load(os.environ["MEDLEDGER_DEPLOYER_ACCOUNT"])
    if os.environ.get("MEDLEDGER_DEPLOYER_KEY"):
        return accounts.add(os.environ["MEDLEDGER_DEPLOYER_KEY"])
    raise _refuse(
        "no deployer account: set MEDLEDGER_DEPLOYER_ACCOUNT (a brownie account name) or "
        "MEDLEDGER_DEPLOYER_KEY (a private key) in the environment."
    )


def _persist_with_sources_as_dict(original: Any) -> Any:
    """brownie 1.22.2 records live deployments with a compiled function that expects the sources as a
    dict and is handed brownie's own ``Sources`` object (``TypeError: dict object expected; got
    ...Sources``, printed from a thread after every live deployment and raised by ``Contract.at``).
    Hand it a dict of the contract's sources instead."""

    def add_deployment(contract: Any, alias: Any = None) -> None:
        sources: dict[str, str] = {}
        for path in contract._build.get("allSourcePaths", {}).values():
            try:
                sources[path] = contract._sources.get(path)
            except OSError:
                continue  # brownie reads the file itself then
        original(SimpleNamespace(address=contract.address, _build=contract._build, _sources=sources), alias)

    return add_deployment


brownie_contract._add_deployment = _persist_with_sources_as_dict(brownie_contract._add_deployment)
# brownie's own notices on attaching to a node that has history (ours always has): not actionable here
warnings.filterwarnings("ignore", message="rpc.snapshot should not be called directly")
warnings.filterwarnings("ignore", message="Development network has a block height")


def deploy(force: bool = False) -> Deployment:
    settings = load_settings()
    if network.show_active() == LOCAL_NETWORK:
        _follow_home(settings)
    directory = settings.deployments
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
    fees = {"gas_price": web3.eth.gas_price} if CONFIG.network_type == "development" else {}
    contract = Medledger.deploy(deployer, {"from": deployer, **fees})
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


def recorded() -> Any:
    """This home's recorded deployment on the active chain, as a brownie contract."""
    settings = load_settings()
    if network.show_active() == LOCAL_NETWORK:
        _follow_home(settings)
    return Medledger.at(read_deployment(settings.deployments, chain.id).address)


def main() -> Deployment:
    return deploy(force=False)


def redeploy() -> Deployment:
    return deploy(force=True)
